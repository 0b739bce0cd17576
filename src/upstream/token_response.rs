//! Reading a provider's token endpoint answer, quirks included. GitHub answers
//! errors with HTTP 200 and a JSON `error`, may answer form-encoded, returns
//! comma-separated scopes, and (OAuth Apps) gives no `expires_in` and no
//! refresh token. A plain function so every quirk has a unit test.

use std::fmt;

/// Tokens a provider issued. `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    pub refresh_token_expires_in: Option<i64>,
    pub scopes: Vec<String>,
}

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a call to a provider did not give us what we asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The provider understood and refused (`bad_verification_code`,
    /// `invalid_grant`, …): retrying the same request will not help.
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
    },
    /// Transport failure, timeout, 5xx or an unreadable body: the provider may
    /// answer later, and nothing stored should change because of it.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

#[derive(serde::Deserialize)]
struct Body {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<NumberOrString>,
    refresh_token_expires_in: Option<NumberOrString>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Some providers send numbers as strings (and form bodies only have strings).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(i64),
    Text(String),
}

impl NumberOrString {
    fn value(&self) -> Option<i64> {
        match self {
            NumberOrString::Number(n) => Some(*n),
            NumberOrString::Text(s) => s.trim().parse().ok(),
        }
    }
}

pub fn parse_token_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<UpstreamTokens, UpstreamError> {
    if status >= 500 || status == 429 {
        return Err(UpstreamError::Unavailable(format!(
            "token endpoint answered HTTP {status}"
        )));
    }
    let is_form =
        content_type.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let parsed: Option<Body> = if is_form {
        serde_urlencoded_body(body)
    } else {
        serde_json::from_slice(body).ok()
    };
    let Some(parsed) = parsed else {
        return Err(UpstreamError::Unavailable(format!(
            "token endpoint answered HTTP {status} with an unreadable body"
        )));
    };
    if let Some(error) = parsed.error {
        return Err(UpstreamError::Rejected {
            error,
            description: parsed.error_description,
        });
    }
    match (status, parsed.access_token) {
        (200..=299, Some(access_token)) if !access_token.is_empty() => Ok(UpstreamTokens {
            access_token,
            refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
            expires_in: parsed.expires_in.as_ref().and_then(NumberOrString::value),
            refresh_token_expires_in: parsed
                .refresh_token_expires_in
                .as_ref()
                .and_then(NumberOrString::value),
            scopes: split_scopes(parsed.scope.as_deref().unwrap_or("")),
        }),
        (200..=299, _) => Err(UpstreamError::Unavailable(
            "token endpoint answered without an access_token".into(),
        )),
        _ => Err(UpstreamError::Rejected {
            error: format!("http_{status}"),
            description: None,
        }),
    }
}

/// The `id_token` of a successful token answer (OIDC), read beside the
/// tokens because it is checked once and never stored.
pub fn id_token_from(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let is_form =
        content_type.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let token = if is_form {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "id_token")
            .map(|(_, v)| v.into_owned())
    } else {
        #[derive(serde::Deserialize)]
        struct IdTokenField {
            id_token: Option<String>,
        }
        serde_json::from_slice::<IdTokenField>(body).ok()?.id_token
    };
    token.filter(|t| !t.is_empty())
}

fn serde_urlencoded_body(body: &[u8]) -> Option<Body> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some(Body {
        access_token: get("access_token"),
        refresh_token: get("refresh_token"),
        expires_in: get("expires_in").map(NumberOrString::Text),
        refresh_token_expires_in: get("refresh_token_expires_in").map(NumberOrString::Text),
        scope: get("scope"),
        error: get("error"),
        error_description: get("error_description"),
    })
    .filter(|b| b.access_token.is_some() || b.error.is_some())
}

/// Scopes come back space-separated (RFC 6749) or comma-separated (GitHub).
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn github_error_with_http_200_is_a_rejection() {
        let body = br#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com"}"#;
        let err = parse_token_response(200, JSON, body).unwrap_err();
        assert!(
            matches!(err, UpstreamError::Rejected { ref error, .. } if error == "bad_verification_code")
        );
    }

    #[test]
    fn github_oauth_app_token_has_no_expiry_and_comma_scopes() {
        let body = br#"{"access_token":"gho_abc","token_type":"bearer","scope":"read:user,repo"}"#;
        let t = parse_token_response(200, JSON, body).unwrap();
        assert_eq!(t.expires_in, None);
        assert_eq!(t.refresh_token, None);
        assert_eq!(t.scopes, vec!["read:user", "repo"]);
    }

    #[test]
    fn github_app_token_has_expiry_and_refresh_token() {
        let body = br#"{"access_token":"ghu_a","expires_in":28800,"refresh_token":"ghr_b","refresh_token_expires_in":15897600,"scope":"","token_type":"bearer"}"#;
        let t = parse_token_response(200, JSON, body).unwrap();
        assert_eq!(t.expires_in, Some(28800));
        assert_eq!(t.refresh_token.as_deref(), Some("ghr_b"));
        assert_eq!(t.refresh_token_expires_in, Some(15897600));
        assert!(t.scopes.is_empty());
    }

    #[test]
    fn form_encoded_answer_is_read() {
        let body = b"access_token=gho_abc&scope=repo%2Cgist&token_type=bearer";
        let t = parse_token_response(
            200,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            body,
        )
        .unwrap();
        assert_eq!(t.access_token, "gho_abc");
        assert_eq!(t.scopes, vec!["repo", "gist"]);
    }

    #[test]
    fn server_errors_and_garbage_are_transient() {
        assert!(matches!(
            parse_token_response(502, JSON, b"{}"),
            Err(UpstreamError::Unavailable(_))
        ));
        assert!(matches!(
            parse_token_response(200, JSON, b"<html>"),
            Err(UpstreamError::Unavailable(_))
        ));
        assert!(matches!(
            parse_token_response(200, JSON, b"{}"),
            Err(UpstreamError::Unavailable(_))
        ));
    }

    #[test]
    fn standard_400_error_is_a_rejection() {
        let err = parse_token_response(400, JSON, br#"{"error":"invalid_grant"}"#).unwrap_err();
        assert!(
            matches!(err, UpstreamError::Rejected { ref error, .. } if error == "invalid_grant")
        );
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let body = br#"{"access_token":"gho_secret","refresh_token":"ghr_secret"}"#;
        let t = parse_token_response(200, JSON, body).unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("gho_secret") && !shown.contains("ghr_secret"),
            "{shown}"
        );
    }
}
