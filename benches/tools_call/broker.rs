//! The broker, configured as a deployment would be (SQLite, a providers
//! folder, an encryption key), with one grant seeded as a sign-in leaves it.

use std::net::SocketAddr;
use std::path::PathBuf;

use mcp_broker::app::AppState;
use mcp_broker::store::new_id;
use mcp_broker::tokens::AccessClaims;
use mcp_broker::tokens::access::issue_access_token;
use mcp_broker::upstream::UpstreamTokens;

use crate::common::{SeedGrant, insert_client, seed_grant as seed_grant_in};
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

/// Starts the broker; returns its MCP URL and an access token.
pub fn start(dir: PathBuf, fake: SocketAddr) -> (String, String) {
    crate::common::start_broker(dir, fake, |state| async move {
        let token = seed_grant(&state).await;
        (state.config.mcp_url(), token)
    })
}
