//! The MCP conformance suite (authorization mode) against the broker.
//!
//! `@modelcontextprotocol/conformance` (pinned in `tests/conformance/`, run
//! with the Node 22 that the `node` package there provides) tests an
//! authorization server in two scenarios, in this order:
//! - `authorization-server-metadata-endpoint`: RFC 8414 metadata, `issuer`
//!   equal to `--url` byte for byte, `code` and `S256` advertised;
//! - `authorization-code-grant`: with a pre-registered client (`--client-id`,
//!   redirect `http://127.0.0.1:<port>/callback`), PKCE, `state` and
//!   `resource`, it prints the authorization URL for a person to open in a
//!   browser and waits for its own callback server to be hit; then it checks
//!   `code`, `state`, `iss`, and redeems the code (200 JSON, `no-store`).
//!
//! The suite has no URL-opener hook and follows no redirects itself: the
//! authorization step is the user's. So this test is that user: it reads the
//! URL from the suite's output, approves our consent page (cookie + CSRF
//! form), passes the fake GitHub, and lets the final redirect reach the
//! suite's callback server, exactly as a browser would. The broker runs
//! unchanged; nothing is auto-approved.
//!
//! The npm dependencies are installed on first use. Outside CI, a machine
//! without npm (or offline) skips this test with a printed notice; under CI
//! that is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::OnceCell;

use crate::sdk_clients::repo_root;
use crate::support::oauth_client::{http, location, open_consent, submit_consent};
use crate::support::{FakeGithub, Mode, TestDb, in_ci, start_broker_with_settings};

const SUITE_DIR: &str = "tests/conformance";
const CLIENT_ID: &str = "mcp-conformance";
/// The scenarios this pinned suite version runs in authorization mode.
const SCENARIOS: [&str; 2] = [
    "authorization-server-metadata-endpoint",
    "authorization-code-grant",
];

/// The suite's client: public (the suite authenticates with `none` whenever
/// the metadata offers it), redirecting to the suite's callback server.
fn client_config(port: u16) -> String {
    format!(
        r#"
[[clients]]
client_id = "{CLIENT_ID}"
client_name = "MCP conformance suite"
redirect_uris = ["http://127.0.0.1:{port}/callback"]
token_endpoint_auth_method = "none"
grant_types = ["authorization_code"]
"#
    )
}

/// Node 22 from the `node` package; the suite does not load on Node 20.
fn node_binary(root: &Path) -> PathBuf {
    root.join(SUITE_DIR).join("node_modules/.bin/node")
}

fn suite_entry(root: &Path) -> PathBuf {
    root.join(SUITE_DIR).join("node_modules/.bin/conformance")
}

