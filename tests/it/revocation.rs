//! RFC 7009 revocation and RFC 7662 introspection.

use serde_json::{Value, json};

use crate::support::oauth_client::{Session, http, mcp_status, register_metadata, sign_in};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb};

async fn post_form(url: String, form: &[(&str, &str)]) -> reqwest::Response {
    http().post(url).form(form).send().await.unwrap()
}

/// The resource server an operator lists in the settings file.
const RS_CONFIG: &str = "[[clients]]\nclient_id = \"resource-server\"\n\
    redirect_uris = [\"https://rs.example/cb\"]\nclient_secret = \"rs-secret-value\"\n";

fn resource_server() -> (String, String) {
    ("resource-server".into(), "rs-secret-value".into())
}

async fn introspect(broker: &TestBroker, rs: &(String, String), token: &str) -> Value {
    let response = http()
        .post(format!("{}/introspect", broker.url))
        .basic_auth(&rs.0, Some(&rs.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn setup() -> (TestDb, FakeGithub, TestBroker, Session) {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = crate::support::start_broker_with_settings(&db, &fake, RS_CONFIG).await;
    let session = sign_in(&broker.url).await;
    (db, fake, broker, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_refresh_token_revokes_the_grant_and_its_access_tokens() {
    let (_db, _fake, broker, session) = setup().await;
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        200
    );
    let response = post_form(
        format!("{}/revoke", broker.url),
        &[
            ("token", &session.refresh_token),
            ("client_id", &session.client.client_id),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        401
    );
    let refresh = post_form(
        format!("{}/token", broker.url),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &session.refresh_token),
            ("client_id", &session.client.client_id),
        ],
    )
    .await;
    assert_eq!(refresh.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_access_token_revokes_its_grant() {
    let (_db, _fake, broker, session) = setup().await;
    let response = post_form(
        format!("{}/revoke", broker.url),
        &[
            ("token", &session.access_token),
            ("client_id", &session.client.client_id),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_cannot_revoke_a_token_it_does_not_hold() {
    let (_db, _fake, broker, session) = setup().await;
    let other = register_metadata(
        &broker.url,
        json!({"client_name": "other", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    let other_id = other["client_id"].as_str().unwrap();
    assert_ne!(other_id, session.client.client_id);
    let response = post_form(
        format!("{}/revoke", broker.url),
        &[("token", &session.refresh_token), ("client_id", other_id)],
    )
    .await;
    // Same answer as for an unknown token, and nothing revoked.
    assert_eq!(response.status(), 200);
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_by_an_unknown_client_is_invalid_client() {
    let (_db, _fake, broker, session) = setup().await;
    let response = post_form(
        format!("{}/revoke", broker.url),
        &[("token", &session.refresh_token), ("client_id", "nobody")],
    )
    .await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_describes_live_tokens_and_not_revoked_ones() {
    let (_db, _fake, broker, session) = setup().await;
    let rs = resource_server();
    let access = introspect(&broker, &rs, &session.access_token).await;
    assert_eq!(access["active"], json!(true));
    assert_eq!(access["client_id"], json!(session.client.client_id));
    assert_eq!(access["aud"], json!(broker.mcp_url()));
    assert_eq!(access["iss"], json!(broker.url));
    let refresh = introspect(&broker, &rs, &session.refresh_token).await;
    assert_eq!(refresh["active"], json!(true));
    assert_eq!(
        introspect(&broker, &rs, "not-a-token").await,
        json!({"active": false})
    );
    post_form(
        format!("{}/revoke", broker.url),
        &[
            ("token", &session.refresh_token),
            ("client_id", &session.client.client_id),
        ],
    )
    .await;
    assert_eq!(
        introspect(&broker, &rs, &session.access_token).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&broker, &rs, &session.refresh_token).await,
        json!({"active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_is_only_for_pre_registered_confidential_clients() {
    let (_db, _fake, broker, session) = setup().await;
    let public = post_form(
        format!("{}/introspect", broker.url),
        &[
            ("token", &session.access_token),
            ("client_id", &session.client.client_id),
        ],
    )
    .await;
    assert_eq!(public.status(), 400);
    // A confidential client anyone could register is refused too.
    let registered = register_metadata(
        &broker.url,
        json!({"redirect_uris": ["https://x.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    let self_registered = http()
        .post(format!("{}/introspect", broker.url))
        .basic_auth(
            registered["client_id"].as_str().unwrap(),
            registered["client_secret"].as_str(),
        )
        .form(&[("token", session.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(self_registered.status(), 400);
    let body: Value = self_registered.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    let rs = resource_server();
    let wrong_secret = http()
        .post(format!("{}/introspect", broker.url))
        .basic_auth(&rs.0, Some("wrong"))
        .form(&[("token", session.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
}
