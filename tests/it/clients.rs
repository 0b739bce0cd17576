//! Client identification: pre-registered clients from the settings file.

use serde_json::Value;

use crate::support::oauth_client::{Client, REDIRECT_URI, authorize, http, pkce, query_param};
use crate::support::{FakeGithub, Mode, TestDb, start_broker_full};

const CONFIG: &str = r#"
[[clients]]
client_id = "resource-dashboard"
client_name = "Dashboard"
redirect_uris = ["http://127.0.0.1:53682/callback"]
client_secret = "${DASHBOARD_SECRET}"

[[clients]]
client_id = "cli"
redirect_uris = ["http://127.0.0.1/callback"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_registered_confidential_client_signs_in_with_its_secret() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker_full(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("DASHBOARD_SECRET", "dash-s3cret")],
        Some(CONFIG),
    )
    .await;
    let client = Client {
        client_id: "resource-dashboard".into(),
    };
    let pkce = pkce();
    let back = authorize(&broker.url, &client, &pkce, "s1").await;
    let code = query_param(&back, "code").unwrap();
    let redeem = |secret: &'static str| {
        http()
            .post(format!("{}/token", broker.url))
            .basic_auth("resource-dashboard", Some(secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", pkce.verifier.as_str()),
            ])
            .send()
    };
    let wrong = redeem("not-the-secret").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = redeem("dash-s3cret").await.unwrap();
    assert_eq!(right.status(), 200);
    let body: Value = right.json().await.unwrap();
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_removed_from_the_config_is_deleted_at_next_start() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let files = [("github.toml", fake.provider_toml())];
    let env = [("DASHBOARD_SECRET", "x")];
    let first = start_broker_full(&db, &files, &env, Some(CONFIG)).await;
    assert!(first.state.store.get_client("cli").await.unwrap().is_some());
    let only_dashboard = CONFIG
        .split("[[clients]]\nclient_id = \"cli\"")
        .next()
        .unwrap();
    let second = start_broker_full(&db, &files, &env, Some(only_dashboard)).await;
    assert!(
        second
            .state
            .store
            .get_client("cli")
            .await
            .unwrap()
            .is_none()
    );
    let kept = second
        .state
        .store
        .get_client("resource-dashboard")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.registration, "config");
    assert!(kept.client_secret_hash.is_some_and(|h| h != "x"));
}
