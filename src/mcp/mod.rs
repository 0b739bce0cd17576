//! The MCP endpoint: Streamable HTTP (rmcp) behind our bearer check. Tools
//! read the caller's grant from the request and use the vault's mapping.

pub mod bearer;
pub mod server;
pub mod sessions;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::app::AppState;

pub use bearer::GrantCtx;

/// `/mcp`, with sessions for 2025 clients; rmcp serves 2026-07-28 clients
/// statelessly on the same path.
pub fn router(state: AppState) -> Router<AppState> {
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = url::Url::parse(&state.config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
    {
        hosts.push(host);
    }
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(server::BrokerMcp::new(handler_state.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state,
            bearer::require_bearer,
        ))
}
