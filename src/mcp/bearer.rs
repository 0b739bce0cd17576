//! The bearer check on every MCP request: our JWT (signature, issuer,
//! audience, expiry), then one indexed read to see the grant is still live,
//! then — for `tools/call` — the scope the tool needs. The client's token
//! stops here; it is never sent upstream.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::tools::{Call, requirement};
use crate::app::AppState;
use crate::error::AppError;
use crate::http::metadata::protected_resource_url;
use crate::tokens::AccessTokenError;
use crate::vault::{UpstreamToken, VaultError};

/// Who is calling, for the tools. Inserted into the request's extensions.
#[derive(Clone, Debug)]
pub struct GrantCtx {
    pub grant_id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    /// Upstream tokens fetched for this request's tool calls, by provider
    /// (`Err`: what to tell the model, e.g. the provider is unavailable).
    pub upstream: Arc<Vec<(String, Result<UpstreamToken, String>)>>,
}

/// rmcp's own request limit; a body over it is refused here first.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;
/// How much of a refused request's body we read to keep its connection.
pub(crate) const DRAIN_LIMIT: usize = 64 * 1024;

pub(crate) fn challenge(
    state: &AppState,
    status: StatusCode,
    error: Option<&'static str>,
    description: Option<&str>,
    scope: Option<String>,
) -> Response {
    AppError::Bearer {
        status,
        resource_metadata: protected_resource_url(state),
        error,
        description: description.map(str::to_string),
        scope,
    }
    .into_response()
}

/// Our token, verified, and its grant still live; or the 401 to answer.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<GrantCtx, Response> {
    let unauthorized = |error, description: Option<&str>| {
        // The default scopes tell a client what to ask for (2025-11-25).
        challenge(
            state,
            StatusCode::UNAUTHORIZED,
            error,
            description,
            Some(state.config.scopes.defaults()),
        )
    };
    let Some(token) = crate::http::form::bearer_token(headers) else {
        // No credentials: a bare challenge (RFC 6750 §3.1) starts discovery.
        return Err(unauthorized(None, None));
    };
    let claims = match state
        .keys
        .verify(token, &state.config.public_url, &state.config.mcp_url())
        .await
    {
        Ok(claims) => claims,
        Err(e) => {
            let description = match e {
                AccessTokenError::Expired => "the access token has expired",
                AccessTokenError::UnknownKey => "the access token was not issued by this server",
                _ => "the access token is invalid",
            };
            return Err(unauthorized(Some("invalid_token"), Some(description)));
        }
    };
    match state.store.grant_status(&claims.grant_id).await {
        Ok(Some(grant)) if !grant.revoked => {}
        Ok(_) => {
            return Err(unauthorized(
                Some("invalid_token"),
                Some("the grant behind this token was revoked"),
            ));
        }
        Err(e) => return Err(AppError::internal(e).into_response()),
    }
    Ok(GrantCtx {
        grant_id: claims.grant_id,
        user_id: claims.sub,
        client_id: claims.client_id,
        scope: claims.scope,
        upstream: Arc::default(),
    })
}

pub async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let grant = match authenticate(&state, &parts.headers).await {
        Ok(grant) => grant,
        Err(refusal) => {
            // Read a small body before answering: hyper closes a connection
            // whose announced body was never read (e.g. after `Expect:
            // 100-continue`), and the client loses its keep-alive connection.
            let _ = axum::body::to_bytes(body, DRAIN_LIMIT).await;
            return refusal;
        }
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let calls = tool_calls(&body);
    if let Some(missing) = missing_scopes(&state, &grant.scope, &calls) {
        // One challenge naming everything needed: what was granted plus what
        // these calls require, so a re-authorization covers both (step-up).
        let mut wanted: Vec<String> = grant.scope.split(' ').map(str::to_string).collect();
        wanted.extend(missing);
        let description = "this tool needs a scope the token does not have";
        return challenge(
            &state,
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            Some(description),
            Some(wanted.join(" ")),
        );
    }
    let session = match owned_session(&state, &parts.headers, &grant.user_id, str::to_string) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    let mut grant = grant;
    match fetch_upstream(&state, &grant.grant_id, &grant.scope, &calls).await {
        Ok(upstream) => grant.upstream = Arc::new(upstream),
        Err(refusal) => return refusal,
    }
    let user_id = grant.user_id.clone();
    let ending_session = parts.method == axum::http::Method::DELETE;
    parts.extensions.insert(grant);
    let mut response = next.run(Request::from_parts(parts, Body::from(body))).await;
    // rmcp answers a session's end with 202; the Python SDK counts only 200
    // and 204 as success and logs a failure for every session it closes.
    if ending_session && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::OK;
    }
    if session.is_none() {
        record_opened_session(&state, response.headers(), &user_id, str::to_string);
    }
    response
}

/// The session the request names (through `key`, its entry in the owners'
/// table), if `user_id` owns it. Several `Mcp-Session-Id` headers, or one
/// that is not text, are refused: the id checked must be the id served.
pub(crate) fn owned_session(
    state: &AppState,
    headers: &HeaderMap,
    user_id: &str,
    key: impl Fn(&str) -> String,
) -> Result<Option<String>, SessionRefusal> {
    let mut ids = headers.get_all(SESSION_HEADER).iter();
    let id = match (ids.next().map(|v| v.to_str()), ids.next()) {
        (None, _) => return Ok(None),
        (Some(Ok(id)), None) => id,
        _ => return Err(SessionRefusal::Ambiguous),
    };
    if !state.mcp_sessions.is_owned_by(&key(id), user_id) {
        return Err(SessionRefusal::Unknown);
    }
    Ok(Some(id.to_string()))
}

