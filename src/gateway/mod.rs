//! Gateway routes: `/mcp/<name>` proxies to a configured downstream MCP
//! server (e.g. GitHub's own), with the user's upstream token as the
//! downstream bearer. Our token stops here, as at `/mcp`; a downstream 401
//! sends the vault down its refresh path and the request is tried once more.

pub mod headers;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::app::AppState;
use crate::config::Gateway;
use crate::error::AppError;
use crate::mcp::GrantCtx;
use crate::mcp::bearer::{
    DRAIN_LIMIT, MAX_BODY, SESSION_HEADER, authenticate, challenge, owned_session,
    reauth_challenge, record_opened_session,
};
use crate::oauth::{ErrorCode, OAuthError};
use crate::vault::{UpstreamToken, VaultError};

/// How long a downstream stream may stay silent. MCP servers send SSE
/// keep-alives far more often; a whole-request timeout would cut every
/// long-lived stream.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub fn routes(state: AppState) -> Router<AppState> {
    if state.config.gateways.is_empty() {
        return Router::new();
    }
    let connect = std::time::Duration::from_secs(state.config.upstream_timeout_secs.min(10));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("mcp-broker/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid");
    Router::new().route(
        "/mcp/{name}",
        any(
            move |State(state): State<AppState>, Path(name): Path<String>, request: Request| {
                let http = http.clone();
                async move { proxy(&state, &http, &name, request).await }
            },
        ),
    )
}

async fn proxy(state: &AppState, http: &reqwest::Client, name: &str, request: Request) -> Response {
    let Some(gateway) = state.config.gateways.iter().find(|g| g.name == name) else {
        return (StatusCode::NOT_FOUND, "no such MCP route").into_response();
    };
    // The Streamable HTTP methods; nothing else reaches the downstream.
    if ![Method::GET, Method::POST, Method::DELETE].contains(request.method()) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let (parts, body) = request.into_parts();
    let grant = match authenticate(state, &parts.headers).await {
        Ok(grant) => grant,
        Err(refusal) => {
            // As at `/mcp`: read a small body so the connection stays usable.
            let _ = axum::body::to_bytes(body, DRAIN_LIMIT).await;
            return refusal;
        }
    };
    if !state.config.scopes.satisfies(&grant.scope, &gateway.scope) {
        let _ = axum::body::to_bytes(body, DRAIN_LIMIT).await;
        let wanted = format!("{} {}", grant.scope, gateway.scope);
        return challenge(
            state,
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            Some(&format!("/mcp/{name} needs the scope {}", gateway.scope)),
            Some(wanted.trim().to_string()),
        );
    }
    // Buffered (bounded) so the request can be sent a second time after a
    // refresh.
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    // The downstream sees exactly the session id checked here.
    let session = match owned_session(state, &parts.headers, &grant.user_id, |id| {
        session_key(name, id)
    }) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    let mut token = match state
        .vault
        .usable_token(&grant.grant_id, &gateway.provider, crate::now_unix())
        .await
    {
        Ok(token) => token,
        Err(e) => return vault_refusal(state, &grant, gateway, e),
    };
    let mut retried = false;
    let response = loop {
        let sent = send(
            http,
            gateway,
            &parts,
            body.clone(),
            &token,
            session.as_deref(),
        )
        .await;
        match sent {
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !retried => {
                retried = true;
                token = match state
                    .vault
                    .token_after_downstream_rejection(&grant.grant_id, &gateway.provider, &token)
                    .await
                {
                    Ok(Some(token)) => token,
                    // Nothing to refresh with: the downstream's refusal stands.
                    Ok(None) => return refused_downstream(name, gateway),
                    Err(e) => return vault_refusal(state, &grant, gateway, e),
                };
            }
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                return refused_downstream(name, gateway);
            }
            Ok(r) => break r,
            Err(e) => {
                // reqwest's message names the configured URL, never the token.
                tracing::warn!(gateway = %name, error = %e, "downstream MCP server unreachable");
                return bad_gateway("the downstream MCP server is unavailable");
            }
        }
    };
    if session.is_none() {
        record_opened_session(state, response.headers(), &grant.user_id, |id| {
            session_key(name, id)
        });
    }
    relay(response)
}

fn refused_downstream(name: &str, gateway: &Gateway) -> Response {
    tracing::warn!(gateway = %name, provider = %gateway.provider,
        "downstream MCP server refused the user's upstream token");
    bad_gateway(&format!(
        "the downstream MCP server refused the user's {} authorization",
        gateway.provider
    ))
}

/// Downstream sessions live in the same ownership table as ours, apart.
fn session_key(gateway: &str, id: &str) -> String {
    format!("gateway/{gateway}/{id}")
}

async fn send(
    http: &reqwest::Client,
    gateway: &Gateway,
    parts: &axum::http::request::Parts,
    body: Bytes,
    token: &UpstreamToken,
    session: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut request = http
        .request(parts.method.clone(), gateway.url.clone())
        .bearer_auth(&token.access_token);
    if let Some(id) = session {
        request = request.header(SESSION_HEADER, id);
    }
    // The downstream's logs can then be joined with ours and the ledger.
    if let Some(id) = crate::ops::request_id::current() {
        request = request.header(crate::ops::request_id::HEADER, id);
    }
    for (name, value) in &parts.headers {
        if headers::passes_downstream(name.as_str()) {
            request = request.header(name, value);
        }
    }
    if !body.is_empty() {
        request = request.body(body);
    }
    request.send().await
}

/// The downstream answer, streamed (SSE stays SSE), with only the headers
/// that are safe to pass.
fn relay(downstream: reqwest::Response) -> Response {
    let status = downstream.status();
    // The downstream's answer is served from our origin: never let a
    // browser sniff it into something executable.
    let mut response = Response::builder()
        .status(status)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    for (name, value) in downstream.headers() {
        if headers::passes_upstream(name.as_str()) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(downstream.bytes_stream()))
        .unwrap_or_else(|_| bad_gateway("the downstream answer could not be relayed"))
}

fn bad_gateway(message: &str) -> Response {
    AppError::OAuthStatus(
        StatusCode::BAD_GATEWAY,
        OAuthError::new(ErrorCode::ServerError, message),
    )
    .into_response()
}

/// The vault could not give a usable upstream token.
fn vault_refusal(state: &AppState, grant: &GrantCtx, gateway: &Gateway, e: VaultError) -> Response {
    match e {
        // The provider ended the authorization: the client signs in again.
        VaultError::ReauthRequired { .. } => reauth_challenge(state, &grant.scope, &e),
        // Not linked yet: the scope that links the provider (step-up).
        VaultError::NotLinked(_) => {
            let needed = state
                .config
                .scopes
                .scope_for_provider(&gateway.provider)
                .unwrap_or(&gateway.scope);
            challenge(
                state,
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                Some(&e.to_string()),
                Some(format!("{} {needed}", grant.scope)),
            )
        }
        VaultError::Unavailable { .. } => {
            let mut response = AppError::OAuth(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                e.to_string(),
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        // A route naming a provider that is not enabled: startup warned.
        VaultError::UnknownProvider(_) | VaultError::Sealed(_) | VaultError::Store(_) => {
            AppError::internal(e).into_response()
        }
    }
}
