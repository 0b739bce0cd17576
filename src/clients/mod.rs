//! Identifying OAuth clients: pre-registered (from the settings file,
//! mirrored into the database at start), dynamically registered (stored by
//! `/register`), and — by their `client_id` being an HTTPS URL — Client ID
//! Metadata Documents. Every handler that needs a client asks here.

use crate::app::AppState;
use crate::store::{ClientRow, StoreError};

/// The client behind `client_id`, if it is known or can be resolved.
pub async fn find_client(state: &AppState, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
    state.store.get_client(client_id).await
}
