//! Dynamic client registration (RFC 7591), open for now. Validates the
//! client's metadata and decides what we store.

use serde::Deserialize;

use super::redirect_uri::check_registrable;
use super::{ErrorCode, OAuthError};

/// The registration request body; unknown fields are ignored per RFC 7591.
#[derive(Debug, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub application_type: Option<String>,
    pub scope: Option<String>,
}

/// Validated metadata, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub application_type: String,
    /// Confidential clients get a secret; public ones (`none`) do not.
    pub confidential: bool,
}

pub const AUTH_METHODS: &[&str] = &["none", "client_secret_post", "client_secret_basic"];
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_LEN: usize = 200;

fn metadata_error(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

pub fn validate_registration(req: RegistrationRequest) -> Result<Registration, OAuthError> {
    let redirect_uris = req.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "too many redirect_uris",
        ));
    }
    for uri in &redirect_uris {
        if uri.len() > MAX_URI_LEN {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect URI too long",
            ));
        }
        check_registrable(uri).map_err(|m| OAuthError::new(ErrorCode::InvalidRedirectUri, m))?;
    }
    let method = req
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&method.as_str()) {
        return Err(metadata_error(format!(
            "token_endpoint_auth_method {method:?} is not supported"
        )));
    }
    let grant_types = req
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty()
        || grant_types
            .iter()
            .any(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(metadata_error(
            "grant_types may contain only authorization_code and refresh_token",
        ));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(metadata_error(
            "grant_types must include authorization_code",
        ));
    }
    if req
        .response_types
        .as_ref()
        .is_some_and(|rt| rt.iter().any(|r| r != "code"))
    {
        return Err(metadata_error("response_types may contain only code"));
    }
    let application_type = req.application_type.unwrap_or_else(|| "web".into());
    if application_type != "web" && application_type != "native" {
        return Err(metadata_error("application_type must be web or native"));
    }
    // `scope` is informational here: what a client may get is decided per
    // authorization request, against the scope catalog.
    // Shown on the consent page and stored as text: no control characters
    // (PostgreSQL refuses NUL outright).
    let client_name = req
        .client_name
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(MAX_NAME_LEN)
                .collect::<String>()
        })
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    Ok(Registration {
        client_name,
        redirect_uris,
        grant_types,
        confidential: method != "none",
        token_endpoint_auth_method: method,
        application_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uris: &[&str]) -> RegistrationRequest {
        RegistrationRequest {
            redirect_uris: Some(uris.iter().map(|s| s.to_string()).collect()),
            token_endpoint_auth_method: Some("none".into()),
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn public_client_with_loopback_redirect_registers() {
        let r = validate_registration(req(&["http://127.0.0.1:3000/cb"])).unwrap();
        assert!(!r.confidential);
        assert_eq!(r.application_type, "web");
    }

    #[test]
    fn dcr_rejects_javascript_data_and_non_loopback_http() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,x",
            "http://evil.example/cb",
        ] {
            let err = validate_registration(req(&[uri])).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRedirectUri, "{uri}");
        }
    }

    #[test]
    fn missing_redirect_uris_is_rejected() {
        let err = validate_registration(RegistrationRequest::default()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn unsupported_grant_type_is_invalid_metadata() {
        let mut r = req(&["https://a.example/cb"]);
        r.grant_types = Some(vec!["password".into()]);
        assert_eq!(
            validate_registration(r).unwrap_err().code,
            ErrorCode::InvalidClientMetadata
        );
    }

    #[test]
    fn default_auth_method_is_confidential() {
        let mut r = req(&["https://a.example/cb"]);
        r.token_endpoint_auth_method = None;
        assert!(validate_registration(r).unwrap().confidential);
    }
}
