//! Operator operations as plain functions over the store and the vault,
//! shared by the CLI (`mcp-broker grants …`) and the admin HTTP API
//! (`/admin/…`): list and show grants (the mapping from our grant to its
//! upstream links, never a token), clients and users; revoke a grant,
//! delete a client, disconnect a user. Every mutation is recorded in the
//! audit ledger, refusals included; an action whose record fails is
//! reported as a failure.

pub mod clients;
pub mod grants;
pub mod page;
pub mod users;

pub use page::{Page, parse_cursor};

use crate::audit::{AuditEvent, EventKind};
use crate::store::{Store, StoreError};
use crate::vault::{OperatorRevocation, VaultError};

pub use crate::audit::Actor;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A malformed id, filter or limit.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The action does not apply to this object (a configured client, a
    /// grant already revoked).
    #[error("{0}")]
    Refused(String),
    /// Part of the action waits on a provider; running it again finishes it.
    #[error("{0}")]
    TryAgain(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The action ran (`done` says how far), but its audit record failed.
    #[error("{done}, but the audit record failed: {source}")]
    Unrecorded { done: String, source: StoreError },
}

impl AdminError {
    /// How the ledger shows an action that ended with this error.
    fn outcome(&self) -> String {
        match self {
            AdminError::Invalid(m)
            | AdminError::NotFound(m)
            | AdminError::Refused(m)
            | AdminError::TryAgain(m) => format!("refused: {m}"),
            e => format!("failed: {e}"),
        }
    }
}

/// The most rows one listing returns.
pub const MAX_LIMIT: i64 = 1000;
/// Rows a listing returns when no limit is given.
pub const DEFAULT_LIMIT: i64 = 100;

pub fn check_limit(limit: i64) -> Result<i64, AdminError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(AdminError::Invalid(format!(
            "limit must be from 1 to {MAX_LIMIT}, got {limit}"
        )))
    }
}

/// A limit as typed in a query string.
pub fn parse_limit(text: &str) -> Result<i64, AdminError> {
    let limit = text
        .trim()
        .parse()
        .map_err(|_| AdminError::Invalid(format!("limit must be a number, got {text:?}")))?;
    check_limit(limit)
}

/// Our own ids (grants, users, links) are base64url; older or imported
/// ones may carry `.` or `:`. Anything else cannot name a row.
pub fn check_id(what: &str, id: &str) -> Result<(), AdminError> {
    let plain = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if plain {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{what} id must be 1-128 characters of A-Z a-z 0-9 - _ . :"
        )))
    }
}

/// Client ids are freer: a configured id is any text, a metadata
/// document's id is its URL. Still bounded and free of control characters.
pub fn check_client_id(id: &str) -> Result<(), AdminError> {
    if (1..=2048).contains(&id.len()) && !id.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AdminError::Invalid(
            "client id must be 1-2048 characters without control characters".into(),
        ))
    }
}

/// What an operator's revocation did, for people and for JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub grants_revoked: usize,
    /// Upstream links revoked at their provider (or whose provider cannot
    /// revoke) and deleted.
    pub links_revoked: usize,
    /// Links kept for the hourly retry: their provider was unavailable.
    pub links_retry_later: usize,
    /// Consents withdrawn (`users disconnect`).
    pub consents_revoked: usize,
}

impl Revocation {
    fn add(&mut self, one: &OperatorRevocation) {
        self.grants_revoked += one.grants;
        self.links_revoked += one.links.revoked;
        self.links_retry_later += one.links.retry_later;
        self.consents_revoked += one.consents;
    }

    pub fn render(&self) -> String {
        let consents = match self.consents_revoked {
            0 => String::new(),
            n => format!("; {n} consent(s) withdrawn"),
        };
        format!(
            "{} grant(s) revoked; {} upstream link(s) revoked at their provider and deleted, \
             {} kept for a retry (provider unavailable){consents}",
            self.grants_revoked, self.links_revoked, self.links_retry_later
        )
    }

    fn did_nothing(&self) -> bool {
        *self == Revocation::default()
    }
}

impl From<&OperatorRevocation> for Revocation {
    fn from(one: &OperatorRevocation) -> Self {
        let mut total = Revocation::default();
        total.add(one);
        total
    }
}

/// Records how a mutation ended (`command` names it, `done` describes a
/// success) and hands its result back, or `Unrecorded` if the ledger
/// refused the record.
async fn recorded<T>(
    store: &Store,
    event: AuditEvent,
    command: &str,
    result: Result<T, AdminError>,
    done: impl Fn(&T) -> String,
) -> Result<T, AdminError> {
    let event = match &result {
        Ok(value) => event.detail(format!("{command}: {}", done(value))),
        Err(e) => event.detail(command).outcome(e.outcome()),
    };
    match crate::audit::record(store, event).await {
        Ok(()) => result,
        Err(source) => Err(AdminError::Unrecorded {
            done: match &result {
                Ok(value) => done(value),
                Err(e) => format!("{command} ended with: {e}"),
            },
            source,
        }),
    }
}

/// An operator event of `kind` by `actor`.
fn event(kind: EventKind, actor: &Actor) -> AuditEvent {
    AuditEvent::new(kind, actor.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_the_maximum_are_invalid() {
        assert_eq!(parse_limit("5").unwrap(), 5);
        assert_eq!(parse_limit("1000").unwrap(), 1000);
        for bad in ["0", "-1", "1001", "ten", ""] {
            assert!(
                matches!(parse_limit(bad), Err(AdminError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_are_plain_and_bounded() {
        assert!(check_id("grant", "aB3-_x.y:z").is_ok());
        assert!(check_id("grant", "-starts-with-dash").is_ok());
        for bad in ["", "a b", "a/b", "a%2f", "é", &"a".repeat(129)] {
            assert!(check_id("grant", bad).is_err(), "{bad}");
        }
        assert!(check_client_id("https://app.example/client.json").is_ok());
        assert!(check_client_id("my client").is_ok());
        assert!(check_client_id("a\nb").is_err());
        assert!(check_client_id("").is_err());
    }

    #[test]
    fn refusals_and_failures_read_differently_in_the_ledger() {
        assert_eq!(
            AdminError::NotFound("no grant g1".into()).outcome(),
            "refused: no grant g1"
        );
        let failed = AdminError::Store(StoreError::Corrupt("x".into())).outcome();
        assert!(failed.starts_with("failed: "), "{failed}");
    }
}
