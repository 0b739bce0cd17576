//! `POST /introspect` (RFC 7662), for resource servers that authenticate as
//! confidential clients. Anything not currently valid is `{"active": false}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::client_auth::authenticated_client;
use super::form::parse_params;
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::{ErrorCode, OAuthError};
use crate::tokens::opaque::hash_secret;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = parse_params(&body)?;
    let client = authenticated_client(&state, &headers, &params).await?;
    // RFC 7662 §4: the server decides who may introspect. Anyone can make a
    // confidential client through open registration, so only the resource
    // servers an operator lists in the settings file (with a secret) may.
    if client.client_secret_hash.is_none() || client.registration != "config" {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "introspection is open only to pre-registered confidential clients",
        )
        .into());
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = describe(&state, token)
        .await?
        .unwrap_or_else(|| json!({ "active": false }));
    let mut response = Json(answer).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn describe(state: &AppState, token: &str) -> Result<Option<Value>, AppError> {
    let now = crate::now_unix();
    if let Ok(claims) = state
        .keys
        .verify(token, &state.config.public_url, &state.config.mcp_url())
        .await
    {
        if live_grant_user(state, &claims.grant_id).await?.is_none() {
            return Ok(None);
        }
        return Ok(Some(json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        })));
    }
    let Some(row) = state.store.get_refresh_token(&hash_secret(token)).await? else {
        return Ok(None);
    };
    if row.used_at.is_some() || now >= row.expires_at {
        return Ok(None);
    }
    let Some(sub) = live_grant_user(state, &row.grant_id).await? else {
        return Ok(None);
    };
    Ok(Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": sub,
        "aud": row.resource,
        "iss": state.config.public_url,
        "iat": row.created_at,
        "exp": row.expires_at,
    })))
}

/// The grant's user, if the grant exists and is not revoked.
async fn live_grant_user(state: &AppState, grant_id: &str) -> Result<Option<String>, AppError> {
    Ok(state
        .store
        .grant_status(grant_id)
        .await?
        .filter(|g| !g.revoked)
        .map(|g| g.user_id))
}
