//! `GET /callback/{provider}`: the upstream provider sends the user back here.
//! We consume the pending request (single-use state), redeem the upstream
//! code, read who the user is, seal the upstream tokens into a new grant, and
//! send our own code to the MCP client.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::authorize::redirect_found;
use super::consent::{callback_url, flow_cookie, start_upstream_leg, verifier_aad};
use super::form::cookie;
use super::form::parse_params;
use super::session::cookie_name;
use super::session::start_session;
use crate::app::AppState;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::error::AppError;
use crate::oauth::authorize::{error_response_url, response_url};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{AuthorizationCodeRow, NewGrant, PendingAuthorization, UserRow, new_id};
use crate::tokens::opaque::{AUTHORIZATION_CODE_PREFIX, constant_time_eq, hash_secret, new_secret};
use crate::upstream::flow::Identity;
use crate::upstream::flow::{SignInError, sign_in};
use crate::upstream::{Provider, UpstreamError, UpstreamTokens};

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

    // Which grant this leg's tokens join, and whose it is.
    let (grant_id, user_id, code) = match &pending.grant_id {
        // A later leg: the sign-in leg chose the grant.
        Some(grant_id) => match state.store.grant_status(grant_id).await? {
            Some(g) if !g.revoked && g.client_id == pending.client_id => {
                link_tokens(&state, grant_id, &g.user_id, provider, &tokens, now).await?;
                (grant_id.clone(), g.user_id, None)
            }
            _ => {
                return Ok(fail(
                    ErrorCode::AccessDenied,
                    "the authorization this sign-in extends was revoked",
                ));
            }
        },
        None => sign_in_leg(&state, &pending, provider, &identity, &tokens, now).await?,
    };
    // The consent page was shown in this flow: its first leg came without a
    // remembered user. (Later legs never carry one, whatever the first had.)
    if pending.grant_id.is_none() && pending.consented_user_id.is_none() {
        let event = AuditEvent::new(EventKind::ConsentGranted, Actor::User(user_id.clone()))
            .user(&user_id)
            .client(&pending.client_id)
            .grant(&grant_id)
            .detail(format!("approved scope: {}", pending.scope));
        crate::audit::note(&state.store, event).await;
    }
    let mut response = match next_provider(&state, &pending, &grant_id).await? {
        // More providers to link: the next leg, in this same browser.
        Some(next) => {
            let leg = PendingAuthorization {
                id: new_id(),
                provider: next,
                grant_id: Some(grant_id.clone()),
                upstream_state_hash: None,
                upstream_verifier_enc: None,
                browser_binding_hash: None,
                upstream_nonce_hash: None,
                consented_user_id: None,
                ..pending.clone()
            };
            state.store.insert_pending(&leg).await?;
            tracing::info!(grant_id = %grant_id, provider = %leg.provider, "linking the next provider");
            start_upstream_leg(&state, &leg).await?
        }
        None => {
            let code = match code {
                Some(code) => code,
                None => issue_code(&state, &pending, &grant_id, now).await?,
            };
            state
                .store
                .record_consent(&user_id, &pending.client_id, &pending.scope, now)
                .await?;
            tracing::info!(
                grant_id = %grant_id,
                user_id = %user_id,
                client_id = %pending.client_id,
                provider = %provider.id,
                "authorization complete"
            );
            redirect_found(&response_url(
                &pending.redirect_uri,
                &[("code", &code)],
                pending.state.as_deref(),
                &state.config.public_url,
            ))
        }
    };
    if pending.grant_id.is_none() {
        let session = start_session(&state, &user_id).await?;
        response.headers_mut().append(header::SET_COOKIE, session);
    }
    response.headers_mut().append(
        header::SET_COOKIE,
        super::session::set_cookie(&state, &flow_cookie(&pending.id), "", 0),
    );
    Ok(response)
}

