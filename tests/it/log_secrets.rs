//! The logs never carry a secret: the real broker binary, at the most
//! verbose level we allow and in JSON, runs a whole life — registration,
//! consent, sign-in through the fake GitHub, code exchange, refresh, an
//! upstream refresh and an MCP tool call, a refused client secret and
//! bearer, a revocation with its upstream cascade — and no token, code,
//! client secret, PKCE verifier, cookie, CSRF or upstream state value,
//! encryption key or upstream token the run used appears in its stderr.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::fake_github::CLIENT_SECRET;
use crate::support::let_upstream_token_expire;
use crate::support::oauth_client::{
    Client, REDIRECT_URI, authorize_url, call_tool, follow_with_jar, http, keep_cookies, location,
    mcp_status, open_consent, pkce, query_param, register_metadata, submit_consent, token_request,
};
use crate::support::process::spawn_broker_with;
use crate::support::{FakeGithub, Mode, TestDb};

async fn token_answer(broker: &str, form: &[(&str, &str)]) -> (String, String) {
    let response = token_request(broker, form).await;
    assert_eq!(response.status(), 200, "token request");
    let body: Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_code_secret_or_key_appears_in_the_logs() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("github.toml"), fake.provider_toml()).unwrap();
    let log_path = dir.path().join("broker.log");
    let mut broker = spawn_broker_with(
        &db,
        dir.path(),
        None,
        &[
            ("MCP_BROKER_LOG", "trace"),
            ("MCP_BROKER_LOG_FORMAT", "json"),
        ],
        Some(std::fs::File::create(&log_path).unwrap()),
    )
    .await;
    let url = broker.url.clone();
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.into(), db.encryption_key()];

    // A confidential client signs a user in.
    let registered = register_metadata(
        &url,
        json!({"client_name": "log test", "redirect_uris": [REDIRECT_URI],
               "grant_types": ["authorization_code", "refresh_token"],
               "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let client = Client {
        client_id: registered["client_id"].as_str().unwrap().to_string(),
    };
    let client_secret = registered["client_secret"].as_str().unwrap().to_string();
    let pkce = pkce();
    let page = open_consent(&authorize_url(&url, &client, &pkce, "client-state-0001")).await;
    let approved = submit_consent(&url, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(approved.status(), 303);
    let mut jar = Vec::new();
    keep_cookies(&approved, &mut jar);
    let upstream = location(&approved);
    secrets.push(query_param(&upstream, "state").expect("an upstream state"));
    let back = follow_with_jar(upstream, &mut jar, REDIRECT_URI).await;
    let code = query_param(&back, "code").unwrap();
    let resource = format!("{url}/mcp");
    let auth = [
        ("client_id", client.client_id.as_str()),
        ("client_secret", client_secret.as_str()),
    ];
    let (access_1, refresh_1) = token_answer(
        &url,
        &[
            &auth[..],
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &pkce.verifier),
                ("resource", &resource),
            ],
        ]
        .concat(),
    )
    .await;
    let (access_2, refresh_2) = token_answer(
        &url,
        &[
            &auth[..],
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_1),
            ],
        ]
        .concat(),
    )
    .await;

    // The upstream token lapses: the tool call refreshes it first.
    let_upstream_token_expire(&db, &fake).await;
    let result = call_tool(&resource, &access_2, "github_whoami", json!({})).await;
    assert_eq!(result["isError"], json!(false), "{result}");
    assert!(fake.counters().refreshes >= 1);

    // Refusals: a wrong client secret, a bearer that is not ours.
    let wrong_secret = format!("wrong-secret-{:032x}", rand::random::<u128>());
    let refused = token_request(
        &url,
        &[
            ("client_id", &client.client_id),
            ("client_secret", &wrong_secret),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_2),
        ],
    )
    .await;
    assert_eq!(refused.status(), 401);
    let forged = format!("forged-bearer-{:032x}", rand::random::<u128>());
    assert_eq!(mcp_status(&resource, &forged).await, 401);

    // The client revokes; the broker revokes upstream in the background.
    let revoked = http()
        .post(format!("{url}/revoke"))
        .header("x-request-id", "logtest-revoke")
        .form(&[&auth[..], &[("token", refresh_2.as_str())]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let started = Instant::now();
    while fake.revoked_tokens().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no upstream revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.terminate();
    assert!(broker.exit_within(Duration::from_secs(10)).await.is_some());

    secrets.extend(fake.issued_secrets());
    secrets.extend(fake.received_secrets());
    secrets.extend(jar.into_iter().map(|(_, value)| value));
    secrets.extend([
        client_secret,
        wrong_secret,
        forged,
        pkce.verifier,
        code,
        access_1,
        refresh_1,
        access_2,
        refresh_2,
        page.csrf_token,
        page.cookie.split_once('=').unwrap().1.to_string(),
    ]);

    // First, that the capture is real: JSON lines, the request ids and
    // routes of this run, our debug lines among them.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 20, "{log}");
    let routes: Vec<&str> = lines.iter().filter_map(|l| l["route"].as_str()).collect();
    for route in [
        "/register",
        "/authorize",
        "/consent",
        "/callback/{provider}",
        "/token",
        "/mcp",
        "/revoke",
    ] {
        assert!(
            routes.contains(&route),
            "no access log line for {route}: {routes:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == "logtest-revoke"
                && l["message"] == "grant revoked by the client"),
        "the revocation is logged under its request id"
    );
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "debug lines were captured"
    );
    assert!(
        secrets.len() > 20 && secrets.iter().all(|s| s.len() >= 8),
        "{secrets:?}"
    );

    let leaked: Vec<&String> = secrets
        .iter()
        .filter(|s| log.contains(s.as_str()))
        .collect();
    assert!(leaked.is_empty(), "secrets in the log: {leaked:?}\n{log}");
    // Nothing even reached the redaction net: call sites log no secrets.
    assert!(!log.contains("[redacted]"), "{log}");
}
