//! `builtin:cel`: a trust policy that is a CEL expression, with no build step. The config:
//!
//! ```json
//! {"condition": "assertion['kubernetes.io'].namespace == 'prod' && 'deploy' in request.scopes",
//!  "grant": {"scopes": ["registry.pull"], "ttl_seconds": 600, "claims": {"team": "'a'"}}}
//! ```
//!
//! The names are GCP Workload Identity Federation's: `assertion` is the verified subject
//! token's payload (`assertion.sub`, `assertion['kubernetes.io'].namespace`), `request` the
//! exchange (`request.scopes`, `request.audiences`, `request.client_address` (null when
//! unknown), `request.now`, `request.tenant`, `request.identity`), and `now` the exchange's
//! time in Unix seconds.
//!
//! - `condition` (required): must evaluate to `true` to allow (`false`: denial `condition`).
//! - `grant.scopes`: a list of scopes, or a CEL expression giving a list of strings, so the
//!   grant can depend on the token; with `grant.require_scopes`, an empty result is a denial
//!   (`no-scopes`).
//! - `grant.claims`: extra claims of the issued token, each a CEL expression.
//! - `grant.ttl_seconds`: a cap on the token's lifetime.
//!
//! The language is CEL's expression syntax and semantics for what a trust policy needs
//! (`parse.rs`, `eval.rs`): literals, lists and maps, field and index access, `!`, arithmetic,
//! comparisons, `in`, `&&` and `||` (absorbing an error when the other side decides), `?:`,
//! `has()`, `size()`, `int()`, `string()`, `startsWith`, `endsWith`, `contains`, the macros
//! `exists`, `all`, `exists_one`, `filter` and `map`, and one extension: `s.glob(pattern)`,
//! the host's glob match (`*` and `?` stop at `:` and `/`). Not there: `matches` (regular
//! expressions), timestamps and durations, protobuf messages.
//!
//! Why not the `cel-interpreter` crate: every decision is a fresh instance, so the expression
//! is parsed at every decision. cel-interpreter 0.10 parses with an ANTLR runtime: the
//! component is 2.7 MB, took 10 s to compile in a debug host, and parsing a three-line
//! expression ran out of the default 1,000,000 fuel. This parser is a few hundred lines.
//!
//! Expressions are parsed and checked (names bound, functions known) when the identity is
//! saved (`validate-config`), so a mistake is refused with its line and column; an evaluation
//! error, or a condition that is not a boolean, is a denial (`cel-error`).
//!
//! The crate is `no_std` (with `alloc`), like `rules`: without wasi-libc in the component, the
//! SDK's bump allocator owns the initial memory's free part, so a decision grows no memory
//! (about 5 µs less per decision than the same crate on `std`: instantiation, and the
//! `memory.grow` of the first allocation). Build it on its own (`cargo build -p cel`).

#![no_std]

extern crate alloc;

mod eval;
mod parse;

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;
use eval::Scope;
use parse::Expr;
use serde::Deserialize;
use serde_json::Value;
use tollgate_policy::{Decision, Grant, Policy, Request, export_policy};

/// The `builtin:cel` config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CelConfig {
    /// Must evaluate to `true` to allow.
    pub condition: String,
    #[serde(default)]
    pub grant: CelGrant,
}

/// What an allowed exchange receives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CelGrant {
    /// A list of scopes, or a CEL expression giving one.
    #[serde(default)]
    pub scopes: Scopes,
    /// Deny (`no-scopes`) when the scopes come out empty.
    #[serde(default)]
    pub require_scopes: bool,
    /// Claim name -> CEL expression.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    pub ttl_seconds: Option<u32>,
}

/// Static scopes, or an expression.
#[derive(Debug)]
pub enum Scopes {
    List(Vec<String>),
    Expression(String),
}

/// A list or a string, told apart by the JSON's own type: `#[serde(untagged)]` would try the
/// list first and format an error message for every expression, at every decision (a tenth of
/// the policy's instructions).
impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Scopes;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a list of scopes or a CEL expression")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Scopes, E> {
                Ok(Scopes::Expression(text.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Scopes, E> {
                Ok(Scopes::Expression(text))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Scopes, A::Error> {
                let mut scopes = Vec::new();
                while let Some(scope) = seq.next_element()? {
                    scopes.push(scope);
                }
                Ok(Scopes::List(scopes))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes::List(Vec::new())
    }
}

/// `source` parsed and checked, or why not, prefixed with `what`.
fn compile<'s>(what: &str, source: &'s str) -> Result<Expr<'s>, String> {
    if source.trim().is_empty() {
        return Err(format!("{what}: the expression is empty"));
    }
    let expr = parse::parse(source).map_err(|e| format!("{what}: {e}"))?;
    eval::check(&expr, &mut Vec::new()).map_err(|e| format!("{what}: {e}"))?;
    Ok(expr)
}

