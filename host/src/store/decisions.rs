//! The audit log: exchange decisions, append-only, paged newest first.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, DecisionRecord, Event, Store, StoreError, from_json, to_json};
use serde_json::Value;

/// What a page shows (the policy request, kept for replay, is read by replay alone).
const COLUMNS: &str = "tenant, identity, at, allowed, code, reason, source, subject, issuer, \
                       policy_digest, fuel_used, scopes, client_address, jti, event, subject_jti, \
                       session, session_ends, logs, shadow";

/// What an insert writes: the record's columns, then when the writer inserted it.
const INSERT_COLUMNS: &str = "tenant, identity, at, allowed, code, reason, source, subject, \
                              issuer, policy_digest, fuel_used, scopes, client_address, jti, \
                              event, subject_jti, session, session_ends, logs, shadow, request, \
                              recorded_at";

/// How many columns [`INSERT_COLUMNS`] names.
pub(super) const COLUMN_COUNT: usize = 22;

/// How long the export cursor waits before it hands out a record: on PostgreSQL ids are drawn
/// when a row is inserted, so a lower id can become visible a moment after a higher one; a
/// record inserted this long ago has been committed or never will be.
pub const EXPORT_LAG_SECONDS: i64 = 5;

/// Records one retention pass deletes per statement, so that it never holds the writers back
/// for long.
const PRUNE_BATCH: i64 = 1000;

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the [`INSERT_COLUMNS`] of `d`, in order, recorded at `now`.
fn bind<'q>(query: Query<'q>, d: &'q DecisionRecord, now: i64) -> Result<Query<'q>, StoreError> {
    Ok(query
        .bind(&d.tenant)
        .bind(&d.identity)
        .bind(d.at)
        .bind(i64::from(d.allowed))
        .bind(&d.code)
        .bind(&d.reason)
        .bind(&d.source)
        .bind(&d.subject)
        .bind(&d.issuer)
        .bind(&d.policy_digest)
        .bind(d.fuel_used)
        .bind(to_json("scopes", &d.scopes)?)
        .bind(&d.client_address)
        .bind(&d.jti)
        .bind(d.event.as_str())
        .bind(&d.subject_jti)
        .bind(&d.session)
        .bind(d.session_ends)
        .bind(if d.logs.is_empty() {
            None
        } else {
            Some(to_json("policy logs", &d.logs)?)
        })
        .bind(d.shadow.as_ref().map(Value::to_string))
        .bind(d.request.as_deref())
        .bind(now))
}

/// The most decisions one page returns, whatever the caller asks.
pub const MAX_DECISION_PAGE: u32 = 1000;

