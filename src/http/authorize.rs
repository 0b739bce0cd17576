//! `GET /authorize`: validate the request, then show our consent page — or,
//! for a returning user who already approved this client and scope, go
//! straight to the upstream provider.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::consent::{consent_cookie, start_upstream_leg, upstream_scopes};
use super::form::{into_struct, parse_params};
use super::pages::{Consent, add_page_headers, consent_page};
use super::session::{session_user, set_cookie};
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::authorize::{
    AuthorizeParams, AuthorizeRejection, error_response_url, validate_authorization,
};
use crate::oauth::consent::{ConsentDecision, decide};
use crate::store::{ClientRow, PendingAuthorization, new_id};
use crate::tokens::opaque::{hash_secret, random_urlsafe};

/// How long a user has between the consent page and the upstream callback.
pub const PENDING_TTL_SECS: i64 = 600;

pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = parse_params(query.unwrap_or_default().as_bytes())
        .map_err(|e| AppError::page(StatusCode::BAD_REQUEST, e.description))?;
    let params: AuthorizeParams = into_struct(params);
    let client_id = params.client_id.clone().unwrap_or_default();
    let Some(client) = crate::clients::find_client(&state, &client_id).await? else {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "The application is not registered with this server (unknown client_id).",
        ));
    };
    let issuer = &state.config.public_url;
    let valid = match validate_authorization(
        &params,
        &client.redirect_uris,
        &state.config.mcp_url(),
        &state.config.scopes,
    ) {
        Ok(valid) => valid,
        Err(AuthorizeRejection::Page(e)) => {
            return Err(AppError::page(StatusCode::BAD_REQUEST, e.description));
        }
        Err(AuthorizeRejection::Redirect {
            redirect_uri,
            state: client_state,
            error,
        }) => {
            let url = error_response_url(&redirect_uri, &error, client_state.as_deref(), issuer);
            return Ok(redirect_found(&url));
        }
    };

    let user = session_user(&state, &headers).await?;
    let approved = match &user {
        Some(user_id) => {
            state
                .store
                .consented_scope(user_id, &client.client_id)
                .await?
        }
        None => None,
    };
    let decision = decide(params.prompt.as_deref(), approved.as_deref(), &valid.scope);
    if let ConsentDecision::Refuse(error) = &decision {
        let url = error_response_url(&valid.redirect_uri, error, valid.state.as_deref(), issuer);
        return Ok(redirect_found(&url));
    }

    let provider = state.providers.default_provider();
    let csrf = random_urlsafe(32);
    let now = crate::now_unix();
    let mut pending = PendingAuthorization {
        id: new_id(),
        client_id: valid.client_id.clone(),
        redirect_uri: valid.redirect_uri.clone(),
        state: valid.state.clone(),
        code_challenge: valid.code_challenge.clone(),
        scope: valid.scope.clone(),
        resource: valid.resource.clone(),
        provider: provider.map(|p| p.id.clone()).unwrap_or_default(),
        csrf_hash: hash_secret(&csrf),
        upstream_state_hash: None,
        upstream_verifier_enc: None,
        created_at: now,
        expires_at: now + PENDING_TTL_SECS,
        consented_user_id: None,
        browser_binding_hash: None,
        upstream_nonce_hash: None,
        grant_id: None,
    };
    if decision == ConsentDecision::Skip && provider.is_some() {
        pending.consented_user_id = user;
        state.store.insert_pending(&pending).await?;
        tracing::info!(client_id = %client.client_id, "consent remembered: going straight upstream");
        return start_upstream_leg(&state, &pending).await;
    }
    state.store.insert_pending(&pending).await?;
    Ok(consent_response(&state, &client, &pending, &csrf))
}

fn consent_response(
    state: &AppState,
    client: &ClientRow,
    pending: &PendingAuthorization,
    csrf: &str,
) -> Response {
    let provider = state.providers.get(&pending.provider);
    let redirect_host = url::Url::parse(&pending.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let action = format!("{}/consent", state.config.public_url);
    let page = consent_page(&Consent {
        action: &action,
        request_id: &pending.id,
        csrf_token: csrf,
        client_name: client
            .client_name
            .as_deref()
            .unwrap_or("An unnamed application"),
        client_id: &client.client_id,
        redirect_host: &redirect_host,
        scope: &pending.scope,
        provider: provider.map(|p| {
            (
                p.display_name.as_str(),
                upstream_scopes(state, p, &pending.scope).join(" "),
            )
        }),
        localhost_only: client.redirect_uris.iter().all(|u| is_local_redirect(u)),
    });
    let mut response = Html(page).into_response();
    add_page_headers(response.headers_mut());
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(state, &consent_cookie(&pending.id), csrf, PENDING_TTL_SECS),
    );
    response
}

fn is_local_redirect(uri: &str) -> bool {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]")
        })
        .unwrap_or(false)
}

/// 302, as RFC 6749 examples use for authorization responses.
pub fn redirect_found(url: &str) -> Response {
    redirect(StatusCode::FOUND, url)
}

/// 303 after a POST, so the browser follows with GET.
pub fn redirect_see_other(url: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, url)
}

fn redirect(status: StatusCode, url: &str) -> Response {
    match axum::http::HeaderValue::from_str(url) {
        Ok(location) => {
            let mut response = status.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(_) => AppError::page(
            StatusCode::BAD_REQUEST,
            "The redirect address is not valid.",
        )
        .into_response(),
    }
}
