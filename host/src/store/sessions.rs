//! The life of issued tokens after issue: uses consumed and sessions revoked. A session is
//! a first token and its renewals, named by the first token's `jti`.
//!
//! Each change is one statement, atomic on its own, so replicas sharing a PostgreSQL database
//! count and revoke together: two introspections of a session's last use cannot both consume
//! it.

use super::{Store, StoreError};

/// What consuming one use of a session found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// This was use number `used` (1 for the first) of the limit.
    Used(u32),
    /// Every use was consumed before.
    Exhausted,
}

impl Store {
    /// Consumes one of `limit` uses of `session` (of `tenant`), which ends at `ends_at`.
    pub async fn consume_use(
        &self,
        tenant: &str,
        session: &str,
        limit: u32,
        ends_at: i64,
    ) -> Result<Consumed, StoreError> {
        // The insert takes the first use; the update takes one more only while some are left.
        // Either is a single statement on one row: concurrent callers are serialized on it.
        let row = sqlx::query(
            "INSERT INTO token_uses (session, tenant, used, expires_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (session) DO UPDATE SET used = token_uses.used + 1
             WHERE token_uses.used < $4 AND token_uses.tenant = excluded.tenant
             RETURNING used",
        )
        .bind(session)
        .bind(tenant)
        .bind(ends_at)
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Consumed::Used(super::get_int(&row, "used")?)),
            None => Ok(Consumed::Exhausted),
        }
    }

    /// Revokes `session` of `tenant` until `ends_at` (after which it is dead anyway); whether it
    /// was not revoked before.
    pub async fn revoke_session(
        &self,
        tenant: &str,
        session: &str,
        ends_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO revoked_sessions (session, tenant, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (session) DO NOTHING",
        )
        .bind(session)
        .bind(tenant)
        .bind(ends_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `session` was revoked.
    pub async fn is_session_revoked(&self, session: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS revoked FROM revoked_sessions WHERE session = $1")
            .bind(session)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Revokes every session identity `identity` of `tenant` started whose record was committed
    /// before now and that may still be alive at `now`; how many were newly revoked. A token is
    /// only handed out once its record is committed, so every token already handed out is
    /// covered, and none issued after this returns.
    pub async fn revoke_identity_sessions(
        &self,
        tenant: &str,
        identity: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "INSERT INTO revoked_sessions (session, tenant, expires_at)
             SELECT session, tenant, MAX(session_ends) FROM decisions
             WHERE tenant = $1 AND identity = $2 AND allowed = 1 AND session IS NOT NULL
                   AND session_ends > $3 AND event IN ('exchange', 'renewal')
             GROUP BY session, tenant
             ON CONFLICT (session) DO NOTHING",
        )
        .bind(tenant)
        .bind(identity)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Forgets uses and revocations of sessions that ended before `now`; how many rows went.
    pub async fn prune_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let mut pruned = 0;
        for table in ["token_uses", "revoked_sessions"] {
            let done = sqlx::query(&format!("DELETE FROM {table} WHERE expires_at < $1"))
                .bind(now)
                .execute(&self.pool)
                .await?;
            pruned += done.rows_affected();
        }
        Ok(pruned)
    }

    /// Uses consumed of `session` so far (0 when none was).
    pub async fn uses_consumed(&self, session: &str) -> Result<u32, StoreError> {
        let row = sqlx::query("SELECT used FROM token_uses WHERE session = $1")
            .bind(session)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => super::get_int(&row, "used"),
            None => Ok(0),
        }
    }
}
