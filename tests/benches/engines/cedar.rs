//! A `rules` config as a Cedar policy set, and the Cedar request built per decision.
//!
//! The policy is `permit(principal, action == Action::"exchange", resource) when { ... }` with
//! one conjunct per configured rule; the token's typed fields and its whole claims payload are in
//! the request context (no entities: nothing to look up).
//!
//! Globs: Cedar has no regular expressions and its `like` wildcard `*` crosses `:` and `/`. So a
//! pattern is translated only when the result is exact:
//! - a literal, or any number of `**` (`like` with `*`, which crosses separators like `**`);
//! - exactly one `*` (and no `**`): `x like "p*s" && !(x like "p*:*s") && !(x like "p*/*s")`, which
//!   holds exactly when the part matched by `*` contains no separator (the prefix and suffix pin
//!   it down).
//!
//! Anything else (`?`, classes, alternations, escapes, two wildcards one of which is a single
//! `*`) is refused. The corpus keeps to these shapes.
//!
//! Claims: the context holds the claims as a record with every scalar rendered as the text
//! `rules` matches (numbers and booleans as strings) and arrays as sets of such texts. Cedar
//! cannot test a value's type and a `like` on a set is an error, so each claim rule has two
//! alternatives, a string one (globs) and a set one (`containsAny` of the literal patterns;
//! Cedar has no quantifier over sets, so an array claim cannot be matched by a wildcard pattern:
//! the corpus never needs it). The alternatives become separate `permit` policies (an erroring
//! policy is skipped), one per combination.

use crate::facts::{Facts, pointer_tokens};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, RestrictedExpression,
};
use rules::RulesConfig;
use serde_json::Value;
use std::str::FromStr;

/// One identity's policy set, parsed once.
pub struct CedarPolicy {
    policies: PolicySet,
    authorizer: Authorizer,
    entities: Entities,
    workload: EntityTypeName,
    action: EntityUid,
    resource: EntityUid,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `x` matches `pattern`, as a Cedar expression.
fn glob(x: &str, pattern: &str) -> Result<String, String> {
    let mut like = String::new();
    let (mut singles, mut doubles) = (0, 0);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                like.push('\u{0}');
                if chars.peek() == Some(&'*') {
                    while chars.peek() == Some(&'*') {
                        chars.next();
                    }
                    doubles += 1;
                } else {
                    singles += 1;
                }
            }
            '?' | '[' | ']' | '{' | '}' | ',' | '\\' => {
                return Err(format!("Cedar cannot express `{pattern}` exactly"));
            }
            c => like.push(c),
        }
    }
    if singles > 1 || (singles == 1 && doubles > 0) {
        return Err(format!(
            "Cedar cannot express `{pattern}` exactly (a single `*` next to another wildcard)"
        ));
    }
    let lit = |with: &str| quote(&like.replace('\u{0}', with));
    let mut expr = format!("{x} like {}", lit("*"));
    if singles == 1 {
        for sep in [":", "/"] {
            expr += &format!(" && !({x} like {})", lit(&format!("*{sep}*")));
        }
    }
    Ok(format!("({expr})"))
}

fn any_glob(x: &str, patterns: &[String]) -> Result<String, String> {
    let alternatives = patterns
        .iter()
        .map(|p| glob(x, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("({})", alternatives.join(" || ")))
}

fn set(items: &[String]) -> String {
    let items: Vec<_> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '[', ']', '{', '}', ',', '\\'])
}

