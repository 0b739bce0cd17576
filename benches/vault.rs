//! What a tool call pays for a usable upstream token: the decrypt path (one
//! read, unwrap the link's data key, open the token) alone and under
//! concurrency, and an on-demand refresh when many callers find the same
//! expired token at once. Prints figures; asserts nothing beyond sanity.
//!
//!     cargo bench --bench vault
//!
//! Uses a SQLite file in a temp folder. BENCH_DATABASE_URL may name another
//! SQLite file, or a PostgreSQL server: a scratch database is then created
//! on it and dropped at the end.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::{SeedGrant, fmt_duration, insert_client, percentile, serve_on_own_thread};
use mcp_broker::store::Store;
use mcp_broker::upstream::provider::parse_provider;
use mcp_broker::upstream::{Provider, ProviderSet, UpstreamTokens};
use mcp_broker::vault::{Cipher, Vault};
use sqlx::Connection;

const N: u32 = 5_000;
const CONCURRENCY: [u32; 2] = [8, 64];
const CALLERS: [usize; 4] = [1, 8, 64, 200];
const DELAYS_MS: [u64; 2] = [0, 50];
const PROVIDER: &str = "github-app";

/// A GitHub App token endpoint: every refresh rotates both tokens.
#[derive(Clone, Default)]
struct FakeTokenEndpoint {
    refreshes: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
}

async fn answer_refresh(
    State(fake): State<FakeTokenEndpoint>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        let error = serde_json::json!({ "error": "unsupported_grant_type" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let n = fake.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
    let delay = fake.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Json(serde_json::json!({
        "access_token": format!("ghu_bench{n:031}"),
        "expires_in": 28800,
        "refresh_token": format!("ghr_bench{n:071}"),
        "refresh_token_expires_in": 15_897_600,
        "token_type": "bearer",
        "scope": "",
    }))
    .into_response()
}

fn start_fake_token_endpoint(fake: FakeTokenEndpoint) -> SocketAddr {
    serve_on_own_thread(
        Router::new()
            .route("/token", post(answer_refresh))
            .with_state(fake),
    )
}

fn bench_provider(token_endpoint: SocketAddr) -> Provider {
    let text = format!(
        r#"
id = "{PROVIDER}"
display_name = "GitHub (App)"
authorize_url = "http://127.0.0.1:9/authorize"
token_url = "http://{token_endpoint}/token"
api_base_url = "http://127.0.0.1:9"
userinfo_url = "http://127.0.0.1:9/user"
client_id = "bench"
client_secret = "bench"

[refresh]
rotates_refresh_token = true
expiry_buffer_secs = 300
"#
    );
    parse_provider(&text, &|_| None).unwrap().unwrap()
}

/// Where the bench writes, and the PostgreSQL database to drop afterwards.
struct Scratch {
    url: String,
    pg: Option<(String, String)>,
}

async fn scratch_database(dir: &std::path::Path) -> Scratch {
    sqlx::any::install_default_drivers();
    let Ok(given) = std::env::var("BENCH_DATABASE_URL") else {
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        return Scratch { url, pg: None };
    };
    if given.starts_with("sqlite:") {
        return Scratch {
            url: given,
            pg: None,
        };
    }
    let name = format!("mcpb_bench_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::AnyConnection::connect(&given).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    let mut url = url::Url::parse(&given).unwrap();
    url.set_path(&format!("/{name}"));
    Scratch {
        url: url.to_string(),
        pg: Some((given, name)),
    }
}

/// Drops the PostgreSQL scratch database, also when the bench panics (or
/// its output pipe closes) halfway.
impl Drop for Scratch {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside async code: a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::AnyConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.ok();
            });
        })
        .join();
    }
}

