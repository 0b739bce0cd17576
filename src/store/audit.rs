//! The audit ledger's rows: append-only, one hash chain, ordered by `seq`.
//!
//! Appends are serialised by the one-row `audit_head` table: each append's
//! first statement updates that row, so PostgreSQL's row lock (across every
//! instance on the database) and SQLite's write lock make appends take turns,
//! and each one reads the hash its predecessor committed. The chain cannot
//! fork, and `seq` (the primary key) cannot repeat or skip.
//!
//! The chain rule itself (what is hashed, how) is the `audit` module's: the
//! store is handed it as `seal`, so storage stays free of it.

use super::{Store, StoreError};

/// An event to append, as stored: the store adds the sequence number, the
/// user's identity at append time and the chain hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditRecord {
    pub time: i64,
    pub kind: String,
    pub actor: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    pub provider: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

/// One stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub time: i64,
    pub kind: String,
    pub actor: String,
    pub user_id: Option<String>,
    /// The user's identity copied at append time, so the record outlives
    /// the user's row.
    pub user_provider: Option<String>,
    pub user_subject: Option<String>,
    pub user_login: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    pub provider: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Where the chain starts and ends. `floor_*` is the last event a retention
/// purge removed (seq 0 and the genesis hash before any purge): the oldest
/// remaining event must follow it. `head_*` is the newest event appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditChainState {
    pub floor_seq: i64,
    pub floor_hash: String,
    pub head_seq: i64,
    pub head_hash: String,
}

/// What a retention purge removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditPurge {
    pub removed: u64,
    /// The chain now starts after this seq (0: nothing was ever purged).
    pub through_seq: i64,
}

/// Filters for reading the ledger; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    pub provider: Option<String>,
    pub kind: Option<String>,
    /// Inclusive, Unix seconds.
    pub since: Option<i64>,
    /// Inclusive, Unix seconds.
    pub until: Option<i64>,
}

const RECORD_COLUMNS: &str = "seq, time, kind, actor, user_id, user_provider, user_subject, \
    user_login, client_id, grant_id, provider, outcome, request_id, detail, prev_hash, hash";

fn record_from(row: &sqlx::any::AnyRow) -> Result<AuditRecord, sqlx::Error> {
    use sqlx::Row;
    Ok(AuditRecord {
        seq: row.try_get(0)?,
        time: row.try_get(1)?,
        kind: row.try_get(2)?,
        actor: row.try_get(3)?,
        user_id: row.try_get(4)?,
        user_provider: row.try_get(5)?,
        user_subject: row.try_get(6)?,
        user_login: row.try_get(7)?,
        client_id: row.try_get(8)?,
        grant_id: row.try_get(9)?,
        provider: row.try_get(10)?,
        outcome: row.try_get(11)?,
        request_id: row.try_get(12)?,
        detail: row.try_get(13)?,
        prev_hash: row.try_get(14)?,
        hash: row.try_get(15)?,
    })
}

