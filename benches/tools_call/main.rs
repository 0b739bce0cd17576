//! The broker's own overhead on a tool call: authenticated MCP `tools/call`
//! of `github_get_repo` through the broker, next to the same GitHub request
//! sent straight to a fake GitHub, at 1, 8 and 64 concurrent callers.
//! Prints throughput and latency; asserts nothing beyond each answer being
//! right (any wrong answer aborts the bench).
//!
//!     cargo bench --bench tools_call
//!
//! Everything runs in this process on 127.0.0.1: the fake GitHub, the broker
//! (SQLite in a temp folder), and the callers, each on its own runtime.

mod broker;
#[path = "../common/mod.rs"]
mod common;
mod fake_github;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::http::header;
use serde_json::{Value, json};

use common::{fmt_duration, percentile};
use fake_github::FakeGithub;

const CONCURRENCY: [usize; 3] = [1, 8, 64];
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);
const OWNER: &str = "octo-bench";
const REPO: &str = "bench-repo";
const TOOL: &str = "github_get_repo";
/// The GitHub token sealed in the grant's upstream link; the fake accepts
/// only this one, so a passing call proves the broker sent the right token.
const UPSTREAM_TOKEN: &str = "gho_benchUpstreamToken0000000000000000000";
/// The newest revision with sessions: what clients speak today.
const SESSION_VERSION: &str = "2025-11-25";
/// Sessionless: each request carries its version and capabilities.
const STATELESS_VERSION: &str = "2026-07-28";

/// The temp folder, removed by `fail` before it exits.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// A wrong answer or a refused request ends the bench: figures for calls
/// that did not do the work would mean nothing.
fn fail(message: String) -> ! {
    eprintln!("tools_call bench aborted: {message}");
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `GET /repos/{owner}/{repo}` on the fake with the upstream token.
    Direct,
    /// `tools/call` in an initialized 2025 session.
    Session,
    /// `tools/call` in the sessionless 2026-07-28 form.
    Stateless,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Session => "session",
            Mode::Stateless => "stateless",
        }
    }
}

struct Target {
    fake_url: String,
    mcp_url: String,
    token: String,
}

/// One simulated client: its own HTTP client (so one keep-alive connection
/// of its own, as separate MCP clients have), and its session if any.
struct Caller {
    mode: Mode,
    http: reqwest::Client,
    target: Arc<Target>,
    session: Option<(String, String)>,
    next_id: u64,
}

impl Caller {
    async fn open(mode: Mode, target: Arc<Target>) -> Caller {
        let http = reqwest::Client::builder()
            .user_agent("mcp-broker-tools-call-bench")
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut caller = Caller {
            mode,
            http,
            target,
            session: None,
            next_id: 1,
        };
        if mode == Mode::Session {
            caller.initialize().await;
        }
        caller
    }

    fn mcp_post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.target.mcp_url)
            .bearer_auth(&self.target.token)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(body);
        if let Some((id, version)) = &self.session {
            request = request
                .header("Mcp-Session-Id", id)
                .header("MCP-Protocol-Version", version);
        }
        request
    }

    /// `initialize`, then `notifications/initialized`; the session id and
    /// the version the broker chose go on every later request.
    async fn initialize(&mut self) {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": SESSION_VERSION, "capabilities": {},
            "clientInfo": {"name": "tools_call bench", "version": "0"}}});
        let response = send(self.mcp_post(&body)).await;
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| fail("initialize answered without a session id".into()));
        let result = jsonrpc_result(&text(response).await).unwrap_or_else(|e| fail(e));
        let version = result["protocolVersion"].as_str().unwrap_or_default();
        self.session = Some((id, version.to_string()));
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        send(self.mcp_post(&done)).await;
    }

    /// One timed call: request sent to answer read. The answer is checked
    /// after the clock stops.
    async fn call(&mut self) -> Duration {
        let request = match self.mode {
            Mode::Direct => self
                .http
                .get(format!("{}/repos/{OWNER}/{REPO}", self.target.fake_url))
                .bearer_auth(UPSTREAM_TOKEN)
                .header(header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            Mode::Session | Mode::Stateless => self.tool_call(),
        };
        let started = Instant::now();
        let body = text(send(request).await).await;
        let latency = started.elapsed();
        let checked = match self.mode {
            Mode::Direct => serde_json::from_str(&body)
                .map_err(|e| format!("the fake's answer is not JSON: {e}"))
                .and_then(|repo| check_repo(&repo)),
            _ => jsonrpc_result(&body).and_then(|result| check_tool_result(&result)),
        };
        if let Err(why) = checked {
            fail(format!("{} call: {why}", self.mode.name()));
        }
        latency
    }

    fn tool_call(&mut self) -> reqwest::RequestBuilder {
        self.next_id += 1;
        let mut params = json!({"name": TOOL, "arguments": {"owner": OWNER, "repo": REPO}});
        if self.mode == Mode::Session {
            return self.mcp_post(&json!({"jsonrpc": "2.0", "id": self.next_id,
                "method": "tools/call", "params": params}));
        }
        // 2026-07-28: no handshake; what `initialize` carried rides in every
        // request's `_meta`, and the method and tool name are repeated in
        // headers (SEP-2243) for intermediaries that do not read bodies.
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "tools_call bench", "version": "0"},
        });
        self.mcp_post(&json!({"jsonrpc": "2.0", "id": self.next_id,
                "method": "tools/call", "params": params}))
            .header("MCP-Protocol-Version", STATELESS_VERSION)
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", TOOL)
    }

    /// Ends the session, so sessions do not pile up across rows.
    async fn close(self) {
        if let Some((id, version)) = &self.session {
            let _ = self
                .http
                .delete(&self.target.mcp_url)
                .bearer_auth(&self.target.token)
                .header("Mcp-Session-Id", id)
                .header("MCP-Protocol-Version", version)
                .send()
                .await;
        }
    }
}

