//! Our refresh tokens: rotation, the replay grace window, theft detection.

use std::sync::Arc;

use serde_json::Value;

use crate::support::oauth_client::{Session, mcp_status, sign_in, token_request};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_with_env};

async fn start(grace: &str) -> (TestDb, FakeGithub, TestBroker) {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_REFRESH_GRACE_SECS", grace)],
    )
    .await;
    (db, fake, broker)
}

async fn refresh(broker: &str, session: &Session, token: &str) -> (u16, Value) {
    let response = token_request(
        broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &session.client.client_id),
            ("refresh_token", token),
        ],
    )
    .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_the_new_token_works() {
    let (_db, _fake, broker) = start("10").await;
    let session = sign_in(&broker.url).await;
    let (status, first) = refresh(&broker.url, &session, &session.refresh_token).await;
    assert_eq!(status, 200);
    let rotated = first["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, session.refresh_token);
    assert_eq!(
        mcp_status(&broker.mcp_url(), first["access_token"].as_str().unwrap()).await,
        200
    );
    let (status, _) = refresh(&broker.url, &session, rotated).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_retry_within_grace_gets_the_same_pair() {
    let (_db, _fake, broker) = start("10").await;
    let session = sign_in(&broker.url).await;
    let (_, first) = refresh(&broker.url, &session, &session.refresh_token).await;
    let (status, again) = refresh(&broker.url, &session, &session.refresh_token).await;
    assert_eq!(status, 200);
    assert_eq!(first, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_all_get_the_same_pair() {
    let (_db, _fake, broker) = start("10").await;
    let session = Arc::new(sign_in(&broker.url).await);
    let url = Arc::new(broker.url.clone());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (session, url) = (session.clone(), url.clone());
            tokio::spawn(async move { refresh(&url, &session, &session.refresh_token).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // And the session goes on with that pair.
    let (status, _) = refresh(
        &broker.url,
        &session,
        answers[0]["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_after_grace_revokes_the_family() {
    let (_db, _fake, broker) = start("0").await;
    let session = sign_in(&broker.url).await;
    let (_, first) = refresh(&broker.url, &session, &session.refresh_token).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = refresh(&broker.url, &session, &session.refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Everything issued under the grant is dead, including the rotated pair.
    let (status, _) = refresh(
        &broker.url,
        &session,
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        mcp_status(&broker.mcp_url(), first["access_token"].as_str().unwrap()).await,
        401
    );
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        401
    );
}
