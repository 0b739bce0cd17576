//! `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`:
//! the user's upstream token for an allowlisted client, refreshed first if
//! due, and every attempt by an authenticated client in the audit ledger.

use axum::http::StatusCode;
use serde::Serialize;

use super::form::Params;
use crate::app::AppState;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::error::AppError;
use crate::oauth::token_exchange::{ACCESS_TOKEN_TYPE, ExchangeRequest, check_exchange};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::ClientRow;
use crate::vault::VaultError;

#[derive(Serialize)]
pub struct ExchangeResponse {
    access_token: String,
    issued_token_type: &'static str,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<i64>,
}

pub async fn exchange(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
) -> Result<ExchangeResponse, AppError> {
    let get = |k: &str| params.get(k).map(String::as_str);
    let request = ExchangeRequest {
        subject_token: get("subject_token"),
        subject_token_type: get("subject_token_type"),
        requested_token_type: get("requested_token_type"),
        audience: get("audience"),
        resource: get("resource"),
        scope: get("scope"),
        actor_token: get("actor_token"),
    };
    let allowed = allowlist(state, &client.client_id);
    let event = AuditEvent::new(
        EventKind::TokenExchanged,
        Actor::Client(client.client_id.clone()),
    )
    .client(&client.client_id);
    let (event, result) = match check_exchange(&request, allowed) {
        Ok(exchange) => {
            let event = event.provider(exchange.provider);
            upstream_token(state, event, exchange.subject_token, exchange.provider).await
        }
        // Not recorded: any public client could write to the ledger at
        // will. Only allowlisted clients' attempts are audited.
        Err(e) if allowed.is_empty() => return Err(e.into()),
        Err(e) => (event, Err(AppError::OAuth(e))),
    };
    let event = match &result {
        Ok(_) => event,
        Err(e) => event.outcome(format!("refused: {}", refusal_code(e))),
    };
    if let Err(e) = crate::audit::record(&state.store, event).await {
        // No record, no token: an exchange the ledger cannot show must not
        // happen. A refusal still answers with its own error.
        if result.is_ok() {
            return Err(e.into());
        }
        tracing::error!(error = %e, "audit record of a refused token exchange failed");
    }
    result
}

/// The providers this client may exchange for; only configured clients have
/// an allowlist.
fn allowlist<'a>(state: &'a AppState, client_id: &str) -> &'a [String] {
    state
        .config
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .map(|c| c.token_exchange.as_slice())
        .unwrap_or_default()
}

async fn upstream_token(
    state: &AppState,
    event: AuditEvent,
    subject_token: &str,
    provider: &str,
) -> (AuditEvent, Result<ExchangeResponse, AppError>) {
    // RFC 8693 §2.2.2: an unacceptable subject token is `invalid_request`.
    let claims = match state
        .keys
        .verify(
            subject_token,
            &state.config.public_url,
            &state.config.mcp_url(),
        )
        .await
    {
        Ok(claims) => claims,
        Err(_) => {
            return (
                event,
                Err(OAuthError::invalid_request("subject_token is invalid or expired").into()),
            );
        }
    };
    let event = event
        .user(&claims.sub)
        .grant(&claims.grant_id)
        .detail(format!("subject client {}", claims.client_id));
    // The user consented to this provider for the subject's client only
    // with the scope that links it (none needed for the sign-in provider,
    // linked to every grant): the same rule as a tool call at `/mcp`.
    if let Some(needed) = state.config.scopes.scope_for_provider(provider)
        && !state.config.scopes.satisfies(&claims.scope, needed)
    {
        return (
            event,
            Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("the subject token lacks the scope {needed}"),
            )
            .into()),
        );
    }
    match state.store.grant_status(&claims.grant_id).await {
        Ok(Some(grant)) if !grant.revoked => {}
        Ok(_) => {
            return (
                event,
                Err(OAuthError::invalid_request("subject_token's grant was revoked").into()),
            );
        }
        Err(e) => return (event, Err(e.into())),
    }
    let now = crate::now_unix();
    let result = match state
        .vault
        .usable_token(&claims.grant_id, provider, now)
        .await
    {
        Ok(token) => Ok(ExchangeResponse {
            access_token: token.access_token,
            issued_token_type: ACCESS_TOKEN_TYPE,
            token_type: "Bearer",
            expires_in: token.expires_at.map(|exp| (exp - now).max(0)),
        }),
        Err(e) => Err(vault_refusal(e)),
    };
    (event, result)
}

fn vault_refusal(e: VaultError) -> AppError {
    match e {
        VaultError::ReauthRequired { .. } => {
            OAuthError::new(ErrorCode::InvalidGrant, e.to_string()).into()
        }
        VaultError::NotLinked(_) | VaultError::UnknownProvider(_) => {
            OAuthError::new(ErrorCode::InvalidTarget, e.to_string()).into()
        }
        VaultError::Unavailable { .. } => AppError::OAuthStatus(
            StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::new(ErrorCode::TemporarilyUnavailable, e.to_string()),
        ),
        VaultError::Sealed(_) | VaultError::Store(_) => AppError::internal(e),
    }
}

/// The error code an audit event records for a refusal.
fn refusal_code(e: &AppError) -> &'static str {
    match e {
        AppError::OAuth(e) | AppError::OAuthStatus(_, e) => e.code.as_str(),
        _ => "server_error",
    }
}
