//! `POST /token`: the authorization_code and refresh_token grants, and
//! token exchange (in `token_exchange.rs`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::client_auth::authenticated_client;
use super::form::{Params, parse_params};
use crate::app::AppState;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::error::AppError;
use crate::oauth::token::{
    CodeRedemption, RefreshPresentation, check_code, check_grant_type_allowed, check_refresh,
};
use crate::oauth::token_exchange;
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{ClientRow, RefreshTokenRow};
use crate::tokens::AccessClaims;
use crate::tokens::access::issue_access_token;
use crate::tokens::opaque::{REFRESH_TOKEN_PREFIX, hash_secret, new_secret, random_urlsafe};

#[derive(Serialize, Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = parse_params(&body)?;
    let client = authenticated_client(&state, &headers, &params).await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let mut response = match grant_type.as_str() {
        "authorization_code" => {
            check_grant_type_allowed(&client, "authorization_code")?;
            Json(redeem_code(&state, &client, &params).await?).into_response()
        }
        "refresh_token" => {
            check_grant_type_allowed(&client, "refresh_token")?;
            Json(redeem_refresh_token(&state, &client, &params).await?).into_response()
        }
        // Allowed by the client's `token_exchange` list in the settings.
        token_exchange::GRANT_TYPE => {
            let answer = super::token_exchange::exchange(&state, &client, &params).await?;
            state.metrics.token_issued(token_exchange::GRANT_TYPE);
            Json(answer).into_response()
        }
        _ => {
            return Err(
                OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type").into(),
            );
        }
    };
    // `last_used_at` only needs minute precision (it drives expiry of unused
    // registrations): skip the write when the loaded row is fresh enough.
    let now = crate::now_unix();
    if client.last_used_at.is_none_or(|t| t < now - 60) {
        state.store.touch_client(&client.client_id, now).await?;
    }
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

async fn redeem_code(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, AppError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let code_hash = hash_secret(code);
    let row = state
        .store
        .get_code(&code_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    let now = crate::now_unix();
    let redemption = CodeRedemption {
        client_id: &client.client_id,
        redirect_uri: params.get("redirect_uri").map(String::as_str),
        code_verifier: params.get("code_verifier").map(String::as_str),
        resource: params.get("resource").map(String::as_str),
    };
    // Only the client the code was issued to can trigger the revocation:
    // otherwise anyone holding a used code could revoke someone's grant.
    if row.used_at.is_some() && row.client_id == client.client_id {
        // A replayed code means it leaked: revoke what it issued (RFC 6749 §4.1.2).
        revoke_after_replay(state, &row.grant_id, now).await?;
    }
    check_code(&row, &redemption, now)?;
    let access = access_token(state, client, &row.grant_id, &row.scope, &row.resource, now).await?;
    let refresh_token = client
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
        .then(|| new_secret(REFRESH_TOKEN_PREFIX));
    let refresh = refresh_token.as_deref().map(|token| {
        refresh_row(
            state,
            token,
            client,
            &row.grant_id,
            &row.scope,
            &row.resource,
            now,
        )
    });
    // Marking the code used and storing the refresh token is one transaction:
    // a failure in between must not burn the code.
    if !state
        .store
        .redeem_code(&code_hash, refresh.as_ref(), now)
        .await?
    {
        revoke_after_replay(state, &row.grant_id, now).await?;
        return Err(OAuthError::invalid_grant("authorization code was already used").into());
    }
    let event = issued_event(EventKind::TokenIssued, client, &access.claims).detail(format!(
        "authorization code redeemed: access token {} (scope {}){}",
        access.claims.jti,
        row.scope,
        if refresh_token.is_some() {
            ", refresh token"
        } else {
            ""
        }
    ));
    crate::audit::note(&state.store, event).await;
    state.metrics.token_issued("authorization_code");
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token,
        scope: row.scope,
    })
}

async fn revoke_after_replay(state: &AppState, grant_id: &str, now: i64) -> Result<(), AppError> {
    let reason = "its authorization code was replayed";
    if state
        .vault
        .revoke_grant(grant_id, now, Actor::System, reason)
        .await?
    {
        tracing::warn!(grant_id = %grant_id, "authorization code replayed: grant revoked");
    }
    Ok(())
}

