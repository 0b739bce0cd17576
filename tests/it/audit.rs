//! The audit ledger on SQLite and PostgreSQL: events are found by every
//! filter, appends form one chain however many writers race, tampering is
//! named by `audit verify`, and retention keeps the chain checkable.

use mcp_broker::audit::{
    self, Actor, AuditEvent, AuditFilter, AuditRecord, Break, BrokenLink, EventKind, VerifyError,
};
use mcp_broker::store::Store;

use crate::storage::stores;
use crate::support::TestDb;
use crate::support::db::Kind;

/// 2024-05-01T12:00:00Z
const T0: i64 = 1_714_564_800;

async fn add_user(db: &TestDb, id: &str, login: &str) {
    db.execute(&format!(
        "INSERT INTO users (id, provider, subject, login, created_at) \
         VALUES ('{id}', 'github', 'sub-{id}', '{login}', 1)"
    ))
    .await;
}

/// `n` plain events, one second apart from `T0`.
async fn append_plain(store: &Store, n: i64) {
    for i in 0..n {
        let event = AuditEvent::new(EventKind::TokenIssued, Actor::Client("c1".into()))
            .client("c1")
            .detail(format!("event {i}"));
        audit::record_at(store, event, T0 + i).await.unwrap();
    }
}

fn labels(records: &[AuditRecord]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r.request_id.as_deref().unwrap_or("-"))
        .collect()
}

