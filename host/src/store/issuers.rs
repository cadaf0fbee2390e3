//! Token issuers, per tenant.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::cache::MAX_ENTRIES;
use super::changes::Change;
use super::error::is_foreign_key_violation;
use super::{IssuerRecord, Store, StoreError, from_json, now, to_json};

const COLUMNS: &str = "tenant, name, issuer_url, source, created_at, updated_at";

impl Store {
    /// Creates or replaces issuer `(issuer.tenant, issuer.name)`; returns it as stored.
    /// `created_at` survives replacement; both times are set here, not taken from `issuer`.
    /// [`StoreError::NotFound`] if the tenant does not exist.
    pub async fn put_issuer(&self, issuer: &IssuerRecord) -> Result<IssuerRecord, StoreError> {
        self.require_tenant(&issuer.tenant).await?;
        let at = now();
        let row = sqlx::query(&format!(
            "INSERT INTO issuers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (tenant, name) DO UPDATE
             SET issuer_url = excluded.issuer_url, source = excluded.source,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        ))
        .bind(&issuer.tenant)
        .bind(&issuer.name)
        .bind(&issuer.issuer_url)
        .bind(to_json("issuer source", &issuer.source)?)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        let stored = issuer_from_row(&row)?;
        self.cache.issuer_written(&issuer.tenant, &issuer.name);
        self.announce(Change::Issuer {
            tenant: issuer.tenant.clone(),
            name: issuer.name.clone(),
        })
        .await;
        Ok(stored)
    }

    /// Issuer `name` of `tenant`, if it exists.
    pub async fn get_issuer(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<IssuerRecord>, StoreError> {
        if let Some(found) = self.cache.issuer(tenant, name) {
            return Ok(Some(found));
        }
        let seen = self.cache.issuers_seen();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issuers WHERE tenant = $1 AND name = $2"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let found = row.as_ref().map(issuer_from_row).transpose()?;
        if let Some(found) = &found {
            self.cache.fill_issuer(found, seen);
        }
        Ok(found)
    }

    /// The issuers of `tenant`, by name.
    pub async fn list_issuers(&self, tenant: &str) -> Result<Vec<IssuerRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issuers WHERE tenant = $1 ORDER BY name"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issuer_from_row).collect()
    }

    /// Every issuer of every tenant, by tenant and name.
    pub async fn all_issuers(&self) -> Result<Vec<IssuerRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issuers ORDER BY tenant, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issuer_from_row).collect()
    }

    /// Reads up to the cache's capacity of issuers into it; how many were kept.
    pub(super) async fn warm_issuers(&self) -> Result<usize, StoreError> {
        let seen = self.cache.issuers_seen();
        let query = format!("SELECT {COLUMNS} FROM issuers LIMIT {MAX_ENTRIES}");
        self.warm(&query, issuer_from_row, |found| {
            self.cache.fill_issuer(found, seen)
        })
        .await
    }

    /// Deletes issuer `name` of `tenant`; whether it existed. [`StoreError::Conflict`] while an
    /// identity still names it.
    pub async fn delete_issuer(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM issuers WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::Conflict(format!("issuer `{name}` is used by identities"))
                } else {
                    e.into()
                }
            })?;
        self.cache.issuer_written(tenant, name);
        self.announce(Change::Issuer {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
        })
        .await;
        Ok(deleted.rows_affected() > 0)
    }
}

fn issuer_from_row(row: &AnyRow) -> Result<IssuerRecord, StoreError> {
    let source: String = row.try_get("source")?;
    Ok(IssuerRecord {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        issuer_url: row.try_get("issuer_url")?,
        source: from_json("issuers.source", &source)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
