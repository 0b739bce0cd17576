//! Stopping the real binary with SIGTERM: it stops accepting at once (or
//! after the configured delay, failing readiness meanwhile), lets a request
//! in flight finish with its answer, and exits 0 once the shutdown grace has
//! passed even though an MCP event stream stays open; a second SIGTERM ends
//! the wait at once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::oauth_client::{open_mcp_session, session_tool_call, sign_in};
use crate::support::process::spawn_broker_with;
use crate::support::{FakeGithub, Mode, TestDb};

const GRACE_SECS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_refuses_new_ones_and_exits_within_the_grace() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("github.toml"), fake.provider_toml()).unwrap();
    let grace = GRACE_SECS.to_string();
    let mut broker = spawn_broker_with(
        &db,
        dir.path(),
        None,
        &[("MCP_BROKER_SHUTDOWN_GRACE_SECS", &grace)],
        None,
    )
    .await;
    let session = sign_in(&broker.url).await;
    let mcp = format!("{}/mcp", broker.url);
    let mcp_session = open_mcp_session(&mcp, &session.access_token).await;

    // A client holding the session's event stream open, as SDKs do.
    let stream = reqwest::Client::new()
        .get(&mcp)
        .bearer_auth(&session.access_token)
        .header("mcp-session-id", &mcp_session)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    // A tool call that needs an upstream refresh, which takes 2 s.
    db.execute("UPDATE upstream_links SET expires_at = 1").await;
    fake.expire_access_tokens();
    fake.set_refresh_delay(Duration::from_secs(2));
    let call = {
        let (mcp, token, id) = (
            mcp.clone(),
            session.access_token.clone(),
            mcp_session.clone(),
        );
        tokio::spawn(async move { session_tool_call(&mcp, &token, &id, "github_whoami").await })
    };
    let started = Instant::now();
    while fake.counters().refresh_attempts == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the call never reached upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopped_at = Instant::now();
    broker.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::new()
        .get(format!("{}/healthz", broker.url))
        .send()
        .await;
    assert!(
        fresh.as_ref().is_err_and(|e| e.is_connect()),
        "a new connection after SIGTERM: {fresh:?}"
    );

    let (status, _, result) = call.await.unwrap();
    assert_eq!(status, 200, "the request in flight was answered");
    assert_eq!(result["isError"], json!(false), "{result}");

    let exit = broker
        .exit_within(Duration::from_secs(GRACE_SECS + 3))
        .await
        .expect("the broker exits within the grace despite the open stream");
    let took = stopped_at.elapsed();
    assert!(exit.success(), "{exit:?}");
    assert!(
        took >= Duration::from_secs(GRACE_SECS) - Duration::from_millis(500),
        "the open stream was given the grace: exited after {took:?}"
    );
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_delay_readiness_fails_first_and_a_second_sigterm_exits_at_once() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("github.toml"), fake.provider_toml()).unwrap();
    let mut broker = spawn_broker_with(
        &db,
        dir.path(),
        None,
        &[
            ("MCP_BROKER_SHUTDOWN_DELAY_SECS", "2"),
            ("MCP_BROKER_SHUTDOWN_GRACE_SECS", "60"),
        ],
        None,
    )
    .await;
    let session = sign_in(&broker.url).await;
    let mcp = format!("{}/mcp", broker.url);
    let mcp_session = open_mcp_session(&mcp, &session.access_token).await;
    // Holds the drain open: only the grace, or a second signal, ends it.
    let stream = reqwest::Client::new()
        .get(&mcp)
        .bearer_auth(&session.access_token)
        .header("mcp-session-id", &mcp_session)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let stopped_at = Instant::now();
    broker.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Still accepting during the delay, but no longer ready.
    let readyz = reqwest::Client::new()
        .get(format!("{}/readyz", broker.url))
        .send()
        .await
        .expect("connections are still accepted during the delay");
    assert_eq!(readyz.status(), 503);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(body["failed"], json!(["shutting_down"]));

    // After the delay the listener closes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = reqwest::Client::new()
        .get(format!("{}/healthz", broker.url))
        .send()
        .await;
    assert!(
        late.as_ref().is_err_and(|e| e.is_connect()),
        "a new connection after the delay: {late:?}"
    );

    // The open stream would hold the drain for 60 s: a second SIGTERM ends it.
    broker.terminate();
    let exit = broker
        .exit_within(Duration::from_secs(5))
        .await
        .expect("a second SIGTERM exits at once");
    assert!(exit.success(), "{exit:?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
    drop(stream);
}