pub(crate) enum SessionRefusal {
    /// Several session headers, or one that is not text.
    Ambiguous,
    /// Never seen, forgotten, or another user's: 404, and the client
    /// starts a new session as the transport spec prescribes.
    Unknown,
}

impl IntoResponse for SessionRefusal {
    fn into_response(self) -> Response {
        match self {
            SessionRefusal::Ambiguous => (
                StatusCode::BAD_REQUEST,
                "one readable Mcp-Session-Id, please",
            )
                .into_response(),
            SessionRefusal::Unknown => {
                (StatusCode::NOT_FOUND, "unknown MCP session").into_response()
            }
        }
    }
}

/// A new session (the answer to `initialize`) belongs to the user who
/// opened it: the same user may re-authorize (a new grant) and keep using it.
pub(crate) fn record_opened_session(
    state: &AppState,
    response: &HeaderMap,
    user_id: &str,
    key: impl Fn(&str) -> String,
) {
    if let Some(new) = response.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        state.mcp_sessions.record(&key(new), user_id);
    }
}

/// The provider ended the user's authorization: 401, so the client signs
/// in again, asking for what this token holds (`granted`) to keep it.
pub(crate) fn reauth_challenge(state: &AppState, granted: &str, e: &VaultError) -> Response {
    challenge(
        state,
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
        Some(&e.to_string()),
        Some(granted.to_string()),
    )
}

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";

/// The `tools/call` requests in this body.
fn tool_calls(body: &Bytes) -> Vec<Call> {
    // Only `method`, `params.name` and `params.arguments.provider` are read;
    // serde skips the rest without building a value tree (rmcp parses the
    // body properly afterwards).
    let Ok(messages) = serde_json::from_slice::<Messages<'_>>(body) else {
        return Vec::new();
    };
    let messages = match messages {
        Messages::Batch(batch) => batch,
        Messages::One(one) => vec![one],
    };
    messages
        .iter()
        .filter(|m| m.method.as_deref() == Some("tools/call"))
        .map(|m| {
            let params = m.params.as_ref();
            Call {
                name: params
                    .and_then(|p| p.name.as_deref())
                    .unwrap_or_default()
                    .to_string(),
                provider: params
                    .and_then(|p| p.arguments.as_ref()?.get()?.provider.as_ref()?.get())
                    .cloned(),
            }
        })
        .collect()
}

/// Scopes that these tool calls need and `granted` lacks.
fn missing_scopes(state: &AppState, granted: &str, calls: &[Call]) -> Option<Vec<String>> {
    let mut missing: Vec<String> = Vec::new();
    for call in calls {
        if let Some((required, _)) = requirement(state, call)
            && !state.config.scopes.satisfies(granted, &required)
            && !missing.contains(&required)
        {
            missing.push(required);
        }
    }
    (!missing.is_empty()).then_some(missing)
}

/// The upstream token each called tool's provider needs, refreshed first if
/// due. A provider that refused us for good is a 401 `invalid_token`, so the
/// client signs in again; other failures reach the tool as its error.
async fn fetch_upstream(
    state: &AppState,
    grant_id: &str,
    granted: &str,
    calls: &[Call],
) -> Result<Vec<(String, Result<UpstreamToken, String>)>, Response> {
    let mut fetched: Vec<(String, Result<UpstreamToken, String>)> = Vec::new();
    for (_, provider) in calls.iter().filter_map(|call| requirement(state, call)) {
        if fetched.iter().any(|(p, _)| *p == provider) {
            continue;
        }
        let result = match state
            .vault
            .usable_token(grant_id, &provider, crate::now_unix())
            .await
        {
            Ok(token) => Ok(token),
            Err(e @ VaultError::ReauthRequired { .. }) => {
                return Err(reauth_challenge(state, granted, &e));
            }
            Err(VaultError::Store(e)) => return Err(AppError::internal(e).into_response()),
            Err(e) => Err(e.to_string()),
        };
        fetched.push((provider, result));
    }
    Ok(fetched)
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Messages<'a> {
    Batch(#[serde(borrow)] Vec<Message<'a>>),
    One(#[serde(borrow)] Message<'a>),
}

#[derive(serde::Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<CallParams<'a>>,
}

#[derive(serde::Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    arguments: Option<Lenient<CallArguments>>,
}

/// `arguments.provider`, read the way rmcp reads arguments (into a JSON
/// map, where a repeated key's last value wins), so both agree on it.
struct CallArguments {
    provider: Option<Lenient<String>>,
}

impl<'de> serde::Deserialize<'de> for CallArguments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CallArguments;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("tool arguments")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CallArguments, A::Error> {
                let mut provider = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "provider" {
                        provider = Some(map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(CallArguments { provider })
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A field of the shape we read, or anything else: a surprising value must
/// never make the whole body unreadable here, or the scope check would see
/// no tool call at all while rmcp still runs it.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Read(T),
    Other(serde::de::IgnoredAny),
}

impl<T> Lenient<T> {
    fn get(&self) -> Option<&T> {
        match self {
            Lenient::Read(t) => Some(t),
            Lenient::Other(_) => None,
        }
    }
}
