//! Several broker processes on one PostgreSQL database are one broker: a
//! token issued by one is honoured by every other, and a revocation on one
//! holds on all within a second.

use std::time::{Duration, Instant};

use crate::support::oauth_client::{mcp_status, revoke_refresh_token, sign_in};
use crate::support::process::spawn_broker;
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_honour_each_others_tokens_and_revocation_holds_on_all_within_a_second() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let issuer = start_broker(&db, &fake).await;
    let session = sign_in(&issuer.url).await;
    let providers = tempfile::tempdir().unwrap();
    std::fs::write(providers.path().join("github.toml"), fake.provider_toml()).unwrap();
    let a = spawn_broker(&db, providers.path(), &issuer.url, &[]).await;
    let b = spawn_broker(&db, providers.path(), &issuer.url, &[]).await;
    let mcp = |url: &str| format!("{url}/mcp");
    for url in [&issuer.url, &a.url, &b.url] {
        assert_eq!(
            mcp_status(&mcp(url), &session.access_token).await,
            200,
            "{url}"
        );
    }

    revoke_refresh_token(&a.url, &session.client.client_id, &session.refresh_token).await;
    let revoked_at = Instant::now();
    for url in [&b.url, &issuer.url] {
        loop {
            if mcp_status(&mcp(url), &session.access_token).await == 401 {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "{url} still honours a revoked grant"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
