//! The claims of an issued access token: the server's own, and the policy's extra ones beside
//! them. Serialized straight from borrowed fields: building them as a `serde_json::Value` tree
//! first (a map entry, a key and a value allocated per claim) cost 3.4 µs per exchange against
//! 0.8 µs for the same claims this way (docs/benchmarks-history.md).

use super::claims::Limits;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Claims of the issued token a policy may not set. Every field of [`IssuedClaims`] is one
/// (a test checks), so a policy's claims never repeat one of the server's.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "scope",
    "act",
    "tenant",
    "identity",
    "policy",
    "kubernetes",
    "client_id",
    "azp",
    "cnf",
    "sid",
    "auth_time",
    "limits",
];

/// An issued access token's claims.
#[derive(Debug, Serialize)]
pub struct IssuedClaims<'a> {
    /// The server's public URL.
    pub iss: &'a str,
    /// `tenants/{tenant}/identities/{id}`.
    pub sub: String,
    pub aud: &'a str,
    /// The granted scopes, space-separated.
    pub scope: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: &'a str,
    /// RFC 9068: the client that asked is the workload, named by its subject token's `sub`.
    pub client_id: Option<&'a Value>,
    pub auth_time: i64,
    /// The session: the first token's `jti`.
    pub sid: &'a str,
    pub limits: Limits,
    /// The subject token's `iss` and `sub`.
    pub act: Actor<'a>,
    pub tenant: &'a str,
    /// The identity's unique id.
    pub identity: &'a str,
    /// The digest of the module that decided.
    pub policy: &'a str,
    pub kubernetes: Workload<'a>,
    /// The policy's extra claims ([`extra_claims`]).
    #[serde(flatten)]
    pub extra: BTreeMap<&'a str, &'a Value>,
}

/// Who the token acts for: the subject token's issuer and subject.
#[derive(Debug, Serialize)]
pub struct Actor<'a> {
    pub iss: Option<&'a Value>,
    pub sub: Option<&'a Value>,
}

/// The workload that asked, from the subject token's `kubernetes.io` claim.
#[derive(Debug, Serialize)]
pub struct Workload<'a> {
    pub namespace: Option<&'a Value>,
    pub service_account: Option<&'a Value>,
    pub pod: Option<&'a Value>,
    pub node: Option<&'a Value>,
}

impl<'a> Workload<'a> {
    /// The namespace and the names of the service account, pod and node in `subject`'s
    /// `kubernetes.io` claim (null where absent).
    pub fn of(subject: &'a Value) -> Self {
        let k8s = subject.get("kubernetes.io");
        let name = |kind: &str| {
            k8s.and_then(|k| k.get(kind))
                .and_then(|object| object.get("name"))
        };
        Workload {
            namespace: k8s.and_then(|k| k.get("namespace")),
            service_account: name("serviceaccount"),
            pod: name("pod"),
            node: name("node"),
        }
    }
}

/// A policy's extra claims as the token carries them: reserved ones dropped, and of a claim
/// the policy set more than once, the last.
pub fn extra_claims(extra: &[(String, Value)]) -> BTreeMap<&str, &Value> {
    extra
        .iter()
        .filter(|(claim, _)| !RESERVED_CLAIMS.contains(&claim.as_str()))
        .map(|(claim, value)| (claim.as_str(), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::strict_json;
    use serde_json::json;

    fn claims<'a>(subject: &'a Value, extra: &'a [(String, Value)]) -> IssuedClaims<'a> {
        IssuedClaims {
            iss: "https://sts.example.com",
            sub: "tenants/a/identities/b".into(),
            aud: "https://sts.example.com/tenants/a",
            scope: "read write".into(),
            iat: 10,
            nbf: 10,
            exp: 910,
            jti: "j1",
            client_id: subject.get("sub"),
            auth_time: 10,
            sid: "j1",
            limits: Limits {
                renew_until: 3610,
                ..Limits::default()
            },
            act: Actor {
                iss: subject.get("iss"),
                sub: subject.get("sub"),
            },
            tenant: "a",
            identity: "uid-b",
            policy: "sha256:00",
            kubernetes: Workload::of(subject),
            extra: extra_claims(extra),
        }
    }

    /// A policy naming every reserved claim, and its own claim twice: the token has no
    /// repeated key (the strict parser refuses one), the server's values, and the policy's
    /// own claim as it last set it.
    #[test]
    fn a_policy_cannot_set_reserved_claims() {
        let subject = json!({"iss": "https://k8s", "sub": "system:serviceaccount:prod:api"});
        let mut extra: Vec<(String, Value)> = RESERVED_CLAIMS
            .iter()
            .map(|claim| (claim.to_string(), json!("forged")))
            .collect();
        extra.push(("team".into(), json!("first")));
        extra.push(("team".into(), json!("last")));
        let text = serde_json::to_vec(&claims(&subject, &extra)).unwrap();
        let token = strict_json::parse_object(&text).expect("no repeated claim");
        assert_eq!(token["sub"], "tenants/a/identities/b");
        assert_eq!(token["exp"], 910);
        assert_eq!(token["client_id"], "system:serviceaccount:prod:api");
        assert_eq!(
            token["act"],
            json!({"iss": "https://k8s", "sub": subject["sub"]})
        );
        assert_eq!(token["team"], "last");
        for (claim, value) in &token {
            assert!(
                claim == "team" || RESERVED_CLAIMS.contains(&claim.as_str()),
                "the server sets `{claim}`, which is not reserved: a policy could repeat it"
            );
            assert_ne!(value, "forged", "the policy set `{claim}`");
        }
        for reserved in ["azp", "cnf"] {
            assert!(token.get(reserved).is_none(), "the policy set `{reserved}`");
        }
    }

    /// The workload's names, null where the subject token has none.
    #[test]
    fn the_workload_is_named_from_the_kubernetes_claim() {
        let subject = json!({"kubernetes.io": {
            "namespace": "prod",
            "serviceaccount": {"name": "api", "uid": "u"},
            "pod": {"name": "api-1", "uid": "p"}
        }});
        let text = serde_json::to_value(Workload::of(&subject)).unwrap();
        assert_eq!(
            text,
            json!({"namespace": "prod", "service_account": "api", "pod": "api-1", "node": null})
        );
        let none = serde_json::to_value(Workload::of(&json!({}))).unwrap();
        assert_eq!(
            none,
            json!({"namespace": null, "service_account": null, "pod": null, "node": null})
        );
    }
}
