//! The one place that turns errors into HTTP responses. Details of internal
//! failures are logged here and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::oauth::{ErrorCode, OAuthError};

#[derive(Debug)]
pub enum AppError {
    /// An RFC 6749 §5.2 JSON error (token, registration, revocation).
    OAuth(OAuthError),
    /// The same, with a status other than the code's usual one.
    OAuthStatus(StatusCode, OAuthError),
    /// Too many requests from one address; retry after that many seconds.
    RateLimited { retry_after: i64 },
    /// A human-facing error page (authorize, consent, callback) where
    /// redirecting to the client would be unsafe or impossible.
    Page { status: StatusCode, message: String },
    /// The MCP endpoint's answer to a missing or bad bearer token (401), or
    /// to one lacking a scope (403 `insufficient_scope`), per RFC 6750 §3.
    Bearer {
        status: StatusCode,
        resource_metadata: String,
        error: Option<&'static str>,
        description: Option<String>,
        /// The scopes to ask for (space-separated).
        scope: Option<String>,
    },
    /// An operator endpoint (the admin API, `/metrics` with a token) asked
    /// without its configured bearer token: 401 with a `Bearer` challenge
    /// naming the realm, and what to present.
    OperatorUnauthorized {
        realm: &'static str,
        description: &'static str,
    },
    /// An operator operation's refusal or failure (the admin API).
    Admin(crate::admin::AdminError),
    /// Something on our side failed; logged with its detail, answered as 500.
    Internal(String),
}

impl AppError {
    pub fn page(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError::Page {
            status,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        AppError::Internal(detail.to_string())
    }
}

impl From<OAuthError> for AppError {
    fn from(e: OAuthError) -> Self {
        AppError::OAuth(e)
    }
}

impl From<crate::admin::AdminError> for AppError {
    fn from(e: crate::admin::AdminError) -> Self {
        AppError::Admin(e)
    }
}

impl From<crate::vault::VaultError> for AppError {
    fn from(e: crate::vault::VaultError) -> Self {
        AppError::internal(e)
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::internal(e)
    }
}

pub fn oauth_status(code: ErrorCode) -> StatusCode {
    match code {
        // 401 even without Basic auth: the MCP SDKs re-register only on 401.
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::OAuth(e) => oauth_json(oauth_status(e.code), &e),
            AppError::OAuthStatus(status, e) => oauth_json(status, &e),
            AppError::RateLimited { retry_after } => {
                let e = OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many requests; slow down",
                );
                let mut response = oauth_json(StatusCode::TOO_MANY_REQUESTS, &e);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                response
            }
            AppError::Page { status, message } => {
                let mut response =
                    (status, Html(crate::http::pages::error_page(&message))).into_response();
                crate::http::pages::add_page_headers(response.headers_mut());
                response
            }
            AppError::Bearer {
                status,
                resource_metadata,
                error,
                description,
                scope,
            } => {
                let mut challenge = format!("Bearer resource_metadata=\"{resource_metadata}\"");
                if let Some(error) = error {
                    challenge.push_str(&format!(", error=\"{error}\""));
                }
                if let Some(scope) = &scope {
                    challenge.push_str(&format!(", scope=\"{scope}\""));
                }
                if let Some(d) = &description {
                    // RFC 6750 §3: printable ASCII without `"` and `\`; anything
                    // else would break the header (and drop the challenge).
                    let d: String = d
                        .chars()
                        .map(|c| match c {
                            '"' | '\\' => '\'',
                            ' '..='~' => c,
                            _ => '?',
                        })
                        .collect();
                    challenge.push_str(&format!(", error_description=\"{d}\""));
                }
                let body = serde_json::json!({
                    "error": error.unwrap_or("invalid_token"),
                    "error_description": description.unwrap_or_else(|| "a bearer token is required".into()),
                });
                let mut response = (status, axum::Json(body)).into_response();
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                response
            }
            AppError::OperatorUnauthorized { realm, description } => {
                let mut response =
                    admin_json(StatusCode::UNAUTHORIZED, "invalid_token", description);
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                response
            }
            AppError::Admin(e) => admin_error(e),
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                oauth_json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &OAuthError::new(ErrorCode::ServerError, "internal error"),
                )
            }
        }
    }
}

fn oauth_json(status: StatusCode, e: &OAuthError) -> Response {
    let body = serde_json::json!({ "error": e.code.as_str(), "error_description": e.description });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        // RFC 9110 §11.6.1: a 401 names the scheme the client should use.
        let challenge = match e.code {
            ErrorCode::InvalidToken => "Bearer error=\"invalid_token\"",
            _ => "Basic realm=\"mcp-broker\"",
        };
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// Operator errors as JSON in the RFC 6749 shape the rest of the API uses.
/// Store and vault failures stay in the log; an action whose audit record
/// failed says so, since it did take effect.
fn admin_error(e: crate::admin::AdminError) -> Response {
    use crate::admin::AdminError;
    match e {
        AdminError::Invalid(m) => admin_json(StatusCode::BAD_REQUEST, "invalid_request", &m),
        AdminError::NotFound(m) => admin_json(StatusCode::NOT_FOUND, "not_found", &m),
        AdminError::Refused(m) => admin_json(StatusCode::CONFLICT, "conflict", &m),
        AdminError::TryAgain(m) => {
            let mut response = admin_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                &m,
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            response
        }
        e @ AdminError::Unrecorded { .. } => {
            tracing::error!(error = %e, "operator action not recorded");
            admin_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the action took effect, but its audit record failed",
            )
        }
        e @ (AdminError::Store(_) | AdminError::Vault(_)) => AppError::internal(e).into_response(),
    }
}

fn admin_json(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
