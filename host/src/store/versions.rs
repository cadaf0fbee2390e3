//! Named policies: per tenant and name, a history of versions, each naming a stored module.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{PolicyVersion, Store, StoreError, get_int, now};

const COLUMNS: &str = "name, version, digest, created_at, created_by, description";

/// How often an insert is retried when another replica took the same version number.
const ATTEMPTS: usize = 3;

impl Store {
    /// Makes module `digest` (stored already) the newest version of `tenant`'s policy `name`.
    /// When it is the newest version already, nothing changes: returns that version and
    /// `false`.
    pub async fn add_policy_version(
        &self,
        tenant: &str,
        name: &str,
        digest: &str,
        created_by: Option<&str>,
        description: Option<&str>,
    ) -> Result<(PolicyVersion, bool), StoreError> {
        let mut attempt = 0;
        loop {
            if let Some(newest) = self.policy_version(tenant, name, None).await?
                && newest.digest == digest
            {
                return Ok((newest, false));
            }
            let inserted = sqlx::query(&format!(
                "INSERT INTO policy_versions
                   (tenant, name, version, digest, created_at, created_by, description)
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6
                 FROM policy_versions WHERE tenant = $1 AND name = $2
                 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(name)
            .bind(digest)
            .bind(now())
            .bind(created_by)
            .bind(description)
            .fetch_one(&self.pool)
            .await;
            match inserted {
                Ok(row) => return Ok((version_from_row(&row)?, true)),
                // Another writer took that number: read the newest again.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < ATTEMPTS => {
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Version `version` of `tenant`'s policy `name`, or its newest with `None`.
    pub async fn policy_version(
        &self,
        tenant: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<PolicyVersion>, StoreError> {
        let row = match version {
            Some(v) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM policy_versions
                     WHERE tenant = $1 AND name = $2 AND version = $3"
                ))
                .bind(tenant)
                .bind(name)
                .bind(i64::from(v))
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM policy_versions
                     WHERE tenant = $1 AND name = $2 ORDER BY version DESC LIMIT 1"
                ))
                .bind(tenant)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.as_ref().map(version_from_row).transpose()
    }

    /// Every version of `tenant`'s policy `name`, newest first.
    pub async fn policy_versions(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_versions WHERE tenant = $1 AND name = $2
             ORDER BY version DESC"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }
}

fn version_from_row(row: &AnyRow) -> Result<PolicyVersion, StoreError> {
    Ok(PolicyVersion {
        name: row.try_get("name")?,
        version: get_int(row, "version")?,
        digest: row.try_get("digest")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        description: row.try_get("description")?,
    })
}
