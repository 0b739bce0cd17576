//! Signing keys for our access tokens, shared by every instance on one database.

use super::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 DER, sealed by the vault (associated data names the kid).
    pub private_key_enc: Vec<u8>,
    pub public_x: String,
    pub public_y: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

type Row = (String, String, Vec<u8>, String, String, i64, Option<i64>);

/// Insertion order, finer than the second-resolution `created_at`.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_enc, public_x, public_y, created_at, retired_at, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_key_enc)
        .bind(&k.public_x)
        .bind(&k.public_y)
        .bind(k.created_at)
        .bind(k.retired_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn retire_signing_key(&self, kid: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(kid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keys not retired, newest first.
    pub async fn active_signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT kid, alg, private_key_enc, public_x, public_y, created_at, retired_at \
             FROM signing_keys WHERE retired_at IS NULL ORDER BY COALESCE(created_at_ms, created_at * 1000) DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SigningKeyRow {
                kid: r.0,
                alg: r.1,
                private_key_enc: r.2,
                public_x: r.3,
                public_y: r.4,
                created_at: r.5,
                retired_at: r.6,
            })
            .collect())
    }

    /// Replaces a key's sealed private key if it is unchanged (KEK rotation).
    pub async fn reseal_signing_key(
        &self,
        kid: &str,
        old_enc: &[u8],
        new_enc: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET private_key_enc = $1 WHERE kid = $2 AND private_key_enc = $3",
        )
        .bind(new_enc)
        .bind(kid)
        .bind(old_enc)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
