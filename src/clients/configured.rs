//! Pre-registered clients live in the settings; the database mirrors them so
//! every lookup has one path. At each start the mirror is made exact: new
//! ones are added, changed ones updated, and ones gone from the settings are
//! deleted — after their grants are revoked, upstream too.

use crate::audit::{Actor, AuditEvent, EventKind, note};
use crate::config::Config;
use crate::store::{ClientRow, Store, StoreError};
use crate::tokens::opaque::hash_secret;
use crate::vault::Vault;

/// More pre-registered clients than any settings file holds.
const MAX_CONFIGURED: i64 = 100_000;

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
    let mut unrevoked = Vec::new();
    for stored in store.list_clients(Some("config"), MAX_CONFIGURED).await? {
        if !rows.iter().any(|c| c.client_id == stored.client_id) {
            let left = revoke_grants_of(store, vault, &stored.client_id).await?;
            if left > 0 {
                unrevoked.push((stored.client_id, left));
            }
        }
    }
    let sync = store.sync_configured_clients(&rows).await?;
    if !sync.deleted.is_empty() {
        tracing::info!(
            removed = sync.deleted.len(),
            "pre-registered clients removed from the config were deleted"
        );
    }
    for id in &sync.added {
        let event = AuditEvent::new(EventKind::ClientRegistered, Actor::System)
            .client(id)
            .detail("pre-registered in the settings");
        note(store, event).await;
    }
    for id in &sync.deleted {
        let mut event = AuditEvent::new(EventKind::ClientDeleted, Actor::System)
            .client(id)
            .detail("removed from the settings: deleted with its grants and consents");
        if let Some((_, left)) = unrevoked.iter().find(|(c, _)| c == id) {
            // The client must go (the operator removed it to cut it off);
            // its grants are revoked on our side, but these upstream tokens
            // stay valid at the provider until the user revokes them there.
            tracing::error!(client_id = %id, links = left,
                "a removed client's upstream tokens could not be revoked (provider unavailable): \
                 they stay valid at the provider");
            event = event.outcome(format!(
                "ok; {left} upstream token(s) not revoked at the provider (unavailable)"
            ));
        }
        note(store, event).await;
    }
    Ok(())
}

/// Revokes the client's grants and waits for the upstream cascade; returns
/// how many upstream links could not be revoked.
async fn revoke_grants_of(
    store: &Store,
    vault: &Vault,
    client_id: &str,
) -> Result<usize, StoreError> {
    let reason = "its client was removed from the settings";
    let mut left = 0;
    for grant_id in store.grants_to_revoke_for_client(client_id).await? {
        match vault
            .revoke_grant_now(&grant_id, Actor::System, reason)
            .await
        {
            Ok(done) => left += done.links.retry_later,
            Err(e) => {
                tracing::warn!(grant = %grant_id, error = %e, "revoking a removed client's grant failed");
                left += 1;
            }
        }
    }
    Ok(left)
}
