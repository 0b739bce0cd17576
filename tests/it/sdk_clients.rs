//! Real MCP clients, unmodified: the official TypeScript SDK (v1 and v2) and
//! Python SDK register, pass our consent page and the fake GitHub headlessly,
//! and call `github_whoami`; then refresh after their access token expired,
//! and (the TypeScript SDKs) get back in after their client was deleted. The
//! scripts live in `tests/clients/`.
//!
//! Their dependencies are installed on first use (npm / pip from the public
//! registries). Outside CI, a machine without Node or Python skips these
//! tests with a printed notice; under CI that is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::support::{FakeGithub, Mode, TestDb, in_ci};

pub(crate) fn repo_root() -> PathBuf {
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
        Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `npm ci` in `folder` unless `package` is installed there already.
pub(crate) async fn npm_installed(folder: &str, package: &str) -> Result<(), String> {
    let root = repo_root();
    if root
        .join(folder)
        .join("node_modules")
        .join(package)
        .exists()
    {
        return Ok(());
    }
    check(
        run("npm", &["ci", "--prefix", folder], &root).await?,
        &format!("npm ci in {folder}"),
    )
}

/// Installs the TypeScript SDK once per test run (skipped when present).
pub(crate) async fn ts_ready() -> Result<(), String> {
    static READY: OnceCell<Result<(), String>> = OnceCell::const_new();
    READY
        .get_or_init(|| npm_installed("tests/clients/ts", "@modelcontextprotocol/sdk"))
        .await
        .clone()
}

/// Installs the TypeScript SDK v2 once per test run (skipped when present).
pub(crate) async fn ts2_ready() -> Result<(), String> {
    static READY: OnceCell<Result<(), String>> = OnceCell::const_new();
    READY
        .get_or_init(|| npm_installed("tests/clients/ts2", "@modelcontextprotocol/client"))
        .await
        .clone()
}

/// Creates the Python virtualenv with the SDK once per test run.
pub(crate) async fn python_ready() -> Result<PathBuf, String> {
    static READY: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let root = repo_root();
            let venv = root.join("tests/clients/python/.venv");
            let python = venv.join("bin/python");
            if !python.exists() {
                check(
                    run("python3", &["-m", "venv", venv.to_str().unwrap()], &root).await?,
                    "python3 -m venv",
                )?;
            }
            let probe = run(
                python.to_str().unwrap(),
                &["-c", "import mcp.client.auth"],
                &root,
            )
            .await?;
            if !probe.status.success() {
                let pip = venv.join("bin/pip");
                check(
                    run(
                        pip.to_str().unwrap(),
                        &[
                            "install",
                            "-q",
                            "-r",
                            "tests/clients/python/requirements.txt",
                        ],
                        &root,
                    )
                    .await?,
                    "pip install",
                )?;
            }
            Ok(python)
        })
        .await
        .clone()
}

/// Outside CI a missing toolchain skips; under CI it fails.
pub(crate) fn skip_or_fail(reason: String) {
    if in_ci() {
        panic!("SDK client prerequisites missing under CI: {reason}");
    }
    crate::support::notice(&format!("SDK client test skipped: {reason}"));
}

/// Runs an SDK client script with `args` for at most 90 s; its standard
/// output, once it is checked the script exited 0.
pub(crate) async fn run_client(program: &str, script: &str, args: &[&str], label: &str) -> String {
    let child = tokio::process::Command::new(program)
        .arg(script)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), child)
        .await
        .unwrap_or_else(|_| panic!("{label} client timed out"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{label} client failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

async fn assert_client_signs_in_and_calls_whoami(program: &str, script: &str, label: &str) {
    assert_client_signs_in_under(program, script, label, "").await;
}

/// The flow against a broker whose issuer has `issuer_path` (`""`: none).
async fn assert_client_signs_in_under(program: &str, script: &str, label: &str, issuer_path: &str) {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let public_url = format!("{{base}}{issuer_path}");
    let broker = crate::support::start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_PUBLIC_URL", &public_url)],
    )
    .await;
    let mcp_url = format!("{}{issuer_path}/mcp", broker.url);
    let stdout = run_client(program, script, &[&mcp_url], label).await;
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
    assert_client_signs_in_and_calls_whoami(
        "node",
        "tests/clients/ts/whoami.mjs",
        "TypeScript SDK",
    )
    .await;
}

/// v2 adds the issuer echo check on our metadata, RFC 9207 `iss` on the
/// callback (required, since we advertise it) and "token endpoint is HTTPS or
/// loopback"; the broker passes all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_v2_completes_the_flow_and_calls_whoami() {
    if let Err(reason) = ts2_ready().await {
        return skip_or_fail(reason);
    }
    assert_client_signs_in_and_calls_whoami(
        "node",
        "tests/clients/ts2/whoami.mjs",
        "TypeScript SDK v2",
    )
    .await;
}