/// A grant with a sealed GitHub App token pair, as a sign-in leaves it.
async fn seed_grant(store: &Store, vault: &Vault, provider: &Provider, client_id: &str) -> String {
    let tokens = UpstreamTokens {
        access_token: format!("ghu_{}", "x".repeat(36)),
        refresh_token: Some(format!("ghr_{}", "y".repeat(76))),
        expires_in: Some(28800),
        refresh_token_expires_in: Some(15_897_600),
        scopes: vec![],
    };
    let seed = SeedGrant {
        client_id,
        provider,
        tokens,
        login: "bench",
        scope: "profile",
        resource: "http://127.0.0.1/mcp",
    };
    common::seed_grant(store, vault, seed).await.0
}

async fn decrypt_concurrently(
    vault: &Vault,
    grant_id: &str,
    tasks: u32,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (vault, grant_id) = (vault.clone(), grant_id.to_string());
            let share = N / tasks + u32::from(t < N % tasks);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(share as usize);
                for _ in 0..share {
                    let call = Instant::now();
                    vault
                        .usable_token(&grant_id, PROVIDER, mcp_broker::now_unix())
                        .await
                        .unwrap();
                    latencies.push(call.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(N as usize);
    for handle in handles {
        latencies.extend(handle.await.unwrap());
    }
    (started.elapsed(), latencies)
}

struct Round {
    wall: Duration,
    latencies: Vec<Duration>,
    failures: usize,
    distinct_tokens: usize,
}

/// `k` callers released together on one link whose token expired.
async fn refresh_round(vault: &Vault, grant_id: &str, k: usize) -> Round {
    let gate = Arc::new(tokio::sync::Barrier::new(k + 1));
    let handles: Vec<_> = (0..k)
        .map(|_| {
            let (vault, grant_id, gate) = (vault.clone(), grant_id.to_string(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                let call = Instant::now();
                let token = vault
                    .usable_token(&grant_id, PROVIDER, mcp_broker::now_unix())
                    .await;
                (call.elapsed(), token)
            })
        })
        .collect();
    gate.wait().await;
    let started = Instant::now();
    let mut round = Round {
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(k),
        failures: 0,
        distinct_tokens: 0,
    };
    let mut tokens = HashSet::new();
    for handle in handles {
        let (latency, token) = handle.await.unwrap();
        round.latencies.push(latency);
        match token {
            Ok(token) => {
                tokens.insert(token.access_token);
            }
            Err(_) => round.failures += 1,
        }
    }
    round.wall = started.elapsed();
    round.distinct_tokens = tokens.len();
    round
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = scratch_database(dir.path()).await;
    let store = Store::connect(&scratch.url).await.unwrap();
    store.migrate().await.unwrap();
    let fake = FakeTokenEndpoint::default();
    let provider = bench_provider(start_fake_token_endpoint(fake.clone()));
    let providers = Arc::new(ProviderSet {
        providers: vec![provider.clone()],
        ..ProviderSet::default()
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let vault = Vault::new(
        store.clone(),
        Cipher::new(&[3u8; 32]),
        http,
        providers,
        Duration::from_secs(15),
    );
    let client_id = insert_client(&store).await;
    let fresh = seed_grant(&store, &vault, &provider, &client_id).await;
    let expiring = seed_grant(&store, &vault, &provider, &client_id).await;
    let expiring_link = store
        .upstream_link(&expiring, PROVIDER)
        .await
        .unwrap()
        .unwrap();
    // Behind the vault's back, as time passing would: the token expired.
    let mut sql = sqlx::AnyConnection::connect(&scratch.url).await.unwrap();
    let expire = "UPDATE upstream_links SET expires_at = 1 WHERE id = $1";
    let backend = if scratch.pg.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("usable upstream token, {backend}, {workers} tokio worker threads");

    // 1. The decrypt path: nothing to refresh.
    for _ in 0..200 {
        vault
            .usable_token(&fresh, PROVIDER, mcp_broker::now_unix())
            .await
            .unwrap();
    }
    let started = Instant::now();
    for _ in 0..N {
        vault
            .usable_token(&fresh, PROVIDER, mcp_broker::now_unix())
            .await
            .unwrap();
    }
    let decrypt = started.elapsed() / N;
    println!(
        "decrypt path, sequential ({N} calls)        {:>8.1} µs/op {:>8.0} ops/s",
        decrypt.as_secs_f64() * 1e6,
        1.0 / decrypt.as_secs_f64()
    );
    for tasks in CONCURRENCY {
        let (wall, mut latencies) = decrypt_concurrently(&vault, &fresh, tasks).await;
        latencies.sort();
        println!(
            "decrypt path, {tasks:>2} concurrent tasks            {:>8.0} ops/s   p50 {:>8}  p99 {:>8}",
            N as f64 / wall.as_secs_f64(),
            fmt_duration(percentile(&latencies, 0.50)),
            fmt_duration(percentile(&latencies, 0.99)),
        );
    }

    // 2. Refresh under contention: K callers find the same expired token.
    let mut version = expiring_link.version;
    let mut solo_refresh = None;
    for delay in DELAYS_MS {
        fake.delay_ms.store(delay, Ordering::SeqCst);
        println!();
        println!("refresh under contention, token endpoint answering after {delay} ms");
        println!(
            "{:>5} {:>7} {:>10} {:>10} {:>11} {:>11} {:>15}",
            "K", "rounds", "wall p50", "wall max", "caller p50", "caller p99", "upstream/round"
        );
        // The first refresh also opens the HTTP connection: not measured.
        sqlx::query(expire)
            .bind(&expiring_link.id)
            .execute(&mut sql)
            .await
            .unwrap();
        refresh_round(&vault, &expiring, 1).await;
        version += 1;
        for k in CALLERS {
            let rounds = if k == 1 { 20 } else { 5 };
            let mut walls = Vec::with_capacity(rounds);
            let mut latencies = Vec::with_capacity(rounds * k);
            let mut odd = Vec::new();
            let before = fake.refreshes.load(Ordering::SeqCst);
            for r in 0..rounds {
                sqlx::query(expire)
                    .bind(&expiring_link.id)
                    .execute(&mut sql)
                    .await
                    .unwrap();
                let asked = fake.refreshes.load(Ordering::SeqCst);
                let round = refresh_round(&vault, &expiring, k).await;
                let upstream = fake.refreshes.load(Ordering::SeqCst) - asked;
                let link = store
                    .upstream_link(&expiring, PROVIDER)
                    .await
                    .unwrap()
                    .unwrap();
                if upstream != 1
                    || round.failures > 0
                    || round.distinct_tokens != 1
                    || link.version != version + 1
                {
                    odd.push(format!(
                        "round {r}: {upstream} upstream refreshes, {} failed callers, \
                         {} distinct tokens, version {} -> {}",
                        round.failures, round.distinct_tokens, version, link.version
                    ));
                }
                version = link.version;
                walls.push(round.wall);
                latencies.extend(round.latencies);
            }
            walls.sort();
            latencies.sort();
            let upstream = fake.refreshes.load(Ordering::SeqCst) - before;
            let per_round = format!("{:.2}", upstream as f64 / rounds as f64);
            println!(
                "{k:>5} {rounds:>7} {:>10} {:>10} {:>11} {:>11} {:>15}",
                fmt_duration(percentile(&walls, 0.50)),
                fmt_duration(*walls.last().unwrap()),
                fmt_duration(percentile(&latencies, 0.50)),
                fmt_duration(percentile(&latencies, 0.99)),
                per_round,
            );
            for line in odd {
                println!("!!! WARNING: K={k}, {line} (expected 1 refresh, 0 failures, 1 token)");
            }
            if k == 1 && delay == 0 {
                solo_refresh = Some(percentile(&latencies, 0.50));
            }
        }
    }

    // 3. What one refresh costs next to the decrypt path.
    if let Some(refresh) = solo_refresh {
        println!();
        println!(
            "one refresh without contention (0 ms upstream) p50 {} = {:.0}x the decrypt path ({})",
            fmt_duration(refresh),
            refresh.as_secs_f64() / decrypt.as_secs_f64(),
            fmt_duration(decrypt),
        );
    }

    sql.close().await.ok();
    store.close().await;
}
