//! Checks of a token's claims that need neither its issuer nor its identity: run as soon as
//! the payload is parsed, before any key is fetched, any identity looked up or any policy run.
//!
//! - **No control characters** in any key or string value, at any depth. No Kubernetes name can
//!   hold one, a glob's `*` would match them, and they would be copied into issued tokens and
//!   logs (`\n`, `\r`, escape sequences).
//! - **`kubernetes.io` agrees with `sub`**: a projected ServiceAccount token names its workload
//!   twice, as `sub = system:serviceaccount:{namespace}:{name}` and in `kubernetes.io`. A policy
//!   may bind either, so a token whose two names differ is refused rather than letting the two
//!   halves of a policy see two different workloads.

use super::VerifyError;
use serde_json::{Map, Value};

/// The subject prefix of a ServiceAccount token.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Both checks, on a parsed payload.
pub fn claims(payload: &Map<String, Value>) -> Result<(), VerifyError> {
    if !object_is_clean(payload) {
        return Err(VerifyError::ControlCharacter);
    }
    subject_agrees(payload)
}

fn clean(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn object_is_clean(object: &Map<String, Value>) -> bool {
    object
        .iter()
        .all(|(key, value)| clean(key) && value_is_clean(value))
}

fn value_is_clean(value: &Value) -> bool {
    match value {
        Value::String(text) => clean(text),
        Value::Array(items) => items.iter().all(value_is_clean),
        Value::Object(object) => object_is_clean(object),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// When the payload has both a string `sub` and `kubernetes.io`, the latter must be an object
/// whose namespace and service account name spell the former.
fn subject_agrees(payload: &Map<String, Value>) -> Result<(), VerifyError> {
    let (Some(Value::String(sub)), Some(k8s)) = (payload.get("sub"), payload.get("kubernetes.io"))
    else {
        // A missing or mistyped `sub` is refused by the claim checks.
        return Ok(());
    };
    if sub.is_empty() {
        return Ok(());
    }
    let namespace = k8s.get("namespace").and_then(Value::as_str);
    let name = k8s
        .get("serviceaccount")
        .and_then(|account| account.get("name"))
        .and_then(Value::as_str);
    let spelled = sub
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|rest| rest.split_once(':'));
    match (namespace, name, spelled) {
        (Some(namespace), Some(name), Some((sub_namespace, sub_name)))
            if namespace == sub_namespace && name == sub_name =>
        {
            Ok(())
        }
        _ => Err(VerifyError::SubjectMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn projected(sub: &str, namespace: &str, name: &str) -> Map<String, Value> {
        payload(json!({
            "sub": sub,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "u"}},
        }))
    }

    #[test]
    fn control_characters_are_refused_anywhere() {
        for bad in [
            json!({"sub": "system:serviceaccount:prod:app\n"}),
            json!({"sub": "system:serviceaccount:prod:a\u{1b}[2J\rb"}),
            json!({"sub": "ok", "team": "a\tb"}),
            json!({"sub": "ok", "nested": {"deep": ["x", "y\u{0}"]}}),
            json!({"sub": "ok", "bad\u{7f}key": 1}),
            json!({"sub": "ok", "c1": "\u{85}"}),
        ] {
            assert_eq!(
                claims(&payload(bad.clone())),
                Err(VerifyError::ControlCharacter),
                "{bad}"
            );
        }
        assert_eq!(
            claims(&payload(json!({"sub": "ok", "n": [1, true, null, "é ✓"]}))),
            Ok(())
        );
    }

    #[test]
    fn kubernetes_claims_must_spell_the_subject() {
        let agrees = projected("system:serviceaccount:prod:deployer", "prod", "deployer");
        assert_eq!(claims(&agrees), Ok(()));
        for (sub, namespace, name) in [
            (
                "system:serviceaccount:kube-system:admin",
                "prod",
                "deployer",
            ),
            ("system:serviceaccount:prod:deployer", "prod", "admin"),
            (
                "system:serviceaccount:prod:deployer",
                "kube-system",
                "deployer",
            ),
            ("system:serviceaccount:prod:deployer:x", "prod", "deployer"),
            ("system:serviceaccount:prod", "prod", "deployer"),
            ("prod:deployer", "prod", "deployer"),
            ("system:serviceaccount:prod:deployer", "prod:deployer", ""),
        ] {
            assert_eq!(
                claims(&projected(sub, namespace, name)),
                Err(VerifyError::SubjectMismatch),
                "{sub} vs {namespace}/{name}"
            );
        }
        let no_account = payload(json!({
            "sub": "system:serviceaccount:prod:deployer",
            "kubernetes.io": {"namespace": "prod"},
        }));
        assert_eq!(claims(&no_account), Err(VerifyError::SubjectMismatch));
        let not_object = payload(json!({"sub": "x", "kubernetes.io": "prod"}));
        assert_eq!(claims(&not_object), Err(VerifyError::SubjectMismatch));
    }

    #[test]
    fn tokens_without_kubernetes_claims_are_not_held_to_them() {
        assert_eq!(claims(&payload(json!({"sub": "repo:org/app"}))), Ok(()));
        assert_eq!(
            claims(&payload(json!({"sub": "system:serviceaccount:prod:x"}))),
            Ok(())
        );
    }
}
