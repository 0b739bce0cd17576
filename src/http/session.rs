//! The browser's session with us, set when an upstream sign-in completes. It
//! lets `/authorize` recognise a returning user before the upstream flow, so
//! consent already given is not asked again. Cookie value random, stored
//! hashed; `__Host-` + `Secure` except on an http public URL (development).

use axum::http::{HeaderMap, HeaderValue};

use super::form::cookie;
use crate::app::AppState;
use crate::store::StoreError;
use crate::tokens::opaque::{hash_secret, random_urlsafe};

const SESSION_TTL_SECS: i64 = 30 * 24 * 3600;

pub fn cookie_name(state: &AppState, base: &str) -> String {
    if secure(state) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

fn secure(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

/// A `Set-Cookie` value for one of our cookies (`max_age` 0 deletes it).
pub fn set_cookie(state: &AppState, base: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(state, base)
    );
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

pub const SESSION: &str = "mcp_broker_session";

/// The user whose live session cookie came with the request.
pub async fn session_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, StoreError> {
    match cookie(headers, &cookie_name(state, SESSION)) {
        Some(token) => {
            state
                .store
                .browser_session_user(&hash_secret(&token), crate::now_unix())
                .await
        }
        None => Ok(None),
    }
}

/// Starts a session for `user_id`; returns its `Set-Cookie`.
pub async fn start_session(state: &AppState, user_id: &str) -> Result<HeaderValue, StoreError> {
    let token = random_urlsafe(32);
    let now = crate::now_unix();
    state
        .store
        .insert_browser_session(&hash_secret(&token), user_id, now, now + SESSION_TTL_SECS)
        .await?;
    Ok(set_cookie(state, SESSION, &token, SESSION_TTL_SECS))
}
