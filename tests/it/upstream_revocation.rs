//! The revocation cascade: revoking one of our grants revokes its upstream
//! grant at the provider, with the upstream token (never ours), then deletes
//! the sealed copy; a provider outage only delays it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::oauth_client::{
    Session, call_tool, grant_of, open_mcp_session, revoke_refresh_token, session_tool_call,
    sign_in,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker};

async fn revoke_ours(broker: &TestBroker, session: &Session) {
    revoke_refresh_token(
        &broker.url,
        &session.client.client_id,
        &session.refresh_token,
    )
    .await;
}

async fn has_link(broker: &TestBroker, session: &Session) -> bool {
    broker.github_link(&session.access_token).await.is_some()
}

/// The `upstream.revoked` events in the ledger.
async fn upstream_revoked_events(broker: &TestBroker) -> Vec<mcp_broker::audit::AuditRecord> {
    let filter = mcp_broker::audit::AuditFilter {
        kind: Some("upstream.revoked".into()),
        ..Default::default()
    };
    broker.state.store.audit_events(&filter, 10).await.unwrap()
}

/// Waits (up to 30 s) for the background cascade to reach the provider.
async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the revocation cascade did not happen within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_our_token_revokes_upstream_with_the_upstream_token_and_deletes_it() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = start_broker(&db, &fake).await;
        let session = sign_in(&broker.url).await;
        let upstream = broker.github_token(&session.access_token).await.unwrap();

        revoke_ours(&broker, &session).await;
        wait_for(|| fake.counters().revocations == 1).await;

        assert_eq!(fake.revoked_tokens(), vec![upstream.access_token.clone()]);
        assert!(!fake.token_is_live(&upstream.access_token), "{:?}", db.kind);
        for ours in [&session.access_token, &session.refresh_token] {
            assert!(!fake.revoked_tokens().contains(ours));
        }
        // The cascade deletes the link after the provider answered: wait
        // (up to 30 s) for it.
        for _ in 0..1500 {
            if !has_link(&broker, &session).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!has_link(&broker, &session).await, "{:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_revocation_is_retried_after_the_provider_recovers() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    fake.set_revocation_down(true);

    revoke_ours(&broker, &session).await;
    wait_for(|| fake.counters().revocations == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The provider did not confirm: the sealed token stays for a retry.
    assert!(has_link(&broker, &session).await);

    fake.set_revocation_down(false);
    // What the hourly sweep runs.
    assert_eq!(broker.retry_revocations().await, 1);
    assert!(!has_link(&broker, &session).await);
    // The 503 was answered before the fake read the body: one token seen.
    let revoked = fake.revoked_tokens();
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].starts_with("ghu_"),
        "an upstream token, never ours"
    );
    assert!(!fake.token_is_live(&revoked[0]));
    assert_eq!(broker.retry_revocations().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_one_connection_leaves_the_users_other_connections_working() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let (laptop, desktop) = (sign_in(&broker.url).await, sign_in(&broker.url).await);
    let token_of = |s: &Session| {
        let state = broker.state.clone();
        let grant = grant_of(&s.access_token);
        async move {
            state
                .vault
                .usable_token(&grant, "github", mcp_broker::now_unix())
                .await
                .unwrap()
                .access_token
        }
    };
    let (laptop_upstream, desktop_upstream) = (token_of(&laptop).await, token_of(&desktop).await);

    revoke_ours(&broker, &laptop).await;
    wait_for(|| fake.counters().revocations == 1).await;

    // `github_token` style: only the laptop's GitHub token ended.
    assert!(!fake.token_is_live(&laptop_upstream));
    assert!(fake.token_is_live(&desktop_upstream));
    let result = call_tool(
        &broker.mcp_url(),
        &desktop.access_token,
        "github_whoami",
        json!({}),
    )
    .await;
    assert_ne!(result["isError"], json!(true), "{result}");
}

