//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 §2.3).

use axum::http::{HeaderMap, header};
use base64::Engine;

use super::form::Params;
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::OAuthError;
use crate::oauth::token::{PresentedClient, authenticate_client};
use crate::store::ClientRow;

/// The registered client behind the request's credentials. An unknown client
/// is 401 `invalid_client`, so MCP SDKs drop their registration and register
/// again.
pub async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientRow, AppError> {
    let presented = presented_client(headers, params)?;
    let client = crate::clients::find_client(state, &presented.client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    authenticate_client(&client, &presented)?;
    Ok(client)
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-encoded id and
/// secret) or from the body; both at once is ambiguous and refused.
fn presented_client(headers: &HeaderMap, params: &Params) -> Result<PresentedClient, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    if let Some(encoded) = basic {
        if params.contains_key("client_secret") {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        let bad = || OAuthError::invalid_client("malformed Basic credentials");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let id = urldecode(id).ok_or_else(bad)?;
        let secret = urldecode(secret).ok_or_else(bad)?;
        if params.get("client_id").is_some_and(|c| *c != id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok(PresentedClient {
            client_id: id,
            client_secret: Some(secret),
            via_basic: true,
        });
    }
    let client_id = params
        .get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
    Ok(PresentedClient {
        client_id: client_id.clone(),
        client_secret: params.get("client_secret").cloned(),
        via_basic: false,
    })
}

fn urldecode(s: &str) -> Option<String> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}
