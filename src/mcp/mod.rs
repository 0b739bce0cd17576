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
    // rmcp checks the same lists again: a second line should ours ever be
    // mounted differently.
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(peers.hosts().to_vec())
        .with_allowed_origins(peers.origins().to_vec())
        .enforce_origin_validation();
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
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
    if !peers.host_allowed(authority.as_deref()) {
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: Host header is not allowed",
        )
            .into_response();
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\0"));
    if !peers.origin_allowed(origin) {
        return (StatusCode::FORBIDDEN, "Forbidden: Origin is not allowed").into_response();
    }
    next.run(request).await
}
