//! Admin API keys: stored and found by the SHA-256 hash of their secret only.

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::error::is_foreign_key_violation;
use super::{ApiKey, KeyRole, Store, StoreError, now, random_hex};

/// Prefix of every secret, so a leaked one is recognisable (secret scanners, logs).
const SECRET_PREFIX: &str = "tg_";

/// A new random API key secret (`tg_` and 64 hex digits, 256 bits) and its hash. Show the secret
/// once to whoever asked for it; store only the hash.
pub fn generate_api_key() -> Result<(String, [u8; 32]), StoreError> {
    let secret = format!("{SECRET_PREFIX}{}", random_hex(32)?);
    let hash = hash_api_key(&secret);
    Ok((secret, hash))
}

/// The SHA-256 hash under which a secret is stored and looked up. The secret has 256 random
/// bits, so a plain fast hash is enough: there is nothing to brute-force.
pub fn hash_api_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Store {
    /// Stores a key for `tenant` (`None`: an operator key). [`StoreError::NotFound`] if the
    /// tenant does not exist, [`StoreError::Conflict`] if the hash is already stored.
    pub async fn create_api_key(
        &self,
        tenant: Option<&str>,
        secret_hash: &[u8; 32],
        label: &str,
    ) -> Result<ApiKey, StoreError> {
        self.create_api_key_as(tenant, secret_hash, label, KeyRole::Admin)
            .await
    }

    /// [`Self::create_api_key`] for a key with `role`.
    pub async fn create_api_key_as(
        &self,
        tenant: Option<&str>,
        secret_hash: &[u8; 32],
        label: &str,
        role: KeyRole,
    ) -> Result<ApiKey, StoreError> {
        if let Some(tenant) = tenant {
            self.require_tenant(tenant).await?;
        }
        let key = ApiKey {
            id: format!("key_{}", random_hex(12)?),
            tenant: tenant.map(str::to_owned),
            label: label.to_owned(),
            role,
            created_at: now(),
        };
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, tenant, secret_hash, label, created_at, role)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (secret_hash) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.tenant)
        .bind(&secret_hash[..])
        .bind(&key.label)
        .bind(key.created_at)
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!("tenant `{}` not found", tenant.unwrap_or("")))
            } else {
                e.into()
            }
        })?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "this API key already exists".to_owned(),
            ));
        }
        Ok(key)
    }

    /// The key whose secret hashes to `secret_hash`, if any.
    pub async fn find_api_key(&self, secret_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant, label, created_at, role FROM api_keys WHERE secret_hash = $1",
        )
        .bind(&secret_hash[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    /// The keys of `tenant` (`None`: operator keys), oldest first, without their hashes.
    pub async fn list_api_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let query = match tenant {
            Some(tenant) => sqlx::query(
                "SELECT id, tenant, label, created_at, role FROM api_keys
                 WHERE tenant = $1 ORDER BY created_at, id",
            )
            .bind(tenant),
            None => sqlx::query(
                "SELECT id, tenant, label, created_at, role FROM api_keys
                 WHERE tenant IS NULL ORDER BY created_at, id",
            ),
        };
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Deletes key `id` if it belongs to `tenant` (`None`: an operator key); whether it did.
    pub async fn delete_api_key(&self, tenant: Option<&str>, id: &str) -> Result<bool, StoreError> {
        let query = match tenant {
            Some(tenant) => sqlx::query("DELETE FROM api_keys WHERE id = $1 AND tenant = $2")
                .bind(id)
                .bind(tenant),
            None => sqlx::query("DELETE FROM api_keys WHERE id = $1 AND tenant IS NULL").bind(id),
        };
        Ok(query.execute(&self.pool).await?.rows_affected() > 0)
    }

    /// How many operator keys exist (none: the server offers to bootstrap one).
    pub async fn count_operator_keys(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE tenant IS NULL")
            .fetch_one(&self.pool)
            .await?;
        super::get_int(&row, "n")
    }
}

fn api_key_from_row(row: &AnyRow) -> Result<ApiKey, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        label: row.try_get("label")?,
        role: KeyRole::parse(&role)
            .ok_or_else(|| StoreError::corrupt("api_keys.role", role.clone()))?,
        created_at: row.try_get("created_at")?,
    })
}
