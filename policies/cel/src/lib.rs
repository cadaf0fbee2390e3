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
mod prepared;

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
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

/// What the guest is handed as its config: the JSON object a tenant writes, or the same
/// config as the host prepared it ([`prepare`]): a JSON string holding a program in the
/// encoding of `prepared.rs`.
pub type Config = tollgate_policy::prepared::Handed<CelConfig>;

/// The config's expressions as trees, borrowing from the config they were read from.
#[derive(Debug, PartialEq)]
struct Program<'s> {
    condition: Expr<'s>,
    scopes: ProgramScopes<'s>,
    require_scopes: bool,
    claims: Vec<(&'s str, Expr<'s>)>,
    ttl_seconds: Option<u32>,
}

#[derive(Debug, PartialEq)]
enum ProgramScopes<'s> {
    List(Vec<&'s str>),
    Expression(Expr<'s>),
}

/// Where an expression of the config is: the prefix of its error messages.
#[derive(Clone, Copy)]
enum Part<'s> {
    Condition,
    Scopes,
    Claim(&'s str),
}

impl core::fmt::Display for Part<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Part::Condition => f.write_str("condition"),
            Part::Scopes => f.write_str("grant.scopes"),
            Part::Claim(name) => write!(f, "grant.claims.{name}"),
        }
    }
}

/// `source` parsed (and, with `checked`, its names and functions checked), or why not.
fn compile<'s>(part: Part<'_>, source: &'s str, checked: bool) -> Result<Expr<'s>, String> {
    if source.trim().is_empty() {
        return Err(format!("{part}: the expression is empty"));
    }
    let expr = parse::parse(source).map_err(|e| format!("{part}: {e}"))?;
    if checked {
        eval::check(&expr, &mut Vec::new()).map_err(|e| format!("{part}: {e}"))?;
    }
    Ok(expr)
}

impl<'s> Program<'s> {
    /// Parses a written config's expressions. Only `validate-config` checks them (`checked`):
    /// the host runs no config it did not validate, and evaluation refuses an unknown name or
    /// function anyway.
    fn parse(config: &'s CelConfig, checked: bool) -> Result<Self, String> {
        let grant = &config.grant;
        Ok(Program {
            condition: compile(Part::Condition, &config.condition, checked)?,
            scopes: match &grant.scopes {
                Scopes::List(scopes) => {
                    ProgramScopes::List(scopes.iter().map(|s| s.as_str()).collect())
                }
                Scopes::Expression(source) => {
                    ProgramScopes::Expression(compile(Part::Scopes, source, checked)?)
                }
            },
            require_scopes: grant.require_scopes,
            claims: grant
                .claims
                .iter()
                .map(|(name, source)| {
                    Ok((name.as_str(), compile(Part::Claim(name), source, checked)?))
                })
                .collect::<Result<_, String>>()?,
            ttl_seconds: grant.ttl_seconds,
        })
    }

    /// Reads a prepared program back (`prepared.rs` has the grammar).
    fn read(text: &'s str) -> Result<Self, String> {
        let mut reader = prepared::Reader::new(text)?;
        let condition = reader.expr()?;
        let scopes = match reader.byte()? {
            b'L' => {
                let n = reader.count()?;
                let mut scopes = Vec::with_capacity(n.min(text.len()));
                for _ in 0..n {
                    scopes.push(reader.str()?);
                }
                ProgramScopes::List(scopes)
            }
            b'E' => ProgramScopes::Expression(reader.expr()?),
            _ => return Err("the prepared program is malformed at its scopes".into()),
        };
        let require_scopes = reader.byte()? == b'1';
        let n = reader.count()?;
        let mut claims = Vec::with_capacity(n.min(text.len()));
        for _ in 0..n {
            claims.push((reader.str()?, reader.expr()?));
        }
        let ttl_seconds = match reader.byte()? {
            b'-' => None,
            b't' => Some(
                u32::try_from(reader.count()?)
                    .map_err(|_| String::from("the prepared program's ttl is out of range"))?,
            ),
            _ => return Err("the prepared program is malformed at its ttl".into()),
        };
        if !reader.finished() {
            return Err("the prepared program has bytes after its end".into());
        }
        Ok(Program {
            condition,
            scopes,
            require_scopes,
            claims,
            ttl_seconds,
        })
    }

