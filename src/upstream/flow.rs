//! The nested OAuth flow: we are the provider's client.

use serde_json::{Map, Value};

use super::oidc::{self, IdTokenError};
use super::provider::{ProviderKind, TokenAuthMethod};
use super::token_response::{id_token_from, parse_token_response};
use super::{Provider, UpstreamError, UpstreamTokens};

/// Who the provider says the user is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub login: String,
    pub email: Option<String>,
}

/// Why a sign-in at the provider did not give us a user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// OIDC: the id_token failed a check. Not retryable, not our fault.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// Where we send the browser after consent. OIDC providers also get the
/// nonce, and the `openid` scope when the file's scopes lack it.
pub fn authorize_url(
    provider: &Provider,
    redirect_uri: &str,
    state: &str,
    scopes: &[String],
    pkce_challenge: Option<&str>,
    nonce: Option<&str>,
) -> String {
    let mut scopes = scopes.to_vec();
    if provider.kind == ProviderKind::Oidc && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let mut url =
        url::Url::parse(&provider.authorize_url).expect("checked when the provider loaded");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(&provider.scope_separator));
        }
        if let Some(challenge) = pkce_challenge {
            q.append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(nonce) = nonce {
            q.append_pair("nonce", nonce);
        }
        for (k, v) in &provider.extra_authorize_params {
            q.append_pair(k, v);
        }
    }
    url.into()
}

/// The callback's whole upstream part: redeem the code, then learn who the
/// user is — from the userinfo document (`oauth2`), or from the verified
/// id_token with userinfo for what it lacks (`oidc`, where
/// `nonce_hash` is what the pending request stored).
pub async fn sign_in(
    http: &reqwest::Client,
    provider: &Provider,
    code: &str,
    redirect_uri: &str,
    pkce_verifier: Option<&str>,
    nonce_hash: Option<&str>,
) -> Result<(UpstreamTokens, Identity), SignInError> {
    let (tokens, id_token) =
        exchange_code(http, provider, code, redirect_uri, pkce_verifier).await?;
    let identity = match provider.kind {
        ProviderKind::Oauth2 => fetch_identity(http, provider, &tokens.access_token).await?,
        ProviderKind::Oidc => {
            let id_token = id_token.ok_or(IdTokenError::Missing)?;
            let jwks = oidc::fetch_jwks(http, &provider.jwks_uri).await?;
            let expected = oidc::Expected {
                issuer: provider.issuer.as_deref().unwrap_or_default(),
                client_id: &provider.client_id,
                // A pending request without a nonce cannot match any.
                nonce_hash: nonce_hash.unwrap_or_default(),
            };
            let verified = oidc::verify_id_token(&id_token, &expected, &jwks)?;
            let userinfo = if oidc::needs_userinfo(&verified, &provider.identity)
                && !provider.userinfo_url.is_empty()
            {
                Some(fetch_userinfo(http, provider, &tokens.access_token).await?)
            } else {
                None
            };
            oidc::identity_from_claims(&verified, userinfo.as_ref(), &provider.identity)?
        }
    };
    Ok((tokens, identity))
}

/// Redeems the provider's code; the id_token, if any, comes beside the
/// tokens (it is checked, never stored). Errors are classified, never
/// swallowed.
pub async fn exchange_code(
    http: &reqwest::Client,
    provider: &Provider,
    code: &str,
    redirect_uri: &str,
    pkce_verifier: Option<&str>,
) -> Result<(UpstreamTokens, Option<String>), UpstreamError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(verifier) = pkce_verifier {
        form.push(("code_verifier", verifier));
    }
    token_request(http, provider, form).await
}

/// Trades a refresh token for new tokens (RFC 6749 §6). One attempt: the
/// vault decides about retries, because a rotating provider may have
/// consumed the refresh token even when its answer never arrived.
pub async fn refresh_tokens(
    http: &reqwest::Client,
    provider: &Provider,
    refresh_token: &str,
) -> Result<UpstreamTokens, UpstreamError> {
    let form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    Ok(token_request(http, provider, form).await?.0)
}

/// A POST to the token endpoint with the provider's client authentication
/// and extra parameters.
async fn token_request(
    http: &reqwest::Client,
    provider: &Provider,
    mut form: Vec<(&str, &str)>,
) -> Result<(UpstreamTokens, Option<String>), UpstreamError> {
    for (k, v) in &provider.extra_token_params {
        form.push((k.as_str(), v.as_str()));
    }
    let mut request = http
        .post(&provider.token_url)
        .header(reqwest::header::ACCEPT, "application/json");
    match provider.token_endpoint_auth_method {
        TokenAuthMethod::ClientSecretPost => {
            form.push(("client_id", provider.client_id.as_str()));
            form.push(("client_secret", provider.client_secret.as_str()));
        }
        TokenAuthMethod::ClientSecretBasic => {
            request = request.basic_auth(
                form_encode(&provider.client_id),
                Some(form_encode(&provider.client_secret)),
            );
        }
    }
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|e| UpstreamError::Unavailable(describe_transport_error(&e)))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_limited(response).await?;
    let tokens = parse_token_response(status, content_type.as_deref(), &body)?;
    Ok((tokens, id_token_from(content_type.as_deref(), &body)))
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
pub(crate) fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Reads the userinfo document (GitHub: `GET /user`) and the identity in it.
pub async fn fetch_identity(
    http: &reqwest::Client,
    provider: &Provider,
    access_token: &str,
) -> Result<Identity, UpstreamError> {
    let doc = fetch_userinfo(http, provider, access_token).await?;
    identity_from(&doc, provider)
        .ok_or_else(|| UpstreamError::Unavailable("userinfo lacks the identity fields".into()))
}

/// The userinfo document as a JSON object.
pub async fn fetch_userinfo(
    http: &reqwest::Client,
    provider: &Provider,
    access_token: &str,
) -> Result<Map<String, Value>, UpstreamError> {
    let response = http
        .get(&provider.userinfo_url)
        .bearer_auth(access_token)
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.github+json, application/json",
        )
        .send()
        .await
        .map_err(|e| UpstreamError::Unavailable(describe_transport_error(&e)))?;
    let status = response.status().as_u16();
    let body = read_limited(response).await?;
    match status {
        200..=299 => {}
        401 | 403 => {
            return Err(UpstreamError::Rejected {
                error: format!("userinfo_http_{status}"),
                description: None,
            });
        }
        _ => {
            return Err(UpstreamError::Unavailable(format!(
                "userinfo answered HTTP {status}"
            )));
        }
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(doc)) => Ok(doc),
        _ => Err(UpstreamError::Unavailable(
            "userinfo answered an unreadable body".into(),
        )),
    }
}

/// Subjects may be numbers (GitHub's `id`) or strings (OIDC `sub`).
fn identity_from(doc: &Map<String, Value>, provider: &Provider) -> Option<Identity> {
    let text = |field: &str| oidc::claim_text(doc, field);
    let subject = text(&provider.identity.subject)?;
    let login = text(&provider.identity.login).unwrap_or_else(|| subject.clone());
    let email = provider.identity.email.as_deref().and_then(text);
    Some(Identity {
        subject,
        login,
        email,
    })
}

/// Upstream bodies we read are small; a huge one is a broken or hostile server.
const MAX_BODY: usize = 1024 * 1024;

pub(crate) async fn read_limited(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| UpstreamError::Unavailable(describe_transport_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(UpstreamError::Unavailable("response body too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's errors can include the URL; ours are logged, so keep only the kind.
pub(crate) fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "transport error".into()
    }
}
