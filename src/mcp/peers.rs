//! Which `Host` and `Origin` values the MCP endpoints answer. A web page
//! that rebinds its own DNS name to the broker's address sends its own name
//! as `Host` and its own origin as `Origin`; both must be refused before a
//! browser's credentials or a local network position can be used.

use crate::config::Config;

#[derive(Clone, Debug)]
pub struct AllowedPeers {
    /// Lower-case host names and IP literals, without ports.
    hosts: Vec<String>,
    /// `scheme://host[:port]`, as browsers serialise origins.
    origins: Vec<String>,
}

impl AllowedPeers {
    /// Loopback, the public URL's host and `mcp_allowed_hosts`; the public
    /// URL's origin and `mcp_allowed_origins`.
    pub fn from_config(config: &Config) -> AllowedPeers {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        if let Some(host) = url::Url::parse(&config.public_url).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        }) {
            hosts.push(host);
        }
        hosts.extend(config.mcp_allowed_hosts.iter().cloned());
        AllowedPeers {
            hosts,
            origins: config.mcp_allowed_origins.clone(),
        }
    }

    /// The request's authority (`Host`, or HTTP/2's `:authority`) names us.
    pub fn host_allowed(&self, authority: Option<&str>) -> bool {
        authority
            .and_then(host_of)
            .is_some_and(|host| self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
    }

    /// No `Origin` (not a browser) passes; a present one must be ours.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        // `Origin: null` (sandboxed frames, file pages) is never ours.
        url::Url::parse(origin.trim())
            .ok()
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .is_some_and(|o| self.origins.contains(&o.ascii_serialization()))
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `::1`; no trailing dot
/// (case is left as sent; compare ignoring it). `None` for anything that is
/// not a plain authority. Borrowed: this runs on every MCP request.
fn host_of(authority: &str) -> Option<&str> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':')?.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        ip
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    if host.is_empty() || host.contains(['@', '/', ' ']) {
        return None;
    }
    Some(host.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> AllowedPeers {
        let env = vec![(
            "MCP_BROKER_PUBLIC_URL".to_string(),
            "https://Broker.Example".to_string(),
        )];
        let mut config = Config::from_sources(None, &env).unwrap();
        config.mcp_allowed_hosts = vec!["broker.internal".into()];
        config
            .mcp_allowed_origins
            .push("https://app.example".into());
        AllowedPeers::from_config(&config)
    }

    #[test]
    fn our_names_pass_with_any_port_and_others_are_refused() {
        let p = peers();
        for ok in [
            "broker.example",
            "BROKER.example:443",
            "broker.example.",
            "127.0.0.1:8080",
            "[::1]:9",
            "localhost",
            "broker.internal:8080",
        ] {
            assert!(p.host_allowed(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "broker.example.evil.example",
            "evil.example:broker.example",
            "user@broker.example",
            "[::1]x",
            "",
        ] {
            assert!(!p.host_allowed(Some(bad)), "{bad}");
        }
        assert!(!p.host_allowed(None));
    }

    #[test]
    fn browser_origins_must_be_ours_and_absent_origin_passes() {
        let p = peers();
        assert!(p.origin_allowed(None));
        assert!(p.origin_allowed(Some("https://broker.example")));
        assert!(p.origin_allowed(Some("https://broker.example:443")));
        assert!(p.origin_allowed(Some("https://app.example")));
        for bad in [
            "http://broker.example",
            "https://broker.example:8443",
            "https://evil.example",
            "null",
            "not a url",
        ] {
            assert!(!p.origin_allowed(Some(bad)), "{bad}");
        }
    }
}
