//! Tollgate's own token signing keys.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::error::is_unique_violation;
use super::{SigningKeyRecord, Store, StoreError, from_json, now, to_json};

const COLUMNS: &str = "kid, alg, private_pkcs8, public_jwk, created_at, retired_at";

/// The `INSERT` of `key`, bound.
fn insert(
    key: &SigningKeyRecord,
) -> Result<sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>, StoreError> {
    Ok(sqlx::query(INSERT)
        .bind(key.kid.clone())
        .bind(key.alg.clone())
        .bind(key.private_pkcs8.clone())
        .bind(to_json("public JWK", &key.public_jwk)?)
        .bind(key.created_at)
        .bind(key.retired_at))
}

const INSERT: &str = "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk, created_at, retired_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// The advisory lock replicas on PostgreSQL take around key generation, so exactly one of
/// them creates the first key or the next one (an arbitrary constant: "tollgate").
const KEY_LOCK: i64 = 0x746f_6c6c_6761_7465;

impl Store {
    /// Stores `key` unless the newest unretired key was created at `newer_than` or later (or,
    /// with `newer_than` `None`, unless any unretired key exists): under a lock every server on
    /// this database takes, so of replicas that decide at once to create the first key or to
    /// rotate, one does. Whether `key` was stored.
    pub async fn insert_signing_key_unless(
        &self,
        key: &SigningKeyRecord,
        newer_than: Option<i64>,
    ) -> Result<bool, StoreError> {
        // SQLite: take the write lock at the start, so that a reader does not find it taken
        // when it wants to insert (which no busy timeout resolves).
        let mut tx = match self.backend {
            super::Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            super::Backend::Postgres => self.pool.begin().await?,
        };
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(KEY_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(created_at) AS newest FROM signing_keys WHERE retired_at IS NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        let count: i64 = row.try_get("n")?;
        let newest: Option<i64> = row.try_get("newest")?;
        let taken = match newer_than {
            None => count > 0,
            Some(limit) => newest.is_some_and(|newest| newest >= limit),
        };
        if taken {
            tx.rollback().await?;
            return Ok(false);
        }
        insert(key)?.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a new signing key. [`StoreError::Conflict`] if its `kid` is taken.
    pub async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        insert(key)?.execute(&self.pool).await.map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("signing key `{}` already exists", key.kid))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    /// Every signing key, retired or not, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    /// Marks every unretired key created before `created_before` as retired now; how many.
    pub async fn retire_signing_keys_before(&self, created_before: i64) -> Result<u64, StoreError> {
        let retired = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE created_at < $2 AND retired_at IS NULL",
        )
        .bind(now())
        .bind(created_before)
        .execute(&self.pool)
        .await?;
        Ok(retired.rows_affected())
    }

    /// Deletes keys retired before `retired_before` (no token they signed is still alive); how
    /// many.
    pub async fn delete_signing_keys_retired_before(
        &self,
        retired_before: i64,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM signing_keys WHERE retired_at < $1")
            .bind(retired_before)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

fn signing_key_from_row(row: &AnyRow) -> Result<SigningKeyRecord, StoreError> {
    let jwk: String = row.try_get("public_jwk")?;
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        private_pkcs8: row.try_get("private_pkcs8")?,
        public_jwk: from_json("signing_keys.public_jwk", &jwk)?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}
