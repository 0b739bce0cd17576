//! Signing key rotation: by command and by age, old tokens valid until
//! their key retires, and instances sharing a database agreeing on keys.

use serde_json::Value;

use crate::support::oauth_client::{http, mcp_status, sign_in};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker};

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(broker: &TestBroker) -> Vec<String> {
    let jwks: Value = http()
        .get(format!("{}/jwks.json", broker.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_command_publishes_both_keys_and_old_tokens_stay_valid() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let config = "[[clients]]\nclient_id = \"kept\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n";
    let broker = crate::support::start_broker_with_settings(&db, &fake, config).await;
    let before = sign_in(&broker.url).await;
    let old_kid = kid_of(&before.access_token);

    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-broker"))
        .current_dir(dir.path())
        .env("MCP_BROKER_DATABASE_URL", &db.url)
        .env("MCP_BROKER_ENCRYPTION_KEY", db.encryption_key())
        .args(["keys", "rotate-signing"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the minute's upkeep does on a running instance.
    broker.state.keys.reload().await.unwrap();
    let kids = jwks_kids(&broker).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&old_kid));
    let after = sign_in(&broker.url).await;
    let new_kid = kid_of(&after.access_token);
    assert_ne!(new_kid, old_kid);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&new_kid));
    // The operator's rotation is in the ledger, naming the new key.
    let filter = mcp_broker::audit::AuditFilter {
        kind: Some("key.rotated".into()),
        ..Default::default()
    };
    let events = broker.state.store.audit_events(&filter, 10).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].actor.starts_with("operator:"));
    assert!(events[0].detail.as_deref().unwrap().contains(&new_kid));
    assert_eq!(
        mcp_status(&broker.mcp_url(), &before.access_token).await,
        200
    );
    assert_eq!(
        mcp_status(&broker.mcp_url(), &after.access_token).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_key_retires_after_its_tokens_expire_and_then_verifies_nothing() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let before = sign_in(&broker.url).await;
    let now = mcp_broker::now_unix();
    broker.state.keys.rotate(now).await.unwrap();
    // Not yet: the old key was superseded just now.
    broker.state.keys.maintain(now, 0, 3600).await.unwrap();
    assert_eq!(jwks_kids(&broker).await.len(), 2);
    // An hour later it retires.
    broker
        .state
        .keys
        .maintain(now + 3600, 0, 3600)
        .await
        .unwrap();
    let kids = jwks_kids(&broker).await;
    assert_eq!(kids.len(), 1);
    assert!(!kids.contains(&kid_of(&before.access_token)));
    assert_eq!(
        mcp_status(&broker.mcp_url(), &before.access_token).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_older_than_the_rotation_age_is_replaced() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let first = broker.state.keys.current().current_kid().to_string();
    let now = mcp_broker::now_unix();
    broker
        .state
        .keys
        .maintain(now + 10, 3600, 3600)
        .await
        .unwrap();
    assert_eq!(
        broker.state.keys.current().current_kid(),
        first,
        "young key kept"
    );
    broker
        .state
        .keys
        .maintain(now + 3600, 3600, 7200)
        .await
        .unwrap();
    assert_ne!(
        broker.state.keys.current().current_kid(),
        first,
        "old key replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_database_honour_each_others_tokens_after_rotation() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let a = start_broker(&db, &fake).await;
        let b = start_broker(&db, &fake).await;
        a.state.keys.rotate(mcp_broker::now_unix()).await.unwrap();
        let session = sign_in(&a.url).await;
        // B has not reloaded; the unknown kid makes it look (at most once a second).
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // The two test instances have different public URLs (ports), so B is
        // asked to verify with A's issuer and audience: the keys are the test.
        let claims = b
            .state
            .keys
            .verify(&session.access_token, &a.url, &a.mcp_url())
            .await;
        assert!(claims.is_ok(), "{:?}: {claims:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_reloads_never_bring_back_a_superseded_key() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let keys = &broker.state.keys;
    for round in 0..20 {
        // Reloads that read before the rotation's insert must not install
        // their older snapshot after the rotation's own reload.
        let reloads: Vec<_> = (0..8)
            .map(|_| {
                let state = broker.state.clone();
                tokio::spawn(async move { state.keys.reload().await.unwrap() })
            })
            .collect();
        let newest = keys.rotate(mcp_broker::now_unix()).await.unwrap();
        for reload in reloads {
            reload.await.unwrap();
        }
        assert_eq!(keys.current().current_kid(), newest, "round {round}");
    }
}