/// Installs the suite and Node 22 once per test run (skipped when present).
async fn suite_ready() -> Result<(), String> {
    static READY: OnceCell<Result<(), String>> = OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let root = repo_root();
            if node_binary(&root).exists() && suite_entry(&root).exists() {
                return Ok(());
            }
            let output = tokio::process::Command::new("npm")
                .args([
                    "ci",
                    "--prefix",
                    SUITE_DIR,
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .current_dir(&root)
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| format!("cannot run npm: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "npm ci --prefix {SUITE_DIR} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            if !node_binary(&root).exists() {
                return Err(format!(
                    "npm ci --prefix {SUITE_DIR} installed no node binary"
                ));
            }
            Ok(())
        })
        .await
        .clone()
}

/// A port nobody listens on now, for the suite's callback server.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The user in the browser: opens the authorization URL, approves the
/// consent page, passes the (fake) GitHub sign-in, and follows the redirects
/// until the last one lands on the suite's callback server.
async fn approve_in_browser(authorize_url: String, broker: String, callback: String) {
    let page = open_consent(&authorize_url).await;
    let response = submit_consent(&broker, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(response.status(), 303, "consent POST");
    // The browser keeps the cookie binding it to the upstream leg.
    let flow = crate::support::oauth_client::flow_cookie(&response);
    let last = crate::support::oauth_client::follow_until(
        location(&response),
        &flow,
        &format!("{callback}?"),
    )
    .await;
    let delivered = http().get(&last).send().await.unwrap();
    assert_eq!(
        delivered.status(),
        200,
        "the suite's callback server at {last}"
    );
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
        Err(error) => error.to_string(),
    }
}

/// Every `checks.json` the suite wrote, for failure messages (its summary
/// prints counts only).
fn saved_checks(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path().join("checks.json")) {
            out.push_str(&format!(
                "--- {}\n{text}\n",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_authorization_mode_passes() {
    if let Err(reason) = suite_ready().await {
        if in_ci() {
            panic!("conformance suite prerequisites missing under CI: {reason}");
        }
        return crate::support::notice(&format!("conformance suite test skipped: {reason}"));
    }
    let root = repo_root();
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker_with_settings(&db, &fake, &client_config(port)).await;
    let results = tempfile::tempdir().unwrap();

    let mut child = tokio::process::Command::new(node_binary(&root))
        .arg(suite_entry(&root))
        .arg("authorization")
        .args(["--url", &broker.url])
        .args(["--client-id", CLIENT_ID])
        .args(["--resource", &broker.mcp_url()])
        .args(["--port", &port.to_string()])
        .arg("--output-dir")
        .arg(results.path())
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the conformance suite");
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let stdout = child.stdout.take().unwrap();

    let mut transcript = String::new();
    let mut browser: Option<Result<(), String>> = None;
    let authorize_prefix = format!("{}/authorize?", broker.url);
    let run = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            transcript.push_str(&line);
            transcript.push('\n');
            if browser.is_none() && line.starts_with(&authorize_prefix) {
                // A task, so a failed step is reported alongside the suite's output.
                let step = tokio::spawn(approve_in_browser(
                    line.clone(),
                    broker.url.clone(),
                    callback.clone(),
                ));
                let result = step.await.map_err(panic_message);
                let failed = result.is_err();
                browser = Some(result);
                if failed {
                    // The suite would wait minutes for a callback that never comes.
                    break;
                }
            }
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .is_ok();
    if !finished || matches!(browser, Some(Err(_))) {
        child.start_kill().ok();
    }
    let status = child.wait().await.unwrap();
    let stderr_text = tokio::time::timeout(Duration::from_secs(5), stderr_text)
        .await
        .map(|r| r.unwrap_or_default())
        .unwrap_or_default();
    let report = format!(
        "suite stdout:\n{transcript}\nsuite stderr:\n{stderr_text}\nsaved checks:\n{}",
        saved_checks(results.path())
    );
    assert!(
        finished,
        "conformance suite timed out after 120 s\n{report}"
    );

    match &browser {
        None => panic!(
            "the suite never printed an authorization URL starting with {authorize_prefix}\n{report}"
        ),
        Some(Err(e)) => panic!("the browser step failed: {e}\n{report}"),
        Some(Ok(())) => {}
    }
    assert!(
        status.success(),
        "conformance suite exited with {status}\n{report}"
    );
    let ran: Vec<&str> = transcript
        .lines()
        .filter_map(|l| {
            l.strip_prefix("=== Running scenario: ")?
                .strip_suffix(" ===")
        })
        .collect();
    for scenario in SCENARIOS {
        assert!(
            ran.contains(&scenario),
            "scenario {scenario} did not run\n{report}"
        );
    }
    for scenario in ran {
        let summary = transcript
            .lines()
            .find_map(|l| l.strip_prefix(&format!("✓ {scenario}: ")))
            .unwrap_or_else(|| panic!("no passing summary line for {scenario}\n{report}"));
        // A skipped check counts as neither passed nor failed: demand a pass.
        assert!(
            !summary.starts_with("0 passed") && summary.ends_with(" passed, 0 failed"),
            "{scenario}: {summary}\n{report}"
        );
    }
    assert!(
        transcript
            .lines()
            .any(|l| l.starts_with("Total: ") && l.ends_with(" passed, 0 failed")),
        "{report}"
    );
    // The grant really went through the nested GitHub sign-in.
    assert_eq!(fake.counters().code_exchanges, 1, "{report}");
    // Shown with --nocapture; the harness hides it otherwise.
    println!("{report}");
}