    /// The program in the encoding [`Program::read`] reads.
    fn write(&self) -> String {
        let mut out = String::from(prepared::MAGIC);
        prepared::write_expr(&mut out, &self.condition);
        match &self.scopes {
            ProgramScopes::List(scopes) => {
                out.push('L');
                prepared::write_count(&mut out, scopes.len());
                scopes.iter().for_each(|s| prepared::write_str(&mut out, s));
            }
            ProgramScopes::Expression(expr) => {
                out.push('E');
                prepared::write_expr(&mut out, expr);
            }
        }
        out.push(if self.require_scopes { '1' } else { '0' });
        prepared::write_count(&mut out, self.claims.len());
        for (name, expr) in &self.claims {
            prepared::write_str(&mut out, name);
            prepared::write_expr(&mut out, expr);
        }
        match self.ttl_seconds {
            None => out.push('-'),
            Some(ttl) => {
                out.push('t');
                prepared::write_count(&mut out, ttl as usize);
            }
        }
        out
    }
}

/// A written config (JSON) as the config `builtin:cel` is handed at each decision: its
/// expressions parsed once, here, instead of at every decision (see `prepared.rs`). `Err` when
/// the config is not one `validate-config` accepts; the host then hands over the config as
/// written, and the guest answers as it always did.
///
/// The program is read back and compared with what was parsed before it is returned.
pub fn prepare(config: &str) -> Result<String, String> {
    let Config::Written(written) = tollgate_policy::parse_config::<Config>(config)? else {
        return Err("the config is prepared already".into());
    };
    validate(&written)?;
    let program = Program::parse(&written, false)?;
    let text = program.write();
    if Program::read(&text).as_ref() != Ok(&program) {
        return Err("the prepared program does not read back as parsed".into());
    }
    serde_json::to_string(&text).map_err(|e| e.to_string())
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
    type Config = Config;

    fn validate_config(config: &Config) -> Result<(), String> {
        match config {
            Config::Written(config) => validate(config),
            Config::Prepared(_) => Err(
                "the config is a JSON object with `condition` (a prepared program is the \
                 server's own, never saved)"
                    .into(),
            ),
        }
    }

    fn evaluate(config: &Config, request: &Request) -> Decision {
        let program = match config {
            Config::Written(config) => Program::parse(config, false),
            Config::Prepared(text) => Program::read(text),
        };
        let decision = match &program {
            Ok(program) => decide(program, request)
                .unwrap_or_else(|message| Decision::deny("cel-error", message)),
            Err(message) => Decision::deny("cel-error", message.clone()),
        };
        // The instance is thrown away after this decision: walking the trees to free them
        // (into a bump allocator that frees nothing) is a tenth of the decision's instructions.
        #[cfg(target_arch = "wasm32")]
        core::mem::forget(program);
        decision
    }
}

/// `validate-config` for a written config: every expression parsed and checked.
fn validate(config: &CelConfig) -> Result<(), String> {
    let program = Program::parse(config, true)?;
    if let ProgramScopes::List(scopes) = &program.scopes
        && scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err("grant.scopes: scopes must be non-empty and contain no whitespace".into());
    }
    if program.ttl_seconds == Some(0) {
        return Err("grant.ttl_seconds must be positive".into());
    }
    Ok(())
}