impl Store {
    /// Appends a decision (its `id` is ignored); returns the id it was given.
    pub async fn append_decision(&self, d: &DecisionRecord) -> Result<i64, StoreError> {
        let params: Vec<String> = (1..=COLUMN_COUNT).map(|c| format!("${c}")).collect();
        let sql = format!(
            "INSERT INTO decisions ({INSERT_COLUMNS}) VALUES ({}) RETURNING id",
            params.join(", ")
        );
        let row = bind(sqlx::query(&sql), d, super::now())?
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Appends `records` in one statement, in order (at most
    /// [`MAX_BATCH`](super::decision_log::MAX_BATCH) of them).
    pub async fn append_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        self.append_decisions_on(None, records).await
    }

    /// As [`Store::append_decisions`], on `connection` when given (the audit log writer's own,
    /// [`Store::writer_connection`]), else through the pool.
    pub async fn append_decisions_on(
        &self,
        connection: Option<&mut sqlx::AnyConnection>,
        records: &[DecisionRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // SQLite finds a numbered parameter's name by a linear scan, and sqlx asks for it once
        // per parameter: quadratic in a full batch's 896 parameters (2% of the server's
        // samples at peak). Anonymous `?`s, bound in order, have no name; PostgreSQL needs `$N`.
        let placeholder = |n: usize| match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        };
        let rows: Vec<String> = (0..records.len())
            .map(|r| {
                let params: Vec<String> = (1..=COLUMN_COUNT)
                    .map(|c| placeholder(r * COLUMN_COUNT + c))
                    .collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO decisions ({INSERT_COLUMNS}) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        let now = super::now();
        for d in records {
            query = bind(query, d, now)?;
        }
        match connection {
            Some(connection) => query.execute(connection).await?,
            None => query.execute(&self.pool).await?,
        };
        Ok(())
    }

    /// Up to `limit` (at most [`MAX_DECISION_PAGE`]) decisions of `tenant`, newest first, all older than
    /// decision `before_id` if given: pass the last id of a page to get the next one.
    pub async fn list_decisions(
        &self,
        tenant: &str,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, {COLUMNS} FROM decisions WHERE tenant = $1 AND id < $2
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(tenant)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit.min(MAX_DECISION_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decision_from_row).collect()
    }
}

impl Store {
    /// Up to `limit` (at most [`MAX_DECISION_PAGE`]) records of every tenant after record
    /// `after`, oldest first, none inserted in the last [`EXPORT_LAG_SECONDS`] (as of `now`):
    /// pass the last id of a page to get the next. Every record is handed out once, in id
    /// order, whichever replica wrote it.
    pub async fn export_decisions(
        &self,
        after: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, {COLUMNS} FROM decisions WHERE id > $1 AND recorded_at <= $2
             ORDER BY id LIMIT $3"
        ))
        .bind(after)
        .bind(now - EXPORT_LAG_SECONDS)
        .bind(i64::from(limit.min(MAX_DECISION_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decision_from_row).collect()
    }

    /// The records of `tenant`'s identity `identity` decided at or after `since` that kept
    /// their policy request, oldest first, with it: what replay evaluates again. At most
    /// `limit`.
    pub async fn replayable_decisions(
        &self,
        tenant: &str,
        identity: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = self
            .identity_records("request", tenant, identity, since, limit)
            .await?;
        rows.iter()
            .map(|row| {
                let mut record = decision_from_row(row)?;
                record.request = row.try_get("request")?;
                Ok(record)
            })
            .collect()
    }

    /// The records of `tenant`'s identity `identity` since `since` on which a shadow candidate
    /// ran, oldest first, at most `limit`.
    pub async fn shadowed_decisions(
        &self,
        tenant: &str,
        identity: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = self
            .identity_records("shadow", tenant, identity, since, limit)
            .await?;
        rows.iter().map(decision_from_row).collect()
    }

    /// The rows (every page column, and `request`) of an identity's records since `since`
    /// whose `column` is set, oldest first.
    async fn identity_records(
        &self,
        column: &'static str,
        tenant: &str,
        identity: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AnyRow>, StoreError> {
        Ok(sqlx::query(&format!(
            "SELECT id, {COLUMNS}, request FROM decisions
             WHERE tenant = $1 AND identity = $2 AND at >= $3 AND {column} IS NOT NULL
             ORDER BY id LIMIT $4"
        ))
        .bind(tenant)
        .bind(identity)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets the policy requests of records decided before `before` (the replay window);
    /// how many.
    pub async fn prune_requests(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE decisions SET request = NULL WHERE at < $1 AND request IS NOT NULL",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes records decided before `before`, a batch per statement; how many went.
    pub async fn prune_decisions(&self, before: i64) -> Result<u64, StoreError> {
        let mut pruned = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM decisions WHERE id IN
                 (SELECT id FROM decisions WHERE at < $1 ORDER BY at LIMIT $2)",
            )
            .bind(before)
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned += done;
            if done < PRUNE_BATCH as u64 {
                return Ok(pruned);
            }
            // Writers go between two batches.
            tokio::task::yield_now().await;
        }
    }
}

fn decision_from_row(row: &AnyRow) -> Result<DecisionRecord, StoreError> {
    let allowed: i64 = row.try_get("allowed")?;
    let scopes: String = row.try_get("scopes")?;
    let event: String = row.try_get("event")?;
    let logs: Option<String> = row.try_get("logs")?;
    let shadow: Option<String> = row.try_get("shadow")?;
    Ok(DecisionRecord {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        identity: row.try_get("identity")?,
        at: row.try_get("at")?,
        allowed: allowed != 0,
        code: row.try_get("code")?,
        reason: row.try_get("reason")?,
        source: row.try_get("source")?,
        subject: row.try_get("subject")?,
        issuer: row.try_get("issuer")?,
        policy_digest: row.try_get("policy_digest")?,
        fuel_used: row.try_get("fuel_used")?,
        scopes: from_json("decisions.scopes", &scopes)?,
        client_address: row.try_get("client_address")?,
        jti: row.try_get("jti")?,
        event: Event::parse(&event),
        subject_jti: row.try_get("subject_jti")?,
        session: row.try_get("session")?,
        session_ends: row.try_get("session_ends")?,
        logs: match logs {
            Some(logs) => from_json("decisions.logs", &logs)?,
            None => Vec::new(),
        },
        shadow: shadow
            .map(|text| from_json("decisions.shadow", &text))
            .transpose()?,
        request: None,
    })
}
