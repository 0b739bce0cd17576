//! The operator's policy for dynamic client registration: who may register
//! (`open`, `initial-access-token`, `closed`), which redirect URIs are
//! acceptable, and when two registrations are the same client.

use sha2::{Digest, Sha256};

use super::register::Registration;
use super::{ErrorCode, OAuthError};
use crate::tokens::opaque::{constant_time_eq, hash_secret};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcrMode {
    Open,
    InitialAccessToken,
    Closed,
}

impl DcrMode {
    pub fn parse(value: &str) -> Option<DcrMode> {
        match value {
            "open" => Some(DcrMode::Open),
            "initial-access-token" => Some(DcrMode::InitialAccessToken),
            "closed" => Some(DcrMode::Closed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct DcrPolicy {
    pub mode: DcrMode,
    /// SHA-256 of the accepted initial access token (RFC 7591 §3).
    pub initial_access_token_hash: Option<String>,
    /// When non-empty, every redirect URI must match one (`*` = any run of
    /// characters).
    pub redirect_uri_patterns: Vec<String>,
}

/// Why a registration request is refused before its body is read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Registration is turned off (403).
    Closed,
    /// The initial access token is missing or wrong (401, RFC 6750).
    BadInitialAccessToken,
}

pub fn admit(policy: &DcrPolicy, bearer: Option<&str>) -> Result<(), Refusal> {
    match policy.mode {
        DcrMode::Open => Ok(()),
        DcrMode::Closed => Err(Refusal::Closed),
        DcrMode::InitialAccessToken => match (bearer, &policy.initial_access_token_hash) {
            (Some(token), Some(expected)) if constant_time_eq(&hash_secret(token), expected) => {
                Ok(())
            }
            _ => Err(Refusal::BadInitialAccessToken),
        },
    }
}

pub fn check_redirect_patterns(policy: &DcrPolicy, uris: &[String]) -> Result<(), OAuthError> {
    if policy.redirect_uri_patterns.is_empty() {
        return Ok(());
    }
    for uri in uris {
        if !policy
            .redirect_uri_patterns
            .iter()
            .any(|p| redirect_matches_pattern(p, uri))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("{uri} is not allowed by this server's registration policy"),
            ));
        }
    }
    Ok(())
}

/// Matches a parsed redirect URI against a pattern component by component
/// (scheme, host, port, path and query), so a `*` in the host can never
/// reach into the path (`https://evil.test/x.example.com/` is not
/// `https://*.example.com/*`). A pattern without a port matches only the
/// default port; `:*` matches any.
pub fn redirect_matches_pattern(pattern: &str, uri: &str) -> bool {
    let Some((scheme, host, port, path)) = split_pattern(pattern) else {
        return false;
    };
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    let Some(url_host) = url.host_str() else {
        return false;
    };
    let port_ok = match (port, url.port()) {
        (None, None) => true,
        (Some("*"), _) => true,
        (Some(p), Some(actual)) => p == actual.to_string(),
        _ => false,
    };
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    url.scheme() == scheme
        && wildcard_match(&host.to_ascii_lowercase(), url_host)
        && port_ok
        && url.fragment().is_none()
        && wildcard_match(path, &path_and_query)
}

