//! Users, grants, and the upstream links that map a grant to sealed upstream
//! tokens: the heart of the broker.

use super::links::insert_link;
use super::{AuthorizationCodeRow, NewUpstreamLink, Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub login: String,
}

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

/// A grant to create.
pub struct NewGrant<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub resource: &'a str,
}

/// A grant and whether it may still be honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantStatus {
    pub user_id: String,
    pub client_id: String,
    pub revoked: bool,
    /// Providers whose link the provider refused for good: tools on them
    /// need the user to sign in again.
    pub reauth_required: Vec<String>,
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
        let grant = NewGrant {
            id: grant_id,
            client_id: &code.client_id,
            scope: &code.scope,
            resource: &code.resource,
        };
        self.write_grant(user, &grant, link, Some(code), now).await
    }

    /// The first leg of a sign-in that links several providers: the user, the
    /// grant and its first link, all or nothing. The code comes with the last
    /// leg.
    pub async fn create_grant(
        &self,
        user: &UserRow,
        grant: &NewGrant<'_>,
        link: &NewUpstreamLink,
        now: i64,
    ) -> Result<String, StoreError> {
        self.write_grant(user, grant, link, None, now).await
    }

    async fn write_grant(
        &self,
        user: &UserRow,
        grant: &NewGrant<'_>,
        link: &NewUpstreamLink,
        code: Option<&AuthorizationCodeRow>,
        now: i64,
    ) -> Result<String, StoreError> {
        let grant_id = grant.id;
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
        .bind(grant.client_id)
        .bind(grant.scope)
        .bind(grant.resource)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_link(&mut tx, grant_id, link, now).await?;
        if let Some(code) = code {
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
        }
        tx.commit().await?;
        Ok(user_id)
    }

    /// The user's most recent live grant to this client, for a step-up that
    /// links another provider to it. Not one nothing can use any more: the
    /// upkeep may be revoking it, and a new sign-in deserves a new grant.
    pub async fn latest_live_grant(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT id, scope FROM grants g WHERE user_id = $1 AND client_id = $2 \
             AND revoked_at IS NULL AND NOT ({}) ORDER BY created_at DESC, id DESC LIMIT 1",
            super::sweep::NOTHING_USABLE
        ))
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every live grant of a user (a disconnect revokes them all).
    pub async fn live_grants_of_user(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Records a wider scope on a grant a step-up extended.
    pub async fn set_grant_scope(&self, grant_id: &str, scope: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE grants SET scope = $1 WHERE id = $2")
            .bind(scope)
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The one indexed read the bearer check makes per request: the grant,
    /// joined with any of its links that need re-authorization (normally
    /// none, so normally one row).
    pub async fn grant_status(&self, grant_id: &str) -> Result<Option<GrantStatus>, StoreError> {
        let rows: Vec<(String, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT g.user_id, g.client_id, g.revoked_at, l.provider FROM grants g \
             LEFT JOIN upstream_links l ON l.grant_id = g.id AND l.reauth_required_at IS NOT NULL \
             WHERE g.id = $1",
        )
        .bind(grant_id)
        .fetch_all(&self.pool)
        .await?;
        let mut rows = rows.into_iter();
        let Some((user_id, client_id, revoked_at, first)) = rows.next() else {
            return Ok(None);
        };
        let reauth_required = first.into_iter().chain(rows.filter_map(|r| r.3)).collect();
        Ok(Some(GrantStatus {
            user_id,
            client_id,
            revoked: revoked_at.is_some(),
            reauth_required,
        }))
    }

    /// Grants not revoked (the `active grants` gauge).
    pub async fn count_live_grants(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
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
