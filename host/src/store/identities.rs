//! Identities, per tenant, each with an opaque unique `uid` that survives updates.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::cache::MAX_ENTRIES;
use super::changes::Change;
use super::error::is_foreign_key_violation;
use super::{
    IdentityRecord, Store, StoreError, from_json, get_int, now, random_hex, to_bigint, to_json,
};

const COLUMNS: &str = "tenant, id, uid, issuer, accepted_audiences, token_audiences, policy, \
                       config, scopes, ttl_seconds, max_ttl_seconds, fuel, created_at, updated_at, \
                       num_uses, trusted_cidrs, resolved_policy, cases, shadow";

impl Store {
    /// Creates or replaces identity `(identity.tenant, identity.id)`; returns it as stored.
    ///
    /// The `uid` is generated at creation and kept by every later put (`identity.uid` is
    /// ignored), as is `created_at`. [`StoreError::NotFound`] if the tenant, its issuer
    /// `identity.issuer`, or (for a `sha256:` policy) the tenant's policy does not exist.
    pub async fn put_identity(
        &self,
        identity: &IdentityRecord,
    ) -> Result<IdentityRecord, StoreError> {
        let tenant = &identity.tenant;
        self.require_tenant(tenant).await?;
        // Every module the record names, as written or resolved, must be the tenant's own.
        let shadow = identity.shadow.as_ref();
        let named = [
            Some(&identity.policy),
            Some(&identity.resolved_policy),
            shadow.map(|s| &s.policy),
            shadow.map(|s| &s.resolved),
        ];
        for digest in named.into_iter().flatten() {
            if digest.starts_with("sha256:") && !self.has_policy(tenant, digest).await? {
                return Err(StoreError::NotFound(format!("policy `{digest}` not found")));
            }
        }
        let at = now();
        let seen = self.cache.identities_seen();
        let row = sqlx::query(&format!(
            "INSERT INTO identities ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16,
                     $17, $18)
             ON CONFLICT (tenant, id) DO UPDATE
             SET issuer = excluded.issuer, accepted_audiences = excluded.accepted_audiences,
                 token_audiences = excluded.token_audiences, policy = excluded.policy,
                 config = excluded.config, scopes = excluded.scopes,
                 ttl_seconds = excluded.ttl_seconds, max_ttl_seconds = excluded.max_ttl_seconds,
                 fuel = excluded.fuel, updated_at = excluded.updated_at,
                 num_uses = excluded.num_uses, trusted_cidrs = excluded.trusted_cidrs,
                 resolved_policy = excluded.resolved_policy, cases = excluded.cases,
                 shadow = excluded.shadow
             RETURNING {COLUMNS}"
        ))
        .bind(tenant)
        .bind(&identity.id)
        .bind(new_uid()?)
        .bind(&identity.issuer)
        .bind(to_json("accepted audiences", &identity.accepted_audiences)?)
        .bind(to_json("token audiences", &identity.token_audiences)?)
        .bind(&identity.policy)
        .bind(to_json("policy config", &identity.config)?)
        .bind(to_json("scopes", &identity.scopes)?)
        .bind(i64::from(identity.ttl_seconds))
        .bind(i64::from(identity.max_ttl_seconds))
        .bind(identity.fuel.map(|f| to_bigint("fuel", f)).transpose()?)
        .bind(at)
        .bind(i64::from(identity.num_uses))
        .bind(to_json("trusted CIDRs", &identity.trusted_cidrs)?)
        .bind(&identity.resolved_policy)
        .bind(to_json("identity cases", &identity.cases)?)
        .bind(
            identity
                .shadow
                .as_ref()
                .map(|s| to_json("shadow", s))
                .transpose()?,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!("issuer `{}` not found", identity.issuer))
            } else {
                e.into()
            }
        })?;
        let stored = identity_from_row(&row)?;
        self.cache.identity_stored(&stored, seen);
        self.announce(Change::Identity {
            tenant: stored.tenant.clone(),
            id: stored.id.clone(),
        })
        .await;
        Ok(stored)
    }

    /// Identity `id` of `tenant`, if it exists.
    pub async fn get_identity(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        if let Some(found) = self.cache.identity(tenant, id) {
            return Ok(Some(found));
        }
        let seen = self.cache.identities_seen();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identities WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let found = row.as_ref().map(identity_from_row).transpose()?;
        if let Some(found) = &found {
            self.cache.fill_identity(found, seen);
        }
        Ok(found)
    }

    /// The identity whose opaque unique id is `uid`, whatever its tenant.
    pub async fn get_identity_by_uid(
        &self,
        uid: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        if let Some(found) = self.cache.identity_by_uid(uid) {
            return Ok(Some(found));
        }
        let seen = self.cache.identities_seen();
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM identities WHERE uid = $1"))
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        let found = row.as_ref().map(identity_from_row).transpose()?;
        if let Some(found) = &found {
            self.cache.fill_identity(found, seen);
        }
        Ok(found)
    }

    /// The identities of `tenant`, by id.
    pub async fn list_identities(&self, tenant: &str) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identities WHERE tenant = $1 ORDER BY id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(identity_from_row).collect()
    }

    /// Deletes identity `id` of `tenant`; whether it existed.
    pub async fn delete_identity(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM identities WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.cache.identity_deleted(tenant, id);
        self.announce(Change::Identity {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
        })
        .await;
        Ok(deleted.rows_affected() > 0)
    }

    /// Reads up to the cache's capacity of identities into it; how many were kept.
    pub(super) async fn warm_identities(&self) -> Result<usize, StoreError> {
        let seen = self.cache.identities_seen();
        let query = format!("SELECT {COLUMNS} FROM identities LIMIT {MAX_ENTRIES}");
        self.warm(&query, identity_from_row, |found| {
            self.cache.fill_identity(found, seen)
        })
        .await
    }
}

