//! The storage contract. One `Store`, one SQL text per operation, run by sqlx's
//! Any driver against SQLite or PostgreSQL (`$n` placeholders work on both).
//! Types crossing this boundary are plain structs; nothing above it sees sqlx.

mod audit;
mod clients;
mod consents;
mod grants;
mod keys;
mod links;
mod operator;
mod pending;
mod sweep;
mod tokens;

pub use audit::{AuditChainState, AuditFilter, AuditPurge, AuditRecord, NewAuditRecord};
pub use clients::{CimdStored, ClientRow, ConfigSync};
pub use grants::{GrantStatus, NewGrant, UserRow};
pub use keys::SigningKeyRow;
pub use links::{NewUpstreamLink, UpstreamLinkRow};
pub use operator::{ClientDeletion, ClientSummary, Cursor, GrantFilter, GrantSummary, UserSummary};
pub use pending::{AuthorizationCodeRow, PendingAuthorization};
pub use sweep::Swept;
pub use tokens::RefreshTokenRow;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens the pool. A `sqlite:` file is created if missing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let in_memory = backend == Backend::Sqlite && url.contains(":memory:");
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                // Each connection to `sqlite::memory:` is its own database:
                // keep exactly one, forever, so all callers see the same one.
                Backend::Sqlite if in_memory => 1,
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout((!in_memory).then_some(std::time::Duration::from_secs(600)))
            .max_lifetime((!in_memory).then_some(std::time::Duration::from_secs(1800)))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout
                        // makes concurrent writers wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await?;
        Ok(Store { pool, backend })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database server's clock, in Unix seconds. Leases shared between
    /// instances are timed by it, so instances whose own clocks disagree
    /// still agree on when a lease runs out. (With SQLite every instance is
    /// on one machine anyway.)
    pub async fn db_now(&self) -> Result<i64, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT CAST(strftime('%s', 'now') AS BIGINT)",
            Backend::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
        };
        let (now,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(now)
    }

    /// The cheapest round trip (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool itself, for unit tests that play an attacker editing rows.
    #[cfg(test)]
    pub(crate) fn pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every stored byte of the given tables, for tests that prove secrets are
    /// not kept in clear. Not used by the service.
    pub async fn dump_table_text(&self, table: &str) -> Result<Vec<String>, StoreError> {
        use sqlx::Row;
        // Table names come from our own tests, never from requests.
        let sql = format!("SELECT * FROM {table}");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                    out.push(s);
                } else if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                    out.push(String::from_utf8_lossy(&b).into_owned());
                }
            }
        }
        Ok(out)
    }
}

/// A fresh random identifier (128 bits, URL-safe). Ids are not secrets.
pub fn new_id() -> String {
    crate::tokens::opaque::random_urlsafe(16)
}

pub(crate) fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).expect("a list of strings serializes")
}

pub(crate) fn parse_json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
