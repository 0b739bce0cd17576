//! The token endpoint's rules: client authentication, redeeming a code, and
//! redeeming a refresh token. Storage effects are the caller's; these decide.

use crate::store::{AuthorizationCodeRow, ClientRow, RefreshTokenRow};
use crate::tokens::opaque::{constant_time_eq, hash_secret};

use super::pkce;
use super::resource::same_resource;
use super::{ErrorCode, OAuthError};

/// Credentials as presented: from HTTP Basic or from the form body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PresentedClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub via_basic: bool,
}

/// RFC 6749 §2.3. A public client proves nothing but its id (PKCE does the
/// rest); a confidential client must present the secret by its method.
pub fn authenticate_client(
    client: &ClientRow,
    presented: &PresentedClient,
) -> Result<(), OAuthError> {
    let bad = || OAuthError::invalid_client("client authentication failed");
    match (&client.client_secret_hash, &presented.client_secret) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(bad()),
        (Some(_), None) => Err(bad()),
        (Some(hash), Some(secret)) => {
            let method_ok = match client.token_endpoint_auth_method.as_str() {
                "client_secret_basic" => presented.via_basic,
                "client_secret_post" => !presented.via_basic,
                _ => false,
            };
            if method_ok && constant_time_eq(hash, &hash_secret(secret)) {
                Ok(())
            } else {
                Err(bad())
            }
        }
    }
}

pub fn check_grant_type_allowed(client: &ClientRow, grant_type: &str) -> Result<(), OAuthError> {
    if client.grant_types.iter().any(|g| g == grant_type) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {grant_type} grant"),
        ))
    }
}

/// What the client sent to redeem a code.
#[derive(Debug, Default)]
pub struct CodeRedemption<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// Everything but single use, which the store enforces atomically.
pub fn check_code(
    code: &AuthorizationCodeRow,
    r: &CodeRedemption<'_>,
    now: i64,
) -> Result<(), OAuthError> {
    if code.used_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "authorization code was already used",
        ));
    }
    if now >= code.expires_at {
        return Err(OAuthError::invalid_grant("authorization code has expired"));
    }
    if code.client_id != r.client_id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if r.redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier = r
        .code_verifier
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required"))?;
    if !pkce::verify(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    check_same_resource(&code.resource, r.resource)
}

/// What presenting a refresh token amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshPresentation {
    /// Unused: rotate it.
    Fresh,
    /// Used moments ago (a retry, or two refreshes racing): answer with the
    /// same pair the rotation gave, so the session survives.
    Retry,
    /// Used before the grace window: someone holds a copy. The caller revokes
    /// the whole grant (theft detection, RFC 9700 §4.14.2).
    Replay,
}

pub fn check_refresh(
    token: &RefreshTokenRow,
    client_id: &str,
    resource: Option<&str>,
    now: i64,
    grace_secs: i64,
) -> Result<RefreshPresentation, OAuthError> {
    if token.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued to another client",
        ));
    }
    if now >= token.expires_at {
        return Err(OAuthError::invalid_grant("refresh token has expired"));
    }
    check_same_resource(&token.resource, resource)?;
    Ok(match token.used_at {
        None => RefreshPresentation::Fresh,
        Some(used) if now - used <= grace_secs && token.successor_enc.is_some() => {
            RefreshPresentation::Retry
        }
        Some(_) => RefreshPresentation::Replay,
    })
}

