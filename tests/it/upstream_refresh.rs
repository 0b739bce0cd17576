//! Refresh on demand: one upstream refresh however many callers (in one
//! process and across processes), GitHub App rotation chains, outages that
//! never touch the stored token, and refusals that send the user back to
//! sign in.

use std::time::Duration;

use serde_json::Value;

use crate::support::fake_github::TokenFailure;
use crate::support::let_upstream_token_expire;
use crate::support::oauth_client::{
    Session, open_mcp_session, session_tool_call, sign_in, token_request,
};
use crate::support::process::spawn_broker;
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_with_env};

async fn start(db: &TestDb, mode: Mode, env: &[(&str, &str)]) -> (FakeGithub, TestBroker) {
    let fake = FakeGithub::start(mode).await;
    let broker = start_broker_with_env(db, &[("github.toml", fake.provider_toml())], env).await;
    (fake, broker)
}

async fn link(broker: &TestBroker, session: &Session) -> mcp_broker::store::UpstreamLinkRow {
    broker
        .github_link(&session.access_token)
        .await
        .expect("the grant has a GitHub link")
}

fn is_ok(result: &Value) -> bool {
    result["isError"] != Value::Bool(true) && result["content"][0]["text"].is_string()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `github_whoami` in an open MCP session.
async fn whoami(broker: &TestBroker, token: &str, session: &str) -> (u16, Option<String>, Value) {
    session_tool_call(&broker.mcp_url(), token, session, "github_whoami").await
}

/// `n` MCP sessions (one per simulated client connection).
async fn open_sessions(mcp_url: &str, token: &str, n: usize) -> Vec<String> {
    let mut sessions = Vec::new();
    for _ in 0..n {
        sessions.push(open_mcp_session(mcp_url, token).await);
    }
    sessions
}

/// One concurrent `github_whoami` call per session; every result.
async fn concurrent_whoami(mcp_url: &str, token: &str, sessions: &[String]) -> Vec<(u16, Value)> {
    let calls: Vec<_> = sessions
        .iter()
        .map(|session| {
            let (mcp_url, token, session) =
                (mcp_url.to_string(), token.to_string(), session.clone());
            tokio::spawn(async move {
                let (status, _, result) =
                    session_tool_call(&mcp_url, &token, &session, "github_whoami").await;
                (status, result)
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_calls_on_an_expired_token_refresh_upstream_once() {
    let db = TestDb::sqlite();
    let (fake, broker) = start(&db, Mode::GitHubApp, &[]).await;
    let session = sign_in(&broker.url).await;
    let sessions = open_sessions(&broker.mcp_url(), &session.access_token, 200).await;
    let_upstream_token_expire(&db, &fake).await;
    // A slow token endpoint, so every caller arrives while the refresh runs.
    fake.set_refresh_delay(Duration::from_millis(300));

    let results = concurrent_whoami(&broker.mcp_url(), &session.access_token, &sessions).await;

    for (status, result) in &results {
        assert_eq!(*status, 200);
        assert!(is_ok(result), "{result}");
    }
    let counters = fake.counters();
    assert_eq!(counters.refresh_attempts, 1, "{counters:?}");
    assert_eq!(counters.refreshes, 1);
    assert_eq!(counters.token_errors, 0);
    assert_eq!(link(&broker, &session).await.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_broker_processes_on_one_postgres_refresh_upstream_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // The in-test broker serves the browser leg; two processes serve tools.
    let (fake, broker) = start(&db, Mode::GitHubApp, &[]).await;
    let session = sign_in(&broker.url).await;
    let providers = tempfile::tempdir().unwrap();
    std::fs::write(providers.path().join("github.toml"), fake.provider_toml()).unwrap();
    let a = spawn_broker(&db, providers.path(), &broker.url, &[]).await;
    let b = spawn_broker(&db, providers.path(), &broker.url, &[]).await;
    let (mcp_a, mcp_b) = (format!("{}/mcp", a.url), format!("{}/mcp", b.url));
    let sessions_a = open_sessions(&mcp_a, &session.access_token, 100).await;
    let sessions_b = open_sessions(&mcp_b, &session.access_token, 100).await;
    let_upstream_token_expire(&db, &fake).await;
    fake.set_refresh_delay(Duration::from_millis(500));

    let (on_a, on_b) = tokio::join!(
        concurrent_whoami(&mcp_a, &session.access_token, &sessions_a),
        concurrent_whoami(&mcp_b, &session.access_token, &sessions_b),
    );

    for (status, result) in on_a.iter().chain(&on_b) {
        assert_eq!(*status, 200);
        assert!(is_ok(result), "{result}");
    }
    let counters = fake.counters();
    assert_eq!(counters.refresh_attempts, 1, "{counters:?}");
    assert_eq!(counters.token_errors, 0);
    assert_eq!(link(&broker, &session).await.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_app_rotation_chain_of_fifty_refreshes_never_loses_the_token() {
    let db = TestDb::sqlite();
    let (fake, broker) = start(&db, Mode::GitHubApp, &[]).await;
    let session = sign_in(&broker.url).await;
    let mcp = open_mcp_session(&broker.mcp_url(), &session.access_token).await;
    for round in 1..=50 {
        // Every other round the link knows the token expired (refresh before
        // the call); otherwise GitHub's 401 is the first sign (refresh, retry).
        if round % 2 == 0 {
            let_upstream_token_expire(&db, &fake).await;
        } else {
            fake.expire_access_tokens();
        }
        let (status, _, result) = whoami(&broker, &session.access_token, &mcp).await;
        assert_eq!(status, 200, "round {round}");
        assert!(is_ok(&result), "round {round}: {result}");
    }
    let counters = fake.counters();
    assert_eq!(counters.refreshes, 50, "{counters:?}");
    // The fake refuses any rotated refresh token: none was ever reused.
    assert_eq!(counters.token_errors, 0);
    assert_eq!(link(&broker, &session).await.version, 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_outage_never_destroys_the_stored_token_and_recovery_works() {
    let db = TestDb::sqlite();
    let (fake, broker) = start(
        &db,
        Mode::GitHubApp,
        &[("MCP_BROKER_UPSTREAM_TIMEOUT_SECS", "1")],
    )
    .await;
    let session = sign_in(&broker.url).await;
    let mcp = open_mcp_session(&broker.mcp_url(), &session.access_token).await;
    let_upstream_token_expire(&db, &fake).await;
    let before = link(&broker, &session).await;
    for failure in [
        TokenFailure::ServerError,
        TokenFailure::Hang,
        TokenFailure::Garbage,
    ] {
        fake.set_token_failure(Some(failure));
        let attempts = fake.counters().refresh_attempts;
        let (status, _, result) = whoami(&broker, &session.access_token, &mcp).await;
        // A tool error that says so, not a 401: the client keeps its tokens.
        assert_eq!(status, 200, "{failure:?}");
        assert_eq!(result["isError"], Value::Bool(true), "{failure:?}");
        assert!(
            text(&result).contains("unavailable"),
            "{failure:?}: {result}"
        );
        // Bounded retries with backoff.
        assert_eq!(
            fake.counters().refresh_attempts - attempts,
            3,
            "{failure:?}"
        );
        let after = link(&broker, &session).await;
        assert_eq!(
            after.access_token_enc, before.access_token_enc,
            "{failure:?}"
        );
        assert_eq!(after.refresh_token_enc, before.refresh_token_enc);
        assert_eq!(after.data_key_enc, before.data_key_enc);
        assert_eq!(after.version, before.version);
        assert_eq!(after.reauth_required_at, None);
    }
    fake.set_token_failure(None);
    let (status, _, result) = whoami(&broker, &session.access_token, &mcp).await;
    assert_eq!(status, 200);
    assert!(is_ok(&result), "{result}");
    assert_eq!(fake.counters().refreshes, 1);
    assert_eq!(link(&broker, &session).await.version, before.version + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_refresh_token_asks_the_client_to_sign_in_again() {
    for db in TestDb::all().await {
        let (fake, broker) = start(&db, Mode::GitHubApp, &[]).await;
        let session = sign_in(&broker.url).await;
        let mcp = open_mcp_session(&broker.mcp_url(), &session.access_token).await;
        // The user revoked the app at GitHub, and the token is due.
        fake.revoke_all_tokens();
        db.execute("UPDATE upstream_links SET expires_at = 1").await;

        let (status, challenge, _) = whoami(&broker, &session.access_token, &mcp).await;
        assert_eq!(status, 401, "{:?}", db.kind);
        let challenge = challenge.expect("a WWW-Authenticate challenge");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains("sign in again"), "{challenge}");
        let row = link(&broker, &session).await;
        assert!(row.reauth_required_at.is_some());
        assert!(row.reauth_reason.unwrap().contains("bad_refresh_token"));

        // Refreshing our token would only lead back here: the client is
        // told to run the authorization flow instead.
        let response = token_request(
            &broker.url,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &session.client.client_id),
                ("refresh_token", &session.refresh_token),
            ],
        )
        .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");

        // Signing in again gives a working grant.
        let again = sign_in(&broker.url).await;
        let mcp = open_mcp_session(&broker.mcp_url(), &again.access_token).await;
        let (status, _, result) = whoami(&broker, &again.access_token, &mcp).await;
        assert_eq!(status, 200);
        assert!(is_ok(&result), "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_oauth_app_token_is_a_tool_error_then_a_401_to_sign_in_again() {
    let db = TestDb::sqlite();
    let (fake, broker) = start(&db, Mode::OAuthApp, &[]).await;
    let session = sign_in(&broker.url).await;
    let mcp = open_mcp_session(&broker.mcp_url(), &session.access_token).await;
    fake.revoke_all_tokens();

    // GitHub's 401 is the first sign; an OAuth App token cannot be
    // refreshed, so this call fails as a tool error...
    let (status, _, result) = whoami(&broker, &session.access_token, &mcp).await;
    assert_eq!(status, 200);
    assert_eq!(result["isError"], Value::Bool(true));
    assert!(text(&result).contains("sign in again"), "{result}");
    assert_eq!(fake.counters().api_unauthorized, 1);
    assert_eq!(fake.counters().refresh_attempts, 0);
    // ...and the next one is refused before reaching GitHub.
    let (status, challenge, _) = whoami(&broker, &session.access_token, &mcp).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("invalid_token"));
    assert_eq!(
        fake.counters().api_calls,
        2,
        "sign-in's /user and the first call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_costs_one_round_of_retries_not_one_per_waiting_caller() {
    let db = TestDb::sqlite();
    let (fake, broker) = start(&db, Mode::GitHubApp, &[]).await;
    let session = sign_in(&broker.url).await;
    let sessions = open_sessions(&broker.mcp_url(), &session.access_token, 20).await;
    let_upstream_token_expire(&db, &fake).await;
    fake.set_token_failure(Some(TokenFailure::ServerError));
    // Each failed attempt takes 500 ms, so every caller has queued behind
    // the first one's round of retries before it ends.
    fake.set_refresh_delay(Duration::from_millis(500));

    let results = concurrent_whoami(&broker.mcp_url(), &session.access_token, &sessions).await;

    for (status, result) in &results {
        assert_eq!(*status, 200);
        assert!(text(result).contains("unavailable"), "{result}");
    }
    // Three attempts with backoff for the first caller; the 19 queued behind
    // it get its answer.
    assert_eq!(fake.counters().refresh_attempts, 3);
}
