//! Users, grants, and the upstream links that map a grant to sealed upstream
//! tokens: the heart of the broker.

use super::{AuthorizationCodeRow, Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub login: String,
}

/// What the callback has in hand to store one upstream token.
#[derive(Clone, Debug)]
pub struct NewUpstreamLink {
    pub id: String,
    pub provider: String,
    pub access_token_enc: Vec<u8>,
    pub refresh_token_enc: Option<Vec<u8>>,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamLinkRow {
    pub id: String,
    pub grant_id: String,
    pub provider: String,
    pub access_token_enc: Vec<u8>,
    pub refresh_token_enc: Option<Vec<u8>>,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

type LinkRow = (
    String,
    String,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
);

type UserTuple = (String, String, String, String);
const USER_COLUMNS: &str = "id, provider, subject, login";

fn user_from((id, provider, subject, login): UserTuple) -> UserRow {
    UserRow {
        id,
        provider,
        subject,
        login,
    }
}

/// A grant and whether it may still be honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantStatus {
    pub user_id: String,
    pub client_id: String,
    pub revoked: bool,
}

impl Store {
    /// The callback's writes, all or nothing: the user (created or renamed), a
    /// new grant, its upstream link and our authorization code.
    pub async fn complete_authorization(
        &self,
        user: &UserRow,
        grant_id: &str,
        link: &NewUpstreamLink,
        code: &AuthorizationCodeRow,
        now: i64,
    ) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (user_id,): (String,) = sqlx::query_as(
            "INSERT INTO users (id, provider, subject, login, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (provider, subject) DO UPDATE SET login = excluded.login RETURNING id",
        )
        .bind(&user.id)
        .bind(&user.provider)
        .bind(&user.subject)
        .bind(&user.login)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, scope, resource, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(grant_id)
        .bind(&user_id)
        .bind(&code.client_id)
        .bind(&code.scope)
        .bind(&code.resource)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO upstream_links (id, grant_id, provider, access_token_enc, refresh_token_enc, \
             scopes, expires_at, refresh_expires_at, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
        )
        .bind(&link.id)
        .bind(grant_id)
        .bind(&link.provider)
        .bind(&link.access_token_enc)
        .bind(&link.refresh_token_enc)
        .bind(&link.scopes)
        .bind(link.expires_at)
        .bind(link.refresh_expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, \
             code_challenge, scope, resource, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(&code.code_hash)
        .bind(grant_id)
        .bind(&code.client_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.scope)
        .bind(&code.resource)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user_id)
    }

    /// The one indexed read the bearer check makes per request.
    pub async fn grant_status(&self, grant_id: &str) -> Result<Option<GrantStatus>, StoreError> {
        let row: Option<(String, String, Option<i64>)> =
            sqlx::query_as("SELECT user_id, client_id, revoked_at FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(user_id, client_id, revoked_at)| GrantStatus {
            user_id,
            client_id,
            revoked: revoked_at.is_some(),
        }))
    }

    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(grant_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn upstream_link(
        &self,
        grant_id: &str,
        provider: &str,
    ) -> Result<Option<UpstreamLinkRow>, StoreError> {
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT id, grant_id, provider, access_token_enc, refresh_token_enc, scopes, expires_at, \
             refresh_expires_at, version, created_at, updated_at \
             FROM upstream_links WHERE grant_id = $1 AND provider = $2",
        )
        .bind(grant_id)
        .bind(provider)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| UpstreamLinkRow {
            id: r.0,
            grant_id: r.1,
            provider: r.2,
            access_token_enc: r.3,
            refresh_token_enc: r.4,
            scopes: r.5,
            expires_at: r.6,
            refresh_expires_at: r.7,
            version: r.8,
            created_at: r.9,
            updated_at: r.10,
        }))
    }

    pub async fn find_user(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE provider = $1 AND subject = $2"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(user_from))
    }

    pub async fn get_user(&self, user_id: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(user_from))
    }
}
