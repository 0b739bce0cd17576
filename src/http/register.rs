//! `POST /register`: dynamic client registration (RFC 7591), open for now.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::register::{RegistrationRequest, validate_registration};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{ClientRow, new_id};
use crate::tokens::opaque::{CLIENT_SECRET_PREFIX, hash_secret, new_secret};

pub async fn register(State(state): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let request: RegistrationRequest = serde_json::from_slice(&body).map_err(|_| {
        OAuthError::new(ErrorCode::InvalidClientMetadata, "the body must be a JSON client metadata object")
    })?;
    let reg = validate_registration(request)?;
    let now = crate::now_unix();
    let secret = reg.confidential.then(|| new_secret(CLIENT_SECRET_PREFIX));
    let client = ClientRow {
        client_id: new_id(),
        client_secret_hash: secret.as_deref().map(hash_secret),
        client_name: reg.client_name.clone(),
        redirect_uris: reg.redirect_uris.clone(),
        grant_types: reg.grant_types.clone(),
        token_endpoint_auth_method: reg.token_endpoint_auth_method.clone(),
        application_type: reg.application_type.clone(),
        registration: "dcr".into(),
        created_at: now,
    };
    state.store.insert_client(&client).await?;
    tracing::info!(client_id = %client.client_id, name = ?client.client_name, "client registered");
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": now,
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
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
