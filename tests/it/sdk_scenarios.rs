//! Longer runs of the real SDK clients: refresh after expiry, and recovery
//! after the client's registration is deleted.

use crate::sdk_clients::{python_ready, repo_root, skip_or_fail, ts_ready, ts2_ready};
use crate::support::{FakeGithub, Mode, TestDb};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

// ---------------------------------------------------------------------------
// Longer scenarios (`scenario.mjs` / `scenario.py`): the scripts print one
// event per stdout line (`CLIENT_ID <id>`, `BROWSER_WALK <client_id>`,
// `TOKENS ...`, `INVALIDATE <scope>`, `HTTP <method> <path> <status>
// [grant_type=...] [error=...]` for each request the SDK sends,
// `TOOL_RESULT <json>`, `READY`); the test reads them as they come.

/// One step of a scenario may take this long; the scripts give up after 40 s.
const SCENARIO_STEP: Duration = Duration::from_secs(60);

/// A running scenario script.
struct Scenario {
    label: String,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    /// Every stdout line so far.
    events: Vec<String>,
}

impl Scenario {
    fn start(program: &str, args: &[&str], label: &str) -> Scenario {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(repo_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {program}: {e}"));
        let mut stderr = child.stderr.take().unwrap();
        Scenario {
            label: label.to_string(),
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            stderr: tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                text
            }),
            child,
            events: Vec::new(),
        }
    }

    /// Reads events until `wanted`; panics with the script's output if it
    /// ends first.
    async fn wait_for(&mut self, wanted: &str) {
        loop {
            let line = tokio::time::timeout(SCENARIO_STEP, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no {wanted} in time\nstdout:\n{}",
                        self.label,
                        self.events.join("\n")
                    )
                });
            match line.unwrap() {
                Some(line) => {
                    let done = line == wanted;
                    self.events.push(line);
                    if done {
                        return;
                    }
                }
                None => {
                    let status = self.child.wait().await.unwrap();
                    let stderr = (&mut self.stderr).await.unwrap();
                    panic!(
                        "{}: ended ({status}) before {wanted}\nstdout:\n{}\nstderr:\n{stderr}",
                        self.label,
                        self.events.join("\n")
                    );
                }
            }
        }
    }

    /// The go-ahead line the script waits for after `READY`.
    async fn send_line(&mut self) {
        self.stdin.write_all(b"go\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads the rest; returns every event, after asserting the script
    /// succeeded.
    async fn finish(self) -> Events {
        let (success, events) = self.finish_any().await;
        assert!(success, "script failed: {}", events.1);
        events
    }

    /// Reads the rest; returns whether the script succeeded, and its events.
    async fn finish_any(mut self) -> (bool, Events) {
        let rest = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                self.events.push(line);
            }
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(SCENARIO_STEP, rest)
            .await
            .unwrap_or_else(|_| panic!("{}: timed out", self.label));
        let stderr = self.stderr.await.unwrap();
        let output = format!(
            "{} ({status})\nstdout:\n{}\nstderr:\n{stderr}",
            self.label,
            self.events.join("\n")
        );
        (status.success(), Events(self.events, output))
    }
}

/// A finished scenario's stdout events, and its whole output for messages.
struct Events(Vec<String>, String);

impl Events {
    /// The arguments of every `NAME ...` event, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' ').or(rest.is_empty().then_some("")))
            })
            .collect()
    }

    /// Index of the first event equal to `line` (or starting with it + ' ').
    fn position(&self, line: &str) -> usize {
        self.0
            .iter()
            .position(|l| l == line || l.starts_with(&format!("{line} ")))
            .unwrap_or_else(|| panic!("no `{line}` event\n{}", self.1))
    }

    /// Asserts every `TOOL_RESULT` names the fixture user; returns how many.
    fn whoami_results(&self) -> usize {
        let results = self.all("TOOL_RESULT");
        for r in &results {
            let user: Value =
                serde_json::from_str(r).unwrap_or_else(|e| panic!("{e}: {r}\n{}", self.1));
            assert_eq!(user["login"], "octo-fixture", "{}", self.1);
        }
        results.len()
    }

    /// `HTTP` events after index `from`, as their text.
    fn http_after(&self, from: usize) -> Vec<&str> {
        self.0[from..]
            .iter()
            .filter_map(|l| l.strip_prefix("HTTP "))
            .collect()
    }
}

/// Refresh tokens the broker stored for `client_id` (issued or rotated).
async fn refresh_tokens_of(broker: &crate::support::TestBroker, client_id: &str) -> usize {
    let cells = broker
        .state
        .store
        .dump_table_text("refresh_tokens")
        .await
        .unwrap();
    cells.iter().filter(|c| *c == client_id).count()
}

