//! The audit ledger: one append-only event per step in a mapping's life
//! (client, consent, grant, our tokens, upstream tokens, keys, operators),
//! hash-chained so that editing or removing a stored event is detected.
//!
//! Callers build an [`AuditEvent`] and [`record`] it. The store orders the
//! appends (see `store::audit`); [`chain`] says what a hash covers and checks
//! a ledger; [`verify_ledger`] runs that check over the store page by page.
//!
//! What the chain proves: an event edited, removed or reordered in place
//! breaks it. What it cannot prove on its own: someone with write access who
//! rewrites every hash from the edit to the head. Copying the head hash
//! somewhere else now and then closes that gap.

pub mod chain;
pub mod render;

use crate::store::{NewAuditRecord, Store, StoreError};

pub use crate::store::{AuditChainState, AuditFilter, AuditPurge, AuditRecord};
pub use chain::{Break, BrokenLink};

/// What happened. Stored as its `as_str` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    ClientRegistered,
    ClientExpired,
    ClientDeleted,
    ConsentGranted,
    ConsentRevoked,
    GrantCreated,
    TokenIssued,
    TokenRefreshed,
    TokenRevoked,
    UpstreamStored,
    UpstreamRefreshed,
    UpstreamRefreshFailed,
    UpstreamRevoked,
    KeyRotated,
    TokenExchanged,
    OperatorAction,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::ClientRegistered,
        EventKind::ClientExpired,
        EventKind::ClientDeleted,
        EventKind::ConsentGranted,
        EventKind::ConsentRevoked,
        EventKind::GrantCreated,
        EventKind::TokenIssued,
        EventKind::TokenRefreshed,
        EventKind::TokenRevoked,
        EventKind::UpstreamStored,
        EventKind::UpstreamRefreshed,
        EventKind::UpstreamRefreshFailed,
        EventKind::UpstreamRevoked,
        EventKind::KeyRotated,
        EventKind::TokenExchanged,
        EventKind::OperatorAction,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::ClientRegistered => "client.registered",
            EventKind::ClientExpired => "client.expired",
            EventKind::ClientDeleted => "client.deleted",
            EventKind::ConsentGranted => "consent.granted",
            EventKind::ConsentRevoked => "consent.revoked",
            EventKind::GrantCreated => "grant.created",
            EventKind::TokenIssued => "token.issued",
            EventKind::TokenRefreshed => "token.refreshed",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::UpstreamStored => "upstream.stored",
            EventKind::UpstreamRefreshed => "upstream.refreshed",
            EventKind::UpstreamRefreshFailed => "upstream.refresh_failed",
            EventKind::UpstreamRevoked => "upstream.revoked",
            EventKind::KeyRotated => "key.rotated",
            EventKind::TokenExchanged => "token.exchanged",
            EventKind::OperatorAction => "operator.action",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who caused it. Stored as `system`, `operator:<name>`, `client:<id>` or
/// `user:<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The broker on its own (sweeps, refresh on demand, expiry).
    System,
    Operator(String),
    Client(String),
    User(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Operator(name) => write!(f, "operator:{name}"),
            Actor::Client(id) => write!(f, "client:{id}"),
            Actor::User(id) => write!(f, "user:{id}"),
        }
    }
}

/// One event to record. `detail` is short text for people, never a secret
/// (no token, code, key or hash of one).
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub kind: EventKind,
    /// The stored form of an [`Actor`].
    pub actor: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    pub provider: Option<String>,
    /// `ok`, or what went wrong, e.g. `refused: invalid_grant`.
    pub outcome: String,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event with outcome `ok` and nothing else set.
    pub fn new(kind: EventKind, actor: Actor) -> Self {
        AuditEvent {
            kind,
            actor: actor.to_string(),
            user_id: None,
            client_id: None,
            grant_id: None,
            provider: None,
            outcome: "ok".into(),
            request_id: None,
            detail: None,
        }
    }

    /// Our user id; the store copies the user's provider, subject and login.
    /// (With only a grant set, the store fills user and client from it.)
    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn grant(mut self, grant_id: &str) -> Self {
        self.grant_id = Some(grant_id.into());
        self
    }

    /// The upstream provider the step concerns.
    pub fn provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.into());
        self
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    pub fn request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Appends `event`, timed now. An error means it was not recorded: the
/// caller decides whether its step may go on without the record.
pub async fn record(store: &Store, event: AuditEvent) -> Result<(), StoreError> {
    record_at(store, event, crate::now_unix()).await.map(|_| ())
}

/// For a step that has already happened (a token issued, a link stored): a
/// failed record is logged loudly rather than undoing the step. Steps that
/// must not happen unrecorded (token exchange, operator actions) use
/// [`record`] and stop on its error.
pub async fn note(store: &Store, event: AuditEvent) {
    let kind = event.kind;
    if let Err(e) = record(store, event).await {
        tracing::error!(%kind, error = %e, "AUDIT EVENT NOT RECORDED");
    }
}

/// Appends `event` at `time` (Unix seconds) and returns it as stored. An
/// event without a request id takes the id of the request being handled.
pub async fn record_at(
    store: &Store,
    event: AuditEvent,
    time: i64,
) -> Result<AuditRecord, StoreError> {
    store
        .append_audit(&as_stored(event, time), chain::content_hash)
        .await
}

/// An event as the store appends it, at `time`.
fn as_stored(event: AuditEvent, time: i64) -> NewAuditRecord {
    NewAuditRecord {
        time,
        kind: event.kind.as_str().to_string(),
        actor: event.actor,
        user_id: event.user_id,
        client_id: event.client_id,
        grant_id: event.grant_id,
        provider: event.provider,
        outcome: event.outcome,
        request_id: event.request_id.or_else(crate::ops::request_id::current),
        detail: event.detail,
    }
}

