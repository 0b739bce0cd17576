//! Upstream links: the sealed upstream tokens behind a grant, one per
//! (grant, provider). Every write after creation is conditional on `version`
//! (compare-and-swap), so two writers can never both win.

use super::{Store, StoreError};

/// Sealed tokens ready to store: a new link, or a refresh's result.
#[derive(Clone, Debug)]
pub struct NewUpstreamLink {
    pub id: String,
    pub provider: String,
    pub access_token_enc: Vec<u8>,
    pub refresh_token_enc: Option<Vec<u8>>,
    /// The link's data key, wrapped under KEK `kek_id`.
    pub data_key_enc: Vec<u8>,
    pub kek_id: i64,
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
    /// `None` for links sealed before envelope encryption (directly by KEK 1).
    pub data_key_enc: Option<Vec<u8>>,
    pub kek_id: Option<i64>,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_refreshed_at: Option<i64>,
    pub reauth_required_at: Option<i64>,
    pub reauth_reason: Option<String>,
}

const LINK_COLUMNS: &str = "id, grant_id, provider, access_token_enc, refresh_token_enc, \
    data_key_enc, kek_id, scopes, expires_at, refresh_expires_at, version, created_at, updated_at, \
    last_refreshed_at, reauth_required_at, reauth_reason";

