//! Key-encryption key rotation: every stored upstream token re-wrapped under
//! the newest KEK while brokers serve, none left under the old one, and a
//! ciphertext moved to another row never opens.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use mcp_broker::store::{AuthorizationCodeRow, ClientRow, Store, UserRow, new_id};
use mcp_broker::upstream::provider::parse_provider;
use mcp_broker::upstream::{ProviderSet, UpstreamTokens};
use mcp_broker::vault::{Cipher, Vault, VaultError};

use crate::support::oauth_client::{open_mcp_session, session_tool_call, sign_in};
use crate::support::process::spawn_broker;
use crate::support::{FakeGithub, Mode, TestDb, start_broker_with_env};

const OLD: [u8; 32] = [11; 32];
const NEW: [u8; 32] = [22; 32];

fn b64(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn provider(fake: &FakeGithub) -> mcp_broker::upstream::Provider {
    parse_provider(&fake.provider_toml(), &|_| None)
        .unwrap()
        .unwrap()
}

fn vault(store: &Store, cipher: Cipher, fake: &FakeGithub) -> Vault {
    let provider = provider(fake);
    let providers = Arc::new(ProviderSet {
        providers: vec![provider],
        ..ProviderSet::default()
    });
    Vault::new(
        store.clone(),
        cipher,
        reqwest::Client::new(),
        providers,
        Duration::from_secs(5),
    )
}

/// `n` grants, each with a sealed upstream token; (grant id, token).
async fn seed(store: &Store, vault: &Vault, fake: &FakeGithub, n: usize) -> Vec<(String, String)> {
    let now = mcp_broker::now_unix();
    let client_id = new_id();
    store
        .insert_client(&ClientRow {
            client_id: client_id.clone(),
            client_secret_hash: None,
            client_name: None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "none".into(),
            application_type: "native".into(),
            registration: "dcr".into(),
            created_at: now,
            metadata_hash: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    let provider = provider(fake);
    let mut seeded = Vec::new();
    for i in 0..n {
        let grant_id = new_id();
        let token = format!("gho_rotation_{i:06}_{}", new_id());
        let tokens = UpstreamTokens {
            access_token: token.clone(),
            refresh_token: Some(format!("ghr_rotation_{i:06}")),
            expires_in: None,
            refresh_token_expires_in: None,
            scopes: vec!["repo".into()],
        };
        let link = vault.seal_link(&new_id(), &grant_id, &provider, &tokens, now);
        let user = UserRow {
            id: new_id(),
            provider: "github".into(),
            subject: format!("{i}"),
            login: format!("user{i}"),
        };
        let code = AuthorizationCodeRow {
            code_hash: new_id(),
            grant_id: grant_id.clone(),
            client_id: client_id.clone(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "c".into(),
            scope: "profile".into(),
            resource: "http://127.0.0.1/mcp".into(),
            created_at: now,
            expires_at: now + 60,
            used_at: None,
        };
        store
            .complete_authorization(&user, &grant_id, &link, &code, now)
            .await
            .unwrap();
        seeded.push((grant_id, token));
    }
    seeded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewraps_a_thousand_tokens_and_leaves_none_under_the_old_key() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let before = vault(&store, Cipher::new(&OLD), &fake);
        let seeded = seed(&store, &before, &fake, 1000).await;
        assert_eq!(store.links_per_kek().await.unwrap(), vec![(Some(1), 1000)]);

        let both = Cipher::with_keks(&[(1, OLD), (2, NEW)]).unwrap();
        let report = vault(&store, both.clone(), &fake)
            .rewrap_all()
            .await
            .unwrap();
        assert_eq!(report.rewrapped, 1000, "{:?}", db.kind);
        assert!(report.unreadable.is_empty());
        assert_eq!(report.links_per_kek, vec![(Some(2), 1000)]);
        // Nothing is left to do on a second run.
        let again = vault(&store, both, &fake).rewrap_all().await.unwrap();
        assert_eq!(again.rewrapped, 0);

        // The old key can be dropped: every token opens under the new one.
        let after = vault(&store, Cipher::with_keks(&[(2, NEW)]).unwrap(), &fake);
        let now = mcp_broker::now_unix();
        for (grant_id, token) in &seeded {
            let opened = after.usable_token(grant_id, "github", now).await.unwrap();
            assert_eq!(&opened.access_token, token);
        }
        // And the old key alone opens nothing any more.
        let stale = before.usable_token(&seeded[0].0, "github", now).await;
        assert!(matches!(stale, Err(VaultError::Sealed(_))), "{stale:?}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ciphertext_copied_into_another_row_does_not_open() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let vault = vault(&store, Cipher::new(&OLD), &fake);
        let seeded = seed(&store, &vault, &fake, 2).await;
        let ((victim, _), (attacker, _)) = (&seeded[0], &seeded[1]);
        // Someone with write access to the database moves the victim's
        // sealed token and wrapped data key into their own row.
        db.execute(&format!(
            "UPDATE upstream_links SET \
             access_token_enc = (SELECT access_token_enc FROM upstream_links WHERE grant_id = '{victim}'), \
             data_key_enc = (SELECT data_key_enc FROM upstream_links WHERE grant_id = '{victim}') \
             WHERE grant_id = '{attacker}'"
        ))
        .await;
        let now = mcp_broker::now_unix();
        let moved = vault.usable_token(attacker, "github", now).await;
        assert!(
            matches!(moved, Err(VaultError::Sealed(_))),
            "{:?}: {moved:?}",
            db.kind
        );
        // The victim's own row is untouched and still opens.
        assert!(vault.usable_token(victim, "github", now).await.is_ok());
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_command_rewraps_while_a_broker_serves() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let old = b64(&OLD);
    let new_keys = format!("2:{}", b64(&NEW));
    let provider = [("github.toml", fake.provider_toml())];
    // Signed in while only the old key existed.
    let first = start_broker_with_env(&db, &provider, &[("MCP_BROKER_ENCRYPTION_KEY", &old)]).await;
    let session = sign_in(&first.url).await;
    // Instances roll to the new key set first; then the operator rotates.
    let providers = tempfile::tempdir().unwrap();
    std::fs::write(providers.path().join("github.toml"), fake.provider_toml()).unwrap();
    let serving = spawn_broker(
        &db,
        providers.path(),
        &first.url,
        &[
            ("MCP_BROKER_ENCRYPTION_KEY", &old),
            ("MCP_BROKER_ENCRYPTION_KEYS", &new_keys),
        ],
    )
    .await;
    let mcp_url = format!("{}/mcp", serving.url);
    let mcp = open_mcp_session(&mcp_url, &session.access_token).await;
    let call = || session_tool_call(&mcp_url, &session.access_token, &mcp, "github_whoami");
    assert_eq!(call().await.0, 200);

    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-broker"))
        .current_dir(dir.path())
        .env("MCP_BROKER_DATABASE_URL", &db.url)
        .env("MCP_BROKER_ENCRYPTION_KEY", &old)
        .env("MCP_BROKER_ENCRYPTION_KEYS", &new_keys)
        .env("MCP_BROKER_PROVIDERS_DIR", dir.path())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 link(s) re-wrapped"), "{stdout}");
    assert!(stdout.contains("key 2: 1"), "{stdout}");
    // The rotation is in the audit ledger with its report.
    let filter = mcp_broker::store::AuditFilter {
        kind: Some("key.rotated".into()),
        ..Default::default()
    };
    let events = first.state.store.audit_events(&filter, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].actor.starts_with("operator:"), "{:?}", events[0]);
    assert!(
        events[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("1 link(s) re-wrapped"),
        "{:?}",
        events[0]
    );

    let (status, _, result) = call().await;
    assert_eq!(status, 200);
    assert_ne!(result["isError"], serde_json::json!(true), "{result}");
    // An instance that no longer has the old key at all still serves the
    // link (and starts: the signing keys were re-sealed too).
    let new_only = start_broker_with_env(
        &db,
        &provider,
        &[
            ("MCP_BROKER_ENCRYPTION_KEY", &b64(&NEW)),
            ("MCP_BROKER_ENCRYPTION_KEYS", &new_keys),
        ],
    )
    .await;
    let token = new_only.github_token(&session.access_token).await;
    assert!(token.is_ok(), "{token:?}");
}
