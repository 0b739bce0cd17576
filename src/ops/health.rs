//! `GET /healthz` (liveness: the process answers; nothing else is touched,
//! so a slow database never gets a healthy broker restarted) and
//! `GET /readyz` (readiness: send traffic here only if the database answers
//! quickly, signing keys are loaded and the broker is not shutting down).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

/// A database slower than this is as good as down for a token request.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> Response {
    no_store(StatusCode::OK, json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut failed = Vec::new();
    if state.draining.is_draining() {
        failed.push("shutting_down");
    }
    match tokio::time::timeout(DATABASE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database did not answer");
            failed.push("database");
        }
        Err(_) => {
            tracing::warn!("readiness: the database timed out");
            failed.push("database");
        }
    }
    let keys = state.keys.current();
    if keys.decoding_key(keys.current_kid()).is_none() {
        failed.push("signing_keys");
    }
    if failed.is_empty() {
        no_store(StatusCode::OK, json!({"status": "ready"}))
    } else {
        no_store(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not ready", "failed": failed}),
        )
    }
}

fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
