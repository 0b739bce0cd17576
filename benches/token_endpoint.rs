//! What `POST /token` costs, end to end over HTTP: redeeming authorization
//! codes, and refresh-token rotation by 1 and 8 concurrent clients (each on
//! its own rotation chain). Each answer carries a ledger event; the cost of
//! that append alone is printed beside. Prints figures; asserts only that
//! every answer is a 200 with tokens.
//!
//!     cargo bench --bench token_endpoint
//!
//! The broker runs in this process on 127.0.0.1 with SQLite in a temp folder.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use sha2::Digest;

use common::{SeedGrant, fmt_duration, percentile, seed_grant};
use mcp_broker::app::AppState;
use mcp_broker::audit::{self, Actor, AuditEvent, EventKind};
use mcp_broker::store::{AuthorizationCodeRow, ClientRow, RefreshTokenRow, new_id};
use mcp_broker::tokens::opaque::hash_secret;
use mcp_broker::upstream::UpstreamTokens;

const CODES: usize = 1_000;
const MEASURE: Duration = Duration::from_secs(3);
const REDIRECT_URI: &str = "http://127.0.0.1/cb";
const VERIFIER: &str = "bench-verifier-0123456789-0123456789-0123456789";

struct Seeded {
    url: String,
    client_id: String,
    codes: Vec<String>,
    /// One starting refresh token per concurrent chain.
    refresh_tokens: Vec<String>,
}

/// A public client allowed both grants, one signed-in grant, `CODES` codes
/// for it and 8 refresh tokens, all as the broker itself would store them.
async fn seed(state: &AppState) -> (String, Vec<String>, Vec<String>) {
    let now = mcp_broker::now_unix();
    let client_id = new_id();
    state
        .store
        .insert_client(&ClientRow {
            client_id: client_id.clone(),
            client_secret_hash: None,
            client_name: Some("bench".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            token_endpoint_auth_method: "none".into(),
            application_type: "native".into(),
            registration: "dcr".into(),
            created_at: now,
            metadata_hash: None,
            last_used_at: Some(now),
        })
        .await
        .unwrap();
    let resource = state.config.mcp_url();
    let seed = SeedGrant {
        client_id: &client_id,
        provider: state.providers.get("github").unwrap(),
        tokens: UpstreamTokens {
            access_token: "gho_bench".into(),
            refresh_token: None,
            expires_in: None,
            refresh_token_expires_in: None,
            scopes: vec!["repo".into()],
        },
        login: "octo-bench",
        scope: "repo:read",
        resource: &resource,
    };
    let (grant_id, _) = seed_grant(&state.store, &state.vault, seed).await;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let code_row = |code: &str| AuthorizationCodeRow {
        code_hash: hash_secret(code),
        grant_id: grant_id.clone(),
        client_id: client_id.clone(),
        redirect_uri: REDIRECT_URI.into(),
        code_challenge: challenge.clone(),
        scope: "repo:read".into(),
        resource: resource.clone(),
        created_at: now,
        expires_at: now + 3600,
        used_at: None,
    };
    let mut codes = Vec::new();
    for _ in 0..CODES {
        let code = format!("mcb_code_{}", new_id());
        state.store.insert_code(&code_row(&code)).await.unwrap();
        codes.push(code);
    }
    // Each starting refresh token is planted the way a redemption stores it.
    let mut refresh_tokens = Vec::new();
    for _ in 0..8 {
        let code = format!("mcb_code_{}", new_id());
        state.store.insert_code(&code_row(&code)).await.unwrap();
        let token = format!("mcb_rt_{}", new_id());
        let row = RefreshTokenRow {
            token_hash: hash_secret(&token),
            grant_id: grant_id.clone(),
            client_id: client_id.clone(),
            scope: "repo:read".into(),
            resource: resource.clone(),
            created_at: now,
            expires_at: now + 86_400,
            used_at: None,
            successor_enc: None,
        };
        assert!(
            state
                .store
                .redeem_code(&hash_secret(&code), Some(&row), now)
                .await
                .unwrap()
        );
        refresh_tokens.push(token);
    }
    (client_id, codes, refresh_tokens)
}

/// Starts the broker; returns what was seeded and the ledger append's
/// cost, measured on the broker's own store first.
fn start(dir: std::path::PathBuf) -> (Seeded, Duration) {
    // No upstream is called: token requests never leave the broker.
    let nowhere = "127.0.0.1:9".parse().unwrap();
    common::start_broker(dir, nowhere, |state| async move {
        let (client_id, codes, refresh_tokens) = seed(&state).await;
        let append = ledger_append(&state).await;
        let seeded = Seeded {
            url: state.config.public_url.clone(),
            client_id,
            codes,
            refresh_tokens,
        };
        (seeded, append)
    })
}

/// One `token.issued`-shaped append, sequential, per op.
async fn ledger_append(state: &AppState) -> Duration {
    let n = 500;
    let started = Instant::now();
    for _ in 0..n {
        let event = AuditEvent::new(EventKind::TokenIssued, Actor::Client("bench".into()))
            .client("bench")
            .detail("bench append");
        audit::record(&state.store, event).await.unwrap();
    }
    started.elapsed() / n
}

async fn post_token(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Value {
    let response = http
        .post(format!("{url}/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    if status != 200 || !body["access_token"].is_string() {
        eprintln!("token_endpoint bench aborted: {status} {body}");
        std::process::exit(1);
    }
    body
}

fn row(what: &str, n: usize, elapsed: Duration, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<34} {n:>6} {:>9.0}/s  p50 {:>9}  p99 {:>9}",
        n as f64 / elapsed.as_secs_f64(),
        fmt_duration(percentile(&samples, 0.5)),
        fmt_duration(percentile(&samples, 0.99)),
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (seeded, append) = start(dir.path().to_path_buf());
    let http = reqwest::Client::new();
    println!(
        "{:<34} {:>6} {:>11}  {:>13}  {:>13}",
        "", "calls", "rate", "", ""
    );

    let started = Instant::now();
    let mut samples = Vec::new();
    for code in &seeded.codes {
        let t = Instant::now();
        post_token(
            &http,
            &seeded.url,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &seeded.client_id),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        samples.push(t.elapsed());
    }
    row(
        "authorization_code, 1 caller",
        seeded.codes.len(),
        started.elapsed(),
        samples,
    );

    for callers in [1usize, 8] {
        let started = Instant::now();
        let chains = seeded.refresh_tokens[..callers]
            .iter()
            .cloned()
            .map(|first| {
                let (http, url, client_id) =
                    (http.clone(), seeded.url.clone(), seeded.client_id.clone());
                tokio::spawn(async move {
                    let mut token = first;
                    let mut samples = Vec::new();
                    while started.elapsed() < MEASURE {
                        let t = Instant::now();
                        let body = post_token(
                            &http,
                            &url,
                            &[
                                ("grant_type", "refresh_token"),
                                ("client_id", &client_id),
                                ("refresh_token", &token),
                            ],
                        )
                        .await;
                        samples.push(t.elapsed());
                        token = body["refresh_token"].as_str().unwrap().to_string();
                    }
                    samples
                })
            });
        let mut samples = Vec::new();
        for chain in chains.collect::<Vec<_>>() {
            samples.extend(chain.await.unwrap());
        }
        let n = samples.len();
        row(
            &format!("refresh_token, {callers} caller(s)"),
            n,
            started.elapsed(),
            samples,
        );
    }
    println!(
        "ledger append alone (SQLite, sequential): {} per event",
        fmt_duration(append)
    );
}
