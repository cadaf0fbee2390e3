//! Each rule as a check that either passes or explains the denial.

use crate::config::{Binding, RulesConfig};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use tollgate_policy::{Denial, ObjectRef, Request, glob};

type Check = Result<(), Denial>;

fn deny(code: &str, message: impl Into<String>) -> Denial {
    Denial {
        code: code.into(),
        message: message.into(),
    }
}

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob::matches(p, text))
}

/// Runs every configured rule; the first failing one names the denial.
pub fn check(config: &RulesConfig, request: &Request) -> Check {
    let token = &request.token;
    let k8s = token.kubernetes.as_ref();
    if let Some(subjects) = &config.subjects
        && !any_glob(subjects, &token.subject)
    {
        return Err(deny(
            "subject",
            format!("subject `{}` matches no rule", token.subject),
        ));
    }
    if let Some(namespaces) = &config.namespaces {
        let ns = k8s.map(|k| k.namespace.as_str());
        if !ns.is_some_and(|ns| any_glob(namespaces, ns)) {
            return Err(deny(
                "namespace",
                format!("namespace `{}` is not allowed", ns.unwrap_or("-")),
            ));
        }
    }
    if let Some(accounts) = &config.service_accounts {
        let sa = k8s.map(|k| k.service_account.name.as_str());
        if !sa.is_some_and(|sa| any_glob(accounts, sa)) {
            return Err(deny(
                "service-account",
                format!("service account `{}` is not allowed", sa.unwrap_or("-")),
            ));
        }
    }
    if let Some(uids) = &config.service_account_uids {
        let uid = k8s.map(|k| k.service_account.uid.as_str());
        if !uid.is_some_and(|uid| uids.iter().any(|u| u == uid)) {
            return Err(deny(
                "service-account-uid",
                format!(
                    "service account uid `{}` is not allowed",
                    uid.unwrap_or("-")
                ),
            ));
        }
    }
    if let Some(audiences) = &config.audiences
        && !token.audiences.iter().any(|a| audiences.contains(a))
    {
        return Err(deny(
            "audience",
            "token carries none of the required audiences",
        ));
    }
    binding("pod", config.pod.as_ref(), k8s.and_then(|k| k.pod.as_ref()))?;
    binding(
        "node",
        config.node.as_ref(),
        k8s.and_then(|k| k.node.as_ref()),
    )?;
    if let Some(max_age) = config.max_token_age_seconds {
        match request.token_age() {
            Some(age) if age <= max_age => {}
            Some(age) => {
                return Err(deny(
                    "token-age",
                    format!("token is {age}s old, the limit is {max_age}s"),
                ));
            }
            None => return Err(deny("token-age", "token has no `iat`")),
        }
    }
    if let Some(claims) = &config.claims {
        claim_rules(claims, &request.token)?;
    }
    Ok(())
}

fn binding(kind: &str, rule: Option<&Binding>, bound: Option<&ObjectRef>) -> Check {
    let Some(rule) = rule else { return Ok(()) };
    match (bound, &rule.names) {
        (None, _) if rule.required => Err(deny(kind, format!("token is not bound to a {kind}"))),
        (Some(object), Some(names)) if !any_glob(names, &object.name) => Err(deny(
            kind,
            format!("{kind} `{}` is not allowed", object.name),
        )),
        _ => Ok(()),
    }
}

fn claim_rules(
    rules: &BTreeMap<String, alloc::vec::Vec<String>>,
    token: &tollgate_policy::Token,
) -> Check {
    for (pointer, patterns) in rules {
        let matched = match token.claim(pointer) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().any(|v| value_matches(patterns, v))
            }
            Some(value) => value_matches(patterns, &value),
            None => false,
        };
        if !matched {
            return Err(deny("claim", format!("claim `{pointer}` matches no rule")));
        }
    }
    Ok(())
}

fn value_matches(patterns: &[String], value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => any_glob(patterns, s),
        serde_json::Value::Number(n) => any_glob(patterns, &n.to_string()),
        serde_json::Value::Bool(b) => any_glob(patterns, if *b { "true" } else { "false" }),
        _ => false,
    }
}
