//! Deleting what has expired, so no table grows without bound and no sealed
//! secret outlives its use.

use super::{Store, StoreError};

/// How many rows one sweep removed or cleared, per kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub pending: u64,
    pub codes: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub sealed_successors: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.pending + self.codes + self.refresh_tokens + self.sessions + self.sealed_successors
    }
}

/// Used codes are kept an hour past expiry so a late replay is still seen.
const CODE_KEEP_SECS: i64 = 3600;

impl Store {
    /// `grace_secs`: how long a rotated refresh token's sealed answer must
    /// stay (the replay grace window); after it the answer is erased.
    pub async fn sweep_expired(&self, now: i64, grace_secs: i64) -> Result<Swept, StoreError> {
        let run = |sql: &'static str, bound: i64| async move {
            Ok::<u64, StoreError>(
                sqlx::query(sql)
                    .bind(bound)
                    .execute(&self.pool)
                    .await?
                    .rows_affected(),
            )
        };
        Ok(Swept {
            pending: run(
                "DELETE FROM pending_authorizations WHERE expires_at < $1",
                now,
            )
            .await?,
            codes: run(
                "DELETE FROM authorization_codes WHERE expires_at < $1",
                now - CODE_KEEP_SECS,
            )
            .await?,
            // Used refresh tokens stay until they expire: reuse after the
            // grace window must still be recognised (and revoke the grant).
            refresh_tokens: run("DELETE FROM refresh_tokens WHERE expires_at < $1", now).await?,
            sessions: run("DELETE FROM browser_sessions WHERE expires_at < $1", now).await?,
            sealed_successors: run(
                "UPDATE refresh_tokens SET successor_enc = NULL \
                 WHERE successor_enc IS NOT NULL AND used_at < $1",
                now - grace_secs,
            )
            .await?,
        })
    }
}
