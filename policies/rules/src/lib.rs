//! The stock `rules` policy: declarative trust rules read from the identity's config.
//!
//! Every key present must match (AND); each list matches when any entry matches (OR). See
//! `config.rs` for the keys. A config must bind the workload by at least one of `subjects`,
//! `namespaces`, `service_accounts` or `service_account_uids`.
//!
//! The crate is `no_std` and matches globs in the policy (`glob::matches`, the host's dialect), so
//! its component imports no functions at all (only the WIT `types`);
//! build it on its own (`cargo build -p rules --target wasm32-wasip2 --release`).

#![no_std]

extern crate alloc;

mod config;
mod matchers;
pub mod prepared;

use alloc::string::String;
pub use config::RulesConfig;
pub use prepared::{Config, prepare};
use tollgate_policy::prepared::Handed;
use tollgate_policy::{Decision, Grant, Policy, Request, export_policy};

/// The stock declarative policy.
pub struct Rules;

impl Policy for Rules {
    type Config = Config;

    fn validate_config(config: &Config) -> Result<(), String> {
        match config {
            Handed::Written(rules) => rules.validate(),
            Handed::Prepared(_) => Err("the config is a JSON object of rules (a prepared \
                                        config is the server's own, never saved)"
                .into()),
        }
    }

    fn evaluate(config: &Config, request: &Request) -> Decision {
        let prepared;
        let config = match config {
            Handed::Written(rules) => rules,
            Handed::Prepared(text) => match prepared::read(text) {
                Ok(rules) => {
                    prepared = rules;
                    &prepared
                }
                Err(message) => return Decision::deny("config", message),
            },
        };
        if let Err(denial) = matchers::check(config, request) {
            return Decision::Deny(denial);
        }
        let mut grant = Grant::new();
        if let Some(g) = &config.grant {
            grant = grant.scopes(g.scopes.iter().cloned());
            if let Some(ttl) = g.ttl_seconds {
                grant = grant.ttl_seconds(ttl);
            }
        }
        Decision::allow(grant)
    }
}

export_policy!(Rules);
// No std, no wasi-libc, no imported functions (globs are matched in the policy, nothing is logged):
// a single core instance, the cheapest component to instantiate.
tollgate_policy::no_std_runtime!(no_imports);