/// The variables every expression sees.
fn scope(request: &Request) -> Result<Scope<'static>, String> {
    let assertion: Value = request
        .token
        .claims()
        .map_err(|e| format!("the claims are not JSON: {e}"))?;
    let exchange = &request.exchange;
    let request_value = serde_json::json!({
        "scopes": exchange.requested_scopes,
        "audiences": exchange.requested_audiences,
        "client_address": exchange.client_address,
        "now": exchange.now,
        "tenant": exchange.tenant,
        "identity": exchange.identity,
    });
    Ok(Scope::new(vec![
        ("assertion", assertion),
        ("request", request_value),
        ("now", Value::from(exchange.now)),
    ]))
}

/// The `builtin:cel` policy.
pub struct CelPolicy;

impl Policy for CelPolicy {
    type Config = CelConfig;

    fn validate_config(config: &CelConfig) -> Result<(), String> {
        compile("condition", &config.condition)?;
        match &config.grant.scopes {
            Scopes::Expression(source) => {
                compile("grant.scopes", source)?;
            }
            Scopes::List(scopes) => {
                if scopes
                    .iter()
                    .any(|s| s.is_empty() || s.contains(char::is_whitespace))
                {
                    return Err(
                        "grant.scopes: scopes must be non-empty and contain no whitespace".into(),
                    );
                }
            }
        }
        for (name, source) in &config.grant.claims {
            compile(&format!("grant.claims.{name}"), source)?;
        }
        if config.grant.ttl_seconds == Some(0) {
            return Err("grant.ttl_seconds must be positive".into());
        }
        Ok(())
    }

    fn evaluate(config: &CelConfig, request: &Request) -> Decision {
        match decide(config, request) {
            Ok(decision) => decision,
            Err(message) => Decision::deny("cel-error", message),
        }
    }
}

/// Parses and evaluates one of the config's expressions. The checks `compile` adds were made
/// by `validate-config` when the identity was saved (the host runs no config it did not
/// validate), and evaluation refuses an unknown name or function anyway.
fn run<'s>(what: &str, source: &'s str, scope: &mut Scope<'s>) -> Result<Value, String> {
    let expr = parse::parse(source).map_err(|e| format!("{what}: {e}"))?;
    let value = eval::eval(&expr, scope).map_err(|e| format!("{what}: {e}"));
    // The instance is thrown away after this decision: walking the tree to free it (into a
    // bump allocator that frees nothing) is a tenth of the decision's instructions.
    #[cfg(target_arch = "wasm32")]
    core::mem::forget(expr);
    value
}

fn decide(config: &CelConfig, request: &Request) -> Result<Decision, String> {
    let mut scope: Scope<'_> = scope(request)?;
    let mut run = |what: &str, source| run(what, source, &mut scope);
    match run("condition", &config.condition)? {
        Value::Bool(true) => {}
        Value::Bool(false) => return Ok(Decision::deny("condition", "the condition is false")),
        other => return Err(format!("condition: {other} is not a boolean")),
    }
    let scopes: Vec<String> = match &config.grant.scopes {
        Scopes::List(scopes) => scopes.clone(),
        Scopes::Expression(source) => match run("grant.scopes", source)? {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(format!("grant.scopes: the item {other} is not a string")),
                })
                .collect::<Result<_, _>>()?,
            other => return Err(format!("grant.scopes: {other} is not a list")),
        },
    };
    if scopes.is_empty() && config.grant.require_scopes {
        return Ok(Decision::deny(
            "no-scopes",
            "the grant's scopes came out empty",
        ));
    }
    let mut grant = Grant::new().scopes(scopes);
    for (name, source) in &config.grant.claims {
        let value = run(&format!("grant.claims.{name}"), source)?;
        grant = grant.claim(name.clone(), value);
    }
    if let Some(ttl) = config.grant.ttl_seconds {
        grant = grant.ttl_seconds(ttl);
    }
    Ok(Decision::allow(grant))
}

export_policy!(CelPolicy);
tollgate_policy::no_std_runtime!();
