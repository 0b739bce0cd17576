//! The hourly upkeep of a running broker: with `audit_retention_days` set,
//! audit events older than that are purged by `system` and the ledger still
//! verifies; unset (the default), the ledger keeps everything.

use mcp_broker::audit::{self, Actor, AuditEvent, AuditFilter, EventKind};
use mcp_broker::store::Store;

use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_with_env};

const DAY: i64 = 24 * 3600;

async fn broker(db: &TestDb, env: &[(&str, &str)]) -> TestBroker {
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    start_broker_with_env(db, &[("github.toml", fake.provider_toml())], env).await
}

/// Writes three events 40 days old and two a day old into `db` before any
/// broker runs on it (a broker's start-up upkeep must not find only some of
/// them); returns "now".
async fn old_and_recent_events(db: &TestDb) -> i64 {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let now = mcp_broker::now_unix();
    for (age, n) in [(40 * DAY, 3), (DAY, 2)] {
        for _ in 0..n {
            let event = AuditEvent::new(EventKind::TokenIssued, Actor::Client("c1".into()))
                .detail(format!("{} days old", age / DAY));
            audit::record_at(&store, event, now - age).await.unwrap();
        }
    }
    store.close().await;
    now
}

async fn details(broker: &TestBroker) -> Vec<(String, String)> {
    broker
        .state
        .store
        .audit_events(&AuditFilter::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.actor, r.detail.unwrap_or_default()))
        .collect()
}

/// How many events the purges recorded in `left` say they removed.
fn purged(left: &[(String, String)]) -> u64 {
    left.iter()
        .filter(|(actor, _)| actor == "system")
        .filter_map(|(_, d)| {
            d.strip_prefix("audit purge: ")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_past_the_retention_are_purged_by_the_upkeep() {
    for db in TestDb::all().await {
        let now = old_and_recent_events(&db).await;
        let broker = broker(&db, &[("MCP_BROKER_AUDIT_RETENTION_DAYS", "30")]).await;
        mcp_broker::app::upkeep(&broker.state, now).await;

        // The purge records itself, in the same transaction. The upkeep at
        // the broker's start (which `broker` waits for) has purged first.
        let left = details(&broker).await;
        assert!(
            !left.iter().any(|(_, d)| d == "40 days old"),
            "{:?}: {left:?}",
            db.kind
        );
        assert_eq!(left.iter().filter(|(_, d)| d == "1 days old").count(), 2);
        assert_eq!(purged(&left), 3, "{:?}: {left:?}", db.kind);
        audit::verify_ledger(&broker.state.store).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retention_the_upkeep_keeps_every_audit_event() {
    let db = TestDb::sqlite();
    let now = old_and_recent_events(&db).await;
    let broker = broker(&db, &[]).await;
    mcp_broker::app::upkeep(&broker.state, now + 3650 * DAY).await;
    assert_eq!(details(&broker).await.len(), 5);
}
