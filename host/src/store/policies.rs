//! Policy modules, per tenant, addressed by the `sha256:<hex>` digest of their bytes.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{PolicyMeta, PolicyRecord, Store, StoreError, get_int, now, to_bigint};
use crate::common::digest as digest_of;

const META_COLUMNS: &str = "tenant, digest, name, size, uploaded_at";

impl Store {
    /// Stores `bytes` for `tenant` under `digest`, which must be their `sha256:<hex>`. Idempotent:
    /// storing the same module again keeps its upload time, and its name unless `name` gives one.
    /// [`StoreError::NotFound`] if the tenant does not exist, [`StoreError::Invalid`] if the
    /// digest does not match.
    pub async fn put_policy(
        &self,
        tenant: &str,
        digest: &str,
        bytes: &[u8],
        name: Option<&str>,
    ) -> Result<PolicyMeta, StoreError> {
        // The digest is the module's identity for the engine's cache and for identities: a
        // mismatch would make one digest run another module.
        let actual = digest_of(bytes);
        if digest != actual {
            return Err(StoreError::Invalid(format!(
                "policy digest `{digest}` does not match its bytes (`{actual}`)"
            )));
        }
        self.require_tenant(tenant).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO policies (tenant, digest, name, size, bytes, uploaded_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, digest) DO UPDATE
             SET name = COALESCE(excluded.name, policies.name)
             RETURNING {META_COLUMNS}"
        ))
        .bind(tenant)
        .bind(digest)
        .bind(name)
        .bind(to_bigint("policy size", bytes.len())?)
        .bind(bytes)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        meta_from_row(&row)
    }

    /// Policy `digest` of `tenant`, with its bytes, if `tenant` stored it.
    pub async fn get_policy(
        &self,
        tenant: &str,
        digest: &str,
    ) -> Result<Option<PolicyRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {META_COLUMNS}, bytes FROM policies WHERE tenant = $1 AND digest = $2"
        ))
        .bind(tenant)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Whether `tenant` stored policy `digest`.
    pub async fn has_policy(&self, tenant: &str, digest: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM policies WHERE tenant = $1 AND digest = $2")
            .bind(tenant)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The policies of `tenant`, newest first, without their bytes.
    pub async fn list_policies(&self, tenant: &str) -> Result<Vec<PolicyMeta>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {META_COLUMNS} FROM policies WHERE tenant = $1
             ORDER BY uploaded_at DESC, digest"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meta_from_row).collect()
    }

    /// Every policy of every tenant, without the bytes (a thousand modules' bytes at once
    /// were a quarter of a GiB the server kept after starting).
    pub async fn all_policies(&self) -> Result<Vec<PolicyMeta>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {META_COLUMNS} FROM policies ORDER BY tenant, digest"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meta_from_row).collect()
    }
}

fn meta_from_row(row: &AnyRow) -> Result<PolicyMeta, StoreError> {
    Ok(PolicyMeta {
        tenant: row.try_get("tenant")?,
        digest: row.try_get("digest")?,
        size: get_int(row, "size")?,
        uploaded_at: row.try_get("uploaded_at")?,
        name: row.try_get("name")?,
    })
}

fn record_from_row(row: &AnyRow) -> Result<PolicyRecord, StoreError> {
    Ok(PolicyRecord {
        meta: meta_from_row(row)?,
        bytes: row.try_get("bytes")?,
    })
}
