//! The audit log: exchange decisions, append-only, paged newest first.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, DecisionRecord, Event, Store, StoreError, from_json, to_json};

const COLUMNS: &str = "tenant, identity, at, allowed, code, reason, source, subject, issuer, \
                       policy_digest, fuel_used, scopes, client_address, jti, event, subject_jti, \
                       session, session_ends, logs";

/// How many columns [`COLUMNS`] names.
pub(super) const COLUMN_COUNT: usize = 19;

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the [`COLUMNS`] of `d`, in order.
fn bind<'q>(query: Query<'q>, d: &'q DecisionRecord) -> Result<Query<'q>, StoreError> {
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
        }))
}

/// The most decisions one page returns, whatever the caller asks.
pub const MAX_DECISION_PAGE: u32 = 1000;

impl Store {
    /// Appends a decision (its `id` is ignored); returns the id it was given.
    pub async fn append_decision(&self, d: &DecisionRecord) -> Result<i64, StoreError> {
        let params: Vec<String> = (1..=COLUMN_COUNT).map(|c| format!("${c}")).collect();
        let sql = format!(
            "INSERT INTO decisions ({COLUMNS}) VALUES ({}) RETURNING id",
            params.join(", ")
        );
        let row = bind(sqlx::query(&sql), d)?.fetch_one(&self.pool).await?;
        Ok(row.try_get("id")?)
    }

    /// Appends `records` in one statement, in order (at most
    /// [`MAX_BATCH`](super::decision_log::MAX_BATCH) of them).
    pub async fn append_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
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
            "INSERT INTO decisions ({COLUMNS}) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for d in records {
            query = bind(query, d)?;
        }
        query.execute(&self.pool).await?;
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

fn decision_from_row(row: &AnyRow) -> Result<DecisionRecord, StoreError> {
    let allowed: i64 = row.try_get("allowed")?;
    let scopes: String = row.try_get("scopes")?;
    let event: String = row.try_get("event")?;
    let logs: Option<String> = row.try_get("logs")?;
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
    })
}
