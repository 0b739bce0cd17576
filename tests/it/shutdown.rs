//! Stopping the real binary with SIGTERM: it stops accepting at once (or
//! after the configured delay, failing readiness meanwhile), lets a request
//! in flight finish with its answer, and exits 0 once the shutdown grace has
//! passed even though an MCP event stream stays open; a second SIGTERM ends
//! the wait at once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::let_upstream_token_expire;
use crate::support::oauth_client::{open_mcp_session, session_tool_call, sign_in};
use crate::support::process::{BrokerProcess, spawn_broker_with};
use crate::support::{FakeGithub, Mode, TestDb};

const GRACE_SECS: u64 = 4;

/// A broker process with `env`, a signed-in client and its MCP session whose
/// event stream is held open, as SDK clients hold it.
struct Running {
    broker: BrokerProcess,
    mcp: String,
    token: String,
    session: String,
    _stream: reqwest::Response,
    _providers: tempfile::TempDir,
}

async fn running(db: &TestDb, fake: &FakeGithub, env: &[(&str, &str)]) -> Running {
    let providers = tempfile::tempdir().unwrap();
    std::fs::write(providers.path().join("github.toml"), fake.provider_toml()).unwrap();
    let broker = spawn_broker_with(db, providers.path(), None, env, None).await;
    let token = sign_in(&broker.url).await.access_token;
    let mcp = format!("{}/mcp", broker.url);
    let session = open_mcp_session(&mcp, &token).await;
    let stream = reqwest::Client::new()
        .get(&mcp)
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    Running {
        broker,
        mcp,
        token,
        session,
        _stream: stream,
        _providers: providers,
    }
}

/// How long the broker may take to react to SIGTERM (tests poll, so they
/// wait only as long as it takes).
const REACTION: Duration = Duration::from_secs(10);

/// Polls until a new connection to `url` is refused (at most `REACTION`
/// after `since`); returns when that was seen.
async fn wait_until_refused(url: &str, since: Instant) -> Instant {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    loop {
        let fresh = client.get(format!("{url}/healthz")).send().await;
        if fresh.as_ref().is_err_and(|e| e.is_connect()) {
            return Instant::now();
        }
        assert!(
            since.elapsed() < REACTION,
            "a new connection {:?} after SIGTERM: {fresh:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_refuses_new_ones_and_exits_within_the_grace() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let grace = GRACE_SECS.to_string();
    let mut running = running(&db, &fake, &[("MCP_BROKER_SHUTDOWN_GRACE_SECS", &grace)]).await;
    let (mcp, token, mcp_session) = (
        running.mcp.clone(),
        running.token.clone(),
        running.session.clone(),
    );

    // A tool call that needs an upstream refresh, held at the provider
    // until the test lets it go.
    let_upstream_token_expire(&db, &fake).await;
    fake.hold_refreshes();
    let call = tokio::spawn(async move {
        session_tool_call(&mcp, &token, &mcp_session, "github_whoami").await
    });
    let started = Instant::now();
    while fake.counters().refresh_attempts == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the call never reached upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopped_at = Instant::now();
    running.broker.terminate();
    wait_until_refused(&running.broker.url, stopped_at).await;
    assert!(
        !call.is_finished(),
        "new connections are refused while the call is still in flight"
    );

    fake.release_refreshes();
    let (status, _, result) = call.await.unwrap();
    assert_eq!(status, 200, "the request in flight was answered");
    assert_eq!(result["isError"], json!(false), "{result}");

    let exit = running
        .broker
        .exit_within(Duration::from_secs(GRACE_SECS + 3))
        .await
        .expect("the broker exits within the grace despite the open stream");
    let took = stopped_at.elapsed();
    assert!(exit.success(), "{exit:?}");
    assert!(
        took >= Duration::from_secs(GRACE_SECS) - Duration::from_millis(500),
        "the open stream was given the grace: exited after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_delay_readiness_fails_first_and_a_second_sigterm_exits_at_once() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    // The open event stream holds the drain: only the grace (60 s), or a
    // second signal, ends it.
    let mut running = running(
        &db,
        &fake,
        &[
            ("MCP_BROKER_SHUTDOWN_DELAY_SECS", "2"),
            ("MCP_BROKER_SHUTDOWN_GRACE_SECS", "60"),
        ],
    )
    .await;

    let stopped_at = Instant::now();
    running.broker.terminate();
    // Still accepting during the delay, but no longer ready.
    let readyz = loop {
        let readyz = reqwest::Client::new()
            .get(format!("{}/readyz", running.broker.url))
            .send()
            .await
            .expect("connections are still accepted during the delay");
        if readyz.status() != 200 {
            break readyz;
        }
        assert!(
            stopped_at.elapsed() < REACTION,
            "still ready {:?} after SIGTERM",
            stopped_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(readyz.status(), 503);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(body["failed"], json!(["shutting_down"]));

    // After the delay, and not before, the listener closes.
    let closed_after = wait_until_refused(&running.broker.url, stopped_at).await - stopped_at;
    assert!(
        closed_after >= Duration::from_secs(2),
        "the listener closed {closed_after:?} after SIGTERM, within the 2 s delay"
    );

    // The open stream would hold the drain for 60 s: a second SIGTERM ends it.
    running.broker.terminate();
    let exit = running
        .broker
        .exit_within(Duration::from_secs(5))
        .await
        .expect("a second SIGTERM exits at once");
    assert!(exit.success(), "{exit:?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
}
