//! Validating an authorization request (RFC 6749 §4.1.1 with OAuth 2.1 and
//! MCP rules). Until the client and its redirect URI are known good, errors
//! are shown on our own page: redirecting to an unvalidated URI would make us
//! an open redirector.

use serde::Deserialize;

use super::pkce::check_challenge;
use super::redirect_uri::matches_registered;
use super::resource::check_resource;
use super::scope::ScopeCatalog;
use super::{ErrorCode, OAuthError};

#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub prompt: Option<String>,
}

/// A request we will show consent for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// The client or redirect URI cannot be trusted: show an error page.
    Page(OAuthError),
    /// Tell the client, at its (validated) redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

const MAX_STATE_LEN: usize = 1024;

/// `registered` is the client's redirect URI list (the caller has already
/// found the client; `client_id` is checked to be present here).
pub fn validate_authorization(
    params: &AuthorizeParams,
    registered: &[String],
    our_resource: &str,
    scopes: &ScopeCatalog,
) -> Result<ValidAuthorization, AuthorizeRejection> {
    let client_id = params
        .client_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            AuthorizeRejection::Page(OAuthError::invalid_request("client_id is required"))
        })?;
    let redirect_uri = match &params.redirect_uri {
        Some(uri) if matches_registered(registered, uri) => uri.clone(),
        Some(_) => {
            return Err(AuthorizeRejection::Page(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            )));
        }
        // RFC 6749 §3.1.2.3: may be omitted when exactly one is registered.
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return Err(AuthorizeRejection::Page(OAuthError::invalid_request(
                "redirect_uri is required",
            )));
        }
    };
    let state = params.state.clone().filter(|s| !s.is_empty());
    let reject = |error: OAuthError| AuthorizeRejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(reject(OAuthError::invalid_request("state is too long")));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(reject(OAuthError::invalid_request(
                "response_type is required",
            )));
        }
        Some(_) => {
            return Err(reject(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    let code_challenge = check_challenge(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )
    .map_err(reject)?;
    let scope = scopes
        .check_requested(params.scope.as_deref())
        .map_err(reject)?;
    let resource = check_resource(params.resource.as_deref(), our_resource).map_err(reject)?;
    Ok(ValidAuthorization {
        client_id,
        redirect_uri,
        state,
        code_challenge,
        scope,
        resource,
    })
}

/// The URL that sends an authorization response back to the client. Every
/// response carries `iss` (RFC 9207) so clients can detect mix-up attacks.
pub fn response_url(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut url = url::Url::parse(redirect_uri).expect("redirect URIs are validated before use");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", issuer);
    }
    url.into()
}

pub fn error_response_url(
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    response_url(
        redirect_uri,
        &[
            ("error", error.code.as_str()),
            ("error_description", &error.description),
        ],
        state,
        issuer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "https://b.example/mcp";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("c1".into()),
            redirect_uri: Some("https://app.example/cb".into()),
            state: Some("xyz".into()),
            code_challenge: Some(CHALLENGE.into()),
            code_challenge_method: Some("S256".into()),
            scope: None,
            resource: Some(RESOURCE.into()),
            prompt: None,
        }
    }

    fn registered() -> Vec<String> {
        vec!["https://app.example/cb".into()]
    }

    #[test]
    fn valid_request_passes() {
        let v =
            validate_authorization(&params(), &registered(), RESOURCE, &ScopeCatalog::default())
                .unwrap();
        assert_eq!(v.scope, "profile repo:read");
        assert_eq!(v.resource, RESOURCE);
    }

    #[test]
    fn redirect_mismatch_shows_a_page_not_a_redirect() {
        let mut p = params();
        p.redirect_uri = Some("https://evil.example/cb".into());
        assert!(matches!(
            validate_authorization(&p, &registered(), RESOURCE, &ScopeCatalog::default()),
            Err(AuthorizeRejection::Page(_))
        ));
    }

    #[test]
    fn missing_pkce_is_redirected_as_invalid_request() {
        let mut p = params();
        p.code_challenge = None;
        match validate_authorization(&p, &registered(), RESOURCE, &ScopeCatalog::default()) {
            Err(AuthorizeRejection::Redirect { error, state, .. }) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest);
                assert_eq!(state.as_deref(), Some("xyz"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_resource_is_invalid_target() {
        let mut p = params();
        p.resource = Some("https://other.example/mcp".into());
        match validate_authorization(&p, &registered(), RESOURCE, &ScopeCatalog::default()) {
            Err(AuthorizeRejection::Redirect { error, .. }) => {
                assert_eq!(error.code, ErrorCode::InvalidTarget)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_response_carries_iss() {
        let url = response_url(
            "https://app.example/cb?keep=1",
            &[("code", "abc")],
            Some("s"),
            "https://b.example",
        );
        assert_eq!(
            url,
            "https://app.example/cb?keep=1&code=abc&state=s&iss=https%3A%2F%2Fb.example"
        );
        let err = error_response_url(
            "https://app.example/cb",
            &OAuthError::new(ErrorCode::AccessDenied, "no"),
            None,
            "https://b.example",
        );
        assert!(err.contains("error=access_denied") && err.contains("iss="));
    }
}
