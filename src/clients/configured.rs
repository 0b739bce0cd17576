//! Pre-registered clients live in the settings; the database mirrors them so
//! every lookup has one path. At each start the mirror is made exact: new
//! ones are added and changed ones updated. One gone from the settings is
//! cut off at once (kind `removed`: it can no longer authenticate or
//! authorize) and its grants are revoked; its row is deleted by the upkeep
//! once the upstream tokens of its grants are revoked at their provider, so
//! a provider that is down at start never costs a token we can still revoke.

use crate::audit::{Actor, AuditEvent, EventKind, note};
use crate::config::Config;
use crate::store::{ClientRow, Store, StoreError};
use crate::tokens::opaque::hash_secret;
use crate::vault::Vault;

/// The kind a client removed from the settings has until its row goes.
pub const REMOVED: &str = "removed";

pub async fn sync(store: &Store, vault: &Vault, config: &Config) -> Result<(), StoreError> {
    let now = crate::now_unix();
    let rows: Vec<ClientRow> = config
        .clients
        .iter()
        .map(|c| ClientRow {
            client_id: c.client_id.clone(),
            client_secret_hash: c.client_secret.as_deref().map(hash_secret),
            client_name: c.registration.client_name.clone(),
            redirect_uris: c.registration.redirect_uris.clone(),
            grant_types: c.registration.grant_types.clone(),
            token_endpoint_auth_method: c.registration.token_endpoint_auth_method.clone(),
            application_type: c.registration.application_type.clone(),
            registration: "config".into(),
            created_at: now,
            metadata_hash: None,
            last_used_at: None,
        })
        .collect();
    let sync = store.sync_configured_clients(&rows).await?;
    for id in &sync.added {
        let event = AuditEvent::new(EventKind::ClientRegistered, Actor::System)
            .client(id)
            .detail("pre-registered in the settings");
        note(store, event).await;
    }
    for id in &sync.removed {
        let reason = "its client was removed from the settings";
        let mut revoked = 0;
        for grant_id in store.grants_to_revoke_for_client(id).await? {
            // The upstream cascade runs in the background (and the hourly
            // retry after it): start-up never waits on a provider.
            match vault
                .revoke_grant(&grant_id, now, Actor::System, reason)
                .await
            {
                Ok(true) => revoked += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(grant = %grant_id, error = %e,
                    "revoking a removed client's grant failed; the upkeep retries"),
            }
        }
        tracing::info!(client_id = %id, grants_revoked = revoked,
            "a pre-registered client removed from the settings was cut off");
        let event = AuditEvent::new(EventKind::ClientDeleted, Actor::System)
            .client(id)
            .detail(format!(
                "removed from the settings: cut off, {revoked} grant(s) revoked; the registration \
                 is deleted once their upstream tokens are revoked"
            ));
        note(store, event).await;
    }
    delete_removed(store).await?;
    Ok(())
}

/// Deletes the removed clients none of whose grants holds an upstream link
/// any more; run at start and by the hourly upkeep.
pub async fn delete_removed(store: &Store) -> Result<(), StoreError> {
    let deleted = store.delete_removed_clients().await?;
    if !deleted.is_empty() {
        tracing::info!(
            deleted = deleted.len(),
            "registrations of clients removed from the settings deleted"
        );
    }
    Ok(())
}
