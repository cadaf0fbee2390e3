//! Loaded policy modules by address: `builtin:rules`, `builtin:cel` and uploaded `sha256:`
//! digests.
//!
//! Modules are compiled when they are uploaded (or, at start, read from the artifact cache);
//! the exchange path only ever looks them up.

use super::engine::PolicyEngine;
use super::module::{LoadError, PolicyModule};
use super::prepare::Preparer;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The address of the stock declarative policy.
pub const BUILTIN_RULES: &str = "builtin:rules";

/// The stock `rules` component, built by `host/build.rs`.
pub const BUILTIN_RULES_WASM: &[u8] = include_bytes!(env!("TOLLGATE_BUILTIN_RULES"));

/// The address of the stock CEL policy (`policies/cel`).
pub const BUILTIN_CEL: &str = "builtin:cel";

/// The stock `cel` component, built by `host/build.rs`.
pub const BUILTIN_CEL_WASM: &[u8] = include_bytes!(env!("TOLLGATE_BUILTIN_CEL"));

/// Every built-in policy's address.
pub const BUILTINS: &[&str] = &[BUILTIN_RULES, BUILTIN_CEL];

/// Compiles `builtin:rules` (or reads its cached artifact), its configs prepared by the host
/// ([`Preparer::rules`]); blocking.
pub fn load_builtin_rules(engine: &PolicyEngine) -> Result<PolicyModule, LoadError> {
    Ok(engine
        .load(BUILTIN_RULES_WASM)?
        .with_preparer(Preparer::rules()))
}

/// Compiles `builtin:cel` (or reads its cached artifact), its configs prepared by the host
/// ([`Preparer::cel`]); blocking.
pub fn load_builtin_cel(engine: &PolicyEngine) -> Result<PolicyModule, LoadError> {
    Ok(engine
        .load(BUILTIN_CEL_WASM)?
        .with_preparer(Preparer::cel()))
}

/// Policy modules ready to evaluate, keyed by `(tenant, address)`; built-ins have no tenant.
pub struct PolicyRegistry {
    engine: Arc<PolicyEngine>,
    modules: RwLock<HashMap<(String, String), Arc<PolicyModule>>>,
    builtin_rules: Arc<PolicyModule>,
    /// Compiled on first use ([`PolicyRegistry::load_builtin_cel`]): it is a CEL interpreter,
    /// several megabytes of code, and most servers never run it.
    builtin_cel: std::sync::OnceLock<Arc<PolicyModule>>,
}

impl PolicyRegistry {
    /// A registry with the built-in policies loaded.
    pub fn new(engine: Arc<PolicyEngine>) -> Result<Self, LoadError> {
        let builtin_rules = Arc::new(load_builtin_rules(&engine)?);
        Ok(Self {
            engine,
            modules: RwLock::default(),
            builtin_rules,
            builtin_cel: std::sync::OnceLock::new(),
        })
    }

    /// Compiles `builtin:cel` (or reads its cached artifact) unless it is loaded; blocking.
    pub fn load_builtin_cel(&self) -> Result<Arc<PolicyModule>, LoadError> {
        if let Some(module) = self.builtin_cel.get() {
            return Ok(module.clone());
        }
        let module = Arc::new(load_builtin_cel(&self.engine)?);
        Ok(self.builtin_cel.get_or_init(|| module).clone())
    }

    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// Compiles (or reads the cached artifact of) a tenant's module and makes it available.
    /// Returns the loaded module; its `info.digest` is its address.
    pub fn load(&self, tenant: &str, bytes: &[u8]) -> Result<Arc<PolicyModule>, LoadError> {
        let module = Arc::new(self.engine.load(bytes)?);
        self.insert(tenant, module.clone());
        Ok(module)
    }

    /// Makes a stored module available from its cached artifact alone (see
    /// [`PolicyEngine::load_cached`]); `None` when it has to be loaded from its bytes.
    pub fn load_cached(
        &self,
        tenant: &str,
        digest: &str,
        size: usize,
    ) -> Option<Result<Arc<PolicyModule>, LoadError>> {
        let module = match self.engine.load_cached(digest, size)? {
            Ok(module) => Arc::new(module),
            Err(error) => return Some(Err(error)),
        };
        self.insert(tenant, module.clone());
        Some(Ok(module))
    }

    fn insert(&self, tenant: &str, module: Arc<PolicyModule>) {
        self.modules
            .write()
            .expect("policy registry poisoned")
            .insert((tenant.to_owned(), module.info.digest.clone()), module);
    }

    /// The module at `address` for `tenant`: a built-in, or one of the tenant's own uploads.
    pub fn get(&self, tenant: &str, address: &str) -> Option<Arc<PolicyModule>> {
        if address == BUILTIN_RULES {
            return Some(self.builtin_rules.clone());
        }
        if address == BUILTIN_CEL {
            return self.builtin_cel.get().cloned();
        }
        self.modules
            .read()
            .expect("policy registry poisoned")
            .get(&(tenant.to_owned(), address.to_owned()))
            .cloned()
    }
}
