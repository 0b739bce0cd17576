//! Discovery documents: RFC 8414 authorization server metadata, RFC 9728
//! protected resource metadata, and our JWKS. The issuer string is the
//! configured public URL, byte-identical in every document and token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::oauth::register;
use crate::oauth::registration_policy::DcrMode;

pub async fn authorization_server(State(state): State<AppState>) -> Response {
    let issuer = &state.config.public_url;
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": register::AUTH_METHODS,
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types(&state),
        "token_endpoint_auth_methods_supported": register::AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": state.config.scopes.names(),
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": state.config.cimd_enabled,
    });
    if state.config.dcr.mode == DcrMode::Closed {
        doc.as_object_mut().unwrap().remove("registration_endpoint");
    }
    cacheable(doc)
}

/// Token exchange is listed only where some client is allowed to use it.
fn grant_types(state: &AppState) -> Vec<&'static str> {
    let mut types = register::GRANT_TYPES.to_vec();
    if state
        .config
        .clients
        .iter()
        .any(|c| !c.token_exchange.is_empty())
    {
        types.push(crate::oauth::token_exchange::GRANT_TYPE);
    }
    types
}

pub async fn protected_resource(State(state): State<AppState>) -> Response {
    cacheable(protected_resource_document(&state))
}

pub fn protected_resource_document(state: &AppState) -> Value {
    json!({
        "resource": state.config.mcp_url(),
        "authorization_servers": [state.config.public_url],
        "scopes_supported": state.config.scopes.names(),
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-broker",
    })
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    cacheable(state.keys.current().jwks().clone())
}

/// Metadata changes only on redeploy or key rotation; a short cache is safe.
fn cacheable(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `WWW-Authenticate`'s `resource_metadata`: the path-inserted PRM URL.
pub fn protected_resource_url(state: &AppState) -> String {
    // RFC 9728 §3.1: the well-known segment goes between the origin and the
    // resource's path (`https://host/.well-known/oauth-protected-resource/p/mcp`).
    let issuer = &state.config.public_url;
    let prefix = super::issuer_path(issuer);
    let origin = &issuer[..issuer.len() - prefix.len()];
    format!("{origin}/.well-known/oauth-protected-resource{prefix}/mcp")
}
