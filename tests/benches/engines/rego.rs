//! A `rules` config as a Rego module (regorus), and the Rego input built per decision.
//!
//! `allow` is the conjunction of one helper rule per configured rule; globs are the anchored
//! regular expressions of `tollgate_policy::glob::to_regex` matched with `regex.match` (regorus
//! caches compiled expressions: its `cache` feature is on). The input holds the token's typed
//! fields and its raw claims; claim rules walk the claims by the pointer's tokens and dispatch on
//! the value's type as `rules` does (string, number as text, boolean as `true`/`false`, array:
//! any item).

use crate::facts::{Facts, pointer_tokens};
use regorus::{CompiledPolicy, Engine, Value as RegoValue};
use rules::RulesConfig;
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_policy::glob::to_regex;

/// Type dispatch for claim values, shared by every module.
const HELPERS: &str = r#"
glob_any(res, s) if {
    is_string(s)
    some re in res
    regex.match(re, s)
}

scalar_matches(res, v) if glob_any(res, v)

scalar_matches(res, v) if {
    is_number(v)
    glob_any(res, sprintf("%v", [v]))
}

scalar_matches(res, v) if {
    is_boolean(v)
    glob_any(res, sprintf("%v", [v]))
}

claim_matches(res, v) if {
    is_array(v)
    some item in v
    scalar_matches(res, item)
}

claim_matches(res, v) if scalar_matches(res, v)
"#;

/// One identity's compiled module.
pub struct RegoPolicy {
    compiled: CompiledPolicy,
}

fn regexes(patterns: &[String]) -> Result<String, String> {
    let res = patterns
        .iter()
        .map(|p| to_regex(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::to_string(&res).expect("strings serialize"))
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// The Rego module for `config`.
pub fn translate(config: &RulesConfig) -> Result<String, String> {
    let mut rules: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, body: String| rules.push((name.to_owned(), body));
    if let Some(subjects) = &config.subjects {
        add(
            "subject",
            format!("glob_any({}, input.sub)", regexes(subjects)?),
        );
    }
    if let Some(namespaces) = &config.namespaces {
        add(
            "namespace",
            format!("glob_any({}, input.namespace)", regexes(namespaces)?),
        );
    }
    if let Some(accounts) = &config.service_accounts {
        add(
            "service_account",
            format!("glob_any({}, input.service_account)", regexes(accounts)?),
        );
    }
    if let Some(uids) = &config.service_account_uids {
        add(
            "service_account_uid",
            format!(
                "input.service_account_uid in {}",
                serde_json::to_string(uids).unwrap()
            ),
        );
    }
    if let Some(audiences) = &config.audiences {
        add(
            "audience",
            format!(
                "some aud in input.aud\n    aud in {}",
                serde_json::to_string(audiences).unwrap()
            ),
        );
    }
    for (kind, binding) in [("pod", &config.pod), ("node", &config.node)] {
        let Some(binding) = binding else { continue };
        let names = binding.names.as_deref().map(regexes).transpose()?;
        match (binding.required, names) {
            (true, Some(res)) => add(kind, format!("glob_any({res}, input.{kind})")),
            (true, None) => add(kind, format!("input.{kind}")),
            (false, Some(res)) => {
                add(kind, format!("not input.{kind}"));
                add(kind, format!("glob_any({res}, input.{kind})"));
            }
            (false, None) => {}
        }
    }
    if let Some(max) = config.max_token_age_seconds {
        add("token_age", format!("input.now - input.iat <= {max}"));
    }
    for (i, (pointer, patterns)) in config.claims.iter().flatten().enumerate() {
        let path: String = pointer_tokens(pointer)
            .iter()
            .map(|t| format!("[{}]", quote(t)))
            .collect();
        add(
            &format!("claim_{i}"),
            format!("claim_matches({}, input.claims{path})", regexes(patterns)?),
        );
    }
    let mut names: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    let mut module = String::from("package tollgate\n\ndefault allow := false\n\nallow if {\n");
    for name in &names {
        module += &format!("    {name}_ok\n");
    }
    if names.is_empty() {
        module += "    true\n";
    }
    module += "}\n";
    for (name, body) in &rules {
        module += &format!("\n{name}_ok if {{\n    {body}\n}}\n");
    }
    module += HELPERS;
    Ok(module)
}

impl RegoPolicy {
    /// Translates and compiles `config`'s module once.
    pub fn compile(config: &RulesConfig) -> Result<Self, String> {
        let module = translate(config)?;
        let mut engine = Engine::new();
        engine
            .add_policy("tollgate.rego".into(), module.clone())
            .map_err(|e| format!("{e}\n{module}"))?;
        // regorus' `arc` feature: its `Rc` is `Arc`.
        let entry: Arc<str> = "data.tollgate.allow".into();
        let compiled = engine
            .compile_with_entrypoint(&entry)
            .map_err(|e| e.to_string())?;
        Ok(RegoPolicy { compiled })
    }

    /// One decision: builds the input from `claims`, then evaluates `allow`.
    pub fn decide(&self, claims: &Value, now: i64) -> bool {
        matches!(
            self.compiled.eval_with_input(input(claims, now)),
            Ok(RegoValue::Bool(true))
        )
    }
}

/// The Rego input for `claims`: the per-decision input building.
pub fn input(claims: &Value, now: i64) -> RegoValue {
    let facts = Facts::read(claims);
    let mut input = json!({"sub": facts.sub, "aud": facts.aud, "now": now, "claims": claims});
    let optional = [
        ("iat", facts.iat.map(Value::from)),
        ("namespace", facts.namespace.map(Value::from)),
        ("service_account", facts.service_account.map(Value::from)),
        (
            "service_account_uid",
            facts.service_account_uid.map(Value::from),
        ),
        ("pod", facts.pod.map(Value::from)),
        ("node", facts.node.map(Value::from)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            input[key] = value;
        }
    }
    RegoValue::from(input)
}
