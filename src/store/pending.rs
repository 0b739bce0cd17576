//! Authorization requests in flight, and the codes they end in.

use super::{Store, StoreError};

/// An `/authorize` request between our consent page and the upstream callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub provider: String,
    pub csrf_hash: String,
    pub upstream_state_hash: Option<String>,
    pub upstream_verifier_enc: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when consent was skipped because this user approved before.
    pub consented_user_id: Option<String>,
    /// Hash of the cookie that ties the upstream leg to the approving browser.
    pub browser_binding_hash: Option<String>,
    /// OIDC: hash of the nonce sent upstream, checked against the id_token.
    pub upstream_nonce_hash: Option<String>,
    /// Set on a leg after the first: the grant this leg's link joins.
    pub grant_id: Option<String>,
}

const PENDING_COLUMNS: &str = "id, client_id, redirect_uri, state, code_challenge, scope, resource, \
     provider, csrf_hash, upstream_state_hash, upstream_verifier_enc, created_at, expires_at, consented_user_id, \
     browser_binding_hash, upstream_nonce_hash, grant_id";

fn pending_from(r: &sqlx::any::AnyRow) -> Result<PendingAuthorization, sqlx::Error> {
    use sqlx::Row;
    Ok(PendingAuthorization {
        id: r.try_get(0)?,
        client_id: r.try_get(1)?,
        redirect_uri: r.try_get(2)?,
        state: r.try_get(3)?,
        code_challenge: r.try_get(4)?,
        scope: r.try_get(5)?,
        resource: r.try_get(6)?,
        provider: r.try_get(7)?,
        csrf_hash: r.try_get(8)?,
        upstream_state_hash: r.try_get(9)?,
        upstream_verifier_enc: r.try_get(10)?,
        created_at: r.try_get(11)?,
        expires_at: r.try_get(12)?,
        consented_user_id: r.try_get(13)?,
        browser_binding_hash: r.try_get(14)?,
        upstream_nonce_hash: r.try_get(15)?,
        grant_id: r.try_get(16)?,
    })
}

/// A code we issued, stored by its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

type CodeRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

impl Store {
    pub async fn insert_pending(&self, p: &PendingAuthorization) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO pending_authorizations ({PENDING_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&p.id)
        .bind(&p.client_id)
        .bind(&p.redirect_uri)
        .bind(&p.state)
        .bind(&p.code_challenge)
        .bind(&p.scope)
        .bind(&p.resource)
        .bind(&p.provider)
        .bind(&p.csrf_hash)
        .bind(&p.upstream_state_hash)
        .bind(&p.upstream_verifier_enc)
        .bind(p.created_at)
        .bind(p.expires_at)
        .bind(&p.consented_user_id)
        .bind(&p.browser_binding_hash)
        .bind(&p.upstream_nonce_hash)
        .bind(&p.grant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_pending(&self, id: &str) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_authorizations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(pending_from).transpose()?)
    }

    /// Records the upstream leg after consent. Only once: a second consent POST
    /// for the same request finds the state already set and changes nothing.
    pub async fn start_upstream(
        &self,
        id: &str,
        upstream_state_hash: &str,
        upstream_verifier_enc: &[u8],
        browser_binding_hash: &str,
        upstream_nonce_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pending_authorizations SET upstream_state_hash = $1, upstream_verifier_enc = $2, \
             browser_binding_hash = $3, upstream_nonce_hash = $4 WHERE id = $5 AND upstream_state_hash IS NULL",
        )
        .bind(upstream_state_hash)
        .bind(upstream_verifier_enc)
        .bind(browser_binding_hash)
        .bind(upstream_nonce_hash)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes and returns the pending request an upstream `state` belongs to:
    /// the state is single-use because the row is gone after the first call.
    pub async fn take_pending_by_upstream_state(
        &self,
        upstream_state_hash: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM pending_authorizations WHERE upstream_state_hash = $1 RETURNING {PENDING_COLUMNS}"
        ))
        .bind(upstream_state_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(pending_from).transpose()?)
    }

    pub async fn delete_pending(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_authorizations WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_code(&self, c: &AuthorizationCodeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, \
             code_challenge, scope, resource, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&c.code_hash)
        .bind(&c.grant_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.scope)
        .bind(&c.resource)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRow>, StoreError> {
        let row: Option<CodeRow> = sqlx::query_as(
            "SELECT code_hash, grant_id, client_id, redirect_uri, code_challenge, scope, resource, \
             created_at, expires_at, used_at FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| AuthorizationCodeRow {
            code_hash: r.0,
            grant_id: r.1,
            client_id: r.2,
            redirect_uri: r.3,
            code_challenge: r.4,
            scope: r.5,
            resource: r.6,
            created_at: r.7,
            expires_at: r.8,
            used_at: r.9,
        }))
    }
}