fn row_from(row: &sqlx::any::AnyRow) -> Result<UpstreamLinkRow, sqlx::Error> {
    use sqlx::Row;
    Ok(UpstreamLinkRow {
        id: row.try_get(0)?,
        grant_id: row.try_get(1)?,
        provider: row.try_get(2)?,
        access_token_enc: row.try_get(3)?,
        refresh_token_enc: row.try_get(4)?,
        data_key_enc: row.try_get(5)?,
        kek_id: row.try_get(6)?,
        scopes: row.try_get(7)?,
        expires_at: row.try_get(8)?,
        refresh_expires_at: row.try_get(9)?,
        version: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
        last_refreshed_at: row.try_get(13)?,
        reauth_required_at: row.try_get(14)?,
        reauth_reason: row.try_get(15)?,
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The sealed-token columns every token write sets, as `$1`–`$7`, in the
/// order `bind_tokens` binds them.
const TOKEN_COLUMNS: &str = "access_token_enc, refresh_token_enc, data_key_enc, kek_id, scopes, \
    expires_at, refresh_expires_at";
/// What every new set of tokens also does: a new version (`$8` is now), no
/// lease, no re-authorization mark.
const NEW_VERSION: &str = "version = version + 1, updated_at = $8, refresh_lease_owner = NULL, \
    refresh_lease_until = NULL, reauth_required_at = NULL, reauth_reason = NULL";
const TOKEN_SET: &str = "access_token_enc = $1, refresh_token_enc = $2, data_key_enc = $3, \
    kek_id = $4, scopes = $5, expires_at = $6, refresh_expires_at = $7";

fn bind_tokens<'q>(query: AnyQuery<'q>, link: &'q NewUpstreamLink) -> AnyQuery<'q> {
    query
        .bind(&link.access_token_enc)
        .bind(&link.refresh_token_enc)
        .bind(&link.data_key_enc)
        .bind(link.kek_id)
        .bind(&link.scopes)
        .bind(link.expires_at)
        .bind(link.refresh_expires_at)
}

/// A new link at version 1; `tail` may add an `ON CONFLICT` clause.
fn insert_query<'q>(
    sql: &'q str,
    grant_id: &'q str,
    link: &'q NewUpstreamLink,
    now: i64,
) -> AnyQuery<'q> {
    bind_tokens(sqlx::query(sql), link)
        .bind(&link.id)
        .bind(grant_id)
        .bind(&link.provider)
        .bind(now)
}

fn insert_sql(tail: &str) -> String {
    format!(
        "INSERT INTO upstream_links ({TOKEN_COLUMNS}, id, grant_id, provider, version, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11){tail}"
    )
}

/// Inside the callback's transaction.
pub(super) async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    grant_id: &str,
    link: &NewUpstreamLink,
    now: i64,
) -> Result<(), StoreError> {
    let sql = insert_sql("");
    insert_query(&sql, grant_id, link, now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub async fn upstream_link(
        &self,
        grant_id: &str,
        provider: &str,
    ) -> Result<Option<UpstreamLinkRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM upstream_links WHERE grant_id = $1 AND provider = $2"
        ))
        .bind(grant_id)
        .bind(provider)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(row_from).transpose()?)
    }

    /// Every link of a grant (revocation, operators).
    pub async fn upstream_links_of_grant(
        &self,
        grant_id: &str,
    ) -> Result<Vec<UpstreamLinkRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM upstream_links WHERE grant_id = $1 ORDER BY provider"
        ))
        .bind(grant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_from).collect::<Result<_, _>>()?)
    }

    /// Adds a link to an existing grant (a later leg of a multi-provider
    /// sign-in, or a step-up). False if the grant already has one for this
    /// provider (two legs raced): the caller replaces its tokens instead.
    pub async fn add_link(
        &self,
        grant_id: &str,
        link: &NewUpstreamLink,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = insert_sql(" ON CONFLICT (grant_id, provider) DO NOTHING");
        let done = insert_query(&sql, grant_id, link, now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts the tokens of a fresh sign-in into an existing link: newer than
    /// anything stored, so unconditional; clears a re-authorization mark.
    pub async fn replace_link_tokens(
        &self,
        link: &NewUpstreamLink,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE upstream_links SET {TOKEN_SET}, {NEW_VERSION} WHERE id = $9");
        bind_tokens(sqlx::query(&sql), link)
            .bind(now)
            .bind(&link.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the cross-instance refresh lease on `version` of a link. False
    /// when another instance holds an unexpired lease or the link moved on.
    pub async fn try_lease_link_refresh(
        &self,
        link_id: &str,
        version: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE upstream_links SET refresh_lease_owner = $1, refresh_lease_until = $2 \
             WHERE id = $3 AND version = $4 \
             AND (refresh_lease_until IS NULL OR refresh_lease_until < $5 OR refresh_lease_owner = $1)",
        )
        .bind(owner)
        .bind(until)
        .bind(link_id)
        .bind(version)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease back without changing the tokens (a transient failure).
    pub async fn release_link_lease(&self, link_id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE upstream_links SET refresh_lease_owner = NULL, refresh_lease_until = NULL \
             WHERE id = $1 AND refresh_lease_owner = $2",
        )
        .bind(link_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes a refresh's tokens if the link is still at `version` (the
    /// fence) and its grant is not revoked (the revocation cascade may be
    /// revoking the tokens this refresh replaced). Clears the lease and any
    /// re-authorization mark: a good token in hand beats an earlier failure.
    /// False: someone else wrote first, and these tokens must be dropped.
    pub async fn store_refreshed_link(
        &self,
        version: i64,
        link: &NewUpstreamLink,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE upstream_links SET {TOKEN_SET}, {NEW_VERSION}, last_refreshed_at = $8 \
             WHERE id = $9 AND version = $10 AND NOT EXISTS \
             (SELECT 1 FROM grants g WHERE g.id = upstream_links.grant_id AND g.revoked_at IS NOT NULL)"
        );
        let done = bind_tokens(sqlx::query(&sql), link)
            .bind(now)
            .bind(&link.id)
            .bind(version)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a link as needing the user to sign in again, if it is still at
    /// `version`. The sealed tokens stay (an operator may inspect the link).
    pub async fn mark_link_reauth(
        &self,
        link_id: &str,
        version: i64,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE upstream_links SET reauth_required_at = $1, reauth_reason = $2, \
             refresh_lease_owner = NULL, refresh_lease_until = NULL, updated_at = $1 \
             WHERE id = $3 AND version = $4",
        )
        .bind(now)
        .bind(reason)
        .bind(link_id)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Up to `limit` links after `after_id` whose data key is not wrapped
    /// under `kek_id` (including links sealed before envelope encryption).
    pub async fn links_not_under_kek(
        &self,
        kek_id: i64,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<UpstreamLinkRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM upstream_links \
             WHERE (kek_id IS NULL OR kek_id <> $1) AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(kek_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_from).collect::<Result<_, _>>()?)
    }

    /// How many links each KEK wraps (`None`: sealed before envelopes).
    pub async fn links_per_kek(&self) -> Result<Vec<(Option<i64>, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kek_id, COUNT(*) FROM upstream_links GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces only the wrapped data key, if nobody changed it meanwhile
    /// (a refresh writes a new data key under the newest KEK anyway).
    pub async fn rewrap_link(
        &self,
        link_id: &str,
        old_data_key_enc: &[u8],
        new_data_key_enc: &[u8],
        new_kek: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE upstream_links SET data_key_enc = $1, kek_id = $2 \
             WHERE id = $3 AND data_key_enc = $4",
        )
        .bind(new_data_key_enc)
        .bind(new_kek)
        .bind(link_id)
        .bind(old_data_key_enc)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Re-seals a link's tokens under a new data key without changing what
    /// they are (moving a link sealed before envelopes into one), if the link
    /// is still at `version`.
    pub async fn reseal_link(
        &self,
        version: i64,
        link: &NewUpstreamLink,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE upstream_links SET access_token_enc = $1, refresh_token_enc = $2, \
             data_key_enc = $3, kek_id = $4 WHERE id = $5 AND version = $6",
        )
        .bind(&link.access_token_enc)
        .bind(&link.refresh_token_enc)
        .bind(&link.data_key_enc)
        .bind(link.kek_id)
        .bind(&link.id)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Grants revoked at or before `revoked_before` while an upstream link
    /// survived (the provider was unreachable): the sweep retries their
    /// revocation.
    pub async fn revoked_grants_with_links(
        &self,
        revoked_before: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT l.grant_id FROM upstream_links l JOIN grants g ON g.id = l.grant_id \
             WHERE g.revoked_at <= $3 AND l.grant_id > $1 ORDER BY l.grant_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .bind(revoked_before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes a link's sealed tokens once they are revoked upstream (or the
    /// provider cannot revoke): the grant is gone, so are its tokens.
    pub async fn delete_link(&self, link_id: &str, version: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM upstream_links WHERE id = $1 AND version = $2")
            .bind(link_id)
            .bind(version)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
