//! The broker, configured as a deployment would be (SQLite, a providers
//! folder, an encryption key), with one grant seeded as a sign-in leaves it.

use std::net::SocketAddr;
use std::path::PathBuf;

use mcp_broker::app::AppState;
use mcp_broker::store::new_id;
use mcp_broker::tokens::AccessClaims;
use mcp_broker::tokens::access::issue_access_token;
use mcp_broker::upstream::UpstreamTokens;

use crate::common::{SeedGrant, broker_config, insert_client, seed_grant as seed_grant_in};
use crate::{OWNER, UPSTREAM_TOKEN};

/// A user, a grant with `UPSTREAM_TOKEN` sealed in its GitHub link (as a
/// sign-in leaves it), and one of our access tokens for that grant with
/// scope `repo:read`, signed as `/token` signs them.
async fn seed_grant(state: &AppState) -> String {
    let now = mcp_broker::now_unix();
    let client_id = insert_client(&state.store).await;
    let tokens = UpstreamTokens {
        access_token: UPSTREAM_TOKEN.into(),
        refresh_token: None,
        expires_in: None,
        refresh_token_expires_in: None,
        scopes: vec!["repo".into()],
    };
    let seed = SeedGrant {
        client_id: &client_id,
        provider: state.providers.get("github").unwrap(),
        tokens,
        login: OWNER,
        scope: "repo:read",
        resource: &state.config.mcp_url(),
    };
    let (grant_id, user_id) = seed_grant_in(&state.store, &state.vault, seed).await;
    let claims = AccessClaims {
        iss: state.config.public_url.clone(),
        sub: user_id,
        aud: state.config.mcp_url(),
        client_id,
        scope: "repo:read".into(),
        jti: new_id(),
        iat: now,
        exp: now + 3600,
        grant_id,
    };
    issue_access_token(&state.keys.current(), &claims)
}

/// Starts the broker on its own thread and multi-threaded runtime, as its
/// own process would run; returns its MCP URL and an access token.
pub fn start(dir: PathBuf, fake: SocketAddr) -> (String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let public_url = format!("http://{}", listener.local_addr().unwrap());
            let config = broker_config(&dir, &public_url, fake);
            let state = AppState::load(config, &|_| None).await.unwrap();
            let token = seed_grant(&state).await;
            tx.send((state.config.mcp_url(), token)).unwrap();
            // The serve path `mcp-broker serve` uses, socket options included.
            mcp_broker::app::serve_on(listener, state, std::future::pending()).await;
        });
    });
    rx.recv().unwrap()
}
