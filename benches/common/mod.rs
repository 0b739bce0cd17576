//! What the benches share (each uses part of it): a client and a grant
//! seeded as a sign-in leaves them, fake upstream servers on their own
//! thread, and the arithmetic of the printed figures.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use base64::Engine;
use mcp_broker::config::Config;
use mcp_broker::store::{AuthorizationCodeRow, ClientRow, Store, UserRow, new_id};
use mcp_broker::upstream::{Provider, UpstreamTokens};
use mcp_broker::vault::Vault;

/// A dynamically registered public client; its id.
pub async fn insert_client(store: &Store) -> String {
    let client_id = new_id();
    store
        .insert_client(&ClientRow {
            client_id: client_id.clone(),
            client_secret_hash: None,
            client_name: Some("bench".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "none".into(),
            application_type: "native".into(),
            registration: "dcr".into(),
            created_at: mcp_broker::now_unix(),
            metadata_hash: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    client_id
}

/// The grant a sign-in of `login` through `client_id` leaves: a user, a
/// grant for `scope` on `resource`, and `tokens` sealed in its link to
/// `provider`. Returns (grant id, user id).
pub struct SeedGrant<'a> {
    pub client_id: &'a str,
    pub provider: &'a Provider,
    pub tokens: UpstreamTokens,
    pub login: &'a str,
    pub scope: &'a str,
    pub resource: &'a str,
}

pub async fn seed_grant(store: &Store, vault: &Vault, seed: SeedGrant<'_>) -> (String, String) {
    let now = mcp_broker::now_unix();
    let grant_id = new_id();
    let link = vault.seal_link(&new_id(), &grant_id, seed.provider, &seed.tokens, now);
    let user = UserRow {
        id: new_id(),
        provider: seed.provider.id.clone(),
        subject: new_id(),
        login: seed.login.into(),
    };
    let code = AuthorizationCodeRow {
        code_hash: new_id(),
        grant_id: grant_id.clone(),
        client_id: seed.client_id.into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "c".into(),
        scope: seed.scope.into(),
        resource: seed.resource.into(),
        created_at: now,
        expires_at: now + 60,
        used_at: None,
    };
    let user_id = store
        .complete_authorization(&user, &grant_id, &link, &code, now)
        .await
        .unwrap();
    (grant_id, user_id)
}

/// A GitHub provider whose URLs lead nowhere (and which revokes nothing
/// upstream): for benches that measure our side alone.
pub fn offline_provider() -> Provider {
    let text = r#"
id = "github"
display_name = "GitHub"
authorize_url = "http://127.0.0.1:9/authorize"
token_url = "http://127.0.0.1:9/token"
api_base_url = "http://127.0.0.1:9"
userinfo_url = "http://127.0.0.1:9/user"
client_id = "bench"
client_secret = "bench"
"#;
    mcp_broker::upstream::provider::parse_provider(text, &|_| None)
        .unwrap()
        .unwrap()
}

/// `providers/github.toml` with every URL pointing at the fake.
fn provider_toml(fake: SocketAddr) -> String {
    format!(
        r#"id = "github"
display_name = "GitHub (bench fake)"
authorize_url = "http://{fake}/login/oauth/authorize"
token_url = "http://{fake}/login/oauth/access_token"
api_base_url = "http://{fake}"
userinfo_url = "http://{fake}/user"
client_id = "bench"
client_secret = "bench"
scopes = []
"#
    )
}

/// The broker's settings as a deployment has them: SQLite in `dir`, a
/// providers folder, an encryption key; GitHub's URLs point at `fake`.
pub fn broker_config(dir: &Path, public_url: &str, fake: SocketAddr) -> Config {
    let providers = dir.join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::write(providers.join("github.toml"), provider_toml(fake)).unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let env: Vec<(String, String)> = [
        ("MCP_BROKER_PUBLIC_URL", public_url.to_string()),
        (
            "MCP_BROKER_DATABASE_URL",
            format!("sqlite://{}", dir.join("broker.db").display()),
        ),
        ("MCP_BROKER_PROVIDERS_DIR", providers.display().to_string()),
        ("MCP_BROKER_ENCRYPTION_KEY", key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Config::from_sources(None, &env).unwrap()
}

/// Starts the broker (settings from `broker_config`, GitHub at `upstream`)
/// on its own thread and multi-threaded runtime, as its own process would
/// run, serving the way `mcp-broker serve` does. `seed` prepares it first;
/// what it returns is handed back.
pub fn start_broker<T, F>(
    dir: std::path::PathBuf,
    upstream: SocketAddr,
    seed: impl FnOnce(mcp_broker::app::AppState) -> F + Send + 'static,
) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let public_url = format!("http://{}", listener.local_addr().unwrap());
            let config = broker_config(&dir, &public_url, upstream);
            let state = mcp_broker::app::AppState::load(config, &|_| None)
                .await
                .unwrap();
            tx.send(seed(state.clone()).await).unwrap();
            mcp_broker::app::serve_on(listener, state, std::future::pending()).await;
        });
    });
    rx.recv().unwrap()
}

/// Serves `app` on 127.0.0.1 from its own thread and single-threaded
/// runtime, so a fake upstream's work is not scheduled among the callers
/// being measured.
pub fn serve_on_own_thread(app: Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The `p` quantile (0.5, 0.99) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1e3)
    }
}