impl Store {
    /// Appends one event. `seal` computes the event's hash from every other
    /// field (its `hash` is empty when `seal` sees it).
    pub(crate) async fn append_audit(
        &self,
        new: &NewAuditRecord,
        seal: fn(&AuditRecord) -> String,
    ) -> Result<AuditRecord, StoreError> {
        // An event about a grant names its user and client even when the
        // caller only knew the grant (a refresh, a revocation cascade).
        let mut new = std::borrow::Cow::Borrowed(new);
        if let Some(grant_id) = &new.grant_id
            && (new.user_id.is_none() || new.client_id.is_none())
        {
            let owner: Option<(String, String)> =
                sqlx::query_as("SELECT user_id, client_id FROM grants WHERE id = $1")
                    .bind(grant_id)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some((user_id, client_id)) = owner {
                let filled = new.to_mut();
                filled.user_id.get_or_insert(user_id);
                filled.client_id.get_or_insert(client_id);
            }
        }
        let new = new.as_ref();
        // Read before the ledger's lock, which every append waits on.
        let identity: Option<(String, String, String)> = match &new.user_id {
            Some(id) => {
                sqlx::query_as("SELECT provider, subject, login FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let record = append_in(&mut tx, new, identity, seal).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The newest `limit` events matching `filter`, oldest first.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut clauses = Vec::new();
        let mut text = Vec::new();
        let mut times = Vec::new();
        for (column, value) in [
            ("user_id", &filter.user_id),
            ("client_id", &filter.client_id),
            ("grant_id", &filter.grant_id),
            ("provider", &filter.provider),
            ("kind", &filter.kind),
        ] {
            if let Some(value) = value {
                text.push(value);
                clauses.push(format!("{column} = ${}", text.len()));
            }
        }
        for (op, value) in [(">=", filter.since), ("<=", filter.until)] {
            if let Some(value) = value {
                times.push(value);
                clauses.push(format!("time {op} ${}", text.len() + times.len()));
            }
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM audit_events {filter_sql} ORDER BY seq DESC LIMIT ${}",
            text.len() + times.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for value in text {
            query = query.bind(value);
        }
        for value in times {
            query = query.bind(value);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        let mut records = rows
            .iter()
            .map(record_from)
            .collect::<Result<Vec<_>, _>>()?;
        records.reverse();
        Ok(records)
    }

    /// Up to `limit` events after `after_seq` and up to `through_seq`, in
    /// order: the pages a chain check reads.
    pub async fn audit_page(
        &self,
        after_seq: i64,
        through_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(after_seq)
        .bind(through_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record_from).collect::<Result<_, _>>()?)
    }

    pub async fn audit_chain_state(&self) -> Result<AuditChainState, StoreError> {
        let (floor_seq, floor_hash, head_seq, head_hash) =
            sqlx::query_as("SELECT floor_seq, floor_hash, seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(AuditChainState {
            floor_seq,
            floor_hash,
            head_seq,
            head_hash,
        })
    }

    /// Retention: removes the oldest events, those before `before`, as one
    /// prefix of the chain, and moves the floor to the last one removed.
    ///
    /// Why a floor rather than trusting whatever event is oldest: deleting
    /// old rows by hand must stay detectable. The chain check starts from
    /// the floor, so the oldest remaining event has to be `floor_seq + 1`
    /// with `prev_hash = floor_hash`; only this function moves the floor,
    /// in the same transaction as the delete, and with it the purge's own
    /// event (`record`, sealed by `seal`): a purge is never unrecorded, and
    /// the chain itself says when it happened.
    ///
    /// Instances' clocks may disagree by a little, so `time` is not strictly
    /// ordered by `seq`: the purge stops at the first event at or after
    /// `before`, keeping a few slightly older events rather than punching a
    /// hole in the chain.
    pub async fn purge_audit_before(
        &self,
        before: i64,
        record: impl FnOnce(&AuditPurge) -> NewAuditRecord,
        seal: fn(&AuditRecord) -> String,
    ) -> Result<AuditPurge, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Takes the head's lock first, as appends do, so they take turns.
        let (head_seq, floor_seq): (i64, i64) =
            sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, floor_seq")
                .fetch_one(&mut *tx)
                .await?;
        let (first_kept,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(seq) FROM audit_events WHERE time >= $1 AND seq > $2")
                .bind(before)
                .bind(floor_seq)
                .fetch_one(&mut *tx)
                .await?;
        let through = first_kept.map_or(head_seq, |seq| seq - 1);
        if through <= floor_seq {
            tx.rollback().await?;
            return Ok(AuditPurge {
                removed: 0,
                through_seq: floor_seq,
            });
        }
        let (through_hash,): (String,) =
            sqlx::query_as("SELECT hash FROM audit_events WHERE seq = $1")
                .bind(through)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("audit event {through} is missing")))?;
        let removed = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE audit_head SET floor_seq = $1, floor_hash = $2 WHERE id = 1")
            .bind(through)
            .bind(&through_hash)
            .execute(&mut *tx)
            .await?;
        let purge = AuditPurge {
            removed,
            through_seq: through,
        };
        // With its record or not at all: history never goes unrecorded.
        append_in(&mut tx, &record(&purge), None, seal).await?;
        tx.commit().await?;
        Ok(purge)
    }
}

/// The append itself, inside the caller's transaction (its first statement
/// takes the ledger's lock). `identity`: the user's provider, subject and
/// login, read before the lock.
async fn append_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    new: &NewAuditRecord,
    identity: Option<(String, String, String)>,
    seal: fn(&AuditRecord) -> String,
) -> Result<AuditRecord, StoreError> {
    let (user_provider, user_subject, user_login) = match identity {
        Some((p, s, l)) => (Some(p), Some(s), Some(l)),
        None => (None, None, None),
    };
    // The first statement writes, so it takes the lock before reading
    // anything: the next append waits here, then sees this one's hash.
    let (seq, prev_hash): (i64, String) =
        sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut **tx)
            .await?;
    let mut record = AuditRecord {
        seq,
        time: new.time,
        kind: new.kind.clone(),
        actor: new.actor.clone(),
        user_id: new.user_id.clone(),
        user_provider,
        user_subject,
        user_login,
        client_id: new.client_id.clone(),
        grant_id: new.grant_id.clone(),
        provider: new.provider.clone(),
        outcome: new.outcome.clone(),
        request_id: new.request_id.clone(),
        detail: new.detail.clone(),
        prev_hash,
        hash: String::new(),
    };
    record.hash = seal(&record);
    sqlx::query(&format!(
        "INSERT INTO audit_events ({RECORD_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(record.seq)
    .bind(record.time)
    .bind(&record.kind)
    .bind(&record.actor)
    .bind(&record.user_id)
    .bind(&record.user_provider)
    .bind(&record.user_subject)
    .bind(&record.user_login)
    .bind(&record.client_id)
    .bind(&record.grant_id)
    .bind(&record.provider)
    .bind(&record.outcome)
    .bind(&record.request_id)
    .bind(&record.detail)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&record.hash)
        .execute(&mut **tx)
        .await?;
    Ok(record)
}
