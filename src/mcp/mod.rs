//! The MCP endpoint: Streamable HTTP (rmcp) behind our bearer check. Tools
//! read the caller's grant from the request and use the vault's mapping.

pub mod bearer;
pub mod peers;
pub mod server;
pub mod sessions;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::app::AppState;

pub use bearer::GrantCtx;
use peers::AllowedPeers;

/// `/mcp`, with sessions for 2025 clients; rmcp serves 2026-07-28 clients
/// statelessly on the same path. Gateway routes `/mcp/<name>` sit beside
/// it, behind the same `Host`/`Origin` check.
pub fn router(state: AppState) -> Router<AppState> {
    let peers = Arc::new(AllowedPeers::from_config(&state.config));
    // Our `check_peers` is the one Host/Origin check, for `/mcp` and the
    // gateway routes alike; rmcp would only repeat it on every request.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(server::BrokerMcp::new(handler_state.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bearer::require_bearer,
        ))
        .merge(crate::gateway::routes(state))
        .layer(axum::middleware::from_fn(move |request, next| {
            check_peers(peers.clone(), request, next)
        }))
}

/// 403 before anything else for a `Host` or `Origin` that is not ours.
async fn check_peers(peers: Arc<AllowedPeers>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let authority = match request.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    };
    // An `Origin` we cannot read as text is not one of ours.
    let origin_ok = headers
        .get(header::ORIGIN)
        .is_none_or(|v| v.to_str().is_ok_and(|o| peers.origin_allowed(Some(o))));
    let refusal = if !peers.host_allowed(authority) {
        Some("Forbidden: Host header is not allowed")
    } else if !origin_ok {
        Some("Forbidden: Origin is not allowed")
    } else {
        None
    };
    match refusal {
        Some(message) => (StatusCode::FORBIDDEN, message).into_response(),
        None => next.run(request).await,
    }
}
