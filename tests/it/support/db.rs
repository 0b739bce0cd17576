//! One fresh database per test: a SQLite file in a temp folder, or a new
//! database on the PostgreSQL server (dropped when the test ends).

use base64::Engine;
use sqlx::Connection;

pub struct TestDb {
    pub url: String,
    pub kind: Kind,
    key: [u8; 32],
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// The server CI starts; override with BROKER_TEST_POSTGRES_URL.
fn admin_url() -> String {
    std::env::var("BROKER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("broker.db").display());
        TestDb {
            url,
            kind: Kind::Sqlite,
            key: rand::random(),
            _dir: Some(dir),
            pg_name: None,
        }
    }

    /// A new PostgreSQL database, or `None` (with a notice) when no server is
    /// reachable outside CI. Under CI an unreachable server fails the test.
    pub async fn postgres() -> Option<TestDb> {
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) if !super::in_ci() => {
                super::notice(&format!(
                    "PostgreSQL half skipped: cannot reach {admin} ({e})"
                ));
                return None;
            }
            Err(e) => panic!("CI requires PostgreSQL at {admin}: {e}"),
        };
        let name = format!("mcpb_test_{}", hex_id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            url: url.to_string(),
            kind: Kind::Postgres,
            key: rand::random(),
            _dir: None,
            pg_name: Some(name),
        })
    }

    /// Both backends, for tests that must hold on each.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite()];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    /// Runs SQL against the database behind the broker's back (tests use it
    /// to let time pass, or to play an attacker moving ciphertexts).
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url)
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        sqlx::Connection::close(conn).await.unwrap();
    }

    pub fn encryption_key(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// The SQLite database file and its WAL, for raw byte scans.
    pub fn sqlite_files(&self) -> Vec<std::path::PathBuf> {
        let Some(dir) = &self._dir else { return vec![] };
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("broker.db")
            })
            .collect()
    }
}

impl TestDb {
    /// The same PostgreSQL database reached through `addr` (a relay the test
    /// can cut); the original still owns and drops the database.
    pub fn through(&self, addr: std::net::SocketAddr) -> TestDb {
        assert_eq!(self.kind, Kind::Postgres, "only a server can be relayed");
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_ip_host(addr.ip()).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        TestDb {
            url: url.to_string(),
            kind: Kind::Postgres,
            key: self.key,
            _dir: None,
            pg_name: None,
        }
    }

    /// The server's address, as `host:port`.
    pub fn server_addr(&self) -> String {
        let url = url::Url::parse(&self.url).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
    }
}

fn hex_id() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = admin_url();
        // Drop runs outside async context: use a private runtime on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
