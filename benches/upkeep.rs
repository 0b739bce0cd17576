//! The hourly upkeep at scale: the sweep, the search for grants no one can
//! use any more and their revocation, and the step-up's grant lookup, over
//! a database holding many grants. Prints figures; asserts nothing.
//!
//!     cargo bench --bench upkeep
//!
//! BENCH_GRANTS sets how many grants (20000 by default; one in ten idle);
//! BENCH_DATABASE_URL another database than a SQLite file in a temp folder.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{SeedGrant, fmt_duration, insert_client, offline_provider, seed_grant};
use mcp_broker::store::{RefreshTokenRow, Store, new_id};
use mcp_broker::upstream::{ProviderSet, UpstreamTokens};
use mcp_broker::vault::{Cipher, Vault};

const DAY: i64 = 24 * 3600;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let grants: usize = std::env::var("BENCH_GRANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let providers = Arc::new(ProviderSet {
        providers: vec![offline_provider()],
        ..ProviderSet::default()
    });
    let vault = Vault::new(
        store.clone(),
        Cipher::new(&[3u8; 32]),
        reqwest::Client::new(),
        providers.clone(),
        Duration::from_secs(15),
    );
    let now = mcp_broker::now_unix();
    // The upkeep runs two days after the sign-ins.
    let later = now + 2 * DAY;

    // Nine in ten still hold a refresh token (for 30 days).
    let started = Instant::now();
    let client_id = insert_client(&store).await;
    let mut idle = 0;
    for i in 0..grants {
        let seed = SeedGrant {
            client_id: &client_id,
            provider: &providers.providers[0],
            tokens: UpstreamTokens {
                access_token: format!("gho_{}", "x".repeat(36)),
                refresh_token: None,
                expires_in: None,
                refresh_token_expires_in: None,
                scopes: vec!["repo".into()],
            },
            login: "bench",
            scope: "profile",
            resource: "http://127.0.0.1/mcp",
        };
        let (grant_id, _) = seed_grant(&store, &vault, seed).await;
        if i % 10 == 0 {
            idle += 1;
            continue;
        }
        store
            .insert_refresh_token(&RefreshTokenRow {
                token_hash: new_id(),
                grant_id,
                client_id: client_id.clone(),
                scope: "profile".into(),
                resource: "http://127.0.0.1/mcp".into(),
                created_at: now,
                expires_at: now + 30 * DAY,
                used_at: None,
                successor_enc: None,
            })
            .await
            .unwrap();
    }
    println!(
        "{grants} grants ({idle} idle) seeded in {}",
        fmt_duration(started.elapsed())
    );

    let started = Instant::now();
    let swept = store.sweep_expired(later, 10, 3600).await.unwrap();
    println!(
        "sweep of expired rows ({} codes)            {}",
        swept.codes,
        fmt_duration(started.elapsed())
    );

    let started = Instant::now();
    let page = store.dead_grants(later - 3600, "", 100).await.unwrap();
    println!(
        "first page of dead grants ({} rows)          {}",
        page.len(),
        fmt_duration(started.elapsed())
    );

    let started = Instant::now();
    let revoked = vault
        .revoke_dead_grants(later - 3600, Instant::now() + Duration::from_secs(600))
        .await
        .unwrap();
    let took = started.elapsed();
    println!(
        "revoking them ({revoked}: ours, links, 2 events each) {} = {} per grant",
        fmt_duration(took),
        fmt_duration(took / revoked.max(1) as u32)
    );

    let started = Instant::now();
    let again = store.dead_grants(later - 3600, "", 100).await.unwrap();
    println!(
        "the next pass finds {} dead grants in        {}",
        again.len(),
        fmt_duration(started.elapsed())
    );

    // The step-up's lookup: a user's grant among 20000 of one client.
    let user_id = store.list_users(None, None, 1).await.unwrap().remove(0).id;
    let n = 1000;
    let started = Instant::now();
    for _ in 0..n {
        store.latest_live_grant(&user_id, &client_id).await.unwrap();
    }
    println!(
        "latest live grant of a user (step-up lookup)  {} per call",
        fmt_duration(started.elapsed() / n)
    );
}
