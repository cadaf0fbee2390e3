//! Tenants.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tenant, now};

impl Store {
    /// Creates tenant `name`; [`StoreError::Conflict`] if it exists.
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            name: name.to_owned(),
            created_at: now(),
        };
        let inserted = sqlx::query(
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&tenant.name)
        .bind(tenant.created_at)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "tenant `{name}` already exists"
            )));
        }
        Ok(tenant)
    }

    /// Tenant `name`, if it exists.
    pub async fn get_tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT name, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    /// Every tenant, by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT name, created_at FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// [`StoreError::NotFound`] unless tenant `name` exists.
    pub(super) async fn require_tenant(&self, name: &str) -> Result<(), StoreError> {
        let found = sqlx::query("SELECT 1 FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("tenant `{name}` not found"))),
        }
    }
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}
