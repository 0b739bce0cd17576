//! Starting the broker: configuration errors name their key, PostgreSQL
//! needs an explicit key, a provider without credentials is reported.

use std::process::Command;

use crate::support::oauth_client::{authorize_url, open_consent, pkce, register, submit_consent};
use crate::support::{TestDb, start_broker_with};

fn broker_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-broker"));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("MCP_BROKER_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn unknown_config_key_stops_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broker.toml"),
        "bind = \"127.0.0.1:0\"\nacess_token_ttl_secs = 5\n",
    )
    .unwrap();
    let out = broker_command(dir.path())
        .args(["--config", "broker.toml", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("acess_token_ttl_secs"));
}

#[test]
fn invalid_env_value_stops_startup_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = broker_command(dir.path())
        .env("MCP_BROKER_PUBLIC_URL", "ftp://nope")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP_BROKER_PUBLIC_URL"));
}

#[test]
fn postgres_without_an_encryption_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = broker_command(dir.path())
        .env("MCP_BROKER_BIND", "127.0.0.1:0")
        .env(
            "MCP_BROKER_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP_BROKER_ENCRYPTION_KEY"));
}

#[tokio::test]
async fn migrate_creates_the_sqlite_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = broker_command(dir.path())
        .env("MCP_BROKER_DATABASE_URL", "sqlite://fresh.db")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let store = mcp_broker::store::Store::connect(&url).await.unwrap();
    // Reading a table fails with "no such table" on an unmigrated database.
    assert_eq!(
        store.dump_table_text("upstream_links").await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_with_unset_credentials_is_skipped_and_consent_says_so() {
    let db = TestDb::sqlite();
    let file = r#"
id = "github"
display_name = "GitHub"
authorize_url = "https://github.com/login/oauth/authorize"
token_url = "https://github.com/login/oauth/access_token"
api_base_url = "https://api.github.com"
userinfo_url = "https://api.github.com/user"
client_id = "${MCP_BROKER_TEST_UNSET_ID}"
client_secret = "${MCP_BROKER_TEST_UNSET_SECRET}"
"#;
    let broker = start_broker_with(&db, &[("github.toml", file.to_string())]).await;
    assert!(broker.state.providers.providers.is_empty());
    assert_eq!(
        broker.state.providers.skipped,
        vec![(
            "github".to_string(),
            vec![
                "MCP_BROKER_TEST_UNSET_ID".to_string(),
                "MCP_BROKER_TEST_UNSET_SECRET".to_string()
            ]
        )]
    );
    let client = register(&broker.url).await;
    let page = open_consent(&authorize_url(&broker.url, &client, &pkce(), "s")).await;
    assert!(
        page.html
            .contains("No upstream sign-in provider is configured")
    );
    assert!(!page.html.contains("value=\"approve\""));
    // Approving anyway cannot start an upstream flow.
    let response = submit_consent(&broker.url, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(response.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_serves_from_one_shared_database() {
    let store = mcp_broker::store::Store::connect("sqlite::memory:")
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // Several concurrent readers must all see the migrated schema.
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.dump_table_text("signing_keys").await })
        })
        .collect();
    for r in reads {
        assert!(r.await.unwrap().is_ok());
    }
}

#[test]
fn providers_check_names_missing_variables_prints_callback_urls_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("providers");
    let mut cmd = broker_command(dir.path());
    for name in [
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
        "MICROSOFT_TENANT",
    ] {
        cmd.env_remove(name);
    }
    let out = cmd
        .env("MCP_BROKER_PROVIDERS_DIR", &shipped)
        .env("MCP_BROKER_PUBLIC_URL", "https://broker.example.test")
        .args(["providers", "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("GITHUB_CLIENT_SECRET"), "{stdout}");
    assert!(stdout.contains("MICROSOFT_TENANT"), "{stdout}");
    assert!(
        stdout.contains("https://broker.example.test/callback/github"),
        "{stdout}"
    );
}

#[test]
fn providers_check_passes_when_every_file_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("providers")).unwrap();
    std::fs::write(
        dir.path().join("providers/acme.toml"),
        r#"
id = "acme"
display_name = "Acme"
kind = "oidc"
issuer = "https://id.acme.test"
api_base_url = "https://api.acme.test"
client_id = "${MCP_BROKER_TEST_ACME_ID}"
client_secret = "${MCP_BROKER_TEST_ACME_SECRET}"
"#,
    )
    .unwrap();
    let out = broker_command(dir.path())
        .env("MCP_BROKER_TEST_ACME_ID", "id")
        .env("MCP_BROKER_TEST_ACME_SECRET", "not-printed-anywhere")
        .args(["providers", "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("/callback/acme"), "{stdout}");
    assert!(!stdout.contains("not-printed-anywhere"), "{stdout}");
}
