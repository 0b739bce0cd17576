//! `POST /register`: dynamic client registration (RFC 7591) under the
//! operator's policy. A public client registering the same metadata again
//! gets its existing registration back.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::error::AppError;
use crate::oauth::register::{RegistrationRequest, validate_registration};
use crate::oauth::registration_policy::{Refusal, admit, check_redirect_patterns, fingerprint};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{ClientRow, new_id};
use crate::tokens::opaque::{CLIENT_SECRET_PREFIX, hash_secret, new_secret};

pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    admit(&state.config.dcr, super::form::bearer_token(&headers)).map_err(
        |refusal| match refusal {
            Refusal::Closed => AppError::OAuthStatus(
                StatusCode::FORBIDDEN,
                OAuthError::new(
                    ErrorCode::AccessDenied,
                    "dynamic client registration is disabled on this server",
                ),
            ),
            Refusal::BadInitialAccessToken => AppError::OAuthStatus(
                StatusCode::UNAUTHORIZED,
                OAuthError::new(
                    ErrorCode::InvalidToken,
                    "a valid initial access token is required to register",
                ),
            ),
        },
    )?;
    let now = crate::now_unix();
    if let Err(retry_after) = state.registration_limiter.check(peer.ip(), now) {
        return Err(AppError::RateLimited { retry_after });
    }
    let request: RegistrationRequest = serde_json::from_slice(&body).map_err(|_| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be a JSON client metadata object",
        )
    })?;
    let reg = validate_registration(request)?;
    check_redirect_patterns(&state.config.dcr, &reg.redirect_uris)?;
    let metadata_hash = fingerprint(&reg);

    if !reg.confidential
        && let Some(existing) = state.store.find_public_dcr_client(&metadata_hash).await?
    {
        return Ok(registered(&existing, None, StatusCode::CREATED));
    }
    let secret = reg.confidential.then(|| new_secret(CLIENT_SECRET_PREFIX));
    let client = ClientRow {
        client_id: new_id(),
        client_secret_hash: secret.as_deref().map(hash_secret),
        client_name: reg.client_name,
        redirect_uris: reg.redirect_uris,
        grant_types: reg.grant_types,
        token_endpoint_auth_method: reg.token_endpoint_auth_method,
        application_type: reg.application_type,
        registration: "dcr".into(),
        created_at: now,
        metadata_hash: Some(metadata_hash),
        last_used_at: None,
    };
    state.store.insert_client(&client).await?;
    tracing::info!(client_id = %client.client_id, name = ?client.client_name, "client registered");
    let event = AuditEvent::new(
        EventKind::ClientRegistered,
        Actor::Client(client.client_id.clone()),
    )
    .client(&client.client_id)
    .detail(format!(
        "dynamic registration from {}: {}, {}",
        peer.ip(),
        client.client_name.as_deref().unwrap_or("(no name)"),
        client.token_endpoint_auth_method
    ));
    crate::audit::note(&state.store, event).await;
    Ok(registered(&client, secret.as_deref(), StatusCode::CREATED))
}

/// The RFC 7591 §3.2.1 answer: the metadata as registered.
fn registered(client: &ClientRow, secret: Option<&str>, status: StatusCode) -> Response {
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "application_type": client.application_type,
    });
    if let Some(name) = &client.client_name {
        body["client_name"] = json!(name);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
