//! Redirect URIs: what may be registered, and when a presented one matches.
//! Exact string match, plus RFC 8252 §7.3: for loopback IP literals the port
//! may differ (native clients listen on an ephemeral port).

use url::{Host, Url};

/// May this URI be registered? https anywhere, http only on loopback; never a
/// fragment, never userinfo, never another scheme (`javascript:`, `data:`, …).
pub fn check_registrable(uri: &str) -> Result<(), String> {
    if uri.chars().any(char::is_control) {
        return Err("redirect URIs must not contain control characters".into());
    }
    let url = Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    if url.fragment().is_some() {
        return Err("redirect URIs must not contain a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("redirect URIs must not contain credentials".into());
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(
            "http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost)".into(),
        ),
        other => Err(format!("scheme {other:?} is not allowed for redirect URIs")),
    }
}

/// Does `presented` match one of `registered`?
pub fn matches_registered(registered: &[String], presented: &str) -> bool {
    registered
        .iter()
        .any(|r| r == presented || loopback_any_port(r, presented))
}

fn loopback_any_port(registered: &str, presented: &str) -> bool {
    let (Ok(r), Ok(p)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let ip_literal = |u: &Url| match u.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    r.scheme() == "http"
        && p.scheme() == "http"
        && ip_literal(&r)
        && r.host() == p.host()
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && p.username().is_empty()
        && p.password().is_none()
}

/// `localhost` or a loopback IP literal.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_is_required_for_https() {
        let r = reg(&["https://app.example/cb"]);
        assert!(matches_registered(&r, "https://app.example/cb"));
        assert!(!matches_registered(&r, "https://app.example/cb/"));
        assert!(!matches_registered(&r, "https://app.example/cb?x=1"));
        assert!(!matches_registered(&r, "https://app.example.evil/cb"));
    }

    #[test]
    fn loopback_ip_literal_matches_any_port() {
        let r = reg(&["http://127.0.0.1/callback", "http://[::1]:8000/cb"]);
        assert!(matches_registered(&r, "http://127.0.0.1:51234/callback"));
        assert!(matches_registered(&r, "http://[::1]:9/cb"));
        assert!(!matches_registered(&r, "http://127.0.0.1:51234/other"));
        assert!(!matches_registered(&r, "http://localhost:51234/callback"));
    }

    #[test]
    fn localhost_name_needs_exact_match() {
        let r = reg(&["http://localhost:3000/cb"]);
        assert!(matches_registered(&r, "http://localhost:3000/cb"));
        assert!(!matches_registered(&r, "http://localhost:3001/cb"));
    }

    #[test]
    fn dangerous_schemes_are_not_registrable() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "file:///etc/passwd",
            "not a url",
            "https://app.example/c\u{0}b",
        ] {
            assert!(check_registrable(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn https_and_loopback_http_are_registrable() {
        for uri in [
            "https://app.example/cb",
            "http://127.0.0.1:3000/cb",
            "http://[::1]/cb",
            "http://localhost/cb",
        ] {
            assert!(check_registrable(uri).is_ok(), "{uri}");
        }
    }
}
