//! Policy modules on demand: `builtin:cel`, compiled on its first use, and a module another
//! server on the same database accepted (uploaded at another replica), which is not in this
//! server's registry until it is loaded here. The first
//! exchange that needs it loads it by digest from the store (the artifact cache first, else a
//! compile off the async workers), once per server: loads are serialized, and a load that finds
//! the module already there does nothing.

use super::{ExchangeService, Failure};
use crate::policy::PolicyModule;
use crate::store::IdentityRecord;
use std::sync::Arc;

impl ExchangeService {
    /// The module at `address` for `tenant`, loaded from the store when this server does not
    /// have it yet; `None` when the store has no such module (or it no longer loads).
    pub async fn policy_module(
        &self,
        tenant: &str,
        address: &str,
    ) -> Result<Option<Arc<PolicyModule>>, Failure> {
        if let Some(module) = self.policies.get(tenant, address) {
            return Ok(Some(module));
        }
        if address == crate::policy::BUILTIN_CEL {
            let registry = self.policies.clone();
            let loaded = tokio::task::spawn_blocking(move || registry.load_builtin_cel())
                .await
                .map_err(|e| Failure::PolicyNotLoaded(format!("{address}: {e}")))?;
            return loaded
                .map(Some)
                .map_err(|e| Failure::PolicyNotLoaded(format!("{address}: {e}")));
        }
        if !address.starts_with("sha256:") {
            return Ok(None);
        }
        let _one_at_a_time = self.module_loads.lock().await;
        if let Some(module) = self.policies.get(tenant, address) {
            return Ok(Some(module));
        }
        let Some(record) = self
            .store
            .get_policy(tenant, address)
            .await
            .map_err(Failure::Store)?
        else {
            return Ok(None);
        };
        let registry = self.policies.clone();
        let owner = tenant.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            let size = record.bytes.len();
            match registry.load_cached(&owner, &record.meta.digest, size) {
                Some(loaded) => loaded,
                None => registry.load(&owner, &record.bytes),
            }
        })
        .await
        .map_err(|e| Failure::PolicyNotLoaded(format!("{address}: {e}")))?;
        match loaded {
            Ok(module) => {
                tracing::info!(%tenant, digest = %address, "policy module loaded on demand");
                Ok(Some(module))
            }
            Err(error) => {
                tracing::error!(%tenant, digest = %address, %error, "stored policy does not load");
                Ok(None)
            }
        }
    }

    /// The identity's shadow candidate when this exchange is in its sample and it loads; a
    /// candidate that does not load is skipped (it never changes an answer).
    pub async fn shadow_candidate(&self, identity: &IdentityRecord) -> Option<Arc<PolicyModule>> {
        let shadow = identity.shadow.as_ref()?;
        if !crate::common::sampled(shadow.sample) {
            return None;
        }
        match self.policy_module(&identity.tenant, &shadow.resolved).await {
            Ok(Some(module)) => Some(module),
            _ => {
                tracing::warn!(tenant = %identity.tenant, identity = %identity.id,
                    candidate = %shadow.resolved, "shadow candidate not loaded; skipped");
                None
            }
        }
    }
}
