//! HTTP handlers only: parse, call the domain, map the result. Routes are all
//! declared here so one file shows the whole surface.

pub mod authorize;
pub mod callback;
pub mod client_auth;
pub mod form;
pub mod introspect;
pub mod metadata;
pub mod pages;
pub mod register;
pub mod revoke;
pub mod token;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::AppState;

/// OAuth requests are small; anything bigger is refused before parsing.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let oauth = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata::authorization_server))
        .route("/.well-known/oauth-protected-resource", get(metadata::protected_resource))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata::protected_resource))
        .route("/jwks.json", get(metadata::jwks))
        .route("/register", post(register::register))
        .route("/authorize", get(authorize::authorize))
        .route("/consent", post(authorize::consent))
        .route("/callback/{provider}", get(callback::callback))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route("/introspect", post(introspect::introspect))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .merge(oauth)
        .merge(crate::mcp::router(state.clone()))
        .with_state(state)
}