/// The access token lives 2 s: the script signs in, calls, waits past expiry
/// and calls again. The second call must succeed on a refreshed token: one
/// browser walk, one GitHub code exchange, a refresh grant the broker
/// answered, and the broker rotated the refresh token (the first one and its
/// successor are stored for the client).
async fn assert_refreshes_after_expiry(program: &str, script: &str, label: &str) -> Events {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = crate::support::start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_ACCESS_TOKEN_TTL_SECS", "2")],
    )
    .await;
    let url = broker.mcp_url();
    let events = Scenario::start(program, &[script, "--scenario", "refresh", &url], label)
        .finish()
        .await;
    let out = &events.1;
    assert_eq!(events.whoami_results(), 2, "{out}");
    assert_eq!(
        events.all("BROWSER_WALK").len(),
        1,
        "no second sign-in\n{out}"
    );
    let clients = events.all("CLIENT_ID");
    assert_eq!(clients.len(), 1, "{out}");
    assert_eq!(fake.counters().code_exchanges, 1, "{out}");
    // After the first result: a refresh grant the broker answered, then the call.
    let after_first = events.http_after(events.position("TOOL_RESULT"));
    let refresh = after_first
        .iter()
        .position(|h| *h == "POST /token 200 grant_type=refresh_token")
        .unwrap_or_else(|| panic!("no refresh after the first call\n{out}"));
    assert!(
        after_first[refresh..]
            .iter()
            .any(|h| h.starts_with("POST /mcp 200")),
        "{out}"
    );
    // Two or more: the first one and its successor(s).
    assert!(
        refresh_tokens_of(&broker, clients[0]).await >= 2,
        "the broker rotated the refresh token\n{out}"
    );
    events
}

