//! Identifying OAuth clients: pre-registered (from the settings file,
//! mirrored into the database at start), dynamically registered (stored by
//! `/register`), and — by their `client_id` being an HTTPS URL — Client ID
//! Metadata Documents. Every handler that needs a client asks here.

pub mod cimd;
pub mod configured;
pub mod ssrf;

use crate::app::AppState;
use crate::store::{ClientRow, StoreError};

/// The client behind `client_id`, if it is known or can be resolved. URL ids
/// are only ever metadata documents: a refused document is `None`, which the
/// handlers answer as an unknown client (error page, or 401 `invalid_client`).
pub async fn find_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<ClientRow>, StoreError> {
    if crate::oauth::cimd::is_document_url(client_id) {
        return cimd::resolve(state, client_id).await;
    }
    // A client removed from the settings is kept only until its grants'
    // upstream tokens are revoked: it is no client any more.
    Ok(state
        .store
        .get_client(client_id)
        .await?
        .filter(|c| c.registration != configured::REMOVED))
}
