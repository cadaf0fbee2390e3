//! What the Cedar, Rego and CEL inputs are built from: the fields the host types from verified
//! claims (the same reading as `build_request`), borrowed, plus a JSON-pointer splitter.
//!
//! Reading these is part of each engine's per-decision cost: every engine is handed the same
//! verified claims and builds its own request from them.

use serde_json::Value;

/// Typed fields of a verified token, borrowed from its claims.
pub struct Facts<'a> {
    pub sub: &'a str,
    pub aud: Vec<&'a str>,
    pub iat: Option<i64>,
    pub namespace: Option<&'a str>,
    pub service_account: Option<&'a str>,
    pub service_account_uid: Option<&'a str>,
    pub pod: Option<&'a str>,
    pub node: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// Reads `claims` as `build_request` does (the corpus only holds well-typed tokens).
    pub fn read(claims: &'a Value) -> Self {
        let k8s = claims.get("kubernetes.io").filter(|v| !v.is_null());
        let field = |path: &[&str]| {
            let mut v = k8s?;
            for key in path {
                v = v.get(key).filter(|v| !v.is_null())?;
            }
            v.as_str()
        };
        let aud = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        Facts {
            sub: claims.get("sub").and_then(Value::as_str).unwrap_or(""),
            aud,
            iat: claims.get("iat").and_then(Value::as_i64),
            namespace: field(&["namespace"]),
            service_account: field(&["serviceaccount", "name"]),
            service_account_uid: field(&["serviceaccount", "uid"]),
            pod: field(&["pod", "name"]),
            node: field(&["node", "name"]),
        }
    }
}

/// The reference tokens of an RFC 6901 pointer such as `/kubernetes.io/pod/name`.
pub fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// The text a claim scalar is matched as by `rules` (`value_matches`): strings as they are,
/// numbers in `serde_json`'s rendering, booleans as `true`/`false`; anything else never matches.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
