//! The admin API (`/admin/…`): the operator operations of `crate::admin`
//! over JSON, behind a bearer token compared with the configured token's
//! hash in constant time. The routes exist only when `admin_token` is set
//! (see `http::routes`); they carry no CORS headers, so no browser page can
//! call them from another origin.

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admin::{self, AdminError, DEFAULT_LIMIT, grants::GrantQuery};
use crate::app::AppState;
use crate::audit::{Actor, AuditFilter, EventKind, render};
use crate::error::AppError;
use crate::tokens::opaque::{constant_time_eq, hash_secret};

/// Who the ledger names for actions taken through the API.
fn actor() -> Actor {
    Actor::Operator("admin-api".into())
}

/// Lets a request through only with `Authorization: Bearer <admin token>`;
/// answers are never cached.
pub async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.config.admin_token_hash.as_deref() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    match super::form::bearer_token(request.headers()) {
        Some(token) if constant_time_eq(&hash_secret(token), expected) => {}
        _ => {
            return AppError::OperatorUnauthorized {
                realm: "mcp-broker-admin",
                description: "the admin API takes the configured admin token as a bearer token",
            }
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The query string as parameters, refusing repeated or unknown names.
fn query(raw: Option<String>, known: &[&str]) -> Result<crate::http::form::Params, AdminError> {
    let params = crate::http::form::parse_params(raw.unwrap_or_default().as_bytes())
        .map_err(|e| AdminError::Invalid(e.description))?;
    if let Some(name) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(AdminError::Invalid(format!(
            "unknown parameter {name:?}; this endpoint takes {}",
            known.join(", ")
        )));
    }
    Ok(params)
}

fn limit(params: &crate::http::form::Params) -> Result<i64, AdminError> {
    params
        .get("limit")
        .map_or(Ok(DEFAULT_LIMIT), |l| admin::parse_limit(l))
}

pub async fn list_grants(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let mut params = query(
        raw,
        &["user", "client", "provider", "status", "after", "limit"],
    )?;
    let filter = GrantQuery {
        user: params.remove("user"),
        client: params.remove("client"),
        provider: params.remove("provider"),
        status: params
            .remove("status")
            .map(|s| admin::grants::GrantState::parse(&s))
            .transpose()?,
    };
    let after = params.get("after").map(String::as_str);
    let grants = admin::grants::list(&state.store, &filter, after, limit(&params)?).await?;
    Ok(Json(json!({ "grants": grants.items, "next": grants.next })))
}

pub async fn show_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::grants::GrantDetail>, AppError> {
    let detail = admin::grants::show(&state.store, &id, crate::now_unix()).await?;
    Ok(Json(detail))
}

pub async fn revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::Revocation>, AppError> {
    let done = admin::grants::revoke(&state.store, &state.vault, &actor(), &id).await?;
    Ok(Json(done))
}

pub async fn list_clients(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query(raw, &["kind", "after", "limit"])?;
    let kind = params.get("kind").map(String::as_str);
    let after = params.get("after").map(String::as_str);
    let clients = admin::clients::list(&state.store, kind, after, limit(&params)?).await?;
    Ok(Json(
        json!({ "clients": clients.items, "next": clients.next }),
    ))
}

pub async fn show_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::clients::ClientDetail>, AppError> {
    Ok(Json(admin::clients::show(&state.store, &id).await?))
}

pub async fn delete_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::clients::ClientDeleted>, AppError> {
    let done = admin::clients::delete(&state.store, &state.vault, &actor(), &id).await?;
    Ok(Json(done))
}

pub async fn list_users(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query(raw, &["provider", "after", "limit"])?;
    let provider = params.get("provider").map(String::as_str);
    let after = params.get("after").map(String::as_str);
    let users = admin::users::list(&state.store, provider, after, limit(&params)?).await?;
    Ok(Json(json!({ "users": users.items, "next": users.next })))
}

pub async fn disconnect_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::Revocation>, AppError> {
    let done = admin::users::disconnect(&state.store, &state.vault, &actor(), &id).await?;
    Ok(Json(done))
}

/// The newest matching events, listed oldest first, as `audit --json`
/// prints them.
pub async fn audit_events(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let mut params = query(
        raw,
        &[
            "user", "client", "grant", "provider", "kind", "since", "until", "limit",
        ],
    )?;
    let time = |name: &str, value: Option<String>| {
        value
            .map(|v| {
                crate::utc::parse_time(&v).map_err(|e| AdminError::Invalid(format!("{name}: {e}")))
            })
            .transpose()
    };
    let kind = params
        .remove("kind")
        .map(|k| {
            EventKind::parse(&k)
                .map(|k| k.as_str().to_string())
                .ok_or_else(|| AdminError::Invalid(format!("unknown event kind {k:?}")))
        })
        .transpose()?;
    let filter = AuditFilter {
        user_id: params.remove("user"),
        client_id: params.remove("client"),
        grant_id: params.remove("grant"),
        provider: params.remove("provider"),
        kind,
        since: time("since", params.remove("since"))?,
        until: time("until", params.remove("until"))?,
    };
    let limit = limit(&params)?;
    let events = state.store.audit_events(&filter, limit).await?;
    let events: Vec<Value> = events.iter().map(render::json_value).collect();
    Ok(Json(json!({ "events": events })))
}

/// The hash chain's check. A broken chain is an answer, not a failure:
/// 200 with `intact: false` and where it breaks.
pub async fn verify_audit(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    match crate::audit::verify_ledger(&state.store).await {
        Ok(events) => Ok(Json(json!({ "intact": true, "events": events }))),
        Err(crate::audit::VerifyError::Broken(at)) => {
            Ok(Json(json!({ "intact": false, "broken": at.to_string() })))
        }
        Err(crate::audit::VerifyError::Store(e)) => Err(e.into()),
    }
}
