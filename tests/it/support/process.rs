//! The broker as a real process, for tests of several instances, of its
//! logs and of its shutdown.

use std::time::{Duration, Instant};

use super::TestDb;

pub struct BrokerProcess {
    child: std::process::Child,
    pub url: String,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BrokerProcess {
    /// Sends SIGTERM, as an orchestrator stopping the broker would.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM");
    }

    /// The exit status, if the process ends within `limit`.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// A real `mcp-broker` process on `db`, answering on its own port but
/// issuing tokens for `public_url` (as instances behind one load balancer).
pub async fn spawn_broker(
    db: &TestDb,
    providers: &std::path::Path,
    public_url: &str,
    extra_env: &[(&str, &str)],
) -> BrokerProcess {
    spawn_broker_with(db, providers, Some(public_url), extra_env, None).await
}

/// The general form: `public_url` `None` is the process's own URL; `stderr`
/// (its logs) goes to that file instead of the test's.
pub async fn spawn_broker_with(
    db: &TestDb,
    providers: &std::path::Path,
    public_url: Option<&str>,
    extra_env: &[(&str, &str)],
    stderr: Option<std::fs::File>,
) -> BrokerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-broker"));
    command
        .current_dir(providers)
        .env("MCP_BROKER_BIND", format!("127.0.0.1:{port}"))
        .env("MCP_BROKER_PUBLIC_URL", public_url.unwrap_or(&url))
        .env("MCP_BROKER_DATABASE_URL", &db.url)
        .env("MCP_BROKER_ENCRYPTION_KEY", db.encryption_key())
        .env("MCP_BROKER_PROVIDERS_DIR", providers)
        .env("MCP_BROKER_LOG", "warn")
        .envs(extra_env.iter().copied())
        .arg("serve");
    if let Some(file) = stderr {
        command.stderr(file);
    }
    let process = BrokerProcess {
        url,
        child: command.spawn().unwrap(),
    };
    let ready = format!("{}/readyz", process.url);
    for _ in 0..200 {
        if reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker process did not start");
}

/// `mcp-broker <args>` as the operator `ops-alice` runs it, against
/// `broker`'s database with the fake's provider file: (success, stdout,
/// stderr). Inherited `MCP_BROKER_*` variables are dropped. The wait blocks
/// only this worker (`block_in_place`, multi-thread tests), so the broker
/// and the fake in this process keep answering the command.
pub fn operator_command(
    broker: &super::TestBroker,
    db: &TestDb,
    fake: &super::FakeGithub,
    args: &[&str],
) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("github.toml"), fake.provider_toml()).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-broker"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MCP_BROKER_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir.path())
        .env("MCP_BROKER_DATABASE_URL", &db.url)
        .env("MCP_BROKER_ENCRYPTION_KEY", db.encryption_key())
        .env("MCP_BROKER_PROVIDERS_DIR", dir.path())
        .env("MCP_BROKER_PUBLIC_URL", &broker.url)
        .env("MCP_BROKER_OPERATOR", "ops-alice")
        .env("MCP_BROKER_LOG", "warn")
        .args(args);
    let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
