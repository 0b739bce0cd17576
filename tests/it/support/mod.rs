//! Test support: databases, a running broker on a free port, a fake GitHub,
//! and a small client that walks the OAuth dance the way a browser would.

pub mod db;
pub mod downstream_mcp;
pub mod fake_github;
pub mod oauth_client;
pub mod process;
pub mod relay;
pub mod tls;
pub mod tool_session;

use mcp_broker::app::AppState;
use mcp_broker::config::Config;
use mcp_broker::store::UpstreamLinkRow;
use mcp_broker::vault::{UpstreamToken, VaultError};

pub use db::TestDb;
pub use fake_github::{FakeGithub, Mode};

pub struct TestBroker {
    pub url: String,
    pub state: AppState,
    _providers: tempfile::TempDir,
}

impl TestBroker {
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.url)
    }

    /// The GitHub link of the grant behind one of our access tokens.
    pub async fn github_link(&self, access_token: &str) -> Option<UpstreamLinkRow> {
        self.state
            .store
            .upstream_link(&oauth_client::grant_of(access_token), "github")
            .await
            .unwrap()
    }

    /// The upkeep's retry of upstream revocations, for every grant revoked
    /// so far (the upkeep itself leaves the last minute's to their cascade).
    pub async fn retry_revocations(&self) -> usize {
        let vault = &self.state.vault;
        vault
            .retry_revocations(mcp_broker::now_unix())
            .await
            .unwrap()
    }

    /// The vault's usable GitHub token for the grant behind `access_token`.
    pub async fn github_token(&self, access_token: &str) -> Result<UpstreamToken, VaultError> {
        self.state
            .vault
            .usable_token(
                &oauth_client::grant_of(access_token),
                "github",
                mcp_broker::now_unix(),
            )
            .await
    }
}

/// Starts a broker on 127.0.0.1:<free port> against `db`, with one provider
/// file per `(name, contents)` in its own providers folder.
pub async fn start_broker_with(db: &TestDb, provider_files: &[(&str, String)]) -> TestBroker {
    start_broker_with_env(db, provider_files, &[]).await
}

/// As `start_broker_with`, plus extra `MCP_BROKER_*` settings.
pub async fn start_broker_with_env(
    db: &TestDb,
    provider_files: &[(&str, String)],
    extra_env: &[(&str, &str)],
) -> TestBroker {
    start_broker_full(db, provider_files, extra_env, None).await
}

/// The general form: provider files, extra env, and a settings file
/// (`config_toml`, e.g. with `[[clients]]`).
pub async fn start_broker_full(
    db: &TestDb,
    provider_files: &[(&str, String)],
    extra_env: &[(&str, &str)],
    config_toml: Option<&str>,
) -> TestBroker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_broker_on(listener, db, provider_files, extra_env, config_toml).await
}

/// As `start_broker_full`, on a listener bound beforehand: for an upstream
/// that must know the broker's callback URL before the broker starts.
pub async fn start_broker_on(
    listener: tokio::net::TcpListener,
    db: &TestDb,
    provider_files: &[(&str, String)],
    extra_env: &[(&str, &str)],
    config_toml: Option<&str>,
) -> TestBroker {
    let providers = tempfile::tempdir().unwrap();
    for (name, text) in provider_files {
        std::fs::write(providers.path().join(name), text).unwrap();
    }
    let url = format!("http://{}", listener.local_addr().unwrap());
    let env = vec![
        ("MCP_BROKER_PUBLIC_URL".to_string(), url.clone()),
        ("MCP_BROKER_DATABASE_URL".to_string(), db.url.clone()),
        (
            "MCP_BROKER_PROVIDERS_DIR".to_string(),
            providers.path().display().to_string(),
        ),
        ("MCP_BROKER_ENCRYPTION_KEY".to_string(), db.encryption_key()),
    ];
    // Extra settings come first: the first match wins, so they override.
    // `{base}` in a value stands for the broker's http://127.0.0.1:<port>.
    let env: Vec<(String, String)> = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.replace("{base}", &url)))
        .chain(env)
        .collect();
    let config_path = providers.path().join("broker-config.toml.in");
    if let Some(text) = config_toml {
        std::fs::write(&config_path, text).unwrap();
    }
    let config = Config::from_sources(config_toml.map(|_| config_path.as_path()), &env).unwrap();
    let state = AppState::load(config, &|_| None).await.unwrap();
    let serve_state = state.clone();
    tokio::spawn(mcp_broker::app::serve_on(
        listener,
        serve_state,
        std::future::pending(),
    ));
    // The start-up upkeep (sweep, retries, expiry, purge) runs in the
    // background; a test that counts rows or events must not race it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while state.metrics.upkeeps_completed() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the start-up upkeep did not finish within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    TestBroker {
        url,
        state,
        _providers: providers,
    }
}

/// A broker on the fake GitHub with a settings file (`[[clients]]`,
/// `[[gateways]]`, ...).
pub async fn start_broker_with_settings(
    db: &TestDb,
    fake: &FakeGithub,
    settings: &str,
) -> TestBroker {
    start_broker_full(
        db,
        &[("github.toml", fake.provider_toml())],
        &[],
        Some(settings),
    )
    .await
}

pub async fn start_broker(db: &TestDb, fake: &FakeGithub) -> TestBroker {
    start_broker_with(db, &[("github.toml", fake.provider_toml())]).await
}

/// As if the upstream tokens' lifetime had run out: every link says so, and
/// the fake refuses the old tokens (the next tool call refreshes).
pub async fn let_upstream_token_expire(db: &TestDb, fake: &FakeGithub) {
    db.execute("UPDATE upstream_links SET expires_at = 1").await;
    fake.expire_access_tokens();
}

/// Prints past the test harness's output capture, so a skipped half is
/// visible even when the test passes.
pub fn notice(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {message}");
}

/// True under CI, where every prerequisite must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}