fn decide(program: &Program<'_>, request: &Request) -> Result<Decision, String> {
    let mut scope: Scope<'_> = scope(request)?;
    let mut run =
        |part: Part<'_>, expr| eval::eval(expr, &mut scope).map_err(|e| format!("{part}: {e}"));
    match run(Part::Condition, &program.condition)? {
        Value::Bool(true) => {}
        Value::Bool(false) => return Ok(Decision::deny("condition", "the condition is false")),
        other => return Err(format!("condition: {other} is not a boolean")),
    }
    let scopes: Vec<String> = match &program.scopes {
        ProgramScopes::List(scopes) => scopes.iter().map(|s| (*s).to_owned()).collect(),
        ProgramScopes::Expression(expr) => match run(Part::Scopes, expr)? {
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
    if scopes.is_empty() && program.require_scopes {
        return Ok(Decision::deny(
            "no-scopes",
            "the grant's scopes came out empty",
        ));
    }
    let mut grant = Grant::new().scopes(scopes);
    for (name, expr) in &program.claims {
        let value = run(Part::Claim(name), expr)?;
        grant = grant.claim((*name).to_owned(), value);
    }
    if let Some(ttl) = program.ttl_seconds {
        grant = grant.ttl_seconds(ttl);
    }
    Ok(Decision::allow(grant))
}

export_policy!(CelPolicy);
tollgate_policy::no_std_runtime!();

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_policy::{Exchange, Token, evaluate_json, validate_json};

    fn request(namespace: &str, scopes: &[&str]) -> Request {
        let claims = serde_json::json!({
            "sub": format!("system:serviceaccount:{namespace}:app"),
            "kubernetes.io": {"namespace": namespace},
        });
        Request {
            token: Token {
                claims_json: claims.to_string(),
                ..Token::default()
            },
            exchange: Exchange {
                requested_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                now: 1_700_000_000,
                ..Exchange::default()
            },
            config: String::new(),
        }
    }

    /// The same decisions, scopes, claims and ttl from a prepared program as from the config
    /// it was prepared from.
    #[test]
    fn a_prepared_config_decides_as_the_written_one() {
        let configs = [
            r#"{"condition": "'kubernetes.io' in assertion",
                "grant": {"scopes": "(assertion['kubernetes.io'].namespace.startsWith('team-a-') ? ['a.read', 'a.deploy'] : []).filter(s, size(request.scopes) == 0 || s in request.scopes)",
                          "require_scopes": true,
                          "claims": {"team": "assertion['kubernetes.io'].namespace.startsWith('team-a-') ? 'team-a' : 'other'", "n": "1.5 + 2.0"},
                          "ttl_seconds": 600}}"#,
            r#"{"condition": "assertion.sub.glob('system:serviceaccount:team-*:app') && now > 5",
                "grant": {"scopes": ["s:1", "ü"]}}"#,
            r#"{"condition": "assertion.sub + 1"}"#,
        ];
        for config in configs {
            validate_json::<CelPolicy>(config).unwrap();
            let prepared = prepare(config).unwrap();
            assert!(prepared.starts_with("\"cel1;"), "{prepared}");
            for (namespace, scopes) in [
                ("team-a-prod", &[][..]),
                ("team-a-prod", &["a.read"][..]),
                ("team-b", &[][..]),
            ] {
                let request = request(namespace, scopes);
                assert_eq!(
                    evaluate_json::<CelPolicy>(&prepared, &request),
                    evaluate_json::<CelPolicy>(config, &request),
                    "{config} for {namespace}"
                );
            }
        }
    }

    /// A config a tenant writes is always the JSON object: a prepared program (or anything
    /// claiming to be one) is refused when the identity is saved, and preparing is for written
    /// configs that validate.
    #[test]
    fn a_tenant_cannot_save_a_prepared_program() {
        let prepared = prepare(r#"{"condition": "true"}"#).unwrap();
        assert!(
            validate_json::<CelPolicy>(&prepared)
                .unwrap_err()
                .contains("JSON object with `condition`")
        );
        assert!(prepare(&prepared).is_err());
        assert!(prepare(r#"{"condition": "nope"}"#).is_err());
        assert!(prepare(r#"{"condition": "true", "extra": 1}"#).is_err());
        // A forged program is read like any other: a malformed one is a denial.
        let denial = evaluate_json::<CelPolicy>("\"cel1;bzvv\"", &request("x", &[]));
        assert!(
            matches!(&denial, Decision::Deny(d) if d.code == "cel-error"),
            "{denial:?}"
        );
    }

    /// The host parses tenants' expressions natively to prepare them: long chains of operators
    /// or fields (which build deep trees without nesting a bracket) are refused by the parser,
    /// so no walk of a tree overflows the host's stack.
    #[test]
    fn long_chains_are_refused_not_a_stack_overflow() {
        for chain in [
            format!("assertion{}", ".x".repeat(100_000)),
            format!("1{}", " + 1".repeat(100_000)),
            format!("assertion{}", "['x']".repeat(100_000)),
            format!("{}true", "!".repeat(100_000)),
        ] {
            let config = serde_json::json!({ "condition": chain }).to_string();
            let error = prepare(&config).unwrap_err();
            assert!(error.contains("nested too deeply"), "{error}");
        }
        let fine = format!("1{} == 41", " + 1".repeat(40));
        let config = serde_json::json!({ "condition": fine }).to_string();
        let decision = evaluate_json::<CelPolicy>(&prepare(&config).unwrap(), &request("x", &[]));
        assert!(matches!(decision, Decision::Allow(_)), "{decision:?}");
    }
}