/// An issuer with a path (`http://host/broker`): the SDKs discover metadata
/// at the path-inserted well-known URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_complete_the_flow_when_the_issuer_has_a_path() {
    if let Err(reason) = ts_ready().await {
        return skip_or_fail(reason);
    }
    assert_client_signs_in_under(
        "node",
        "tests/clients/ts/whoami.mjs",
        "TypeScript SDK",
        "/broker",
    )
    .await;
    if let Err(reason) = ts2_ready().await {
        return skip_or_fail(reason);
    }
    assert_client_signs_in_under(
        "node",
        "tests/clients/ts2/whoami.mjs",
        "TypeScript SDK v2",
        "/broker",
    )
    .await;
    let python = match python_ready().await {
        Ok(python) => python,
        Err(reason) => return skip_or_fail(reason),
    };
    assert_client_signs_in_under(
        python.to_str().unwrap(),
        "tests/clients/python/whoami.py",
        "Python SDK",
        "/broker",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_completes_the_flow_and_calls_whoami() {
    let python = match python_ready().await {
        Ok(python) => python,
        Err(reason) => return skip_or_fail(reason),
    };
    assert_client_signs_in_and_calls_whoami(
        python.to_str().unwrap(),
        "tests/clients/python/whoami.py",
        "Python SDK",
    )
    .await;
}

/// The SDKs identify themselves with a Client ID Metadata Document (served
/// over https by the test) instead of registering: the broker fetches it,
/// checks it, and the flow completes with the URL as client_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_sign_in_with_a_client_id_metadata_document() {
    use axum::routing::get;
    if let Err(reason) = ts_ready().await {
        return skip_or_fail(reason);
    }
    if let Err(reason) = ts2_ready().await {
        return skip_or_fail(reason);
    }
    let python = match python_ready().await {
        Ok(python) => python,
        Err(reason) => return skip_or_fail(reason),
    };
    // The document names its own URL, which needs the port: serve it from a
    // shared cell filled once the server is bound.
    let doc_url = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let cell = doc_url.clone();
    let router = axum::Router::new().route(
        "/clients/sdk.json",
        get(move || {
            let url = cell.get().cloned().unwrap_or_default();
            async move {
                axum::Json(serde_json::json!({
                    "client_id": url,
                    "client_name": "SDK test client (CIMD)",
                    "redirect_uris": ["http://127.0.0.1:33418/callback"],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "none",
                }))
            }
        }),
    );
    let https = crate::support::tls::serve_https(router).await;
    doc_url
        .set(format!("{}/clients/sdk.json", https.base))
        .unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &https.ca_pem).unwrap();
    let config = format!(
        "cimd_allowed_hosts = [\"127.0.0.1\"]\ncimd_ca_file = \"{}\"\n",
        ca_file.display()
    );
    let python = python.to_str().unwrap().to_string();
    for (program, script, label) in [
        ("node", "tests/clients/ts/whoami.mjs", "TypeScript SDK"),
        ("node", "tests/clients/ts2/whoami.mjs", "TypeScript SDK v2"),
        (
            python.as_str(),
            "tests/clients/python/whoami.py",
            "Python SDK",
        ),
    ] {
        let db = TestDb::sqlite();
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = crate::support::start_broker_with_settings(&db, &fake, &config).await;
        let mcp_url = broker.mcp_url();
        let args = ["--client-metadata-url", doc_url.get().unwrap(), &mcp_url];
        let stdout = run_client(program, script, &args, label).await;
        assert!(stdout.contains("octo-fixture"), "{label}: {stdout}");
        // The client is the document, fetched and cached; nothing registered.
        let client = broker
            .state
            .store
            .get_client(doc_url.get().unwrap())
            .await
            .unwrap();
        assert_eq!(
            client.map(|c| c.registration).as_deref(),
            Some("cimd"),
            "{label}"
        );
        let dcr = broker.state.store.dump_table_text("clients").await.unwrap();
        assert!(
            !dcr.iter().any(|v| v == "dcr"),
            "{label}: no dynamic registration"
        );
    }
}
