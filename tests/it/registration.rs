//! Dynamic client registration under the operator's policy.

use serde_json::{Value, json};

use crate::support::oauth_client::http;
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_full};

async fn broker_with(
    db: &TestDb,
    fake: &FakeGithub,
    env: &[(&str, &str)],
    config: Option<&str>,
) -> TestBroker {
    start_broker_full(db, &[("github.toml", fake.provider_toml())], env, config).await
}

fn public_metadata() -> Value {
    json!({
        "client_name": "Claude-ish",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}

async fn register(
    broker: &TestBroker,
    body: &Value,
    bearer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http().post(format!("{}/register", broker.url)).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_public_registration_reuses_the_existing_client() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = broker_with(&db, &fake, &[], None).await;
    let (s1, _, first) = register(&broker, &public_metadata(), None).await;
    let (s2, _, second) = register(&broker, &public_metadata(), None).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first["client_id"], second["client_id"]);
    let mut other = public_metadata();
    other["redirect_uris"] = json!(["http://127.0.0.1:33419/callback"]);
    let (_, _, third) = register(&broker, &other, None).await;
    assert_ne!(first["client_id"], third["client_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_registration_always_gets_a_new_client_and_secret() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = broker_with(&db, &fake, &[], None).await;
    let mut body = public_metadata();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    let (_, _, first) = register(&broker, &body, None).await;
    let (_, _, second) = register(&broker, &body, None).await;
    assert_ne!(first["client_id"], second["client_id"]);
    assert!(first["client_secret"].is_string() && second["client_secret"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_mode_refuses_registration_and_hides_the_endpoint() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = broker_with(&db, &fake, &[("MCP_BROKER_DCR_MODE", "closed")], None).await;
    let (status, _, body) = register(&broker, &public_metadata(), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            broker.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata.get("registration_endpoint").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_access_token_mode_requires_the_token() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let token = "iat-0123456789abcdef";
    let env = [
        ("MCP_BROKER_DCR_MODE", "initial-access-token"),
        ("MCP_BROKER_DCR_INITIAL_ACCESS_TOKEN", token),
    ];
    let broker = broker_with(&db, &fake, &env, None).await;
    let (status, headers, body) = register(&broker, &public_metadata(), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert!(
        headers
            .get("www-authenticate")
            .is_none_or(|v| !v.to_str().unwrap().starts_with("Basic"))
    );
    let (status, _, _) = register(&broker, &public_metadata(), Some("iat-wrong-wrong-wrong")).await;
    assert_eq!(status, 401);
    let (status, _, body) = register(&broker, &public_metadata(), Some(token)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uri_outside_the_allowlist_is_refused() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let config = "dcr_redirect_uri_patterns = [\"http://127.0.0.1:*/callback\"]\n";
    let broker = broker_with(&db, &fake, &[], Some(config)).await;
    let (status, _, _) = register(&broker, &public_metadata(), None).await;
    assert_eq!(status, 201);
    let mut body = public_metadata();
    body["redirect_uris"] = json!(["https://elsewhere.example/callback"]);
    let (status, _, body) = register(&broker, &body, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_rate_limited_per_address() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = broker_with(
        &db,
        &fake,
        &[("MCP_BROKER_DCR_RATE_LIMIT_PER_MINUTE", "3")],
        None,
    )
    .await;
    for i in 0..3 {
        let (status, _, _) = register(&broker, &public_metadata(), None).await;
        assert_eq!(status, 201, "request {i}");
    }
    let (status, headers, body) = register(&broker, &public_metadata(), None).await;
    assert_eq!(status, 429, "{body}");
    let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_registrations_expire_and_used_ones_stay() {
    use crate::support::oauth_client::{
        authorize, pkce, query_param, redeem, register as register_client,
    };
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let first = broker_with(&db, &fake, &[], None).await;
    let (_, _, unused) = register(&first, &public_metadata(), None).await;
    let used = register_client(&first.url).await;
    // Only `used` signs in.
    let pkce = pkce();
    let back = authorize(&first.url, &used, &pkce, "s").await;
    let redeemed = redeem(
        &first.url,
        &used,
        &query_param(&back, "code").unwrap(),
        &pkce,
    )
    .await;
    assert_eq!(redeemed.status(), 200);
    // Both were registered long ago; `used` was used just now.
    let unused_id = unused["client_id"].as_str().unwrap();
    db.execute(&format!(
        "UPDATE clients SET created_at = 1 WHERE client_id IN ('{unused_id}', '{}')",
        used.client_id
    ))
    .await;
    // A broker whose sweep (at its start, which starting it waits for)
    // forgets registrations unused for an hour.
    let second = broker_with(
        &db,
        &fake,
        &[("MCP_BROKER_DCR_CLIENT_TTL_SECS", "3600")],
        None,
    )
    .await;
    let store = &second.state.store;
    assert!(
        store.get_client(unused_id).await.unwrap().is_none(),
        "the unused registration expired"
    );
    assert!(
        store.get_client(&used.client_id).await.unwrap().is_some(),
        "the used one stays"
    );
}
