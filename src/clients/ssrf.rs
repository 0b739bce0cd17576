//! The SSRF guard for URLs a client makes us fetch (its metadata document).
//! We resolve the host ourselves and refuse addresses inside private,
//! loopback, link-local, metadata-service and other non-public ranges unless
//! the operator allowlisted the host or address; the caller then connects to
//! exactly the address returned here, so DNS cannot answer differently
//! between the check and the connection (rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Hosts and addresses the operator lets us fetch from despite the guard.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    names: Vec<String>,
    addrs: Vec<IpAddr>,
}

impl Allowlist {
    /// Entries are host names (any case, trailing dot ignored) or IP
    /// literals (`::1` or `[::1]`).
    pub fn new(entries: &[String]) -> Allowlist {
        let mut list = Allowlist::default();
        for entry in entries {
            let entry = entry.trim();
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<IpAddr>() {
                Ok(ip) => list.addrs.push(ip),
                Err(_) => list.names.push(normal_name(entry)),
            }
        }
        list
    }

    pub fn allows_host(&self, host: &Host<&str>) -> bool {
        match host {
            Host::Domain(name) => self.names.contains(&normal_name(name)),
            Host::Ipv4(ip) => self.addrs.contains(&IpAddr::V4(*ip)),
            Host::Ipv6(ip) => self.addrs.contains(&IpAddr::V6(*ip)),
        }
    }
}

fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Debug, PartialEq, Eq)]
pub enum GuardError {
    /// The host resolves (or is) somewhere we must not connect to.
    Forbidden(String),
    /// DNS failed; it may work later.
    Unresolvable(String),
}

/// Resolves `url`'s host and returns the one address to connect to, or why
/// not. A name is refused if any of its addresses is non-public: a mixed
/// answer is either a misconfiguration or an attack.
pub async fn checked_address(url: &Url, allow: &Allowlist) -> Result<SocketAddr, GuardError> {
    let host = url
        .host()
        .ok_or_else(|| GuardError::Forbidden("the URL has no host".into()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| GuardError::Forbidden("the URL has no port".into()))?;
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(ip.into(), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(ip.into(), port)],
        Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| GuardError::Unresolvable(format!("cannot resolve {name}")))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| GuardError::Unresolvable(format!("{host} has no addresses")))?;
    if allow.allows_host(&host) {
        return Ok(first);
    }
    let allowed_ip = |ip: IpAddr| allow.addrs.contains(&ip);
    if let Some(bad) = addrs
        .iter()
        .find(|a| is_non_public(a.ip()) && !allowed_ip(a.ip()))
    {
        return Err(GuardError::Forbidden(format!(
            "{host} is or resolves to a non-public address ({}); not fetched",
            bad.ip()
        )));
    }
    Ok(first)
}

/// Addresses a fetch on a client's behalf must never reach.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_non_public(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_non_public(v4),
            None => v6_non_public(v6),
        },
    }
}

fn v4_non_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", incl. 0.0.0.0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: cloud metadata services live here
        || (a == 100 && (b & 0xc0) == 64) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // deprecated 6to4 relay anycast
        || ip.is_documentation()
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18/15
        || ip.is_multicast()
        || a >= 240 // reserved 240/4 and broadcast
}

fn v6_non_public(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: tunnels to any IPv4 host
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // NAT64 local-use 64:ff9b:1::/48
        || (s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0) // SIIT ::ffff:0:0:0/96
}

/// IPv6 forms whose packets end up at an IPv4 address: mapped, compatible,
/// NAT64 (64:ff9b::/96) and 6to4 (2002::/16). They are judged as that IPv4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(v4(hi, lo)),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_and_relay_prefixes_are_refused() {
        for ip in ["64:ff9b:1::a00:1", "::ffff:0:a00:1", "192.88.99.1"] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cloud_metadata_and_link_local_addresses_are_refused() {
        for a in ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254"] {
            assert!(is_non_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn loopback_is_refused_in_every_spelling() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
        ] {
            assert!(is_non_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn private_and_shared_ranges_are_refused() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "fc00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_non_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn unspecified_multicast_broadcast_and_documentation_are_refused() {
        for a in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "2001:db8::1",
            "198.18.0.1",
        ] {
            assert!(is_non_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_non_public(ip(a)), "{a}");
        }
    }

    #[tokio::test]
    async fn literal_private_host_is_forbidden_unless_allowlisted() {
        let url = Url::parse("https://127.0.0.1:8443/client").unwrap();
        let refused = checked_address(&url, &Allowlist::default())
            .await
            .unwrap_err();
        assert!(matches!(refused, GuardError::Forbidden(_)), "{refused:?}");
        let allow = Allowlist::new(&["127.0.0.1".into()]);
        assert_eq!(
            checked_address(&url, &allow).await.unwrap(),
            "127.0.0.1:8443".parse().unwrap()
        );
        let v6 = Url::parse("https://[::1]/client").unwrap();
        assert!(
            checked_address(&v6, &Allowlist::new(&["[::1]".into()]))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn localhost_name_is_forbidden_unless_allowlisted() {
        let url = Url::parse("https://localhost/client").unwrap();
        let refused = checked_address(&url, &Allowlist::default())
            .await
            .unwrap_err();
        assert!(matches!(refused, GuardError::Forbidden(_)), "{refused:?}");
        assert!(
            checked_address(&url, &Allowlist::new(&["LOCALHOST".into()]))
                .await
                .is_ok()
        );
    }

    #[test]
    fn allowlist_matches_names_case_insensitively_and_ip_literals_exactly() {
        let allow = Allowlist::new(&["Docs.Example.".into(), "10.0.0.5".into()]);
        assert!(allow.allows_host(&Host::Domain("docs.example")));
        assert!(!allow.allows_host(&Host::Domain("evil-docs.example")));
        assert!(allow.allows_host(&Host::Ipv4("10.0.0.5".parse().unwrap())));
        assert!(!allow.allows_host(&Host::Ipv4("10.0.0.6".parse().unwrap())));
    }
}
