//! Real MCP clients, unmodified: the official TypeScript SDK and Python SDK
//! register, pass our consent page and the fake GitHub headlessly, and call
//! `github_whoami`. The scripts live in `tests/clients/`.
//!
//! Their dependencies are installed on first use (npm / pip from the public
//! registries). Outside CI, a machine without Node or Python skips these
//! tests with a printed notice; under CI that is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::support::{FakeGithub, Mode, TestDb, in_ci, start_broker};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn run(cmd: &str, args: &[&str], cwd: &Path) -> Result<std::process::Output, String> {
    tokio::process::Command::new(cmd)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {cmd}: {e}"))
}

fn check(output: std::process::Output, what: &str) -> Result<(), String> {
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}", String::from_utf8_lossy(&output.stderr)))
    }
}

/// Installs the TypeScript SDK once per test run (skipped when present).
async fn ts_ready() -> Result<(), String> {
    static READY: OnceCell<Result<(), String>> = OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let root = repo_root();
            if root.join("tests/clients/ts/node_modules/@modelcontextprotocol/sdk").exists() {
                return Ok(());
            }
            check(run("npm", &["ci", "--prefix", "tests/clients/ts"], &root).await?, "npm ci")
        })
        .await
        .clone()
}

/// Creates the Python virtualenv with the SDK once per test run.
async fn python_ready() -> Result<PathBuf, String> {
    static READY: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let root = repo_root();
            let venv = root.join("tests/clients/python/.venv");
            let python = venv.join("bin/python");
            if !python.exists() {
                check(run("python3", &["-m", "venv", venv.to_str().unwrap()], &root).await?, "python3 -m venv")?;
            }
            let probe = run(python.to_str().unwrap(), &["-c", "import mcp.client.auth"], &root).await?;
            if !probe.status.success() {
                let pip = venv.join("bin/pip");
                check(
                    run(pip.to_str().unwrap(), &["install", "-q", "-r", "tests/clients/python/requirements.txt"], &root).await?,
                    "pip install",
                )?;
            }
            Ok(python)
        })
        .await
        .clone()
}

/// Outside CI a missing toolchain skips; under CI it fails.
fn skip_or_fail(reason: String) {
    if in_ci() {
        panic!("SDK client prerequisites missing under CI: {reason}");
    }
    crate::support::notice(&format!("SDK client test skipped: {reason}"));
}

async fn assert_client_signs_in_and_calls_whoami(program: &str, script: &str, label: &str) {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let child = tokio::process::Command::new(program)
        .arg(script)
        .arg(broker.mcp_url())
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), child)
        .await
        .unwrap_or_else(|_| panic!("{label} client timed out"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{label} client failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("TOOL_RESULT "))
        .unwrap_or_else(|| panic!("{label}: no TOOL_RESULT line in {stdout}"));
    let user: Value = serde_json::from_str(line).unwrap();
    assert_eq!(user["login"], "octo-fixture");
    // The client really went through GitHub once, and the tool really called it.
    let counters = fake.counters();
    assert_eq!(counters.code_exchanges, 1, "{label}");
    assert!(counters.api_calls >= 2, "{label}: identity + tool call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_completes_the_flow_and_calls_whoami() {
    if let Err(reason) = ts_ready().await {
        return skip_or_fail(reason);
    }
    assert_client_signs_in_and_calls_whoami("node", "tests/clients/ts/whoami.mjs", "TypeScript SDK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_completes_the_flow_and_calls_whoami() {
    let python = match python_ready().await {
        Ok(python) => python,
        Err(reason) => return skip_or_fail(reason),
    };
    assert_client_signs_in_and_calls_whoami(python.to_str().unwrap(), "tests/clients/python/whoami.py", "Python SDK").await;
}