fn broken(result: Result<u64, VerifyError>) -> BrokenLink {
    match result {
        Err(VerifyError::Broken(link)) => link,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_selects_only_the_events_it_names() {
    for (db, store) in stores().await {
        add_user(&db, "u1", "octocat").await;
        let events = [
            AuditEvent::new(EventKind::TokenIssued, Actor::Client("c1".into()))
                .user("u1")
                .client("c1")
                .grant("g1")
                .provider("github")
                .request_id("e1"),
            AuditEvent::new(EventKind::TokenRefreshed, Actor::Client("c2".into()))
                .user("u2")
                .client("c2")
                .grant("g2")
                .provider("gitlab")
                .request_id("e2"),
            AuditEvent::new(EventKind::UpstreamRevoked, Actor::System)
                .client("c1")
                .grant("g1")
                .provider("gitlab")
                .outcome("refused: provider unavailable")
                .request_id("e3"),
            AuditEvent::new(EventKind::OperatorAction, Actor::Operator("ops".into()))
                .request_id("e4"),
        ];
        for (i, event) in events.into_iter().enumerate() {
            audit::record_at(&store, event, T0 + 100 * i as i64)
                .await
                .unwrap();
        }
        let query = |filter: AuditFilter, limit: i64| {
            let store = store.clone();
            async move { store.audit_events(&filter, limit).await.unwrap() }
        };
        let by = |f: fn(&mut AuditFilter)| {
            let mut filter = AuditFilter::default();
            f(&mut filter);
            filter
        };
        let cases: Vec<(&str, AuditFilter, Vec<&str>)> = vec![
            ("none", AuditFilter::default(), vec!["e1", "e2", "e3", "e4"]),
            ("user", by(|f| f.user_id = Some("u1".into())), vec!["e1"]),
            (
                "client",
                by(|f| f.client_id = Some("c1".into())),
                vec!["e1", "e3"],
            ),
            ("grant", by(|f| f.grant_id = Some("g2".into())), vec!["e2"]),
            (
                "provider",
                by(|f| f.provider = Some("gitlab".into())),
                vec!["e2", "e3"],
            ),
            (
                "kind",
                by(|f| f.kind = Some("token.refreshed".into())),
                vec!["e2"],
            ),
            (
                "since",
                by(|f| f.since = Some(T0 + 100)),
                vec!["e2", "e3", "e4"],
            ),
            ("until", by(|f| f.until = Some(T0 + 100)), vec!["e1", "e2"]),
            (
                "since and until",
                by(|f| {
                    f.since = Some(T0 + 100);
                    f.until = Some(T0 + 200);
                }),
                vec!["e2", "e3"],
            ),
            (
                "client and provider",
                by(|f| {
                    f.client_id = Some("c1".into());
                    f.provider = Some("gitlab".into());
                }),
                vec!["e3"],
            ),
            ("no match", by(|f| f.user_id = Some("u9".into())), vec![]),
        ];
        for (name, filter, expected) in cases {
            let found = query(filter, 100).await;
            assert_eq!(labels(&found), expected, "{:?}: filter {name}", db.kind);
        }

        // A limit keeps the newest events, listed oldest first.
        let newest = query(AuditFilter::default(), 2).await;
        assert_eq!(labels(&newest), ["e3", "e4"], "{:?}", db.kind);

        // Every field comes back as recorded.
        let first = &query(by(|f| f.user_id = Some("u1".into())), 1).await[0];
        assert_eq!(first.seq, 1);
        assert_eq!(first.time, T0);
        assert_eq!(first.kind, "token.issued");
        assert_eq!(first.actor, "client:c1");
        assert_eq!(first.outcome, "ok");
        assert_eq!(first.detail, None);
        let third = &query(by(|f| f.kind = Some("upstream.revoked".into())), 1).await[0];
        assert_eq!(third.actor, "system");
        assert_eq!(third.outcome, "refused: provider unavailable");
        assert_eq!(third.user_id, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keep_the_users_identity_after_the_user_is_deleted() {
    for (db, store) in stores().await {
        add_user(&db, "u1", "octocat").await;
        let event = AuditEvent::new(EventKind::GrantCreated, Actor::User("u1".into())).user("u1");
        audit::record_at(&store, event, T0).await.unwrap();
        db.execute("DELETE FROM users WHERE id = 'u1'").await;
        // An unknown user (deleted before the event) leaves the copy empty.
        let event = AuditEvent::new(EventKind::TokenRevoked, Actor::System).user("u1");
        audit::record_at(&store, event, T0 + 1).await.unwrap();

        let filter = AuditFilter {
            user_id: Some("u1".into()),
            ..AuditFilter::default()
        };
        let found = store.audit_events(&filter, 10).await.unwrap();
        assert_eq!(found.len(), 2, "{:?}", db.kind);
        assert_eq!(found[0].user_provider.as_deref(), Some("github"));
        assert_eq!(found[0].user_subject.as_deref(), Some("sub-u1"));
        assert_eq!(found[0].user_login.as_deref(), Some("octocat"));
        assert_eq!(found[1].user_login, None);
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_instances_form_one_chain_without_fork_or_gap() {
    for (db, store) in stores().await {
        // A second pool on the same database plays a second broker process.
        let other = Store::connect(&db.url).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let store = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tasks.spawn(async move {
                let event = AuditEvent::new(EventKind::TokenRefreshed, Actor::System)
                    .request_id(&format!("r{i}"));
                audit::record(&store, event).await.unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        other.close().await;

        let all = store
            .audit_events(&AuditFilter::default(), 1000)
            .await
            .unwrap();
        let seqs: Vec<i64> = all.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "{:?}", db.kind);
        let mut prevs: Vec<&str> = all.iter().map(|r| r.prev_hash.as_str()).collect();
        prevs.sort();
        prevs.dedup();
        assert_eq!(prevs.len(), 200, "{:?}: two events share a parent", db.kind);
        assert_eq!(
            audit::verify_ledger(&store).await.unwrap(),
            200,
            "{:?}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_seq_of_an_edited_event() {
    for (db, store) in stores().await {
        append_plain(&store, 10).await;
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 10);
        db.execute("UPDATE audit_events SET outcome = 'refused: nothing' WHERE seq = 7")
            .await;
        let link = broken(audit::verify_ledger(&store).await);
        assert_eq!(
            (link.seq, link.reason),
            (7, Break::ContentHash),
            "{:?}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_seq_of_a_deleted_event() {
    for (db, store) in stores().await {
        append_plain(&store, 10).await;
        db.execute("DELETE FROM audit_events WHERE seq = 5").await;
        let link = broken(audit::verify_ledger(&store).await);
        assert_eq!(
            (link.seq, link.reason),
            (5, Break::Missing { next: 6 }),
            "{:?}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_notices_the_newest_events_deleted() {
    for (db, store) in stores().await {
        append_plain(&store, 10).await;
        db.execute("DELETE FROM audit_events WHERE seq >= 9").await;
        let link = broken(audit::verify_ledger(&store).await);
        assert_eq!(
            (link.seq, link.reason),
            (9, Break::MissingTail { head: 10 }),
            "{:?}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_ledgers_longer_than_one_page() {
    for (db, store) in stores().await {
        append_plain(&store, 1010).await;
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 1010);
        db.execute("UPDATE audit_events SET detail = 'x' WHERE seq = 1005")
            .await;
        let link = broken(audit::verify_ledger(&store).await);
        assert_eq!(link.seq, 1005, "{:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_keeps_the_chain_verifiable_and_records_itself() {
    for (db, store) in stores().await {
        append_plain(&store, 10).await;
        let purge = audit::purge_before(&store, T0 + 5, Actor::Operator("ops".into()))
            .await
            .unwrap();
        assert_eq!((purge.removed, purge.through_seq), (5, 5), "{:?}", db.kind);
        // Five remain, plus the purge's own event.
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 6);
        let all = store
            .audit_events(&AuditFilter::default(), 100)
            .await
            .unwrap();
        assert_eq!(all.first().unwrap().seq, 6);
        let last = all.last().unwrap();
        assert_eq!(last.kind, "operator.action");
        assert_eq!(last.actor, "operator:ops");
        assert!(
            last.detail.as_deref().unwrap().contains("after seq 5"),
            "{last:?}"
        );

        // Purging nothing changes nothing.
        let again = audit::purge_before(&store, T0, Actor::System)
            .await
            .unwrap();
        assert_eq!((again.removed, again.through_seq), (0, 5));
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 6);

        // Deleting the oldest remaining event by hand is not a purge.
        db.execute("DELETE FROM audit_events WHERE seq = 6").await;
        let link = broken(audit::verify_ledger(&store).await);
        assert_eq!(
            (link.seq, link.reason),
            (6, Break::Missing { next: 7 }),
            "{:?}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_every_event_leaves_a_ledger_that_verifies_and_grows() {
    for (db, store) in stores().await {
        append_plain(&store, 3).await;
        let purge = audit::purge_before(&store, T0 + 1000, Actor::System)
            .await
            .unwrap();
        assert_eq!((purge.removed, purge.through_seq), (3, 3), "{:?}", db.kind);
        // Only the purge's own record is left.
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 1);
        append_plain(&store, 2).await;
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 3);
        let all = store
            .audit_events(&AuditFilter::default(), 10)
            .await
            .unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(all[0].kind, "operator.action");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_only_a_prefix_when_clocks_disagree() {
    for (db, store) in stores().await {
        // An instance with a slow clock appended seq 4 "before" seq 3.
        for (i, time) in [100, 101, 105, 102, 106].into_iter().enumerate() {
            let event = AuditEvent::new(EventKind::TokenIssued, Actor::System)
                .request_id(&format!("e{}", i + 1));
            audit::record_at(&store, event, time).await.unwrap();
        }
        let purge = audit::purge_before(&store, 104, Actor::System)
            .await
            .unwrap();
        assert_eq!((purge.removed, purge.through_seq), (2, 2), "{:?}", db.kind);
        let all = store
            .audit_events(&AuditFilter::default(), 10)
            .await
            .unwrap();
        assert_eq!(labels(&all)[..3], ["e3", "e4", "e5"]);
        assert_eq!(all.len(), 4, "and the purge's record");
        assert_eq!(audit::verify_ledger(&store).await.unwrap(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_whose_record_cannot_be_written_removes_nothing() {
    for (db, store) in stores().await {
        append_plain(&store, 5).await;
        // The database refuses the purge's record (a full disk, say).
        match db.kind {
            Kind::Sqlite => {
                db.execute(
                    "CREATE TRIGGER refuse_purge_record BEFORE INSERT ON audit_events \
                     WHEN NEW.kind = 'operator.action' BEGIN SELECT RAISE(ABORT, 'refused'); END",
                )
                .await
            }
            Kind::Postgres => {
                db.execute(
                    "CREATE FUNCTION refuse_purge_record() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
                )
                .await;
                db.execute(
                    "CREATE TRIGGER refuse_purge_record BEFORE INSERT ON audit_events \
                     FOR EACH ROW WHEN (NEW.kind = 'operator.action') \
                     EXECUTE FUNCTION refuse_purge_record()",
                )
                .await
            }
        }
        assert!(
            audit::purge_before(&store, T0 + 1000, Actor::System)
                .await
                .is_err()
        );
        assert_eq!(
            audit::verify_ledger(&store).await.unwrap(),
            5,
            "{:?}: every event is still there",
            db.kind
        );
    }
}

/// `mcp-broker <args>` on `db`, with no other settings.
fn broker_cli(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-broker"));
    cmd.current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("MCP_BROKER_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .env("MCP_BROKER_DATABASE_URL", &db.url)
        .env("MCP_BROKER_LOG", "warn")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_command_lists_filtered_events_as_a_table_or_json_lines() {
    for (db, store) in stores().await {
        add_user(&db, "-u1", "octocat").await;
        let events = [
            AuditEvent::new(EventKind::GrantCreated, Actor::User("-u1".into()))
                .user("-u1")
                .client("c1")
                .grant("g1")
                .provider("github"),
            AuditEvent::new(EventKind::TokenIssued, Actor::Client("c1".into()))
                .user("-u1")
                .client("c1")
                .grant("g1"),
            AuditEvent::new(EventKind::TokenIssued, Actor::Client("c2".into()))
                .client("c2")
                .detail("second client"),
        ];
        for (i, event) in events.into_iter().enumerate() {
            audit::record_at(&store, event, T0 + i as i64)
                .await
                .unwrap();
        }

        let (ok, out, err) = broker_cli(&db, &["audit"]);
        assert!(ok, "{:?}: {err}", db.kind);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("SEQ") && lines[0].contains("OUTCOME"));
        assert!(lines[1].contains("2024-05-01T12:00:00Z"), "{out}");
        assert!(lines[1].contains("grant.created"), "{out}");
        assert!(lines[1].contains("github:octocat"), "{out}");
        assert!(lines[3].ends_with("second client"), "{out}");

        // Ids may start with '-'; times may be RFC 3339.
        let (ok, out, err) = broker_cli(
            &db,
            &[
                "audit",
                "--user",
                "-u1",
                "--kind",
                "token.issued",
                "--since",
                "2024-05-01T12:00:01Z",
                "--json",
            ],
        );
        assert!(ok, "{:?}: {err}", db.kind);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0]["seq"], 2);
        assert_eq!(lines[0]["kind"], "token.issued");
        assert_eq!(lines[0]["user_login"], "octocat");
        assert_eq!(lines[0]["hash"].as_str().unwrap().len(), 64);

        let (ok, out, _) = broker_cli(
            &db,
            &[
                "audit",
                "--client",
                "c2",
                "--until",
                &(T0 + 2).to_string(),
                "--json",
            ],
        );
        assert!(ok);
        assert_eq!(out.lines().count(), 1, "{out}");
        let (ok, out, _) = broker_cli(&db, &["audit", "--grant", "g1", "--provider", "github"]);
        assert!(ok);
        assert_eq!(out.lines().count(), 2, "{out}");

        let (ok, out, err) = broker_cli(&db, &["audit", "--limit", "1", "--json"]);
        assert!(ok);
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains("\"seq\":3"), "{out}");
        assert!(err.contains("--limit"), "{err}");

        let (ok, out, err) = broker_cli(&db, &["audit", "--client", "nobody"]);
        assert!(ok && out.is_empty(), "{out}");
        assert!(err.contains("no audit events match"), "{err}");
    }
}

#[test]
fn audit_command_refuses_unknown_kinds_and_times_saying_what_it_takes() {
    let db = TestDb::sqlite();
    let (ok, _, err) = broker_cli(&db, &["audit", "--kind", "token.stolen"]);
    assert!(!ok);
    assert!(err.contains("token.issued"), "{err}");
    let (ok, _, err) = broker_cli(&db, &["audit", "--since", "yesterday"]);
    assert!(!ok);
    assert!(err.contains("RFC 3339"), "{err}");
    let (ok, _, _) = broker_cli(&db, &["audit", "verify", "--client", "c1"]);
    assert!(!ok, "verify takes no filters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_command_reports_an_intact_chain_or_the_first_broken_seq() {
    for (db, store) in stores().await {
        let (ok, out, err) = broker_cli(&db, &["audit", "verify"]);
        assert!(ok, "{:?}: {err}", db.kind);
        assert_eq!(out.trim(), "0 events, chain intact");

        append_plain(&store, 4).await;
        let (ok, out, err) = broker_cli(&db, &["audit", "verify"]);
        assert!(ok, "{:?}: {err}", db.kind);
        assert_eq!(out.trim(), "4 events, chain intact");

        db.execute("UPDATE audit_events SET actor = 'system' WHERE seq = 2")
            .await;
        let (ok, out, err) = broker_cli(&db, &["audit", "verify"]);
        assert!(!ok, "{:?}: a tampered ledger passed: {out}", db.kind);
        assert!(err.contains("seq 2:"), "{err}");
        assert!(!out.contains("intact"), "{out}");
    }
}