fn check_same_resource(bound: &str, presented: Option<&str>) -> Result<(), OAuthError> {
    match presented {
        Some(r) if !r.is_empty() && !same_resource(bound, r) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one authorized",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> AuthorizationCodeRow {
        AuthorizationCodeRow {
            code_hash: "h".into(),
            grant_id: "g".into(),
            client_id: "c1".into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: CHALLENGE.into(),
            scope: "mcp".into(),
            resource: "https://b.example/mcp".into(),
            created_at: 0,
            expires_at: 100,
            used_at: None,
        }
    }

    fn redemption() -> CodeRedemption<'static> {
        CodeRedemption {
            client_id: "c1",
            redirect_uri: Some("https://app.example/cb"),
            code_verifier: Some(VERIFIER),
            resource: Some("https://b.example/mcp/"),
        }
    }

    #[test]
    fn valid_redemption_passes() {
        assert_eq!(check_code(&code(), &redemption(), 10), Ok(()));
    }

    #[test]
    fn code_is_bound_to_client_and_redirect_uri() {
        let mut r = redemption();
        r.client_id = "c2";
        assert_eq!(
            check_code(&code(), &r, 10).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        let mut r = redemption();
        r.redirect_uri = Some("https://app.example/other");
        assert_eq!(
            check_code(&code(), &r, 10).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn used_or_expired_code_is_invalid_grant() {
        let mut c = code();
        c.used_at = Some(5);
        assert_eq!(
            check_code(&c, &redemption(), 10).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_code(&code(), &redemption(), 100).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn wrong_or_missing_verifier_fails() {
        let mut r = redemption();
        r.code_verifier = Some("A".repeat(43).leak());
        assert_eq!(
            check_code(&code(), &r, 10).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        r.code_verifier = None;
        assert_eq!(
            check_code(&code(), &r, 10).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn code_resource_must_match_token_resource() {
        let mut r = redemption();
        r.resource = Some("https://other.example/mcp");
        assert_eq!(
            check_code(&code(), &r, 10).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
    }

    fn client(secret_hash: Option<&str>, method: &str) -> ClientRow {
        ClientRow {
            client_id: "c1".into(),
            client_secret_hash: secret_hash.map(str::to_string),
            client_name: None,
            redirect_uris: vec![],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: method.into(),
            application_type: "web".into(),
            registration: "dcr".into(),
            created_at: 0,
            metadata_hash: None,
            last_used_at: None,
        }
    }

    #[test]
    fn confidential_client_needs_its_secret_by_its_method() {
        let c = client(Some(&hash_secret("s3cret")), "client_secret_post");
        let ok = PresentedClient {
            client_id: "c1".into(),
            client_secret: Some("s3cret".into()),
            via_basic: false,
        };
        assert!(authenticate_client(&c, &ok).is_ok());
        let wrong = PresentedClient {
            client_secret: Some("nope".into()),
            ..ok
        };
        assert_eq!(
            authenticate_client(&c, &wrong).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        let basic = PresentedClient {
            client_id: "c1".into(),
            client_secret: Some("s3cret".into()),
            via_basic: true,
        };
        assert!(authenticate_client(&c, &basic).is_err());
    }

    #[test]
    fn public_client_presenting_a_secret_is_rejected() {
        let c = client(None, "none");
        let p = PresentedClient {
            client_id: "c1".into(),
            client_secret: Some("x".into()),
            via_basic: false,
        };
        assert!(authenticate_client(&c, &p).is_err());
        let p = PresentedClient {
            client_id: "c1".into(),
            ..Default::default()
        };
        assert!(authenticate_client(&c, &p).is_ok());
    }

    fn refresh_row(used_at: Option<i64>) -> RefreshTokenRow {
        RefreshTokenRow {
            token_hash: "h".into(),
            grant_id: "g".into(),
            client_id: "c1".into(),
            scope: "mcp".into(),
            resource: "https://b.example/mcp".into(),
            created_at: 0,
            expires_at: 1000,
            used_at,
            successor_enc: used_at.map(|_| vec![1]),
        }
    }

    #[test]
    fn unused_refresh_token_is_fresh() {
        assert_eq!(
            check_refresh(&refresh_row(None), "c1", None, 10, 10),
            Ok(RefreshPresentation::Fresh)
        );
    }

    #[test]
    fn reuse_inside_the_grace_window_is_a_retry() {
        assert_eq!(
            check_refresh(&refresh_row(Some(100)), "c1", None, 110, 10),
            Ok(RefreshPresentation::Retry)
        );
    }

    #[test]
    fn reuse_after_the_grace_window_is_a_replay() {
        assert_eq!(
            check_refresh(&refresh_row(Some(100)), "c1", None, 111, 10),
            Ok(RefreshPresentation::Replay)
        );
        assert_eq!(
            check_refresh(&refresh_row(Some(100)), "c1", None, 100, 0),
            Ok(RefreshPresentation::Retry)
        );
    }

    #[test]
    fn refresh_token_is_bound_to_client_expiry_and_resource() {
        assert_eq!(
            check_refresh(&refresh_row(None), "c2", None, 10, 10)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_refresh(&refresh_row(None), "c1", None, 1000, 10)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        let err = check_refresh(
            &refresh_row(None),
            "c1",
            Some("https://x.example/mcp"),
            10,
            10,
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn refresh_grant_type_must_be_registered() {
        let c = client(None, "none");
        assert_eq!(
            check_grant_type_allowed(&c, "refresh_token")
                .unwrap_err()
                .code,
            ErrorCode::UnauthorizedClient
        );
    }
}
