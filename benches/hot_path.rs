//! The per-request work of an authenticated MCP tool call, measured piece by
//! piece: verifying our access token, reading the grant's status, and
//! opening the mapped upstream token. Prints figures; asserts nothing.
//!
//!     cargo bench --bench hot_path
//!
//! Uses a SQLite file in a temp folder (set BENCH_DATABASE_URL for another).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{SeedGrant, insert_client, offline_provider, seed_grant};
use mcp_broker::store::{Store, new_id};
use mcp_broker::tokens::access::issue_access_token;
use mcp_broker::tokens::{AccessClaims, KeyRing};
use mcp_broker::upstream::{ProviderSet, UpstreamTokens};
use mcp_broker::vault::{Cipher, Vault};

const N: u32 = 5_000;

fn report(what: &str, started: Instant, n: u32) {
    let per = started.elapsed() / n;
    println!(
        "{what:<44} {:>9.1} µs/op  {:>9.0} ops/s",
        per.as_secs_f64() * 1e6,
        1.0 / per.as_secs_f64()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let cipher = Cipher::new(&[3u8; 32]);
    let now = mcp_broker::now_unix();
    let keys = KeyRing::load(store.clone(), cipher.clone(), now)
        .await
        .unwrap();
    let providers = Arc::new(ProviderSet {
        providers: vec![offline_provider()],
        ..ProviderSet::default()
    });
    let vault = Vault::new(
        store.clone(),
        cipher.clone(),
        reqwest::Client::new(),
        providers.clone(),
        Duration::from_secs(15),
    );

    // One grant with a sealed GitHub token, as a sign-in leaves it.
    let client_id = insert_client(&store).await;
    let tokens = UpstreamTokens {
        access_token: format!("gho_{}", "x".repeat(36)),
        refresh_token: None,
        expires_in: None,
        refresh_token_expires_in: None,
        scopes: vec!["repo".into()],
    };
    let seed = SeedGrant {
        client_id: &client_id,
        provider: &providers.providers[0],
        tokens,
        login: "bench",
        scope: "profile",
        resource: "http://127.0.0.1/mcp",
    };
    let (grant_id, user_id) = seed_grant(&store, &vault, seed).await;
    let claims = AccessClaims {
        iss: "http://127.0.0.1".into(),
        sub: user_id,
        aud: "http://127.0.0.1/mcp".into(),
        client_id,
        scope: "profile".into(),
        jti: new_id(),
        iat: now,
        exp: now + 3600,
        grant_id: grant_id.clone(),
    };
    let token = issue_access_token(&keys.current(), &claims);

    println!("hot path of one authenticated MCP request ({N} iterations each)");
    // Distinct tokens: every verification checks the ES256 signature.
    let fresh: Vec<String> = (0..N)
        .map(|i| {
            let mut c = claims.clone();
            c.jti = format!("bench-{i}");
            issue_access_token(&keys.current(), &c)
        })
        .collect();
    let started = Instant::now();
    for t in &fresh {
        keys.verify(t, "http://127.0.0.1", "http://127.0.0.1/mcp")
            .await
            .unwrap();
    }
    report("verify a new access token (ES256 + claims)", started, N);

    // The same token again, as a client sends it on every request.
    let started = Instant::now();
    for _ in 0..N {
        keys.verify(&token, "http://127.0.0.1", "http://127.0.0.1/mcp")
            .await
            .unwrap();
    }
    report("verify a token seen before (cache hit)", started, N);

    let started = Instant::now();
    for _ in 0..N {
        store.grant_status(&grant_id).await.unwrap().unwrap();
    }
    report("grant status (one indexed read)", started, N);

    let started = Instant::now();
    for _ in 0..N {
        vault.usable_token(&grant_id, "github", now).await.unwrap();
    }
    report("usable upstream token (read + unwrap + open)", started, N);

    let link = store
        .upstream_link(&grant_id, "github")
        .await
        .unwrap()
        .unwrap();
    let sealed = link.data_key_enc.as_deref().unwrap();
    let started = Instant::now();
    for _ in 0..N {
        cipher.open(sealed, b"wrong-aad").unwrap_err();
    }
    report("AES-256-GCM open alone (failing tag check)", started, N);
}
