//! Registered OAuth clients.

use super::{Store, StoreError, json_list, parse_json_list};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    /// SHA-256 of the secret for confidential clients; `None` for public ones.
    pub client_secret_hash: Option<String>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub application_type: String,
    pub registration: String,
    pub created_at: i64,
    /// Fingerprint of the registered metadata (dynamic registrations).
    pub metadata_hash: Option<String>,
    pub last_used_at: Option<i64>,
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

/// `Row` plus `metadata_expires_at`.
type CimdRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: &str = "client_id, client_secret_hash, client_name, redirect_uris, grant_types, \
     token_endpoint_auth_method, application_type, registration, created_at, metadata_hash, last_used_at";

fn from_row(r: Row) -> Result<ClientRow, StoreError> {
    Ok(ClientRow {
        client_id: r.0,
        client_secret_hash: r.1,
        client_name: r.2,
        redirect_uris: parse_json_list(&r.3)?,
        grant_types: parse_json_list(&r.4)?,
        token_endpoint_auth_method: r.5,
        application_type: r.6,
        registration: r.7,
        created_at: r.8,
        metadata_hash: r.9,
        last_used_at: r.10,
    })
}

/// The condition every deletion of a client carries: no grant of it still
/// holds an upstream link. The delete cascades to its grants and their links,
/// and must never take a sealed token the provider has not revoked.
pub(super) const NO_LINK_LEFT: &str = "NOT EXISTS (SELECT 1 FROM grants g \
    JOIN upstream_links l ON l.grant_id = g.id WHERE g.client_id = clients.client_id)";

/// What storing a fetched client metadata document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CimdStored {
    /// The first copy: the client is new here.
    Inserted,
    /// A known document's copy was replaced.
    Updated,
    /// Another kind of client has this id; nothing changed.
    Refused,
}

