//! `POST /revoke` (RFC 7009). Revoking one of our tokens revokes the grant
//! behind it: access tokens are JWTs, so the grant is what the bearer check
//! consults, and the refresh tokens hang off it too.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::client_auth::authenticated_client;
use super::form::parse_params;
use crate::app::AppState;
use crate::audit::Actor;
use crate::error::AppError;
use crate::oauth::OAuthError;
use crate::tokens::opaque::hash_secret;

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = parse_params(&body)?;
    let client = authenticated_client(&state, &headers, &params).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // The hint only orders the lookups (RFC 7009 §2.1); we try both kinds.
    if let Some(grant_id) = grant_of(&state, token, &client.client_id).await?
        && state
            .vault
            .revoke_grant(
                &grant_id,
                crate::now_unix(),
                Actor::Client(client.client_id.clone()),
                "the client revoked one of its tokens (RFC 7009)",
            )
            .await?
    {
        tracing::info!(grant_id = %grant_id, client_id = %client.client_id, "grant revoked by the client");
    }
    // 200 whether or not the token was known or ours to revoke: answering
    // differently would let a client probe for other clients' tokens.
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The grant a token of this client belongs to, if any.
async fn grant_of(
    state: &AppState,
    token: &str,
    client_id: &str,
) -> Result<Option<String>, AppError> {
    if let Some(row) = state.store.get_refresh_token(&hash_secret(token)).await? {
        return Ok((row.client_id == client_id).then_some(row.grant_id));
    }
    match state
        .keys
        .verify(token, &state.config.public_url, &state.config.mcp_url())
        .await
    {
        Ok(claims) if claims.client_id == client_id => Ok(Some(claims.grant_id)),
        _ => Ok(None),
    }
}
