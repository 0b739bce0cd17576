//! What operators read: grants, clients and users listed newest first with
//! the counts that matter (live grants, links needing re-authorization), one
//! grant with its user and client, and the deletion of a client that holds
//! no upstream token any more. No sealed column is read here.

use super::{Store, StoreError};

/// Where a newest-first listing goes on: the rows after this one (created
/// earlier, or at the same second with a smaller id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

/// The condition "after `Cursor`" on columns `created_at` and `id`, whose
/// two values are bound at `$n` and `$n+1`.
fn after_clause(created_at: &str, id: &str, n: usize) -> String {
    format!(
        "({created_at} < ${n} OR ({created_at} = ${n} AND {id} < ${}))",
        n + 1
    )
}

/// `WHERE` with `clauses` (each binding one value, an `after_clause` two),
/// and where the limit is bound.
fn where_and_limit(clauses: &[String], after: bool) -> (String, usize) {
    let bound = clauses.len() + usize::from(after);
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (filter_sql, bound + 1)
}

/// Which grants to list; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct GrantFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// The user signed in with this provider, or the grant holds a link to it.
    pub provider: Option<String>,
    /// `Some(true)`: live only; `Some(false)`: revoked only.
    pub live: Option<bool>,
    /// The page after this grant.
    pub after: Option<Cursor>,
}

/// A grant with its user and client, as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantSummary {
    pub id: String,
    pub user_id: String,
    pub user_provider: String,
    pub user_subject: String,
    pub user_login: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// Upstream links the grant holds (a revoked grant's are being revoked).
    pub links: i64,
    /// Of those, links the provider refused to refresh for good.
    pub links_needing_reauth: i64,
}

/// A registered client with how many live grants it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSummary {
    pub client_id: String,
    pub registration: String,
    pub client_name: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub live_grants: i64,
}

/// A user with how many live grants they hold and when they were last seen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UserSummary {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub login: String,
    pub created_at: i64,
    pub live_grants: i64,
    /// The latest sign-in (a grant created) or refresh of our tokens.
    pub last_seen_at: Option<i64>,
}

/// Why `delete_unlinked_client` deleted nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientDeletion {
    Deleted,
    /// No such client (or a configured one, which is never deleted here).
    Absent,
    /// One of its grants still holds an upstream link.
    LinksRemain,
}

const GRANT_SUMMARY: &str = "SELECT g.id, g.user_id, u.provider, u.subject, u.login, g.client_id, \
    c.client_name, g.scope, g.resource, g.created_at, g.revoked_at, \
    (SELECT COUNT(*) FROM upstream_links l WHERE l.grant_id = g.id), \
    (SELECT COUNT(*) FROM upstream_links l WHERE l.grant_id = g.id \
     AND l.reauth_required_at IS NOT NULL) \
    FROM grants g JOIN users u ON u.id = g.user_id JOIN clients c ON c.client_id = g.client_id";

fn grant_from(row: &sqlx::any::AnyRow) -> Result<GrantSummary, sqlx::Error> {
    use sqlx::Row;
    Ok(GrantSummary {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        user_provider: row.try_get(2)?,
        user_subject: row.try_get(3)?,
        user_login: row.try_get(4)?,
        client_id: row.try_get(5)?,
        client_name: row.try_get(6)?,
        scope: row.try_get(7)?,
        resource: row.try_get(8)?,
        created_at: row.try_get(9)?,
        revoked_at: row.try_get(10)?,
        links: row.try_get(11)?,
        links_needing_reauth: row.try_get(12)?,
    })
}

impl Store {
    /// Grants matching `filter`, newest first, at most `limit`.
    pub async fn list_grants(
        &self,
        filter: &GrantFilter,
        limit: i64,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        if let Some(user) = &filter.user_id {
            values.push(user);
            clauses.push(format!("g.user_id = ${}", values.len()));
        }
        if let Some(client) = &filter.client_id {
            values.push(client);
            clauses.push(format!("g.client_id = ${}", values.len()));
        }
        if let Some(provider) = &filter.provider {
            values.push(provider);
            let n = values.len();
            clauses.push(format!(
                "(u.provider = ${n} OR EXISTS (SELECT 1 FROM upstream_links l \
                 WHERE l.grant_id = g.id AND l.provider = ${n}))"
            ));
        }
        match filter.live {
            Some(true) => clauses.push("g.revoked_at IS NULL".into()),
            Some(false) => clauses.push("g.revoked_at IS NOT NULL".into()),
            None => {}
        }
        if filter.after.is_some() {
            clauses.push(after_clause("g.created_at", "g.id", values.len() + 1));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let limit_at = values.len() + 1 + if filter.after.is_some() { 2 } else { 0 };
        let sql = format!(
            "{GRANT_SUMMARY}{filter_sql} ORDER BY g.created_at DESC, g.id DESC LIMIT ${limit_at}"
        );
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(value);
        }
        if let Some(after) = &filter.after {
            query = query.bind(after.created_at).bind(&after.id);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(grant_from).collect::<Result<_, _>>()?)
    }