/// A random version-4 UUID: 122 random bits, in the shape Kubernetes uses for its uids.
fn new_uid() -> Result<String, StoreError> {
    let hex = random_hex(16)?;
    let variant = match &hex[16..17] {
        "0" | "4" | "8" | "c" => "8",
        "1" | "5" | "9" | "d" => "9",
        "2" | "6" | "a" | "e" => "a",
        _ => "b",
    };
    Ok(format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    ))
}

fn identity_from_row(row: &AnyRow) -> Result<IdentityRecord, StoreError> {
    let text = |column: &'static str| row.try_get::<String, _>(column);
    let fuel: Option<i64> = row.try_get("fuel")?;
    Ok(IdentityRecord {
        tenant: text("tenant")?,
        id: text("id")?,
        uid: text("uid")?,
        issuer: text("issuer")?,
        accepted_audiences: from_json(
            "identities.accepted_audiences",
            &text("accepted_audiences")?,
        )?,
        token_audiences: from_json("identities.token_audiences", &text("token_audiences")?)?,
        policy: text("policy")?,
        config: from_json("identities.config", &text("config")?)?,
        scopes: from_json("identities.scopes", &text("scopes")?)?,
        ttl_seconds: get_int(row, "ttl_seconds")?,
        max_ttl_seconds: get_int(row, "max_ttl_seconds")?,
        fuel: fuel
            .map(|f| u64::try_from(f).map_err(|_| StoreError::corrupt("identities.fuel", f)))
            .transpose()?,
        num_uses: get_int(row, "num_uses")?,
        trusted_cidrs: from_json("identities.trusted_cidrs", &text("trusted_cidrs")?)?,
        resolved_policy: text("resolved_policy")?,
        cases: from_json("identities.cases", &text("cases")?)?,
        shadow: row
            .try_get::<Option<String>, _>("shadow")?
            .map(|text| from_json("identities.shadow", &text))
            .transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