/// The sign-in provider's leg: who the user is, and the grant the tokens
/// join. A request that needs more providers than the sign-in one is a
/// step-up when the user already holds a live grant for this client: the
/// new links join that grant. Otherwise a new grant; when it needs nothing
/// more, it is written together with our code (returned).
async fn sign_in_leg(
    state: &AppState,
    pending: &PendingAuthorization,
    provider: &Provider,
    identity: &Identity,
    tokens: &UpstreamTokens,
    now: i64,
) -> Result<(String, String, Option<String>), AppError> {
    let needed = state
        .config
        .scopes
        .linked_providers(&pending.scope, &provider.id);
    let user = UserRow {
        id: new_id(),
        provider: provider.id.clone(),
        subject: identity.subject.clone(),
        login: identity.login.clone(),
    };
    if needed.len() > 1 {
        if let Some(existing) = state
            .store
            .find_user(&provider.id, &identity.subject)
            .await?
            && let Some((grant_id, scope)) = state
                .store
                .latest_live_grant(&existing.id, &pending.client_id)
                .await?
        {
            // The fresh sign-in's tokens (maybe with wider upstream scopes)
            // replace the grant's old ones.
            link_tokens(state, &grant_id, &existing.id, provider, tokens, now).await?;
            let widened = state
                .config
                .scopes
                .check_requested(Some(&format!("{scope} {}", pending.scope)))?;
            state.store.set_grant_scope(&grant_id, &widened).await?;
            tracing::info!(grant_id = %grant_id, "step-up: linking more providers to the grant");
            return Ok((grant_id, existing.id, None));
        }
        let grant_id = new_id();
        let link = state
            .vault
            .seal_link(&new_id(), &grant_id, provider, tokens, now);
        let grant = NewGrant {
            id: &grant_id,
            client_id: &pending.client_id,
            scope: &pending.scope,
            resource: &pending.resource,
        };
        let user_id = state.store.create_grant(&user, &grant, &link, now).await?;
        record_new_grant(state, pending, &grant_id, &user_id, provider, tokens).await;
        return Ok((grant_id, user_id, None));
    }
    let grant_id = new_id();
    let link = state
        .vault
        .seal_link(&new_id(), &grant_id, provider, tokens, now);
    let code = new_secret(AUTHORIZATION_CODE_PREFIX);
    let code_row = code_row(pending, &code, &grant_id, now);
    let user_id = state
        .store
        .complete_authorization(&user, &grant_id, &link, &code_row, now)
        .await?;
    tracing::info!(grant_id = %grant_id, user_id = %user_id, login = %identity.login, "grant created");
    record_new_grant(state, pending, &grant_id, &user_id, provider, tokens).await;
    Ok((grant_id, user_id, Some(code)))
}

/// The ledger's two events for a new grant: the grant, and the upstream
/// token stored with it.
async fn record_new_grant(
    state: &AppState,
    pending: &PendingAuthorization,
    grant_id: &str,
    user_id: &str,
    provider: &Provider,
    tokens: &UpstreamTokens,
) {
    let event = AuditEvent::new(EventKind::GrantCreated, Actor::User(user_id.into()))
        .user(user_id)
        .client(&pending.client_id)
        .grant(grant_id)
        .provider(&provider.id)
        .detail(format!(
            "scope: {}; resource: {}",
            pending.scope, pending.resource
        ));
    crate::audit::note(&state.store, event).await;
    record_stored(state, grant_id, user_id, provider, tokens, "signed in").await;
}

/// `upstream.stored`: what the provider granted, never the token.
async fn record_stored(
    state: &AppState,
    grant_id: &str,
    user_id: &str,
    provider: &Provider,
    tokens: &UpstreamTokens,
    how: &str,
) {
    let event = AuditEvent::new(EventKind::UpstreamStored, Actor::User(user_id.into()))
        .user(user_id)
        .grant(grant_id)
        .provider(&provider.id)
        .detail(crate::vault::describe_tokens(how, tokens));
    crate::audit::note(&state.store, event).await;
}

/// Stores a leg's tokens on the grant: a new link, or fresh tokens for the
/// link it already has for this provider.
async fn link_tokens(
    state: &AppState,
    grant_id: &str,
    user_id: &str,
    provider: &Provider,
    tokens: &UpstreamTokens,
    now: i64,
) -> Result<(), AppError> {
    if state
        .store
        .upstream_link(grant_id, &provider.id)
        .await?
        .is_none()
    {
        let sealed = state
            .vault
            .seal_link(&new_id(), grant_id, provider, tokens, now);
        if state.store.add_link(grant_id, &sealed, now).await? {
            record_stored(state, grant_id, user_id, provider, tokens, "linked").await;
            return Ok(());
        }
    }
    // The grant has a link for this provider (maybe since a racing leg
    // added it a moment ago): these fresher tokens replace its own, sealed
    // for its row.
    if let Some(existing) = state.store.upstream_link(grant_id, &provider.id).await? {
        let sealed = state
            .vault
            .seal_link(&existing.id, grant_id, provider, tokens, now);
        state.store.replace_link_tokens(&sealed, now).await?;
        let how = "signed in again: replaces the link's tokens";
        record_stored(state, grant_id, user_id, provider, tokens, how).await;
    }
    Ok(())
}

/// The first provider the request's scopes need that the grant lacks.
async fn next_provider(
    state: &AppState,
    pending: &PendingAuthorization,
    grant_id: &str,
) -> Result<Option<String>, AppError> {
    let sign_in = state
        .providers
        .default_provider()
        .map(|p| p.id.clone())
        .unwrap_or_default();
    let needed = state
        .config
        .scopes
        .linked_providers(&pending.scope, &sign_in);
    if needed.len() == 1 {
        return Ok(None);
    }
    let linked: Vec<String> = state
        .store
        .upstream_links_of_grant(grant_id)
        .await?
        .into_iter()
        // A link the provider refused for good needs its leg again.
        .filter(|l| l.reauth_required_at.is_none())
        .map(|l| l.provider)
        .collect();
    Ok(needed.into_iter().find(|p| !linked.contains(p)))
}

async fn issue_code(
    state: &AppState,
    pending: &PendingAuthorization,
    grant_id: &str,
    now: i64,
) -> Result<String, AppError> {
    let code = new_secret(AUTHORIZATION_CODE_PREFIX);
    state
        .store
        .insert_code(&code_row(pending, &code, grant_id, now))
        .await?;
    Ok(code)
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