/// The Cedar policy text for `config`, or why it cannot be expressed exactly.
pub fn translate(config: &RulesConfig) -> Result<String, String> {
    let mut conds = Vec::new();
    let optional = |conds: &mut Vec<String>, attr: &str, patterns: &Option<Vec<String>>| {
        if let Some(patterns) = patterns {
            let x = format!("context.{attr}");
            conds.push(format!("context has {attr} && {}", any_glob(&x, patterns)?));
        }
        Ok::<_, String>(())
    };
    if let Some(subjects) = &config.subjects {
        conds.push(any_glob("context.sub", subjects)?);
    }
    optional(&mut conds, "namespace", &config.namespaces)?;
    optional(&mut conds, "service_account", &config.service_accounts)?;
    if let Some(uids) = &config.service_account_uids {
        conds.push(format!(
            "context has service_account_uid && {}.contains(context.service_account_uid)",
            set(uids)
        ));
    }
    if let Some(audiences) = &config.audiences {
        conds.push(format!("context.aud.containsAny({})", set(audiences)));
    }
    for (attr, binding) in [("pod", &config.pod), ("node", &config.node)] {
        let Some(binding) = binding else { continue };
        if binding.required {
            conds.push(format!("context has {attr}"));
        }
        if let Some(names) = &binding.names {
            let x = format!("context.{attr}");
            conds.push(format!(
                "(!(context has {attr}) || {})",
                any_glob(&x, names)?
            ));
        }
    }
    if let Some(max) = config.max_token_age_seconds {
        conds.push(format!(
            "context has iat && context.now - context.iat <= {max}"
        ));
    }
    // Each claim rule: a has-chain, then a string or a set alternative.
    let mut claim_alternatives: Vec<Vec<String>> = Vec::new();
    for (pointer, patterns) in config.claims.iter().flatten() {
        let (mut path, mut chain) = ("context.claims".to_owned(), Vec::new());
        for token in pointer_tokens(pointer) {
            chain.push(format!("{path} has {}", quote(&token)));
            path = format!("{path}[{}]", quote(&token));
        }
        let chain = chain.join(" && ");
        let mut alternatives = vec![format!("{chain} && {}", any_glob(&path, patterns)?)];
        let literals: Vec<String> = patterns.iter().filter(|p| is_literal(p)).cloned().collect();
        if !literals.is_empty() {
            alternatives.push(format!("{chain} && {path}.containsAny({})", set(&literals)));
        }
        claim_alternatives.push(alternatives);
    }
    let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
    for alternatives in &claim_alternatives {
        combinations = combinations
            .iter()
            .flat_map(|prefix| {
                alternatives.iter().map(move |alt| {
                    let mut c = prefix.clone();
                    c.push(format!("({alt})"));
                    c
                })
            })
            .collect();
    }
    let text = combinations
        .into_iter()
        .map(|claims| {
            let all: Vec<String> = conds.iter().cloned().chain(claims).collect();
            let body = if all.is_empty() {
                "true".to_owned()
            } else {
                all.join("\n    && ")
            };
            format!("permit(principal, action == Action::\"exchange\", resource)\nwhen {{\n    {body}\n}};\n")
        })
        .collect();
    Ok(text)
}

/// A claim value as Cedar sees it (see the module docs); `None` for what never matches.
fn claim_value(value: &Value) -> Option<RestrictedExpression> {
    Some(match value {
        Value::Null => return None,
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Number(n) => RestrictedExpression::new_string(n.to_string()),
        Value::Bool(b) => RestrictedExpression::new_string(b.to_string()),
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .filter(|v| !v.is_array() && !v.is_object())
                .filter_map(claim_value),
        ),
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), claim_value(v)?))),
        )
        .expect("JSON object keys are unique"),
    })
}

impl CedarPolicy {
    /// Translates and parses `config`'s policy set once.
    pub fn compile(config: &RulesConfig, tenant: &str, identity: &str) -> Result<Self, String> {
        let text = translate(config)?;
        let policies = PolicySet::from_str(&text).map_err(|e| format!("{e:?}\n{text}"))?;
        let resource = format!("Identity::{}", quote(&format!("{tenant}/{identity}")));
        Ok(CedarPolicy {
            policies,
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
            workload: EntityTypeName::from_str("Workload").expect("type name"),
            action: EntityUid::from_str(r#"Action::"exchange""#).expect("action"),
            resource: EntityUid::from_str(&resource).map_err(|e| e.to_string())?,
        })
    }

    /// One decision: builds the context and request from `claims`, then authorizes.
    pub fn decide(&self, claims: &Value, now: i64) -> bool {
        let Some(request) = self.request(claims, now) else {
            return false;
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &self.entities);
        response.decision() == Decision::Allow
    }

    /// The Cedar request for `claims`: the per-decision input building.
    pub fn request(&self, claims: &Value, now: i64) -> Option<Request> {
        let facts = Facts::read(claims);
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let mut pairs = vec![
            ("sub".to_owned(), string(facts.sub)),
            (
                "aud".to_owned(),
                RestrictedExpression::new_set(facts.aud.iter().map(|a| string(a))),
            ),
            ("now".to_owned(), RestrictedExpression::new_long(now)),
        ];
        if let Some(iat) = facts.iat {
            pairs.push(("iat".to_owned(), RestrictedExpression::new_long(iat)));
        }
        for (key, value) in [
            ("namespace", facts.namespace),
            ("service_account", facts.service_account),
            ("service_account_uid", facts.service_account_uid),
            ("pod", facts.pod),
            ("node", facts.node),
        ] {
            if let Some(value) = value {
                pairs.push((key.to_owned(), string(value)));
            }
        }
        if let Some(record) = claim_value(claims) {
            pairs.push(("claims".to_owned(), record));
        }
        let context = Context::from_pairs(pairs).ok()?;
        let principal =
            EntityUid::from_type_name_and_id(self.workload.clone(), EntityId::new(facts.sub));
        Request::new(
            principal,
            self.action.clone(),
            self.resource.clone(),
            context,
            None,
        )
        .ok()
    }
}