    /// One grant with its user and client.
    pub async fn grant_summary(&self, grant_id: &str) -> Result<Option<GrantSummary>, StoreError> {
        let row = sqlx::query(&format!("{GRANT_SUMMARY} WHERE g.id = $1"))
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(grant_from).transpose()?)
    }

    /// Clients, newest first, optionally of one registration kind.
    pub async fn list_clients(
        &self,
        registration: Option<&str>,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<ClientSummary>, StoreError> {
        let mut clauses = Vec::new();
        if registration.is_some() {
            clauses.push("c.registration = $1".to_string());
        }
        if after.is_some() {
            clauses.push(after_clause(
                "c.created_at",
                "c.client_id",
                clauses.len() + 1,
            ));
        }
        let (filter_sql, limit_at) = where_and_limit(&clauses, after.is_some());
        let sql = format!(
            "SELECT c.client_id, c.registration, c.client_name, c.created_at, c.last_used_at, \
             (SELECT COUNT(*) FROM grants g WHERE g.client_id = c.client_id \
              AND g.revoked_at IS NULL) \
             FROM clients c{filter_sql} ORDER BY c.created_at DESC, c.client_id DESC \
             LIMIT ${limit_at}"
        );
        let mut query = sqlx::query_as(&sql);
        if let Some(kind) = registration {
            query = query.bind(kind);
        }
        if let Some(after) = after {
            query = query.bind(after.created_at).bind(&after.id);
        }
        type Row = (String, String, Option<String>, i64, Option<i64>, i64);
        let rows: Vec<Row> = query.bind(limit).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(
                |(client_id, registration, client_name, created_at, last_used_at, live_grants)| {
                    ClientSummary {
                        client_id,
                        registration,
                        client_name,
                        created_at,
                        last_used_at,
                        live_grants,
                    }
                },
            )
            .collect())
    }

    /// How many live grants a client holds.
    pub async fn live_grant_count(&self, client_id: &str) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM grants WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    /// Grants of a client that are live or still hold an upstream link
    /// (revoked, with the provider's revocation pending): what deleting the
    /// client must revoke first.
    pub async fn grants_to_revoke_for_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT g.id FROM grants g WHERE g.client_id = $1 AND (g.revoked_at IS NULL \
             OR EXISTS (SELECT 1 FROM upstream_links l WHERE l.grant_id = g.id)) ORDER BY g.id",
        )
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes a client that is not configured and none of whose grants
    /// still holds an upstream link: the cascade that removes its grants
    /// must never take a sealed token the provider has not revoked (a sign-in
    /// that raced the operator's revocation leaves one, and stops this).
    pub async fn delete_unlinked_client(
        &self,
        client_id: &str,
    ) -> Result<ClientDeletion, StoreError> {
        let done = sqlx::query(&format!(
            "DELETE FROM clients WHERE client_id = $1 AND registration <> 'config' AND {}",
            super::clients::NO_LINK_LEFT
        ))
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(ClientDeletion::Deleted);
        }
        let still: Option<(String,)> = sqlx::query_as(
            "SELECT registration FROM clients WHERE client_id = $1 AND registration <> 'config'",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match still {
            Some(_) => ClientDeletion::LinksRemain,
            None => ClientDeletion::Absent,
        })
    }

    /// Users, newest first, optionally of one provider.
    pub async fn list_users(
        &self,
        provider: Option<&str>,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<UserSummary>, StoreError> {
        let mut clauses = Vec::new();
        if provider.is_some() {
            clauses.push("u.provider = $1".to_string());
        }
        if after.is_some() {
            clauses.push(after_clause("u.created_at", "u.id", clauses.len() + 1));
        }
        let (filter_sql, limit_at) = where_and_limit(&clauses, after.is_some());
        // Both "last seen" reads go through an index (grants_user, then
        // refresh_tokens_grant); the later of the two is taken below.
        let sql = format!(
            "SELECT u.id, u.provider, u.subject, u.login, u.created_at, \
             (SELECT COUNT(*) FROM grants g WHERE g.user_id = u.id AND g.revoked_at IS NULL), \
             (SELECT MAX(g.created_at) FROM grants g WHERE g.user_id = u.id), \
             (SELECT MAX(t.created_at) FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id \
              WHERE g.user_id = u.id) \
             FROM users u{filter_sql} ORDER BY u.created_at DESC, u.id DESC LIMIT ${limit_at}"
        );
        let mut query = sqlx::query_as(&sql);
        if let Some(provider) = provider {
            query = query.bind(provider);
        }
        if let Some(after) = after {
            query = query.bind(after.created_at).bind(&after.id);
        }
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = query.bind(limit).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, provider, subject, login, created_at, live_grants, signed_in, refreshed)| {
                    UserSummary {
                        id,
                        provider,
                        subject,
                        login,
                        created_at,
                        live_grants,
                        last_seen_at: signed_in.max(refreshed),
                    }
                },
            )
            .collect())
    }
}
