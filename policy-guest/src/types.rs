//! The request a policy receives: a verified token and the exchange around it.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A Kubernetes object named in a projected token: its name and its unique id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's name, for example `deployer`.
    pub name: String,
    /// The object's UID. Unlike the name, it changes when the object is deleted and recreated.
    pub uid: String,
}

impl ObjectRef {
    /// An object reference from a name and a UID.
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uid: uid.into(),
        }
    }
}

/// The `kubernetes.io` claim of a projected ServiceAccount token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The namespace of the ServiceAccount (and of the pod, if bound to one).
    pub namespace: String,
    /// The ServiceAccount the token was minted for.
    pub service_account: ObjectRef,
    /// The pod the token is bound to, if any.
    pub pod: Option<ObjectRef>,
    /// The node the token is bound to, if any (Kubernetes 1.30+).
    pub node: Option<ObjectRef>,
    /// The Secret the token is bound to, if any.
    pub secret: Option<ObjectRef>,
}

/// The verified subject token. The host has checked its signature, issuer, lifetime and audience.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The `iss` claim, exactly as registered for the identity's issuer.
    pub issuer: String,
    /// The `sub` claim, for example `system:serviceaccount:prod:deployer`.
    pub subject: String,
    /// The `aud` claim, as a list even when the token carried a single string.
    pub audiences: Vec<String>,
    /// The `iat` claim, in seconds since the Unix epoch.
    pub issued_at: Option<i64>,
    /// The `nbf` claim, in seconds since the Unix epoch.
    pub not_before: Option<i64>,
    /// The `exp` claim, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// The `jti` claim.
    pub jwt_id: Option<String>,
    /// The typed `kubernetes.io` claim, if the token is a Kubernetes token.
    pub kubernetes: Option<KubernetesClaims>,
    /// The whole verified payload as JSON, for claims without a typed field.
    pub claims_json: String,
}

impl Token {
    /// Parses [`Token::claims_json`].
    pub fn claims(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.claims_json)
    }

    /// The claim at a JSON pointer (RFC 6901) such as `/kubernetes.io/pod/name`, if present.
    ///
    /// Cheaper than [`Token::claims`] for a few claims: only the value found is parsed.
    pub fn claim(&self, pointer: &str) -> Option<serde_json::Value> {
        self.typed_claim(pointer)
            .or_else(|| crate::json::pointer(&self.claims_json, pointer))
    }

    /// Registered and `kubernetes.io` claims the host already typed: no JSON to parse.
    fn typed_claim(&self, pointer: &str) -> Option<serde_json::Value> {
        let text = |s: &str| Some(serde_json::Value::String(s.to_owned()));
        let k8s = self.kubernetes.as_ref();
        let object = |o: Option<&ObjectRef>, field: &str| {
            let o = o?;
            match field {
                "name" => text(&o.name),
                "uid" if !o.uid.is_empty() => text(&o.uid),
                _ => None,
            }
        };
        match pointer {
            "/iss" if !self.issuer.is_empty() => text(&self.issuer),
            "/sub" if !self.subject.is_empty() => text(&self.subject),
            "/kubernetes.io/namespace" => k8s.and_then(|k| text(&k.namespace)),
            _ => {
                let rest = pointer.strip_prefix("/kubernetes.io/")?;
                let (kind, field) = rest.split_once('/')?;
                let k8s = k8s?;
                match kind {
                    "serviceaccount" => object(Some(&k8s.service_account), field),
                    "pod" => object(k8s.pod.as_ref(), field),
                    "node" => object(k8s.node.as_ref(), field),
                    "secret" => object(k8s.secret.as_ref(), field),
                    _ => None,
                }
            }
        }
    }

    /// The namespace of a Kubernetes token.
    pub fn namespace(&self) -> Option<&str> {
        self.kubernetes.as_ref().map(|k| k.namespace.as_str())
    }

    /// The pod name of a pod-bound Kubernetes token.
    pub fn pod_name(&self) -> Option<&str> {
        let pod = self.kubernetes.as_ref()?.pod.as_ref()?;
        Some(pod.name.as_str())
    }

    /// The node name of a node-bound Kubernetes token.
    pub fn node_name(&self) -> Option<&str> {
        let node = self.kubernetes.as_ref()?.node.as_ref()?;
        Some(node.name.as_str())
    }
}

/// What the workload asked for, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The tenant that owns the identity.
    pub tenant: String,
    /// The identity being assumed.
    pub identity: String,
    /// Audiences the workload asked the issued token to carry.
    pub requested_audiences: Vec<String>,
    /// Scopes the workload asked for (empty: whatever the policy grants).
    pub requested_scopes: Vec<String>,
    /// The caller's network address, when the host knows it.
    pub client_address: Option<String>,
    /// The current time, in seconds since the Unix epoch. Use this instead of a clock.
    pub now: i64,
}

/// Everything a policy decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The verified subject token.
    pub token: Token,
    /// The exchange the workload asked for.
    pub exchange: Exchange,
    /// The identity's policy config, as JSON. [`crate::Policy`] parses it for you.
    pub config: String,
}

impl Request {
    /// Seconds since the token was issued, if it carries `iat`.
    pub fn token_age(&self) -> Option<i64> {
        self.token.issued_at.map(|iat| self.exchange.now - iat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn typed_claims_agree_with_the_payload() {
        let payload = serde_json::json!({
            "iss": "https://k8s.example", "sub": "system:serviceaccount:prod:app",
            "kubernetes.io": {
                "namespace": "prod",
                "serviceaccount": {"name": "app", "uid": "sa-1"},
                "pod": {"name": "api-1", "uid": "pod-1"}
            },
            "custom": {"team": "a"}
        });
        let token = Token {
            issuer: "https://k8s.example".into(),
            subject: "system:serviceaccount:prod:app".into(),
            kubernetes: Some(KubernetesClaims {
                namespace: "prod".into(),
                service_account: ObjectRef::new("app", "sa-1"),
                pod: Some(ObjectRef::new("api-1", "pod-1")),
                ..Default::default()
            }),
            claims_json: payload.to_string(),
            ..Default::default()
        };
        for pointer in [
            "/iss",
            "/sub",
            "/kubernetes.io/namespace",
            "/kubernetes.io/serviceaccount/name",
            "/kubernetes.io/serviceaccount/uid",
            "/kubernetes.io/pod/name",
            "/kubernetes.io/pod/uid",
            "/kubernetes.io/node/name",
            "/kubernetes.io/secret/uid",
            "/custom/team",
            "/missing",
        ] {
            assert_eq!(
                token.claim(pointer),
                payload.pointer(pointer).cloned(),
                "{pointer}"
            );
        }
    }
}