/// `scheme://host[:port]/path` → its parts (path defaults to `/`).
fn split_pattern(pattern: &str) -> Option<(&str, &str, Option<&str>, &str)> {
    let (scheme, rest) = pattern.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let port = authority[end + 1..].strip_prefix(':');
        (&authority[..=end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    Some((scheme, host, port, path))
}

/// `*` matches any (possibly empty) run of characters; everything else is
/// literal.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if value.len() < first.len() + last.len() || !value.starts_with(first) || !value.ends_with(last)
    {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Identical metadata gives an identical fingerprint: a public client that
/// registers again on every connect gets its existing registration back
/// instead of growing the table.
pub fn fingerprint(reg: &Registration) -> String {
    let canonical = serde_json::json!([
        reg.client_name,
        reg.redirect_uris,
        reg.grant_types,
        reg.token_endpoint_auth_method,
        reg.application_type,
    ]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: DcrMode) -> DcrPolicy {
        DcrPolicy {
            mode,
            initial_access_token_hash: Some(hash_secret("iat-123")),
            redirect_uri_patterns: vec![],
        }
    }

    #[test]
    fn open_mode_admits_anyone() {
        assert_eq!(admit(&policy(DcrMode::Open), None), Ok(()));
    }

    #[test]
    fn closed_mode_admits_no_one() {
        assert_eq!(
            admit(&policy(DcrMode::Closed), Some("iat-123")),
            Err(Refusal::Closed)
        );
    }

    #[test]
    fn initial_access_token_mode_needs_the_token() {
        let p = policy(DcrMode::InitialAccessToken);
        assert_eq!(admit(&p, Some("iat-123")), Ok(()));
        assert_eq!(
            admit(&p, Some("wrong")),
            Err(Refusal::BadInitialAccessToken)
        );
        assert_eq!(admit(&p, None), Err(Refusal::BadInitialAccessToken));
    }

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard_match(
            "http://127.0.0.1:*/callback",
            "http://127.0.0.1:5000/callback"
        ));
        assert!(wildcard_match(
            "https://*.example.com/*",
            "https://app.example.com/cb"
        ));
        assert!(!wildcard_match(
            "https://*.example.com/*",
            "https://example.com.evil/cb"
        ));
        assert!(!wildcard_match(
            "https://app.example/cb",
            "https://app.example/cb2"
        ));
        assert!(wildcard_match("*", "anything"));
    }

    #[test]
    fn host_wildcard_cannot_reach_into_path_or_query() {
        let p = "https://*.example.com/*";
        assert!(redirect_matches_pattern(p, "https://app.example.com/cb"));
        assert!(!redirect_matches_pattern(
            p,
            "https://evil.test/x.example.com/"
        ));
        assert!(!redirect_matches_pattern(
            p,
            "https://evil.test?.example.com/"
        ));
        assert!(!redirect_matches_pattern(
            p,
            "https://evil.test#.example.com/"
        ));
        assert!(!redirect_matches_pattern(
            p,
            "https://user@evil.test/.example.com/"
        ));
        assert!(
            !redirect_matches_pattern(p, "https://app.example.com:8443/cb"),
            "default port only"
        );
        assert!(
            !redirect_matches_pattern(p, "http://app.example.com/cb"),
            "scheme is exact"
        );
    }

    #[test]
    fn port_wildcard_matches_any_port_on_that_host() {
        let p = "http://127.0.0.1:*/callback";
        assert!(redirect_matches_pattern(
            p,
            "http://127.0.0.1:5000/callback"
        ));
        assert!(redirect_matches_pattern(p, "http://127.0.0.1/callback"));
        assert!(!redirect_matches_pattern(
            p,
            "http://127.0.0.2:5000/callback"
        ));
        assert!(!redirect_matches_pattern(p, "http://127.0.0.1:5000/other"));
        assert!(redirect_matches_pattern(
            "http://[::1]:*/cb",
            "http://[::1]:9/cb"
        ));
    }

    #[test]
    fn redirect_uris_outside_the_allowlist_are_refused() {
        let mut p = policy(DcrMode::Open);
        p.redirect_uri_patterns = vec!["http://127.0.0.1:*/*".into()];
        assert!(check_redirect_patterns(&p, &["http://127.0.0.1:9/cb".into()]).is_ok());
        let err = check_redirect_patterns(&p, &["https://app.example/cb".into()]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn fingerprint_changes_with_any_metadata_field() {
        let reg = Registration {
            client_name: Some("a".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "none".into(),
            application_type: "native".into(),
            confidential: false,
        };
        let mut other = reg.clone();
        other.redirect_uris.push("http://127.0.0.1/cb2".into());
        assert_eq!(fingerprint(&reg), fingerprint(&reg.clone()));
        assert_ne!(fingerprint(&reg), fingerprint(&other));
    }
}
