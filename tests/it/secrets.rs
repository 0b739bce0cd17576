//! Secrets at rest: after real flows, neither database holds an upstream
//! token, our refresh tokens, codes or client secrets in plaintext.

use serde_json::{Value, json};

use crate::support::db::Kind;
use crate::support::oauth_client::{sign_in, token_request};
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

const TABLES: &[&str] = &[
    "signing_keys",
    "clients",
    "users",
    "pending_authorizations",
    "grants",
    "upstream_links",
    "authorization_codes",
    "refresh_tokens",
];

/// Every stored value as text: the raw SQLite files (database and WAL), or
/// every text and bytea column of every PostgreSQL table.
async fn everything_stored(db: &TestDb, store: &mcp_broker::store::Store) -> Vec<String> {
    match db.kind {
        Kind::Sqlite => db
            .sqlite_files()
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect(),
        Kind::Postgres => {
            let mut all = Vec::new();
            for table in TABLES {
                all.extend(store.dump_table_text(table).await.unwrap());
            }
            all
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_code_or_secret_is_stored_in_plaintext() {
    for db in TestDb::all().await {
        // GitHub App mode: the upstream also issues a refresh token.
        let fake = FakeGithub::start(Mode::GitHubApp).await;
        let broker = start_broker(&db, &fake).await;
        let session = sign_in(&broker.url).await;
        // Rotate once so a used and a live refresh token both exist.
        let refreshed: Value = token_request(
            &broker.url,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &session.client.client_id),
                ("refresh_token", &session.refresh_token),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        let registered = crate::support::oauth_client::register_metadata(
            &broker.url,
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_post"}),
        )
        .await;

        let mut secrets = fake.issued_secrets();
        assert!(
            secrets.iter().any(|s| s.starts_with("ghu_"))
                && secrets.iter().any(|s| s.starts_with("ghr_"))
        );
        secrets.push(session.refresh_token.clone());
        secrets.push(refreshed["refresh_token"].as_str().unwrap().to_string());
        secrets.push(session.code.clone());
        secrets.push(session.access_token.clone());
        secrets.push(registered["client_secret"].as_str().unwrap().to_string());

        let stored = everything_stored(&db, &broker.state.store).await;
        assert!(
            stored.iter().map(String::len).sum::<usize>() > 1000,
            "{:?}: the scan read data",
            db.kind
        );
        for secret in &secrets {
            assert!(
                !stored.iter().any(|text| text.contains(secret.as_str())),
                "{:?}: a secret ({}…) is stored in plaintext",
                db.kind,
                &secret[..8]
            );
        }
        // The link holds the upstream tokens, sealed: its hash-free columns are
        // ciphertext that the vault opens back into the real token.
        let grant_token = broker.github_token(&session.access_token).await.unwrap();
        assert!(secrets.contains(&grant_token.access_token), "{:?}", db.kind);
    }
}
