//! Our refresh tokens, stored by hash.

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

type Row = (String, String, String, String, String, i64, i64, Option<i64>);

impl Store {
    pub async fn insert_refresh_token(&self, t: &RefreshTokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, scope, resource, \
             created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.token_hash)
        .bind(&t.grant_id)
        .bind(&t.client_id)
        .bind(&t.scope)
        .bind(&t.resource)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRow>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT token_hash, grant_id, client_id, scope, resource, created_at, expires_at, used_at \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| RefreshTokenRow {
            token_hash: r.0,
            grant_id: r.1,
            client_id: r.2,
            scope: r.3,
            resource: r.4,
            created_at: r.5,
            expires_at: r.6,
            used_at: r.7,
        }))
    }

    /// Rotation: marks `old` used and stores `new` in one transaction. Returns
    /// false (and stores nothing) when `old` was already used.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRow,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(old_hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, scope, resource, \
             created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&new.token_hash)
        .bind(&new.grant_id)
        .bind(&new.client_id)
        .bind(&new.scope)
        .bind(&new.resource)
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(new.used_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
