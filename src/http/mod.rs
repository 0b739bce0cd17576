//! HTTP handlers only: parse, call the domain, map the result. Routes are all
//! declared here so one file shows the whole surface.

pub mod admin;
pub mod authorize;
pub mod callback;
pub mod client_auth;
pub mod consent;
pub mod form;
pub mod introspect;
pub mod metadata;
pub mod pages;
pub mod rate_limit;
pub mod register;
pub mod revoke;
pub mod session;
pub mod token;
pub mod token_exchange;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, header};
use axum::routing::{delete, get, post};
use tower_http::cors::{Any, CorsLayer};

use crate::app::AppState;

/// OAuth requests are small; anything bigger is refused before parsing.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    use crate::ops::{health, metrics, request_id};
    // For probes and scrapers, at the root only: no Host/Origin check, no
    // OAuth (`/metrics` has its own optional bearer).
    let ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .with_state(state.clone());
    let metrics = state.metrics.clone();
    let trust_request_id = state.config.ops.trust_request_id;
    routes_at_issuer(state)
        .merge(ops)
        // Inside routing, so the matched route template is known.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        // Outermost: every request, whatever answers it, gets an id first.
        .layer(axum::middleware::from_fn_with_state(
            trust_request_id,
            request_id::middleware,
        ))
}

fn routes_at_issuer(state: AppState) -> Router {
    let routes = routes(state.clone());
    let prefix = issuer_path(&state.config.public_url);
    if prefix.is_empty() {
        return routes.with_state(state);
    }
    // An issuer with a path (`https://host/broker`): the endpoints live under
    // it (a proxy forwarding the full path), still also at the root (a proxy
    // stripping it), and discovery documents also at the path-inserted URLs
    // RFC 8414 §3.1 and RFC 9728 §3.1 derive from the issuer and resource.
    let discovery = Router::new()
        .route(
            &format!("/.well-known/oauth-authorization-server{prefix}"),
            get(metadata::authorization_server),
        )
        .route(
            &format!("/.well-known/openid-configuration{prefix}"),
            get(metadata::authorization_server),
        )
        .route(
            &format!("/.well-known/oauth-protected-resource{prefix}/mcp"),
            get(metadata::protected_resource),
        )
        .route(
            &format!("/.well-known/oauth-protected-resource{prefix}"),
            get(metadata::protected_resource),
        )
        .layer(cors());
    routes
        .clone()
        .nest(&prefix, routes)
        .merge(discovery)
        .with_state(state)
}

/// The path of the issuer (`""` when it is an origin), without a trailing `/`.
pub fn issuer_path(public_url: &str) -> String {
    url::Url::parse(public_url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

fn routes(state: AppState) -> Router<AppState> {
    // Endpoints browser-based MCP clients call with fetch(): open to any
    // origin, without cookies (none of them reads one).
    let cross_origin = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        // Clients that try OpenID discovery first get the same document.
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        // Gateway routes are part of the one resource `/mcp` (clients accept
        // a resource that is a prefix of the URL they connect to).
        .route(
            "/.well-known/oauth-protected-resource/mcp/{name}",
            get(metadata::protected_resource),
        )
        .route("/jwks.json", get(metadata::jwks))
        .route("/register", post(register::register))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .layer(cors());
    // Browser navigations and server-to-server calls: no CORS.
    let same_origin = Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/consent", post(consent::consent))
        .route("/callback/{provider}", get(callback::callback))
        .route("/introspect", post(introspect::introspect));
    Router::new()
        .merge(cross_origin)
        .merge(same_origin)
        .merge(admin_routes(&state))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(crate::mcp::router(state))
}

/// The operator API: only when an admin token is configured (otherwise
/// these paths do not exist and answer 404), behind that token, no CORS.
fn admin_routes(state: &AppState) -> Router<AppState> {
    if state.config.admin_token_hash.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/admin/grants", get(admin::list_grants))
        .route("/admin/grants/{id}", get(admin::show_grant))
        .route("/admin/grants/{id}/revoke", post(admin::revoke_grant))
        .route("/admin/clients", get(admin::list_clients))
        .route(
            "/admin/clients/{id}",
            get(admin::show_client).merge(delete(admin::delete_client)),
        )
        .route("/admin/users", get(admin::list_users))
        .route("/admin/users/{id}/disconnect", post(admin::disconnect_user))
        .route("/admin/audit", get(admin::audit_events))
        .route("/admin/audit/verify", get(admin::verify_audit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin_token,
        ))
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}
