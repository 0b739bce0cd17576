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
    /// The sealed answer of the rotation that used this token.
    pub successor_enc: Option<Vec<u8>>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<Vec<u8>>,
);

async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    t: &RefreshTokenRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, scope, resource, \
         created_at, expires_at, used_at, successor_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.token_hash)
    .bind(&t.grant_id)
    .bind(&t.client_id)
    .bind(&t.scope)
    .bind(&t.resource)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.used_at)
    .bind(&t.successor_enc)
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    pub async fn insert_refresh_token(&self, t: &RefreshTokenRow) -> Result<(), StoreError> {
        insert(&self.pool, t).await
    }

    pub async fn get_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRow>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT token_hash, grant_id, client_id, scope, resource, created_at, expires_at, used_at, \
             successor_enc FROM refresh_tokens WHERE token_hash = $1",
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
            successor_enc: r.8,
        }))
    }

    /// Redeems a code: marks it used and stores the refresh token issued for
    /// it, together. Returns false (storing nothing) when it was already used.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        refresh: Option<&RefreshTokenRow>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(row) = refresh {
            insert(&mut *tx, row).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Rotation: marks `old` used (keeping the sealed answer it produced) and
    /// stores `new`, in one transaction. Returns false (and stores nothing)
    /// when `old` was already used: of two concurrent rotations one wins.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRow,
        successor_enc: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1, successor_enc = $2 \
             WHERE token_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(successor_enc)
        .bind(old_hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert(&mut *tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }
}
