//! Revoking an upstream grant in the provider's own style, always with the
//! upstream token (never one of ours).

use super::flow::{describe_transport_error, form_encode, read_limited};
use super::provider::{RevocationStyle, TokenAuthMethod};
use super::{Provider, UpstreamError};

/// Revokes upstream. `Ok` also when the provider says the token is already
/// gone: either way nothing is left to revoke.
pub async fn revoke_upstream(
    http: &reqwest::Client,
    provider: &Provider,
    access_token: &str,
    refresh_token: Option<&str>,
) -> Result<(), UpstreamError> {
    let response = match provider.revocation_style {
        RevocationStyle::None => return Ok(()),
        // `/grant` ends the app's whole authorization for the user; `/token`
        // only this token.
        RevocationStyle::Github | RevocationStyle::GithubToken => {
            let what = if provider.revocation_style == RevocationStyle::Github {
                "grant"
            } else {
                "token"
            };
            http.delete(format!(
                "{}/applications/{}/{what}",
                provider.api_base_url, provider.client_id
            ))
            .basic_auth(&provider.client_id, Some(&provider.client_secret))
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(&serde_json::json!({ "access_token": access_token }))
            .send()
            .await
        }
        // RFC 7009: revoking the refresh token revokes the grant's access
        // tokens too (§2.1), so prefer it.
        RevocationStyle::Rfc7009 => {
            let (token, hint) = match refresh_token {
                Some(t) => (t, "refresh_token"),
                None => (access_token, "access_token"),
            };
            let url = provider.revocation_url.as_deref().unwrap_or_default();
            let mut form = vec![("token", token), ("token_type_hint", hint)];
            let mut request = http.post(url);
            match provider.token_endpoint_auth_method {
                TokenAuthMethod::ClientSecretPost => {
                    form.push(("client_id", &provider.client_id));
                    form.push(("client_secret", &provider.client_secret));
                }
                TokenAuthMethod::ClientSecretBasic => {
                    request = request.basic_auth(
                        form_encode(&provider.client_id),
                        Some(form_encode(&provider.client_secret)),
                    );
                }
            }
            request.form(&form).send().await
        }
    }
    .map_err(|e| UpstreamError::Unavailable(describe_transport_error(&e)))?;
    let status = response.status().as_u16();
    let _ = read_limited(response).await;
    match status {
        200..=299 | 404 => Ok(()),
        429 | 500.. => Err(UpstreamError::Unavailable(format!(
            "revocation answered HTTP {status}"
        ))),
        _ => Err(UpstreamError::Rejected {
            error: format!("revocation_http_{status}"),
            description: None,
        }),
    }
}
