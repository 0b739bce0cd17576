//! `GET /authorize` shows our consent page; `POST /consent` records the
//! decision and, on approval, starts the upstream leg. Nothing is sent
//! upstream before the user approves (the confused-deputy rule).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::form::{cookie, into_struct, parse_params};
use super::pages::{Consent, add_page_headers, consent_page};
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::authorize::{
    AuthorizeParams, AuthorizeRejection, error_response_url, validate_authorization,
};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{PendingAuthorization, new_id};
use crate::tokens::opaque::{constant_time_eq, hash_secret, random_urlsafe};
use crate::upstream::flow::authorize_url;

/// How long a user has between the consent page and the upstream callback.
const PENDING_TTL_SECS: i64 = 600;

pub async fn authorize(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AppError> {
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
    let valid = match validate_authorization(&params, &client.redirect_uris, &state.config.mcp_url()) {
        Ok(valid) => valid,
        Err(AuthorizeRejection::Page(e)) => return Err(AppError::page(StatusCode::BAD_REQUEST, e.description)),
        Err(AuthorizeRejection::Redirect { redirect_uri, state: client_state, error }) => {
            return Ok(redirect_found(&error_response_url(
                &redirect_uri,
                &error,
                client_state.as_deref(),
                &state.config.public_url,
            )));
        }
    };

    let provider = state.providers.default_provider();
    let csrf = random_urlsafe(32);
    let now = crate::now_unix();
    let pending = PendingAuthorization {
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
    };
    state.store.insert_pending(&pending).await?;

    let redirect_host = url::Url::parse(&valid.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let localhost_only = client.redirect_uris.iter().all(|u| is_local_redirect(u));
    let page = consent_page(&Consent {
        request_id: &pending.id,
        csrf_token: &csrf,
        client_name: client.client_name.as_deref().unwrap_or("An unnamed application"),
        client_id: &client.client_id,
        redirect_host: &redirect_host,
        scope: &valid.scope,
        provider: provider.map(|p| (p.display_name.as_str(), p.scopes.join(" "))),
        localhost_only,
    });
    let mut response = Html(page).into_response();
    add_page_headers(response.headers_mut());
    let cookie_value = consent_cookie(&state, &csrf, PENDING_TTL_SECS);
    response.headers_mut().insert(header::SET_COOKIE, cookie_value);
    Ok(response)
}

#[derive(serde::Deserialize)]
struct ConsentForm {
    request_id: Option<String>,
    csrf_token: Option<String>,
    decision: Option<String>,
}

pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let bad = |m: &str| AppError::page(StatusCode::BAD_REQUEST, m);
    let form: ConsentForm = into_struct(parse_params(&body).map_err(|e| bad(&e.description))?);
    let request_id = form.request_id.ok_or_else(|| bad("The form is incomplete."))?;
    let csrf_form = form.csrf_token.ok_or_else(|| bad("The form is incomplete."))?;
    let expired = || bad("This sign-in request has expired or was already used. Start again from your application.");
    let pending = state.store.get_pending(&request_id).await?.ok_or_else(expired)?;
    let now = crate::now_unix();
    if now >= pending.expires_at {
        state.store.delete_pending(&pending.id).await?;
        return Err(expired());
    }
    // Double-submit check: the cookie set with the page, the hidden field and
    // the stored hash must all agree, so another site cannot post for the user.
    let csrf_cookie = cookie(&headers, &cookie_name(&state)).unwrap_or_default();
    if !constant_time_eq(&csrf_cookie, &csrf_form) || !constant_time_eq(&hash_secret(&csrf_form), &pending.csrf_hash) {
        return Err(AppError::page(
            StatusCode::FORBIDDEN,
            "The consent form could not be verified (missing or mismatched security cookie). Start again from your application.",
        ));
    }
    let issuer = &state.config.public_url;
    match form.decision.as_deref() {
        Some("approve") => {}
        Some("deny") => {
            state.store.delete_pending(&pending.id).await?;
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            let url = error_response_url(&pending.redirect_uri, &error, pending.state.as_deref(), issuer);
            return Ok(with_cleared_cookie(&state, redirect_see_other(&url)));
        }
        _ => return Err(bad("The form is incomplete.")),
    }
    let Some(provider) = state.providers.get(&pending.provider) else {
        return Err(AppError::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "No upstream sign-in provider is configured on this server.",
        ));
    };
    // The upstream state exists only from here: after consent, single-use
    // (the callback deletes the row), and dies with the pending request.
    let upstream_state = random_urlsafe(32);
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let sealed_verifier = state
        .cipher
        .seal_str(verifier.secret(), &verifier_aad(&pending.id));
    if !state
        .store
        .start_upstream(&pending.id, &hash_secret(&upstream_state), &sealed_verifier)
        .await?
    {
        return Err(expired());
    }
    let callback = callback_url(&state, &provider.id);
    let challenge = provider.pkce.then(|| challenge.as_str().to_string());
    let url = authorize_url(provider, &callback, &upstream_state, challenge.as_deref());
    Ok(with_cleared_cookie(&state, redirect_see_other(&url)))
}

pub fn callback_url(state: &AppState, provider_id: &str) -> String {
    format!("{}/callback/{provider_id}", state.config.public_url)
}

pub fn verifier_aad(pending_id: &str) -> String {
    format!("mcp-broker/upstream-pkce/v1|{pending_id}")
}

/// `__Host-` cookies must be `Secure`, which browsers refuse over plain http:
/// the prefix and `Secure` are dropped only for an http public URL (local
/// development on loopback).
fn cookie_name(state: &AppState) -> String {
    if state.config.public_url.starts_with("https://") {
        "__Host-mcp_broker_consent".into()
    } else {
        "mcp_broker_consent".into()
    }
}

fn consent_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(state)
    );
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

fn with_cleared_cookie(state: &AppState, mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::SET_COOKIE, consent_cookie(state, "", 0));
    response
}

fn is_local_redirect(uri: &str) -> bool {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]"))
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
    match HeaderValue::from_str(url) {
        Ok(location) => {
            let mut response = status.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => AppError::page(StatusCode::BAD_REQUEST, "The redirect address is not valid.").into_response(),
    }
}