/// What syncing the settings' clients into the database changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConfigSync {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Store {
    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&c.client_id)
        .bind(&c.client_secret_hash)
        .bind(&c.client_name)
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.grant_types))
        .bind(&c.token_endpoint_auth_method)
        .bind(&c.application_type)
        .bind(&c.registration)
        .bind(c.created_at)
        .bind(&c.metadata_hash)
        .bind(c.last_used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()
    }

    /// A client from a metadata document, with when its cached copy expires
    /// (Unix seconds; an unset expiry counts as expired).
    pub async fn get_cimd_client(
        &self,
        client_id: &str,
    ) -> Result<Option<(ClientRow, i64)>, StoreError> {
        let row: Option<CimdRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS}, metadata_expires_at FROM clients WHERE client_id = $1 AND registration = 'cimd'"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(a, b, c, d, e, f, g, h, i, j, k, expires_at)| {
            Ok((
                from_row((a, b, c, d, e, f, g, h, i, j, k))?,
                expires_at.unwrap_or(0),
            ))
        })
        .transpose()
    }

    /// Stores a client from its freshly fetched document, keeping its
    /// creation and last use. Of concurrent first fetches exactly one is
    /// `Inserted`; the rest, and every re-fetch, are `Updated`. `Refused`,
    /// changing nothing, when another kind of client already has this id.
    pub async fn upsert_cimd_client(
        &self,
        c: &ClientRow,
        metadata_expires_at: i64,
    ) -> Result<CimdStored, StoreError> {
        // Both statements take the document's fields at $1..$7.
        let document = |sql| {
            sqlx::query(sql)
                .bind(&c.client_id)
                .bind(&c.client_name)
                .bind(json_list(&c.redirect_uris))
                .bind(json_list(&c.grant_types))
                .bind(&c.token_endpoint_auth_method)
                .bind(&c.application_type)
                .bind(metadata_expires_at)
        };
        let inserted = document(
            "INSERT INTO clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, \
             token_endpoint_auth_method, application_type, registration, metadata_expires_at, \
             created_at) VALUES ($1, NULL, $2, $3, $4, $5, $6, 'cimd', $7, $8) \
             ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(c.created_at)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(CimdStored::Inserted);
        }
        let updated = document(
            "UPDATE clients SET client_secret_hash = NULL, client_name = $2, redirect_uris = $3, \
             grant_types = $4, token_endpoint_auth_method = $5, application_type = $6, \
             metadata_expires_at = $7 WHERE client_id = $1 AND registration = 'cimd'",
        )
        .execute(&self.pool)
        .await?;
        Ok(if updated.rows_affected() == 1 {
            CimdStored::Updated
        } else {
            CimdStored::Refused
        })
    }

    /// A dynamically registered public client with exactly this metadata.
    pub async fn find_public_dcr_client(
        &self,
        metadata_hash: &str,
    ) -> Result<Option<ClientRow>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM clients WHERE metadata_hash = $1 AND registration = 'dcr' \
             AND client_secret_hash IS NULL ORDER BY created_at LIMIT 1"
        ))
        .bind(metadata_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()
    }

    /// Records that a client was used, at most once a minute per client so a
    /// busy client does not turn every request into a write.
    pub async fn touch_client(&self, client_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE clients SET last_used_at = $1 WHERE client_id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(client_id)
        .bind(now - 60)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes dynamic registrations not used since `cutoff` (never-used ones
    /// count from their registration), with their grants.
    /// Returns the ids deleted.
    pub async fn delete_unused_dcr_clients(&self, cutoff: i64) -> Result<Vec<String>, StoreError> {
        // A client whose grants still hold upstream links waits: deleting it
        // would cascade the sealed tokens away before they are revoked
        // upstream (`Vault::expire_unused_clients` revokes them first).
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "DELETE FROM clients WHERE registration = 'dcr' \
             AND COALESCE(last_used_at, created_at) < $1 AND {NO_LINK_LEFT} RETURNING client_id"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Grants with upstream links whose dynamic client is unused since `cutoff`.
    pub async fn grants_of_unused_dcr_clients(
        &self,
        cutoff: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT g.id FROM grants g JOIN clients c ON c.client_id = g.client_id \
             JOIN upstream_links l ON l.grant_id = g.id \
             WHERE c.registration = 'dcr' AND COALESCE(c.last_used_at, c.created_at) < $1 ORDER BY g.id",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Makes the `registration = 'config'` clients exactly `configured`:
    /// inserts or updates each (a removed one comes back), and marks those no
    /// longer configured `removed`. Returns the ids added and removed.
    pub async fn sync_configured_clients(
        &self,
        configured: &[ClientRow],
    ) -> Result<ConfigSync, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before: Vec<(String,)> =
            sqlx::query_as("SELECT client_id FROM clients WHERE registration <> 'removed'")
                .fetch_all(&mut *tx)
                .await?;
        let added = configured
            .iter()
            .filter(|c| !before.iter().any(|(id,)| *id == c.client_id))
            .map(|c| c.client_id.clone())
            .collect();
        for c in configured {
            sqlx::query(
                "INSERT INTO clients (client_id, client_secret_hash, client_name, redirect_uris, \
                 grant_types, token_endpoint_auth_method, application_type, registration, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'config', $8) \
                 ON CONFLICT (client_id) DO UPDATE SET client_secret_hash = excluded.client_secret_hash, \
                 client_name = excluded.client_name, redirect_uris = excluded.redirect_uris, \
                 grant_types = excluded.grant_types, \
                 token_endpoint_auth_method = excluded.token_endpoint_auth_method, \
                 application_type = excluded.application_type, registration = 'config'",
            )
            .bind(&c.client_id)
            .bind(&c.client_secret_hash)
            .bind(&c.client_name)
            .bind(json_list(&c.redirect_uris))
            .bind(json_list(&c.grant_types))
            .bind(&c.token_endpoint_auth_method)
            .bind(&c.application_type)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await?;
        }
        let existing: Vec<(String,)> =
            sqlx::query_as("SELECT client_id FROM clients WHERE registration = 'config'")
                .fetch_all(&mut *tx)
                .await?;
        let mut removed = Vec::new();
        for (id,) in existing {
            if !configured.iter().any(|c| c.client_id == id) {
                // Cut off now (no secret, and `find_client` refuses the
                // kind); the row goes once no grant of it holds an upstream
                // link (`delete_removed_clients`).
                sqlx::query(
                    "UPDATE clients SET registration = 'removed', client_secret_hash = NULL \
                     WHERE client_id = $1",
                )
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                removed.push(id);
            }
        }
        tx.commit().await?;
        Ok(ConfigSync { added, removed })
    }

    /// Deletes clients removed from the settings once none of their grants
    /// holds an upstream link (the cascade would take sealed tokens the
    /// provider still honours). Returns the ids deleted.
    pub async fn delete_removed_clients(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "DELETE FROM clients WHERE registration = 'removed' AND {NO_LINK_LEFT} \
             RETURNING client_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes a client and, by cascade, its grants, links and tokens.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