/// The response, if it is a success.
async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| fail(format!("request failed: {e}")));
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        fail(format!("HTTP {status}: {body}"));
    }
    response
}

async fn text(response: reqwest::Response) -> String {
    response
        .text()
        .await
        .unwrap_or_else(|e| fail(format!("reading an answer failed: {e}")))
}

/// The JSON-RPC `result` in a JSON body, or in the SSE event that carries
/// the response (rmcp answers POSTs as an event stream).
fn jsonrpc_result(body: &str) -> Result<Value, String> {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .or_else(|| {
            body.lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
                .find(|v| v.get("id").is_some())
        })
        .ok_or_else(|| format!("no JSON-RPC response in {body:?}"))?;
    if let Some(error) = message.get("error") {
        return Err(format!("JSON-RPC error {error}"));
    }
    message
        .get("result")
        .cloned()
        .ok_or_else(|| format!("no result in {message}"))
}

/// The repository the fake serves, as GitHub sends it or the tool shapes it.
fn check_repo(repo: &Value) -> Result<(), String> {
    let expected = fake_github::repo_json();
    for field in ["full_name", "description", "default_branch"] {
        if repo[field] != expected[field] {
            return Err(format!(
                "{field} is {}, not {}",
                repo[field], expected[field]
            ));
        }
    }
    Ok(())
}

/// A successful tool result: the fake's repository, then the rate limit
/// the fake announced.
fn check_tool_result(result: &Value) -> Result<(), String> {
    if result["isError"] == json!(true) {
        return Err(format!("the tool failed: {}", result["content"]));
    }
    let data: Value = result["content"][0]["text"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| format!("no JSON data in {result}"))?;
    check_repo(&data)?;
    if result["content"][1]["text"] != json!("GitHub rate limit remaining: 4999") {
        return Err(format!("no rate-limit trailer in {result}"));
    }
    Ok(())
}

/// One row: `tasks` callers warm up, then call for `MEASURE` together.
struct Row {
    calls: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

async fn run_row(mode: Mode, tasks: usize, target: &Arc<Target>) -> Row {
    // Measuring starts when every caller has its session and is warm.
    let gate = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (gate, target) = (gate.clone(), target.clone());
            tokio::spawn(async move {
                let mut caller = Caller::open(mode, target).await;
                let warm_until = Instant::now() + WARMUP;
                while Instant::now() < warm_until {
                    caller.call().await;
                }
                gate.wait().await;
                let until = Instant::now() + MEASURE;
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    latencies.push(caller.call().await);
                }
                caller.close().await;
                latencies
            })
        })
        .collect();
    gate.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.unwrap());
    }
    let wall = started.elapsed();
    latencies.sort();
    Row {
        calls: latencies.len(),
        wall,
        latencies,
    }
}

/// Broker p50 minus direct p50, signed.
fn fmt_overhead(broker: Duration, direct: Duration) -> String {
    match broker.checked_sub(direct) {
        Some(more) => format!("+{}", fmt_duration(more)),
        None => format!("-{}", fmt_duration(direct - broker)),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    SCRATCH.set(dir.path().to_path_buf()).unwrap();
    let fake = FakeGithub::default();
    let fake_addr = fake_github::start(fake.clone());
    let (mcp_url, token) = broker::start(dir.path().to_path_buf(), fake_addr);
    let target = Arc::new(Target {
        fake_url: format!("http://{fake_addr}"),
        mcp_url,
        token,
    });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("tools/call {TOOL}: straight to a fake GitHub, and through the broker");
    println!(
        "{cpus} CPUs shared by the fake (1 thread), the broker ({cpus} workers) and the callers \
         ({cpus} workers); one HTTP client and keep-alive connection per caller; \
         {:.1} s warmup, {:.1} s measured per row",
        WARMUP.as_secs_f64(),
        MEASURE.as_secs_f64()
    );
    println!(
        "{:<10} {:>5} {:>8} {:>9} {:>10} {:>10} {:>15}",
        "mode", "tasks", "calls", "calls/s", "p50", "p99", "overhead (p50)"
    );
    for tasks in CONCURRENCY {
        let mut direct_p50 = Duration::ZERO;
        for mode in [Mode::Direct, Mode::Session, Mode::Stateless] {
            let row = run_row(mode, tasks, &target).await;
            let p50 = percentile(&row.latencies, 0.50);
            let overhead = match mode {
                Mode::Direct => {
                    direct_p50 = p50;
                    String::new()
                }
                _ => fmt_overhead(p50, direct_p50),
            };
            println!(
                "{:<10} {tasks:>5} {:>8} {:>9.0} {:>10} {:>10} {:>15}",
                mode.name(),
                row.calls,
                row.calls as f64 / row.wall.as_secs_f64(),
                fmt_duration(p50),
                fmt_duration(percentile(&row.latencies, 0.99)),
                overhead,
            );
        }
    }
    println!(
        "fake GitHub: {} requests answered (each with the sealed upstream token), {} refused",
        fake.answered.load(Ordering::Relaxed),
        fake.refused.load(Ordering::Relaxed),
    );
}