/// An operator command; its success and its stdout and stderr together.
fn operator(broker: &TestBroker, db: &TestDb, fake: &FakeGithub, args: &[&str]) -> (bool, String) {
    let (ok, out, err) = crate::support::process::operator_command(broker, db, fake, args);
    (ok, out + &err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_revoking_a_grant_or_disconnecting_a_user_revokes_upstream() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let (one, two, three) = (
        sign_in(&broker.url).await,
        sign_in(&broker.url).await,
        sign_in(&broker.url).await,
    );

    let (ok, text) = operator(
        &broker,
        &db,
        &fake,
        &["grants", "revoke", &grant_of(&one.access_token)],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("1 grant(s) revoked; 1 upstream link(s) revoked"),
        "{text}"
    );
    assert_eq!(fake.counters().revocations, 1);
    assert_eq!(
        crate::support::oauth_client::mcp_status(&broker.mcp_url(), &one.access_token).await,
        401
    );
    assert!(has_link(&broker, &two).await);

    let user = broker
        .state
        .store
        .grant_status(&grant_of(&two.access_token))
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let (ok, text) = operator(&broker, &db, &fake, &["users", "disconnect", &user]);
    assert!(ok, "{text}");
    assert!(
        text.contains("2 grant(s) revoked; 2 upstream link(s) revoked"),
        "{text}"
    );
    assert_eq!(fake.counters().revocations, 3);
    assert!(!has_link(&broker, &three).await);
    // Nothing left to revoke is an error the operator sees.
    let (ok, _) = operator(&broker, &db, &fake, &["users", "disconnect", &user]);
    assert!(!ok);

    // Each command is in the audit ledger: who ran it, on what, and how it went.
    let filter = mcp_broker::store::AuditFilter {
        kind: Some("operator.action".into()),
        ..Default::default()
    };
    let events = broker.state.store.audit_events(&filter, 10).await.unwrap();
    let seen: Vec<(&str, Option<&str>, Option<&str>, &str)> = events
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.grant_id.as_deref(),
                e.user_id.as_deref(),
                e.outcome.as_str(),
            )
        })
        .collect();
    let first_grant = grant_of(&one.access_token);
    let refusal = format!("refused: user {user} holds no live grant and no consent");
    assert_eq!(
        seen,
        [
            // The grant's user is filled in from the grant.
            (
                "operator:ops-alice",
                Some(first_grant.as_str()),
                Some(user.as_str()),
                "ok"
            ),
            ("operator:ops-alice", None, Some(user.as_str()), "ok"),
            (
                "operator:ops-alice",
                None,
                Some(user.as_str()),
                refusal.as_str()
            ),
        ]
    );
    assert!(
        events[1]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("users disconnect: 2 grant(s) revoked")
    );
    assert_eq!(
        events[1].user_login.as_deref(),
        Some(crate::support::fake_github::LOGIN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_an_unused_client_revokes_its_upstream_tokens_before_deleting_it() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    db.execute("UPDATE clients SET last_used_at = 1, created_at = 1")
        .await;
    fake.set_revocation_down(true);

    // The provider is down: the client waits, its sealed token with it.
    assert_eq!(
        broker.state.vault.expire_unused_clients(100).await.unwrap(),
        0
    );
    assert!(has_link(&broker, &session).await);

    fake.set_revocation_down(false);
    assert_eq!(
        broker.state.vault.expire_unused_clients(100).await.unwrap(),
        1
    );
    assert!(!has_link(&broker, &session).await);
    let revoked = fake.revoked_tokens();
    assert_eq!(revoked.len(), 1);
    assert!(!fake.token_is_live(&revoked[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_take_ids_that_start_with_a_dash() {
    // Ids are base64url: one in 32 starts with `-`, which must not read as
    // an option.
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    for (args, answer) in [
        (["grants", "revoke", "-Xyz"], "no grant -Xyz"),
        (["users", "disconnect", "-Xyz"], "no user -Xyz"),
        (["grants", "show", "-Xyz"], "no grant -Xyz"),
        (["clients", "delete", "-Xyz"], "no client -Xyz"),
    ] {
        let (ok, text) = operator(&broker, &db, &fake, &args);
        assert!(!ok);
        assert!(text.contains(answer), "{args:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_a_refresh_gets_after_its_grant_was_revoked_are_revoked_upstream() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    crate::support::let_upstream_token_expire(&db, &fake).await;
    // The provider holds the refresh until the grant has been revoked.
    fake.hold_refreshes();
    let mcp_session = open_mcp_session(&broker.mcp_url(), &session.access_token).await;
    let call = {
        let (mcp, token) = (broker.mcp_url(), session.access_token.clone());
        tokio::spawn(
            async move { session_tool_call(&mcp, &token, &mcp_session, "github_whoami").await },
        )
    };
    wait_for(|| fake.counters().refresh_attempts == 1).await;
    revoke_ours(&broker, &session).await;
    wait_for(|| fake.counters().revocations == 1).await;
    assert_eq!(
        fake.counters().refreshes,
        0,
        "the cascade must finish while the refresh is still at the provider"
    );
    // Let the cascade finish (it deletes the link, then records itself)
    // before the provider answers the refresh.
    let deadline = Instant::now() + Duration::from_secs(30);
    while upstream_revoked_events(&broker).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the cascade did not finish within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.release_refreshes();

    // The call's grant is gone: 401, so the client signs in again.
    let (status, challenge, _) = call.await.unwrap();
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("invalid_token"));
    assert_eq!(fake.counters().refreshes, 1, "the provider did refresh");
    // The cascade revoked the token it had; the fresh one went at once.
    assert_eq!(fake.revoked_tokens().len(), 2);
    for token in fake
        .issued_secrets()
        .iter()
        .filter(|s| s.starts_with("ghu_"))
    {
        assert!(!fake.token_is_live(token), "{token} is still live");
    }
    let events = upstream_revoked_events(&broker).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e.outcome == "ok"), "{events:?}");
    assert!(!has_link(&broker, &session).await);
}
