//! `POST /consent`: the user's decision. On approval the upstream leg starts:
//! an upstream `state` (stored hashed), PKCE verifier (stored sealed) and,
//! for OIDC providers, a nonce (stored hashed) are created only now, after
//! consent, and die with the pending request.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::authorize::{PENDING_TTL_SECS, redirect_found, redirect_see_other};
use super::form::{cookie, into_struct, parse_params};
use super::session::{cookie_name, set_cookie};
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::authorize::error_response_url;
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::PendingAuthorization;
use crate::tokens::opaque::{constant_time_eq, hash_secret, random_urlsafe};
use crate::upstream::flow::authorize_url;
use crate::upstream::provider::ProviderKind;
use crate::upstream::{Provider, oidc};

/// The double-submit CSRF cookie set with the consent page, and the cookie
/// set when the browser leaves for the provider (the callback requires it).
/// Both names carry the pending request's id, so two sign-ins running in one
/// browser (two MCP servers connecting at once) do not overwrite each other.
pub fn consent_cookie(pending_id: &str) -> String {
    format!("mcp_broker_consent_{pending_id}")
}

pub fn flow_cookie(pending_id: &str) -> String {
    format!("mcp_broker_flow_{pending_id}")
}

#[derive(serde::Deserialize)]
struct ConsentForm {
    request_id: Option<String>,
    csrf_token: Option<String>,
    decision: Option<String>,
}

fn expired() -> AppError {
    AppError::page(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired or was already used. Start again from your application.",
    )
}

pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let bad = |m: &str| AppError::page(StatusCode::BAD_REQUEST, m);
    let form: ConsentForm = into_struct(parse_params(&body).map_err(|e| bad(&e.description))?);
    let request_id = form
        .request_id
        .ok_or_else(|| bad("The form is incomplete."))?;
    let csrf_form = form
        .csrf_token
        .ok_or_else(|| bad("The form is incomplete."))?;
    let pending = state
        .store
        .get_pending(&request_id)
        .await?
        .ok_or_else(expired)?;
    if crate::now_unix() >= pending.expires_at {
        state.store.delete_pending(&pending.id).await?;
        return Err(expired());
    }
    // Double-submit check: the cookie set with the page, the hidden field and
    // the stored hash must all agree, so another site cannot post for the user.
    let csrf_cookie =
        cookie(&headers, &cookie_name(&state, &consent_cookie(&pending.id))).unwrap_or_default();
    if !constant_time_eq(&csrf_cookie, &csrf_form)
        || !constant_time_eq(&hash_secret(&csrf_form), &pending.csrf_hash)
    {
        return Err(AppError::page(
            StatusCode::FORBIDDEN,
            "The consent form could not be verified (missing or mismatched security cookie). Start again from your application.",
        ));
    }
    let mut response = match form.decision.as_deref() {
        Some("approve") => start_upstream_leg(&state, &pending).await?,
        Some("deny") => {
            state.store.delete_pending(&pending.id).await?;
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            let url = error_response_url(
                &pending.redirect_uri,
                &error,
                pending.state.as_deref(),
                &state.config.public_url,
            );
            redirect_see_other(&url)
        }
        _ => return Err(bad("The form is incomplete.")),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, &consent_cookie(&pending.id), "", 0),
    );
    Ok(response)
}

/// Creates the upstream state and PKCE pair for `pending` and sends the
/// browser to the provider. Once per pending request.
pub async fn start_upstream_leg(
    state: &AppState,
    pending: &PendingAuthorization,
) -> Result<Response, AppError> {
    let Some(provider) = state.providers.get(&pending.provider) else {
        return Err(AppError::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "No upstream sign-in provider is configured on this server.",
        ));
    };
    let upstream_state = random_urlsafe(32);
    // Binds the upstream leg to this browser: without it, anyone could start
    // a flow, approve it, and have a victim finish it upstream (GitHub skips
    // its own prompt for an app the victim authorized before).
    let binding = random_urlsafe(32);
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let sealed_verifier = state
        .cipher
        .seal_str(verifier.secret(), &verifier_aad(&pending.id));
    let nonce = (provider.kind == ProviderKind::Oidc).then(|| random_urlsafe(32));
    if !state
        .store
        .start_upstream(
            &pending.id,
            &hash_secret(&upstream_state),
            &sealed_verifier,
            &hash_secret(&binding),
            nonce.as_deref().map(oidc::nonce_hash).as_deref(),
        )
        .await?
    {
        return Err(expired());
    }
    let callback = callback_url(state, &provider.id);
    let challenge = provider.pkce.then(|| challenge.as_str().to_string());
    let scopes = upstream_scopes(state, provider, &pending.scope);
    let url = authorize_url(
        provider,
        &callback,
        &upstream_state,
        &scopes,
        challenge.as_deref(),
        nonce.as_deref(),
    );
    // After a form POST the browser must GET the provider: 303. Straight from
    // /authorize a plain 302 does the same.
    let mut response = if pending.consented_user_id.is_some() {
        redirect_found(&url)
    } else {
        redirect_see_other(&url)
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, &flow_cookie(&pending.id), &binding, PENDING_TTL_SECS),
    );
    Ok(response)
}

/// The provider's base scopes plus those the granted broker scopes need.
pub fn upstream_scopes(state: &AppState, provider: &Provider, broker_scope: &str) -> Vec<String> {
    let mut scopes = provider.scopes.clone();
    let sign_in = state
        .providers
        .default_provider()
        .map(|p| p.id.as_str())
        .unwrap_or_default();
    for s in state
        .config
        .scopes
        .upstream_scopes(broker_scope, &provider.id, sign_in)
    {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes
}

pub fn callback_url(state: &AppState, provider_id: &str) -> String {
    format!("{}/callback/{provider_id}", state.config.public_url)
}

pub fn verifier_aad(pending_id: &str) -> String {
    format!("mcp-broker/upstream-pkce/v1|{pending_id}")
}