/// The TypeScript SDKs do not track expiry themselves: the expired token gets
/// a 401, and the refresh answers it.
fn assert_refresh_answers_a_401(events: &Events) {
    let after_first = events.http_after(events.position("TOOL_RESULT"));
    let unauthorized = after_first
        .iter()
        .position(|h| h.starts_with("POST /mcp 401"));
    let refresh = after_first
        .iter()
        .position(|h| h.contains("grant_type=refresh_token"));
    assert!(
        unauthorized.is_some() && unauthorized < refresh,
        "401 before the refresh\n{}",
        events.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_refreshes_after_expiry() {
    if let Err(reason) = ts_ready().await {
        return skip_or_fail(reason);
    }
    let events =
        assert_refreshes_after_expiry("node", "tests/clients/ts/scenario.mjs", "TypeScript SDK")
            .await;
    assert_refresh_answers_a_401(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_v2_refreshes_after_expiry() {
    if let Err(reason) = ts2_ready().await {
        return skip_or_fail(reason);
    }
    let events = assert_refreshes_after_expiry(
        "node",
        "tests/clients/ts2/scenario.mjs",
        "TypeScript SDK v2",
    )
    .await;
    assert_refresh_answers_a_401(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_refreshes_after_expiry() {
    let python = match python_ready().await {
        Ok(python) => python,
        Err(reason) => return skip_or_fail(reason),
    };
    // The Python SDK refreshes on its own clock (`expires_in`) before sending,
    // so it never sees the 401; a 401 would send it back to the browser.
    assert_refreshes_after_expiry(
        python.to_str().unwrap(),
        "tests/clients/python/scenario.py",
        "Python SDK",
    )
    .await;
}

/// A `--scenario reregister` run: the script signs in and calls; at its
/// `READY` the test deletes the client (its grants, and so its access and
/// refresh tokens, go with it), waits `linger`, and lets it call again.
struct ClientDeleted {
    success: bool,
    events: Events,
    /// The deleted client's id.
    first: String,
    broker: crate::support::TestBroker,
    fake: FakeGithub,
    _db: TestDb,
}

async fn run_with_client_deleted(
    program: &str,
    script: &str,
    label: &str,
    env: &[(&str, &str)],
    linger: Duration,
) -> ClientDeleted {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker =
        crate::support::start_broker_with_env(&db, &[("github.toml", fake.provider_toml())], env)
            .await;
    let url = broker.mcp_url();
    let mut run = Scenario::start(program, &[script, "--scenario", "reregister", &url], label);
    run.wait_for("READY").await;
    let first = run
        .events
        .iter()
        .find_map(|l| l.strip_prefix("CLIENT_ID "))
        .unwrap_or_else(|| panic!("{label}: no CLIENT_ID before READY: {:?}", run.events))
        .to_string();
    assert!(
        broker.state.store.delete_client(&first).await.unwrap(),
        "{label}: client {first} exists"
    );
    tokio::time::sleep(linger).await;
    run.send_line().await;
    let (success, events) = run.finish_any().await;
    ClientDeleted {
        success,
        events,
        first,
        broker,
        fake,
        _db: db,
    }
}

/// Asserts that after `READY` come `HTTP` events starting with each of
/// `steps`, in this order (others may come between).
fn in_order_after_ready(events: &Events, steps: &[&str]) {
    let after = events.http_after(events.position("READY"));
    let mut from = 0;
    for wanted in steps {
        let at = after[from..]
            .iter()
            .position(|h| h.starts_with(wanted))
            .unwrap_or_else(|| {
                panic!(
                    "no `{wanted}` after READY (in this order: {steps:?})\n{}",
                    events.1
                )
            });
        from += at + 1;
    }
}

/// The TypeScript SDKs get back in by themselves: the dead token's 401; the
/// refresh refused as invalid_client, on which the SDK drops its registration
/// and tokens (through the provider's `invalidateCredentials`, asking for
/// `invalidated`) and registers again; a new sign-in; the call.
async fn assert_ts_reregisters(script: &str, label: &str, invalidated: &[&str]) {
    let run = run_with_client_deleted("node", script, label, &[], Duration::ZERO).await;
    let (events, out) = (&run.events, &run.events.1);
    assert!(run.success, "{out}");
    assert_eq!(events.whoami_results(), 2, "{out}");
    let clients = events.all("CLIENT_ID");
    assert_eq!(clients.len(), 2, "a second registration\n{out}");
    assert_eq!(clients[0], run.first, "{out}");
    assert_ne!(clients[1], run.first, "{out}");
    assert!(
        run.broker
            .state
            .store
            .get_client(clients[1])
            .await
            .unwrap()
            .is_some(),
        "{out}"
    );
    assert_eq!(
        events.all("BROWSER_WALK"),
        [clients[0], clients[1]],
        "one walk per client\n{out}"
    );
    assert_eq!(run.fake.counters().code_exchanges, 2, "{out}");
    in_order_after_ready(
        events,
        &[
            "POST /mcp 401",
            "POST /token 401 grant_type=refresh_token error=invalid_client",
            "POST /register 201",
            "POST /token 200 grant_type=authorization_code",
            "POST /mcp 200",
        ],
    );
    assert_eq!(events.all("INVALIDATE"), invalidated, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_reregisters_after_its_client_is_deleted() {
    if let Err(reason) = ts_ready().await {
        return skip_or_fail(reason);
    }
    assert_ts_reregisters("tests/clients/ts/scenario.mjs", "TypeScript SDK", &["all"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_v2_reregisters_after_its_client_is_deleted() {
    if let Err(reason) = ts2_ready().await {
        return skip_or_fail(reason);
    }
    assert_ts_reregisters(
        "tests/clients/ts2/scenario.mjs",
        "TypeScript SDK v2",
        &["client", "tokens"],
    )
    .await;
}

/// The Python SDK (mcp 2.3.0) does not get back in by itself: it never drops
/// a registration the server refused. With the access token expired when the
/// client is deleted, its refresh gets 401 `invalid_client`; the SDK only
/// clears its tokens (`OAuthClientProvider._handle_refresh_response`: any
/// non-200 means "clear tokens"), the call gets 401, and the full flow in
/// `_auth_flow` re-registers only `if not self.context.client_info` — which
/// is still the deleted client. So the browser is sent to `/authorize` with
/// the deleted client id, and the broker answers with its error page (400;
/// an unknown client's redirect URI is never trusted). When this test fails
/// because the SDK did recover, assert recovery as the TypeScript test does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_does_not_reregister_after_its_client_is_deleted() {
    let python = match python_ready().await {
        Ok(python) => python,
        Err(reason) => return skip_or_fail(reason),
    };
    let run = run_with_client_deleted(
        python.to_str().unwrap(),
        "tests/clients/python/scenario.py",
        "Python SDK",
        &[("MCP_BROKER_ACCESS_TOKEN_TTL_SECS", "2")],
        Duration::from_secs(3),
    )
    .await;
    let (events, out) = (&run.events, &run.events.1);
    assert!(
        !run.success,
        "the Python SDK now recovers: assert that instead\n{out}"
    );
    assert_eq!(events.whoami_results(), 1, "{out}");
    in_order_after_ready(
        events,
        &[
            "POST /token 401 grant_type=refresh_token error=invalid_client",
            "POST /mcp 401",
        ],
    );
    let after = events.http_after(events.position("READY"));
    assert!(
        !after.iter().any(|h| h.starts_with("POST /register")),
        "no new registration\n{out}"
    );
    assert_eq!(events.all("CLIENT_ID"), [run.first.as_str()], "{out}");
    assert_eq!(
        events.all("BROWSER_WALK"),
        [run.first.as_str(), run.first.as_str()],
        "{out}"
    );
    assert!(
        out.contains("authorization endpoint: unexpected HTTP 400"),
        "{out}"
    );
    assert_eq!(run.fake.counters().code_exchanges, 1, "{out}");
}