/// Retention: removes the events before `before` and records, as the next
/// event, that `actor` did so and where the chain now starts. The chain
/// check starts after the removed events (the store keeps the last one's
/// seq and hash), so the ledger still verifies.
pub async fn purge_before(
    store: &Store,
    before: i64,
    actor: Actor,
) -> Result<AuditPurge, StoreError> {
    let now = crate::now_unix();
    let describe = |purge: &AuditPurge| {
        let detail = format!(
            "audit purge: {} event(s) before {} removed; the chain now starts after seq {}",
            purge.removed,
            crate::utc::format_time(before),
            purge.through_seq
        );
        as_stored(
            AuditEvent::new(EventKind::OperatorAction, actor).detail(detail),
            now,
        )
    };
    store
        .purge_audit_before(before, describe, chain::content_hash)
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit chain broken at {0}")]
    Broken(#[from] BrokenLink),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Events read per page while checking the chain.
const VERIFY_PAGE: i64 = 1000;

/// Checks the whole stored ledger, page by page, up to the newest event at
/// the time of the call (later appends are left for the next check).
/// Ok: how many events hold. A retention purge that moves the floor
/// mid-check looks like missing events: a break found while the floor
/// moved is checked once more from the new floor.
pub async fn verify_ledger(store: &Store) -> Result<u64, VerifyError> {
    let state = store.audit_chain_state().await?;
    verify_since(store, state).await
}

/// The check against `state`, read when it began.
async fn verify_since(store: &Store, state: AuditChainState) -> Result<u64, VerifyError> {
    match verify_from(store, &state).await {
        Err(VerifyError::Broken(link)) => {
            let now = store.audit_chain_state().await?;
            if now.floor_seq == state.floor_seq {
                return Err(VerifyError::Broken(link));
            }
            verify_from(store, &now).await
        }
        other => other,
    }
}

async fn verify_from(store: &Store, state: &AuditChainState) -> Result<u64, VerifyError> {
    let mut check = chain::ChainCheck::from_floor(state.floor_seq, &state.floor_hash);
    let mut after = state.floor_seq;
    loop {
        let page = store.audit_page(after, state.head_seq, VERIFY_PAGE).await?;
        for record in &page {
            check.check(record)?;
        }
        match page.last() {
            Some(last) if page.len() as i64 == VERIFY_PAGE => after = last.seq,
            _ => break,
        }
    }
    Ok(check.finish(state.head_seq, &state.head_hash)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ledger_of(n: i64) -> Store {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        for i in 0..n {
            let event = AuditEvent::new(EventKind::KeyRotated, Actor::System).detail(i.to_string());
            record_at(&store, event, 1_000 + i).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn a_purge_during_a_check_is_not_reported_as_a_broken_chain() {
        let store = ledger_of(6).await;
        let before = store.audit_chain_state().await.unwrap();
        // The purge lands after the check read where the chain starts.
        purge_before(&store, 1_003, Actor::System).await.unwrap();
        assert!(matches!(
            verify_from(&store, &before).await,
            Err(VerifyError::Broken(_))
        ));
        assert_eq!(verify_since(&store, before).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_break_without_a_purge_is_reported() {
        let store = ledger_of(3).await;
        let before = store.audit_chain_state().await.unwrap();
        sqlx::query("UPDATE audit_events SET detail = 'edited' WHERE seq = 2")
            .execute(store.pool_for_tests())
            .await
            .unwrap();
        assert!(matches!(
            verify_since(&store, before).await,
            Err(VerifyError::Broken(_))
        ));
    }

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            EventKind::parse("token.exchanged"),
            Some(EventKind::TokenExchanged)
        );
        assert_eq!(EventKind::parse("Token.Issued"), None);
        assert_eq!(EventKind::parse(""), None);
    }

    #[test]
    fn kind_names_are_distinct_dotted_lowercase() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(EventKind::as_str).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        for name in names {
            let (noun, verb) = name.split_once('.').unwrap();
            assert!(!noun.is_empty() && !verb.is_empty(), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn actors_are_stored_with_their_role_prefix() {
        assert_eq!(Actor::System.to_string(), "system");
        assert_eq!(Actor::Operator("ops".into()).to_string(), "operator:ops");
        assert_eq!(Actor::Client("c1".into()).to_string(), "client:c1");
        assert_eq!(Actor::User("u1".into()).to_string(), "user:u1");
    }

    #[test]
    fn a_new_event_is_ok_and_the_builder_sets_each_field() {
        let event = AuditEvent::new(EventKind::TokenIssued, Actor::Client("c1".into()));
        assert_eq!(event.outcome, "ok");
        assert_eq!(event.actor, "client:c1");
        assert!(event.user_id.is_none() && event.detail.is_none());
        let event = event
            .user("u1")
            .client("c1")
            .grant("g1")
            .provider("github")
            .outcome("refused: invalid_grant")
            .request_id("r1")
            .detail("refresh token reused");
        assert_eq!(event.user_id.as_deref(), Some("u1"));
        assert_eq!(event.client_id.as_deref(), Some("c1"));
        assert_eq!(event.grant_id.as_deref(), Some("g1"));
        assert_eq!(event.provider.as_deref(), Some("github"));
        assert_eq!(event.outcome, "refused: invalid_grant");
        assert_eq!(event.request_id.as_deref(), Some("r1"));
        assert_eq!(event.detail.as_deref(), Some("refresh token reused"));
    }
}
