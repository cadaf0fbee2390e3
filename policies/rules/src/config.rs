//! The `rules` config (docs/CONTRACTS.md, contract 2) and its validation.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;
use tollgate_policy::glob;

/// The identity's declarative trust rules.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Globs on `sub`.
    pub subjects: Option<Vec<String>>,
    /// Globs on the `kubernetes.io` namespace.
    pub namespaces: Option<Vec<String>>,
    /// Globs on the ServiceAccount name.
    pub service_accounts: Option<Vec<String>>,
    /// Exact ServiceAccount UIDs: a deleted and recreated account gets a new UID.
    pub service_account_uids: Option<Vec<String>>,
    /// The token must carry one of these audiences (exact).
    pub audiences: Option<Vec<String>>,
    /// Pod binding.
    pub pod: Option<Binding>,
    /// Node binding.
    pub node: Option<Binding>,
    /// Maximum `now - iat`.
    pub max_token_age_seconds: Option<i64>,
    /// JSON pointer into the token payload -> globs on the value found there.
    pub claims: Option<BTreeMap<String, Vec<String>>>,
    /// What an allowed workload receives.
    pub grant: Option<GrantConfig>,
}

/// A pod or node binding rule.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The token must be bound to such an object.
    #[serde(default)]
    pub required: bool,
    /// When the token is bound, the object's name must match one of these globs.
    pub names: Option<Vec<String>>,
}

/// The grant of an allowed exchange.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A cap on the issued token's lifetime.
    pub ttl_seconds: Option<u32>,
}

impl RulesConfig {
    /// Rejects configs that bind nothing, empty lists and invalid globs or pointers.
    pub fn validate(&self) -> Result<(), String> {
        let binds = [
            &self.subjects,
            &self.namespaces,
            &self.service_accounts,
            &self.service_account_uids,
        ]
        .iter()
        .any(|key| key.is_some());
        if !binds {
            return Err(
                "config binds nothing: set at least one of `subjects`, `namespaces`, \
                        `service_accounts` or `service_account_uids`"
                    .into(),
            );
        }
        globs("subjects", &self.subjects)?;
        globs("namespaces", &self.namespaces)?;
        globs("service_accounts", &self.service_accounts)?;
        non_empty("service_account_uids", &self.service_account_uids)?;
        non_empty("audiences", &self.audiences)?;
        for (key, binding) in [("pod", &self.pod), ("node", &self.node)] {
            if let Some(binding) = binding {
                globs(&format!("{key}.names"), &binding.names)?;
            }
        }
        if self.max_token_age_seconds.is_some_and(|age| age <= 0) {
            return Err("`max_token_age_seconds` must be positive".into());
        }
        for (pointer, patterns) in self.claims.iter().flatten() {
            if !pointer.starts_with('/') {
                return Err(format!(
                    "claim `{pointer}` is not a JSON pointer (it must start with `/`)"
                ));
            }
            globs(&format!("claims.{pointer}"), &Some(patterns.clone()))?;
        }
        if self
            .grant
            .as_ref()
            .is_some_and(|g| g.ttl_seconds == Some(0))
        {
            return Err("`grant.ttl_seconds` must be positive".into());
        }
        Ok(())
    }
}

fn non_empty(key: &str, list: &Option<Vec<String>>) -> Result<(), String> {
    match list {
        Some(list) if list.is_empty() => Err(format!("`{key}` is empty: it would match nothing")),
        _ => Ok(()),
    }
}

fn globs(key: &str, list: &Option<Vec<String>>) -> Result<(), String> {
    non_empty(key, list)?;
    for pattern in list.iter().flatten() {
        glob::validate(pattern).map_err(|e| format!("`{key}`: {e}"))?;
    }
    Ok(())
}
