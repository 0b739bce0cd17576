//! `GET /callback/{provider}`: the upstream provider sends the user back here.
//! We consume the pending request (single-use state), redeem the upstream
//! code, read who the user is, seal the upstream tokens into a new grant, and
//! send our own code to the MCP client.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::authorize::redirect_found;
use super::consent::{callback_url, flow_cookie, verifier_aad};
use super::form::cookie;
use super::form::parse_params;
use super::session::cookie_name;
use super::session::start_session;
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::authorize::{error_response_url, response_url};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{AuthorizationCodeRow, PendingAuthorization, UserRow, new_id};
use crate::tokens::opaque::{AUTHORIZATION_CODE_PREFIX, constant_time_eq, hash_secret, new_secret};
use crate::upstream::UpstreamError;
use crate::upstream::flow::{SignInError, sign_in};

/// Our codes are redeemed by software right after the redirect.
const CODE_TTL_SECS: i64 = 60;

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = parse_params(query.unwrap_or_default().as_bytes())
        .map_err(|e| AppError::page(StatusCode::BAD_REQUEST, e.description))?;
    let unknown = || {
        AppError::page(
            StatusCode::BAD_REQUEST,
            "This sign-in response is unknown, expired or was already used. Start again from your application.",
        )
    };
    let upstream_state = params.get("state").ok_or_else(unknown)?;
    let pending = state
        .store
        .take_pending_by_upstream_state(&hash_secret(upstream_state))
        .await?
        .ok_or_else(unknown)?;
    // The state was issued for one provider; a response arriving at another
    // provider's callback is a mix-up and is refused.
    if pending.provider != provider_id {
        return Err(unknown());
    }
    // Only the browser that approved may finish (see `flow_cookie`).
    let binding =
        cookie(&headers, &cookie_name(&state, &flow_cookie(&pending.id))).unwrap_or_default();
    let bound = pending
        .browser_binding_hash
        .as_deref()
        .is_some_and(|expected| constant_time_eq(&hash_secret(&binding), expected));
    if !bound {
        tracing::warn!(client_id = %pending.client_id, "upstream callback from a browser that did not start the sign-in");
        return Err(AppError::page(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser. Start again from your application.",
        ));
    }
    let now = crate::now_unix();
    let fail = |code: ErrorCode, description: &str| {
        let error = OAuthError::new(code, description);
        redirect_found(&error_response_url(
            &pending.redirect_uri,
            &error,
            pending.state.as_deref(),
            &state.config.public_url,
        ))
    };
    if now >= pending.expires_at {
        return Ok(fail(
            ErrorCode::AccessDenied,
            "the sign-in took too long; try again",
        ));
    }
    if let Some(error) = params.get("error") {
        let code = if error == "access_denied" {
            ErrorCode::AccessDenied
        } else {
            ErrorCode::ServerError
        };
        tracing::info!(provider = %provider_id, upstream_error = ?error, "upstream authorization refused");
        return Ok(fail(
            code,
            "the upstream provider did not authorize the sign-in",
        ));
    }
    let Some(upstream_code) = params.get("code") else {
        return Ok(fail(
            ErrorCode::ServerError,
            "the upstream provider sent no code",
        ));
    };
    let Some(provider) = state.providers.get(&provider_id) else {
        return Ok(fail(
            ErrorCode::TemporarilyUnavailable,
            "the upstream provider is no longer configured",
        ));
    };
    let verifier = match &pending.upstream_verifier_enc {
        Some(sealed) => Some(
            state
                .cipher
                .open_string(sealed, &verifier_aad(&pending.id))
                .map_err(AppError::internal)?,
        ),
        None => None,
    };
    let verifier = verifier.filter(|_| provider.pkce);
    let redirect_uri = callback_url(&state, &provider.id);
    let upstream_failed = |e: UpstreamError| {
        tracing::warn!(provider = %provider_id, error = %e, "upstream sign-in failed");
        match e {
            UpstreamError::Rejected { .. } => fail(
                ErrorCode::AccessDenied,
                "the upstream provider refused the sign-in",
            ),
            UpstreamError::Unavailable(_) => fail(
                ErrorCode::TemporarilyUnavailable,
                "the upstream provider is unavailable; try again",
            ),
        }
    };
    let (tokens, identity) = match sign_in(
        &state.http,
        provider,
        upstream_code,
        &redirect_uri,
        verifier.as_deref(),
        pending.upstream_nonce_hash.as_deref(),
    )
    .await
    {
        Ok(signed_in) => signed_in,
        Err(SignInError::Upstream(e)) => return Ok(upstream_failed(e)),
        // A forged or replayed id_token: tell the user here rather than hand
        // the client an error it would simply retry.
        Err(SignInError::IdToken(e)) => {
            tracing::warn!(provider = %provider_id, error = %e, "upstream id_token refused");
            return Err(AppError::page(
                StatusCode::BAD_REQUEST,
                format!(
                    "The sign-in provider's answer could not be verified: {e}. Start again from your application."
                ),
            ));
        }
    };

    // Consent was skipped for a remembered user: only that user may finish.
    if let Some(expected) = &pending.consented_user_id {
        let found = state
            .store
            .find_user(&provider.id, &identity.subject)
            .await?;
        if found.as_ref().map(|u| &u.id) != Some(expected) {
            tracing::warn!(client_id = %pending.client_id, "upstream account differs from the remembered user");
            let mut response = fail(
                ErrorCode::AccessDenied,
                "signed in upstream as a different account; approve the application again",
            );
            response
                .headers_mut()
                .append(header::SET_COOKIE, end_session(&state));
            return Ok(response);
        }
    }

    let grant_id = new_id();
    let link = state
        .vault
        .seal_link(&new_id(), &grant_id, provider, &tokens, now);
    let code = new_secret(AUTHORIZATION_CODE_PREFIX);
    let code_row = code_row(&pending, &code, &grant_id, now);
    let user = UserRow {
        id: new_id(),
        provider: provider.id.clone(),
        subject: identity.subject.clone(),
        login: identity.login.clone(),
    };
    let user_id = state
        .store
        .complete_authorization(&user, &grant_id, &link, &code_row, now)
        .await?;
    state
        .store
        .record_consent(&user_id, &pending.client_id, &pending.scope, now)
        .await?;
    tracing::info!(
        grant_id = %grant_id,
        user_id = %user_id,
        login = %identity.login,
        client_id = %pending.client_id,
        provider = %provider.id,
        "grant created"
    );
    let mut response = redirect_found(&response_url(
        &pending.redirect_uri,
        &[("code", &code)],
        pending.state.as_deref(),
        &state.config.public_url,
    ));
    let session = start_session(&state, &user_id).await?;
    response.headers_mut().append(header::SET_COOKIE, session);
    response.headers_mut().append(
        header::SET_COOKIE,
        super::session::set_cookie(&state, &flow_cookie(&pending.id), "", 0),
    );
    Ok(response)
}

fn end_session(state: &AppState) -> axum::http::HeaderValue {
    super::session::set_cookie(state, super::session::SESSION, "", 0)
}

fn code_row(
    pending: &PendingAuthorization,
    code: &str,
    grant_id: &str,
    now: i64,
) -> AuthorizationCodeRow {
    AuthorizationCodeRow {
        code_hash: hash_secret(code),
        grant_id: grant_id.to_string(),
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        scope: pending.scope.clone(),
        resource: pending.resource.clone(),
        created_at: now,
        expires_at: now + CODE_TTL_SECS,
        used_at: None,
    }
}
