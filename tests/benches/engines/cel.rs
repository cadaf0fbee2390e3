//! A `rules` config as one CEL expression (cel-interpreter), and the CEL input built per decision.
//!
//! The expression is the conjunction of one clause per configured rule; globs are the anchored
//! regular expressions of `tollgate_policy::glob::to_regex`, matched with `matches`.
//! cel-interpreter 0.10's stock `matches` compiles its regex on every call (cel-go compiles
//! constant patterns when it checks the program); here `matches` is replaced, per identity, by a
//! lookup in the identity's regexes compiled once up front (an unknown pattern is compiled on
//! the spot, so the semantics are the stock ones).
//!
//! Claims: cel-interpreter has no `type()` and no error-absorbing `||`, so a clause cannot test
//! whether a claim is a string or a list. The input therefore renders every claim leaf as a list
//! of texts (a scalar as a one-item list of the text `rules` matches, an array as the list of its
//! scalar items' texts), and a claim clause is `leaf.exists(v, v.matches(re) || ...)`.
//! An evaluation error is a denial, as everywhere else.

use crate::facts::{Facts, pointer_tokens, scalar_text};
use cel_interpreter::extractors::This;
use cel_interpreter::objects::Key;
use cel_interpreter::{Context, Program, Value as CelValue};
use regex::Regex;
use rules::RulesConfig;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_policy::glob::to_regex;

/// One identity's compiled program and its root context (functions, compiled regexes).
pub struct CelPolicy {
    program: Program,
    root: Context<'static>,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// The regexes used by the expression, collected while translating.
#[derive(Default)]
struct Regexes(Vec<String>);

impl Regexes {
    /// `x` matches one of `patterns`, as a CEL expression.
    fn any(&mut self, x: &str, patterns: &[String]) -> Result<String, String> {
        let mut alternatives = Vec::new();
        for pattern in patterns {
            let re = to_regex(pattern).map_err(|e| e.to_string())?;
            alternatives.push(format!("{x}.matches({})", quote(&re)));
            self.0.push(re);
        }
        Ok(format!("({})", alternatives.join(" || ")))
    }
}

fn list(items: &[String]) -> String {
    let items: Vec<_> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The CEL expression for `config`, and the regexes it uses.
pub fn translate(config: &RulesConfig) -> Result<(String, Vec<String>), String> {
    let mut re = Regexes::default();
    let mut clauses = Vec::new();
    if let Some(subjects) = &config.subjects {
        clauses.push(re.any("input.sub", subjects)?);
    }
    for (attr, patterns) in [
        ("namespace", &config.namespaces),
        ("service_account", &config.service_accounts),
    ] {
        if let Some(patterns) = patterns {
            let x = format!("input.{attr}");
            clauses.push(format!("(has({x}) && {})", re.any(&x, patterns)?));
        }
    }
    if let Some(uids) = &config.service_account_uids {
        clauses.push(format!(
            "(has(input.service_account_uid) && input.service_account_uid in {})",
            list(uids)
        ));
    }
    if let Some(audiences) = &config.audiences {
        clauses.push(format!("input.aud.exists(a, a in {})", list(audiences)));
    }
    for (attr, binding) in [("pod", &config.pod), ("node", &config.node)] {
        let Some(binding) = binding else { continue };
        let x = format!("input.{attr}");
        if binding.required {
            clauses.push(format!("has({x})"));
        }
        if let Some(names) = &binding.names {
            clauses.push(format!("(!has({x}) || {})", re.any(&x, names)?));
        }
    }
    if let Some(max) = config.max_token_age_seconds {
        clauses.push(format!(
            "(has(input.iat) && input.now - input.iat <= {max})"
        ));
    }
    for (pointer, patterns) in config.claims.iter().flatten() {
        let mut path = "input.claims".to_owned();
        let mut chain = Vec::new();
        for token in pointer_tokens(pointer) {
            chain.push(format!("{} in {path}", quote(&token)));
            path = format!("{path}[{}]", quote(&token));
        }
        chain.push(format!("{path}.exists(v, {})", re.any("v", patterns)?));
        clauses.push(format!("({})", chain.join(" && ")));
    }
    let expr = if clauses.is_empty() {
        "true".to_owned()
    } else {
        clauses.join("\n  && ")
    };
    Ok((expr, re.0))
}

/// A claim as the CEL input holds it (see the module docs).
fn claim_value(value: &Value) -> Option<CelValue> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let map: HashMap<Key, CelValue> = map
                .iter()
                .filter_map(|(k, v)| Some((Key::from(k.as_str()), claim_value(v)?)))
                .collect();
            Some(CelValue::from(map))
        }
        Value::Array(items) => Some(CelValue::from(
            items.iter().filter_map(scalar_text).collect::<Vec<_>>(),
        )),
        scalar => Some(CelValue::from(vec![scalar_text(scalar)?])),
    }
}

impl CelPolicy {
    /// Translates and compiles `config`'s expression once, and its regexes.
    pub fn compile(config: &RulesConfig) -> Result<Self, String> {
        let (expr, regexes) = translate(config)?;
        let program = Program::compile(&expr).map_err(|e| format!("{e}\n{expr}"))?;
        let compiled: HashMap<String, Regex> = regexes
            .into_iter()
            .map(|re| Regex::new(&re).map(|r| (re, r)))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let compiled = Arc::new(compiled);
        let mut root = Context::default();
        root.add_function(
            "matches",
            move |This(text): This<Arc<String>>, re: Arc<String>| -> bool {
                match compiled.get(re.as_str()) {
                    Some(regex) => regex.is_match(&text),
                    None => Regex::new(&re).is_ok_and(|r| r.is_match(&text)),
                }
            },
        );
        Ok(CelPolicy { program, root })
    }

    /// One decision: builds the input from `claims`, then evaluates the expression.
    pub fn decide(&self, claims: &Value, now: i64) -> bool {
        let mut scope = self.root.new_inner_scope();
        scope.add_variable_from_value("input", input(claims, now));
        matches!(self.program.execute(&scope), Ok(CelValue::Bool(true)))
    }
}

/// The CEL input for `claims`: the per-decision input building.
pub fn input(claims: &Value, now: i64) -> HashMap<Key, CelValue> {
    let facts = Facts::read(claims);
    let mut input: HashMap<Key, CelValue> = HashMap::with_capacity(10);
    input.insert("sub".into(), facts.sub.into());
    input.insert(
        "aud".into(),
        CelValue::from(
            facts
                .aud
                .iter()
                .map(|a| CelValue::from(*a))
                .collect::<Vec<_>>(),
        ),
    );
    input.insert("now".into(), CelValue::Int(now));
    if let Some(iat) = facts.iat {
        input.insert("iat".into(), CelValue::Int(iat));
    }
    for (key, value) in [
        ("namespace", facts.namespace),
        ("service_account", facts.service_account),
        ("service_account_uid", facts.service_account_uid),
        ("pod", facts.pod),
        ("node", facts.node),
    ] {
        if let Some(value) = value {
            input.insert(key.into(), value.into());
        }
    }
    if let Some(claims) = claim_value(claims) {
        input.insert("claims".into(), claims);
    }
    input
}
