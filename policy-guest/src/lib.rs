//! # Writing Tollgate trust policies
//!
//! A trust policy decides which verified workloads may assume an identity, and with what grant.
//! Tollgate runs it as a sandboxed WebAssembly component: a fresh instance per decision, under a
//! fuel budget, a memory cap and a wall-clock backstop. The host has already authenticated the
//! subject token (signature, issuer, lifetime, audience) — a policy only *authorizes*.
//!
//! Implement [`Policy`] for a type, call [`export_policy!`] once, and build the crate for
//! `wasm32-wasip2`:
//!
//! ```
//! use serde::Deserialize;
//! use tollgate_policy::{Decision, Grant, Policy, Request, export_policy, glob_match};
//!
//! /// Lets one namespace in, with fixed scopes.
//! pub struct OneNamespace;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Config {
//!     /// A glob on the namespace, such as `team-a-*`.
//!     namespace: String,
//!     scopes: Vec<String>,
//! }
//!
//! impl Policy for OneNamespace {
//!     type Config = Config;
//!
//!     fn validate_config(config: &Config) -> Result<(), String> {
//!         tollgate_policy::glob::validate(&config.namespace).map_err(|e| e.to_string())
//!     }
//!
//!     fn evaluate(config: &Config, request: &Request) -> Decision {
//!         match request.token.namespace() {
//!             Some(ns) if glob_match(&config.namespace, ns) => {
//!                 Decision::allow(Grant::new().scopes(config.scopes.iter().cloned()))
//!             }
//!             _ => Decision::deny("namespace", "namespace is not allowed"),
//!         }
//!     }
//! }
//!
//! export_policy!(OneNamespace);
//!
//! // The same logic runs natively, so `cargo test` needs no WebAssembly:
//! let mut request = Request::default();
//! request.token.kubernetes = Some(tollgate_policy::KubernetesClaims {
//!     namespace: "team-a-prod".into(),
//!     ..Default::default()
//! });
//! let config = r#"{"namespace": "team-a-*", "scopes": ["read"]}"#;
//! let decision = tollgate_policy::evaluate_json::<OneNamespace>(config, &request);
//! assert_eq!(decision.grant().unwrap().scopes, ["read"]);
//! ```
//!
//! The crate needs `crate-type = ["cdylib", "rlib"]`: `cdylib` for the component, `rlib` for
//! native tests. Check and unit-test the built module with `tollgate policy check` and
//! `tollgate policy test`.

pub mod config;
pub mod decision;
pub mod glob;
pub mod host;
pub mod types;

pub use config::{ConfigError, parse as parse_config};
pub use decision::{Decision, Denial, Grant};
pub use host::{Level, glob_match, log};
pub use types::{Exchange, KubernetesClaims, ObjectRef, Request, Token};

use serde::de::DeserializeOwned;

/// A trust policy. Implement it and register the type with [`export_policy!`].
pub trait Policy {
    /// The identity's policy config, parsed from JSON with `serde`.
    type Config: DeserializeOwned;

    /// Checks a parsed config when an identity is created or changed. Return a message that
    /// tells the tenant what to fix. The default accepts every config that parses.
    fn validate_config(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Decides one exchange. Deterministic code is easiest to test: read the time from
    /// [`Exchange::now`] rather than a clock.
    fn evaluate(config: &Self::Config, request: &Request) -> Decision;
}

/// Parses `config` and runs [`Policy::validate_config`], as the host's `validate-config` does.
pub fn validate_json<P: Policy>(config: &str) -> Result<(), String> {
    let parsed: P::Config = config::parse(config)?;
    P::validate_config(&parsed)
}

/// Parses `config` and runs [`Policy::evaluate`], as the host's `evaluate` does. A config that
/// does not parse is a denial with code `config`.
pub fn evaluate_json<P: Policy>(config: &str, request: &Request) -> Decision {
    match config::parse::<P::Config>(config) {
        Ok(parsed) => P::evaluate(&parsed, request),
        Err(error) => Decision::deny("config", error.to_string()),
    }
}

/// Exports a [`Policy`] implementation as the component's `trust-policy` world.
///
/// Use it once per crate. Compiled natively it expands to nothing, so the crate's unit tests
/// can call [`evaluate_json`] directly.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, reason = "wit-bindgen's generated canonical ABI exports")]
        const _: () = {
            struct TollgateExports;

            impl $crate::__private::Guest for TollgateExports {
                fn evaluate(
                    request: $crate::__private::WitRequest,
                ) -> $crate::__private::WitDecision {
                    $crate::__private::evaluate::<$policy>(request)
                }

                fn validate_config(config: ::std::string::String) -> Result<(), ::std::string::String> {
                    $crate::validate_json::<$policy>(&config)
                }
            }

            $crate::bindings::__tollgate_export_world!(TollgateExports with_types_in $crate::__private::bindings);
        };
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::Guest;
    pub use crate::bindings::tollgate::policy::types::{
        Decision as WitDecision, Request as WitRequest,
    };

    pub fn evaluate<P: crate::Policy>(request: WitRequest) -> WitDecision {
        let request = crate::convert::request(request);
        crate::convert::decision(crate::evaluate_json::<P>(&request.config, &request))
    }
}

#[cfg(target_arch = "wasm32")]
mod convert;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(unsafe_code, reason = "wit-bindgen's generated canonical ABI glue")]
#[allow(missing_docs, clippy::all, reason = "generated code")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "trust-policy",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__tollgate_export_world",
        default_bindings_module: "tollgate_policy::bindings",
    });
}