async fn redeem_refresh_token(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, AppError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let token_hash = hash_secret(token);
    let resource = params.get("resource").map(String::as_str);
    let grace = state.config.refresh_grace_secs as i64;
    // Twice at most: a rotation lost to a concurrent one is then a retry.
    for _ in 0..2 {
        let row = state
            .store
            .get_refresh_token(&token_hash)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
        let now = crate::now_unix();
        match check_refresh(&row, &client.client_id, resource, now, grace)? {
            RefreshPresentation::Fresh => {
                let scope = state
                    .config
                    .scopes
                    .check_narrowing(&row.scope, params.get("scope").map(String::as_str))?;
                let AccessToken {
                    token,
                    claims,
                    expires_in,
                } = access_token(state, client, &row.grant_id, &scope, &row.resource, now).await?;
                let new_refresh = new_secret(REFRESH_TOKEN_PREFIX);
                let new_row = refresh_row(
                    state,
                    &new_refresh,
                    client,
                    &row.grant_id,
                    &row.scope,
                    &row.resource,
                    now,
                );
                let answer = TokenResponse {
                    access_token: token,
                    token_type: "Bearer".into(),
                    expires_in,
                    refresh_token: Some(new_refresh),
                    scope,
                };
                let sealed = seal_answer(state, &token_hash, &answer);
                if state
                    .store
                    .rotate_refresh_token(&token_hash, &new_row, &sealed, now)
                    .await?
                {
                    let event =
                        issued_event(EventKind::TokenRefreshed, client, &claims).detail(format!(
                            "refresh token rotated: access token {} (scope {})",
                            claims.jti, answer.scope
                        ));
                    crate::audit::note(&state.store, event).await;
                    // Counted where tokens are minted: a retry inside the
                    // grace window re-sends these and is not counted again.
                    state.metrics.token_issued("refresh_token");
                    return Ok(answer);
                }
            }
            RefreshPresentation::Retry => {
                ensure_grant_live(state, &row.grant_id).await?;
                let sealed = row.successor_enc.as_deref().unwrap_or_default();
                return open_answer(state, &token_hash, sealed).ok_or_else(|| {
                    OAuthError::invalid_grant("refresh token was already used").into()
                });
            }
            RefreshPresentation::Replay => {
                let reason = "a used refresh token was presented after the grace window";
                if state
                    .vault
                    .revoke_grant(&row.grant_id, now, Actor::System, reason)
                    .await?
                {
                    tracing::warn!(
                        grant_id = %row.grant_id,
                        client_id = %client.client_id,
                        "refresh token reused after the grace window: grant revoked"
                    );
                }
                return Err(OAuthError::invalid_grant("refresh token was already used").into());
            }
        }
    }
    Err(OAuthError::invalid_grant("refresh token was already used").into())
}

fn successor_aad(old_hash: &str) -> String {
    format!("mcp-broker/refresh-successor/v1|{old_hash}")
}

/// The rotation's answer, sealed for retries inside the grace window.
fn seal_answer(state: &AppState, old_hash: &str, answer: &TokenResponse) -> Vec<u8> {
    let json = serde_json::to_vec(answer).expect("a token response serializes");
    state.cipher.seal(&json, successor_aad(old_hash).as_bytes())
}

fn open_answer(state: &AppState, old_hash: &str, sealed: &[u8]) -> Option<TokenResponse> {
    let json = state
        .cipher
        .open(sealed, successor_aad(old_hash).as_bytes())
        .ok()?;
    serde_json::from_slice(&json).ok()
}

async fn ensure_grant_live(state: &AppState, grant_id: &str) -> Result<String, AppError> {
    match state.store.grant_status(grant_id).await? {
        Some(g) if g.revoked => Err(OAuthError::invalid_grant("the grant has been revoked").into()),
        // Our tokens would only meet a 401 at the MCP endpoint: say so now,
        // so the client runs the authorization flow instead of refreshing.
        Some(g) if !g.reauth_required.is_empty() => Err(OAuthError::invalid_grant(
            "the upstream authorization behind this grant has ended; sign in again",
        )
        .into()),
        Some(g) => Ok(g.user_id),
        None => Err(OAuthError::invalid_grant("the grant has been revoked").into()),
    }
}

/// A signed access token and what it says.
struct AccessToken {
    token: String,
    claims: AccessClaims,
    expires_in: u64,
}

/// The ledger event for tokens issued to `client`: ids only, never values
/// (the access token's `jti` names it).
fn issued_event(kind: EventKind, client: &ClientRow, claims: &AccessClaims) -> AuditEvent {
    AuditEvent::new(kind, Actor::Client(client.client_id.clone()))
        .user(&claims.sub)
        .client(&client.client_id)
        .grant(&claims.grant_id)
}

async fn access_token(
    state: &AppState,
    client: &ClientRow,
    grant_id: &str,
    scope: &str,
    resource: &str,
    now: i64,
) -> Result<AccessToken, AppError> {
    let user_id = ensure_grant_live(state, grant_id).await?;
    let ttl = state.config.access_token_ttl_secs;
    let claims = AccessClaims {
        iss: state.config.public_url.clone(),
        sub: user_id,
        aud: resource.to_string(),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        jti: random_urlsafe(16),
        iat: now,
        exp: now + ttl as i64,
        grant_id: grant_id.to_string(),
    };
    Ok(AccessToken {
        token: issue_access_token(&state.keys.current(), &claims),
        claims,
        expires_in: ttl,
    })
}

fn refresh_row(
    state: &AppState,
    token: &str,
    client: &ClientRow,
    grant_id: &str,
    scope: &str,
    resource: &str,
    now: i64,
) -> RefreshTokenRow {
    RefreshTokenRow {
        token_hash: hash_secret(token),
        grant_id: grant_id.to_string(),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        resource: resource.to_string(),
        created_at: now,
        expires_at: now + state.config.refresh_token_ttl_secs as i64,
        used_at: None,
        successor_enc: None,
    }
}
