//! `/metrics` in Prometheus text format: requests by route template (never
//! the raw path) and status, tokens issued by grant type, upstream refreshes
//! by provider and outcome, active grants; optionally behind a bearer.

use std::time::Duration;

use serde_json::json;

use crate::support::fake_github::TokenFailure;
use crate::support::let_upstream_token_expire;
use crate::support::oauth_client::{
    call_tool, open_mcp_session, session_tool_call, sign_in, token_request,
};
use crate::support::{FakeGithub, Mode, TestDb, start_broker, start_broker_with_env};

async fn scrape(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{url}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert!(
            response.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
    }
    (status, response.text().await.unwrap())
}

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_route_template_and_tokens_by_grant_type() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let refreshed = token_request(
        &broker.url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &session.client.client_id),
            ("refresh_token", &session.refresh_token),
        ],
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refused = token_request(&broker.url, &[("grant_type", "password")]).await;
    assert_eq!(refused.status(), 401);
    for path in ["/no/such/path-1", "/no/such/path-2"] {
        let r = reqwest::get(format!("{}{path}", broker.url)).await.unwrap();
        assert_eq!(r.status(), 404);
    }

    let (status, text) = scrape(&broker.url, None).await;
    assert_eq!(status, 200);
    for (series, value) in [
        (
            "mcp_broker_tokens_issued_total{grant_type=\"authorization_code\"}",
            1.0,
        ),
        (
            "mcp_broker_tokens_issued_total{grant_type=\"refresh_token\"}",
            1.0,
        ),
        (
            "mcp_broker_tokens_issued_total{grant_type=\"token-exchange\"}",
            0.0,
        ),
        (
            "mcp_broker_http_requests_total{route=\"/token\",status=\"200\"}",
            2.0,
        ),
        (
            "mcp_broker_http_requests_total{route=\"/token\",status=\"401\"}",
            1.0,
        ),
        (
            "mcp_broker_http_requests_total{route=\"/callback/{provider}\",status=\"302\"}",
            1.0,
        ),
        (
            "mcp_broker_http_requests_total{route=\"unmatched\",status=\"404\"}",
            2.0,
        ),
        (
            "mcp_broker_http_request_duration_seconds_count{route=\"/token\"}",
            3.0,
        ),
        ("mcp_broker_active_grants", 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    assert!(!text.contains("path-1"), "raw paths never become labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refreshes_are_counted_by_provider_and_outcome() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let expire = || async {
        let_upstream_token_expire(&db, &fake).await;
    };
    expire().await;
    let result = call_tool(
        &broker.mcp_url(),
        &session.access_token,
        "github_whoami",
        json!({}),
    )
    .await;
    assert_eq!(result["isError"], json!(false), "{result}");

    // An outage: three attempts, each transient; then the refresh token is
    // refused for good.
    let mcp = broker.mcp_url();
    let mcp_session = open_mcp_session(&mcp, &session.access_token).await;
    expire().await;
    fake.set_token_failure(Some(TokenFailure::ServerError));
    session_tool_call(&mcp, &session.access_token, &mcp_session, "github_whoami").await;
    fake.set_token_failure(None);
    fake.revoke_all_tokens();
    // Past the 2 s during which a failure answers the callers queued behind.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    session_tool_call(&mcp, &session.access_token, &mcp_session, "github_whoami").await;

    let (_, text) = scrape(&broker.url, None).await;
    let outcome = |o: &str| {
        sample(
            &text,
            &format!("mcp_broker_upstream_refreshes_total{{provider=\"github\",outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(
        (outcome("ok"), outcome("transient"), outcome("permanent")),
        (Some(1.0), Some(3.0), Some(1.0)),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "mcp_broker_upstream_refresh_duration_seconds_count{provider=\"github\"}"
        ),
        Some(5.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_only_its_bearer_may_scrape() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let token = "metrics-scrape-token-0123456789";
    let broker = start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_METRICS_TOKEN", token)],
    )
    .await;
    let (status, refusal) = scrape(&broker.url, None).await;
    assert_eq!(status, 401);
    assert!(refusal.contains("\"invalid_token\""), "{refusal}");
    assert_eq!(
        scrape(&broker.url, Some("metrics-scrape-token-wrong"))
            .await
            .0,
        401
    );
    let (status, text) = scrape(&broker.url, Some(token)).await;
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE mcp_broker_http_requests_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upkeep_reports_each_pass_and_each_failed_step() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_AUDIT_RETENTION_DAYS", "30")],
    )
    .await;
    let (_, text) = scrape(&broker.url, None).await;
    let runs = sample(&text, "mcp_broker_upkeep_runs_total").unwrap();
    assert!(runs >= 1.0, "the pass at start: {text}");
    let last = sample(&text, "mcp_broker_upkeep_last_completed_timestamp_seconds").unwrap();
    assert!(last >= (mcp_broker::now_unix() - 60) as f64, "{last}");
    let retention = "mcp_broker_upkeep_step_failures_total{step=\"audit_retention\"}";
    assert_eq!(sample(&text, retention), Some(0.0));

    // The ledger's head is gone: the retention step fails, the pass ends.
    db.execute("DROP TABLE audit_head").await;
    mcp_broker::app::upkeep(&broker.state, mcp_broker::now_unix()).await;
    let (_, text) = scrape(&broker.url, None).await;
    assert_eq!(sample(&text, retention), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "mcp_broker_upkeep_step_failures_total{step=\"sweep\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "mcp_broker_upkeep_runs_total"),
        Some(runs + 1.0)
    );
}
