//! Registered clients as an operator sees them, and their deletion: the
//! client's grants are revoked (upstream too) before the registration goes,
//! so no upstream token outlives its only copy. Clients from the settings
//! file are refused: the next start would create them again.

use serde::Serialize;

use super::page::page;
use super::{
    AdminError, Page, Revocation, check_client_id, check_limit, event, parse_cursor, recorded,
};
use crate::audit::{Actor, EventKind};
use crate::store::{ClientDeletion, ClientSummary, Store};
use crate::vault::Vault;

/// How a client came to be registered.
pub const KINDS: [&str; 4] = ["dcr", "cimd", "config", "removed"];

pub fn parse_kind(text: &str) -> Result<String, AdminError> {
    KINDS
        .iter()
        .find(|k| **k == text)
        .map(|k| k.to_string())
        .ok_or_else(|| {
            AdminError::Invalid(format!(
                "kind must be one of {}, got {text:?}",
                KINDS.join(", ")
            ))
        })
}

/// One client in a list. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientView {
    pub id: String,
    /// `dcr` (dynamic registration), `cimd` (metadata document) or
    /// `config` (the settings file).
    pub kind: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub live_grants: i64,
}

impl From<ClientSummary> for ClientView {
    fn from(c: ClientSummary) -> Self {
        ClientView {
            id: c.client_id,
            kind: c.registration,
            name: c.client_name,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
            live_grants: c.live_grants,
        }
    }
}

/// A client's registration metadata; never its secret or the secret's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientDetail {
    pub id: String,
    pub kind: String,
    pub name: Option<String>,
    /// Holds a secret (authenticates at the token endpoint).
    pub confidential: bool,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub application_type: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub live_grants: i64,
}

/// What deleting a client did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientDeleted {
    pub id: String,
    pub revoked: Revocation,
    /// The grants revoked on the way.
    pub grant_ids: Vec<String>,
}

impl ClientDeleted {
    pub fn render(&self) -> String {
        let mut text = format!("client {} deleted; {}", self.id, self.revoked.render());
        if !self.grant_ids.is_empty() {
            text.push_str(&format!(" (grants: {})", self.grant_ids.join(", ")));
        }
        text
    }
}

/// Clients, newest first, optionally of one kind.
pub async fn list(
    store: &Store,
    kind: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<ClientView>, AdminError> {
    check_limit(limit)?;
    if let Some(kind) = kind {
        parse_kind(kind)?;
    }
    let after = after.map(parse_cursor).transpose()?;
    let rows = store.list_clients(kind, after.as_ref(), limit).await?;
    let views = rows.into_iter().map(ClientView::from).collect();
    Ok(page(views, limit, |c: &ClientView| (c.created_at, &c.id)))
}

pub async fn show(store: &Store, client_id: &str) -> Result<ClientDetail, AdminError> {
    check_client_id(client_id)?;
    let client = store
        .get_client(client_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client {client_id}")))?;
    let live_grants = store.live_grant_count(client_id).await?;
    Ok(ClientDetail {
        confidential: client.client_secret_hash.is_some(),
        id: client.client_id,
        kind: client.registration,
        name: client.client_name,
        token_endpoint_auth_method: client.token_endpoint_auth_method,
        grant_types: client.grant_types,
        redirect_uris: client.redirect_uris,
        application_type: client.application_type,
        created_at: client.created_at,
        last_used_at: client.last_used_at,
        live_grants,
    })
}

/// Revokes the client's grants (waiting for the upstream cascade), then
/// deletes its registration. Recorded as `client.deleted`.
pub async fn delete(
    store: &Store,
    vault: &Vault,
    actor: &Actor,
    client_id: &str,
) -> Result<ClientDeleted, AdminError> {
    check_client_id(client_id)?;
    let record = event(EventKind::ClientDeleted, actor).client(client_id);
    let result = revoke_and_delete(store, vault, actor, client_id).await;
    recorded(
        store,
        record,
        "clients delete",
        result,
        ClientDeleted::render,
    )
    .await
}

async fn revoke_and_delete(
    store: &Store,
    vault: &Vault,
    actor: &Actor,
    client_id: &str,
) -> Result<ClientDeleted, AdminError> {
    let client = store
        .get_client(client_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client {client_id}")))?;
    if client.registration == "config" {
        return Err(AdminError::Refused(format!(
            "client {client_id} comes from the settings file and would be created again at the \
             next start; remove it from [[clients]] there instead"
        )));
    }
    let grant_ids = store.grants_to_revoke_for_client(client_id).await?;
    let mut revoked = Revocation::default();
    for grant_id in &grant_ids {
        let reason = "an operator deleted its client";
        revoked.add(
            &vault
                .revoke_grant_now(grant_id, actor.clone(), reason)
                .await?,
        );
    }
    match store.delete_unlinked_client(client_id).await? {
        ClientDeletion::Deleted => Ok(ClientDeleted {
            id: client_id.to_string(),
            revoked,
            grant_ids,
        }),
        ClientDeletion::Absent => Err(AdminError::NotFound(format!("no client {client_id}"))),
        ClientDeletion::LinksRemain => Err(AdminError::TryAgain(format!(
            "{}; client {client_id} was kept because an upstream link of its grants is not \
             revoked yet (provider unavailable, or a sign-in meanwhile); run the deletion again",
            revoked.render()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_the_three_registrations() {
        for kind in KINDS {
            assert_eq!(parse_kind(kind).unwrap(), kind);
        }
        assert!(parse_kind("DCR").is_err());
    }

    #[test]
    fn a_deletion_names_the_grants_it_revoked() {
        let deleted = ClientDeleted {
            id: "c1".into(),
            revoked: Revocation {
                grants_revoked: 2,
                links_revoked: 2,
                links_retry_later: 0,
                consents_revoked: 0,
            },
            grant_ids: vec!["g1".into(), "g2".into()],
        };
        let text = deleted.render();
        assert!(
            text.starts_with("client c1 deleted; 2 grant(s) revoked"),
            "{text}"
        );
        assert!(text.ends_with("(grants: g1, g2)"), "{text}");
    }
}
