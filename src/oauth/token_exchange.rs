//! Token exchange (RFC 8693) for first-party tool servers behind the broker:
//! a confidential client presents a user's access token of ours and gets
//! that user's upstream token for one provider. Which clients may ask for
//! which providers is configuration, never a request's say-so.

use super::{ErrorCode, OAuthError};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The request's token-exchange parameters, as sent.
#[derive(Debug, Default)]
pub struct ExchangeRequest<'a> {
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    /// The provider id whose token is wanted.
    pub audience: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub actor_token: Option<&'a str>,
}

/// A well-formed exchange this client is allowed to make.
#[derive(Debug, PartialEq, Eq)]
pub struct Exchange<'a> {
    pub subject_token: &'a str,
    pub provider: &'a str,
}

/// Checks the request against RFC 8693 and the client's allowlist
/// (`allowed`: the provider ids configured for it).
pub fn check_exchange<'a>(
    request: &ExchangeRequest<'a>,
    allowed: &[String],
) -> Result<Exchange<'a>, OAuthError> {
    if allowed.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not allowed to exchange tokens",
        ));
    }
    let subject_token = request
        .subject_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    if request.subject_token_type != Some(ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    if request.actor_token.is_some() {
        return Err(OAuthError::invalid_request(
            "delegation with actor_token is not supported",
        ));
    }
    if request
        .requested_token_type
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(OAuthError::invalid_request(format!(
            "only {ACCESS_TOKEN_TYPE} can be requested"
        )));
    }
    if request.scope.is_some() {
        // The upstream token carries what the user granted the provider;
        // we cannot narrow or widen it.
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "scope cannot be requested: the upstream token's scopes are the user's grant",
        ));
    }
    if request.resource.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "name the provider with audience, not resource",
        ));
    }
    let provider = request
        .audience
        .filter(|a| !a.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("audience (the provider id) is required"))?;
    if !allowed.iter().any(|p| p == provider) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("this client may not obtain tokens for {provider:?}"),
        ));
    }
    Ok(Exchange {
        subject_token,
        provider,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["github".to_string()]
    }

    fn valid() -> ExchangeRequest<'static> {
        ExchangeRequest {
            subject_token: Some("eyJ.subject"),
            subject_token_type: Some(ACCESS_TOKEN_TYPE),
            audience: Some("github"),
            ..Default::default()
        }
    }

    #[test]
    fn an_allowlisted_client_exchanges_an_access_token_for_its_provider() {
        assert_eq!(
            check_exchange(&valid(), &allowed()).unwrap(),
            Exchange {
                subject_token: "eyJ.subject",
                provider: "github"
            }
        );
        let explicit = ExchangeRequest {
            requested_token_type: Some(ACCESS_TOKEN_TYPE),
            ..valid()
        };
        assert!(check_exchange(&explicit, &allowed()).is_ok());
    }

    #[test]
    fn a_client_without_an_allowlist_is_unauthorized() {
        let e = check_exchange(&valid(), &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn a_provider_outside_the_allowlist_is_an_invalid_target() {
        let other = ExchangeRequest {
            audience: Some("gitlab"),
            ..valid()
        };
        assert_eq!(
            check_exchange(&other, &allowed()).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_their_rfc_code() {
        let cases: Vec<(ExchangeRequest, ErrorCode)> = vec![
            (
                ExchangeRequest {
                    subject_token: None,
                    ..valid()
                },
                ErrorCode::InvalidRequest,
            ),
            (
                ExchangeRequest {
                    subject_token_type: Some("urn:ietf:params:oauth:token-type:refresh_token"),
                    ..valid()
                },
                ErrorCode::InvalidRequest,
            ),
            (
                ExchangeRequest {
                    subject_token_type: None,
                    ..valid()
                },
                ErrorCode::InvalidRequest,
            ),
            (
                ExchangeRequest {
                    actor_token: Some("x"),
                    ..valid()
                },
                ErrorCode::InvalidRequest,
            ),
            (
                ExchangeRequest {
                    requested_token_type: Some("urn:ietf:params:oauth:token-type:id_token"),
                    ..valid()
                },
                ErrorCode::InvalidRequest,
            ),
            (
                ExchangeRequest {
                    audience: None,
                    ..valid()
                },
                ErrorCode::InvalidRequest,
            ),
            (
                ExchangeRequest {
                    scope: Some("repo"),
                    ..valid()
                },
                ErrorCode::InvalidScope,
            ),
            (
                ExchangeRequest {
                    resource: Some("https://api.github.com"),
                    ..valid()
                },
                ErrorCode::InvalidTarget,
            ),
        ];
        for (request, code) in cases {
            assert_eq!(
                check_exchange(&request, &allowed()).unwrap_err().code,
                code,
                "{request:?}"
            );
        }
    }
}
