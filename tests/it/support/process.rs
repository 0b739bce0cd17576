//! The broker as a real process, for tests of several instances.

use std::time::Duration;

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

/// A real `mcp-broker` process on `db`, answering on its own port but
/// issuing tokens for `public_url` (as instances behind one load balancer).
pub async fn spawn_broker(
    db: &TestDb,
    providers: &std::path::Path,
    public_url: &str,
    extra_env: &[(&str, &str)],
) -> BrokerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = BrokerProcess {
        url: format!("http://127.0.0.1:{port}"),
        child: std::process::Command::new(env!("CARGO_BIN_EXE_mcp-broker"))
            .current_dir(providers)
            .env("MCP_BROKER_BIND", format!("127.0.0.1:{port}"))
            .env("MCP_BROKER_PUBLIC_URL", public_url)
            .env("MCP_BROKER_DATABASE_URL", &db.url)
            .env("MCP_BROKER_ENCRYPTION_KEY", db.encryption_key())
            .env("MCP_BROKER_PROVIDERS_DIR", providers)
            .env("MCP_BROKER_LOG", "warn")
            .envs(extra_env.iter().copied())
            .arg("serve")
            .spawn()
            .unwrap(),
    };
    let health = format!("{}/.well-known/oauth-authorization-server", process.url);
    for _ in 0..200 {
        if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker process did not start");
}
