//! The bearer check on every MCP request: our JWT (signature, issuer,
//! audience, expiry), then one indexed read to see the grant is still live.
//! The client's token stops here; it is never sent upstream.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::AppError;
use crate::http::metadata::protected_resource_url;
use crate::tokens::AccessTokenError;

/// Who is calling, for the tools. Inserted into the request's extensions.
#[derive(Clone, Debug)]
pub struct GrantCtx {
    pub grant_id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
}

pub async fn require_bearer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let challenge = |error: Option<&'static str>, description: Option<&str>| {
        AppError::Bearer {
            resource_metadata: protected_resource_url(&state),
            error,
            description: description.map(str::to_string),
        }
        .into_response()
    };
    let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
    else {
        // No credentials: a bare challenge (RFC 6750 §3.1) starts discovery.
        return challenge(None, None);
    };
    let claims = match state.keys.verify(token, &state.config.public_url, &state.config.mcp_url()).await {
        Ok(claims) => claims,
        Err(e) => {
            let description = match e {
                AccessTokenError::Expired => "the access token has expired",
                AccessTokenError::UnknownKey => "the access token was not issued by this server",
                _ => "the access token is invalid",
            };
            return challenge(Some("invalid_token"), Some(description));
        }
    };
    match state.store.grant_status(&claims.grant_id).await {
        Ok(Some(grant)) if !grant.revoked => {}
        Ok(_) => return challenge(Some("invalid_token"), Some("the grant behind this token was revoked")),
        Err(e) => return AppError::internal(e).into_response(),
    }
    request.extensions_mut().insert(GrantCtx {
        grant_id: claims.grant_id,
        user_id: claims.sub,
        client_id: claims.client_id,
        scope: claims.scope,
    });
    next.run(request).await
}
