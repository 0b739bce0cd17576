//! Deleting what has expired, so no table grows without bound and no sealed
//! secret outlives its use; and what a revocation left behind: the dead
//! tokens of revoked grants, then the grants themselves. The audit ledger
//! keeps their history.

use super::{Store, StoreError};

/// How many rows one sweep removed or cleared, per kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub pending: u64,
    pub codes: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub sealed_successors: u64,
    /// Refresh tokens and codes of grants revoked over `DEAD_TOKEN_KEEP_SECS` ago.
    pub dead_tokens: u64,
    /// Grants revoked over `REVOKED_GRANT_KEEP_SECS` ago, with nothing left under them.
    pub revoked_grants: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.pending
            + self.codes
            + self.refresh_tokens
            + self.sessions
            + self.sealed_successors
            + self.dead_tokens
            + self.revoked_grants
    }
}

/// Used codes are kept an hour past expiry so a late replay is still seen,
/// and at least as long as the access token a code bought lives: a grant
/// without codes or refresh tokens must be one nothing can use (`dead_grants`).
const CODE_KEEP_SECS: i64 = 3600;
/// The tokens of a revoked grant stay a day: a stolen refresh token replayed
/// soon after a revocation is still recognised as the revoked grant's (and
/// the incident is still being looked at); later it is just unknown, which
/// answers the same `invalid_grant`.
pub const DEAD_TOKEN_KEEP_SECS: i64 = 24 * 3600;
/// A revoked grant's row stays 30 days, for operators looking it up. Never
/// while an upstream link is left: its upstream revocation still awaits a
/// retry, and the link's row needs its grant.
pub const REVOKED_GRANT_KEEP_SECS: i64 = 30 * 24 * 3600;

/// A grant (`g`) nothing issued under can still be used: no refresh token
/// (those stay until they expire, and outlive the access token issued with
/// them), no code (kept at least an access token's lifetime past expiry) and
/// no sign-in in progress. Its user stopped using it, or never finished
/// signing in, and its sealed upstream tokens serve no one.
pub(super) const NOTHING_USABLE: &str = "NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.grant_id = g.id) \
     AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = g.id) \
     AND NOT EXISTS (SELECT 1 FROM pending_authorizations p WHERE p.grant_id = g.id)";

impl Store {
    /// `grace_secs`: how long a rotated refresh token's sealed answer must
    /// stay (the replay grace window); after it the answer is erased.
    /// `access_ttl_secs`: the lifetime of our access tokens.
    pub async fn sweep_expired(
        &self,
        now: i64,
        grace_secs: i64,
        access_ttl_secs: i64,
    ) -> Result<Swept, StoreError> {
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
                now - CODE_KEEP_SECS.max(access_ttl_secs),
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
            dead_tokens: run(
                "DELETE FROM refresh_tokens WHERE grant_id IN \
                 (SELECT id FROM grants WHERE revoked_at < $1)",
                now - DEAD_TOKEN_KEEP_SECS,
            )
            .await?
                + run(
                    "DELETE FROM authorization_codes WHERE grant_id IN \
                     (SELECT id FROM grants WHERE revoked_at < $1)",
                    now - DEAD_TOKEN_KEEP_SECS,
                )
                .await?,
            revoked_grants: run(
                "DELETE FROM grants WHERE revoked_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM upstream_links l WHERE l.grant_id = grants.id) \
                 AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.grant_id = grants.id) \
                 AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = grants.id)",
                now - REVOKED_GRANT_KEEP_SECS,
            )
            .await?,
        })
    }

    /// Live grants nothing issued under can still be used, created before
    /// `created_before` (so a sign-in between its legs is never taken), in
    /// pages after `after`: see `NOTHING_USABLE`.
    pub async fn dead_grants(
        &self,
        created_before: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT g.id FROM grants g WHERE g.revoked_at IS NULL AND g.created_at < $1 \
             AND g.id > $2 AND {NOTHING_USABLE} ORDER BY g.id LIMIT $3"
        ))
        .bind(created_before)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Revokes one grant `dead_grants` listed, if it still is dead: a sign-in
    /// or a refresh that reached it since the listing keeps it.
    pub async fn revoke_grant_if_dead(
        &self,
        grant_id: &str,
        now: i64,
        created_before: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            // `revoked_at IS NULL` on the updated row itself: a concurrent
            // revocation is re-checked there, so only one instance wins.
            "UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND created_at < $3 AND id IN (SELECT g.id FROM grants g WHERE g.id = $2 \
             AND {NOTHING_USABLE})"
        ))
        .bind(now)
        .bind(grant_id)
        .bind(created_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
