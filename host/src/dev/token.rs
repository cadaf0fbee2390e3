//! Tokens shaped like Kubernetes projected ServiceAccount tokens, with stable derived uids.

use super::DevError;
use crate::issue::SigningKey;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The lifetime the kubelet asks for when it projects a pod's default token (the
/// `kube-api-access-*` volume): `expirationSeconds: 3607`.
pub const KUBE_API_ACCESS_SECONDS: u64 = 3607;
/// What the API server extends such a token's lifetime to (`--service-account-extend-token-expiration`,
/// on by default): a year, while `warnafter` keeps the lifetime asked for.
pub const EXTENDED_SECONDS: u64 = 365 * 24 * 3600;

/// What to put in a dev ServiceAccount token.
#[derive(Debug, Clone)]
pub struct ServiceAccountToken {
    /// `iss`.
    pub issuer: String,
    /// The namespace of the service account (and of the pod).
    pub namespace: String,
    /// The service account name.
    pub service_account: String,
    /// Binds the token to this pod.
    pub pod: Option<String>,
    /// Binds the token to this node.
    pub node: Option<String>,
    /// `aud`: at least one.
    pub audiences: Vec<String>,
    /// Lifetime in seconds: the lifetime asked for, which `exp` and `warnafter` both carry,
    /// unless `extended`.
    pub ttl_seconds: u64,
    /// The shape of a pod's default (kube-api-access) token, whose expiry the API server
    /// extended: `exp` is [`EXTENDED_SECONDS`] after `iat`, and `kubernetes.io.warnafter` is
    /// `ttl_seconds` after it (the kubelet asks for [`KUBE_API_ACCESS_SECONDS`]).
    pub extended: bool,
    /// `iat` and `nbf`, seconds since the epoch.
    pub issued_at: i64,
    /// Seeds the derived uids: the same seed gives the same uids for the same names; another
    /// seed simulates deleting and recreating the objects.
    pub uid_seed: String,
}

impl ServiceAccountToken {
    /// The claims, as the Kubernetes API server writes them for a TokenRequest.
    pub fn claims(&self) -> Result<Value, DevError> {
        if self.audiences.is_empty() {
            return Err(DevError::NoAudience);
        }
        let ttl = i64::try_from(self.ttl_seconds)
            .ok()
            .filter(|ttl| *ttl > 0)
            .ok_or(DevError::InvalidTtl(self.ttl_seconds))?;
        let after = |seconds: i64| {
            self.issued_at
                .checked_add(seconds)
                .ok_or(DevError::InvalidTtl(self.ttl_seconds))
        };
        let warn_after = after(ttl)?;
        let expires_at = if self.extended {
            if self.ttl_seconds > EXTENDED_SECONDS {
                return Err(DevError::InvalidTtl(self.ttl_seconds));
            }
            after(EXTENDED_SECONDS as i64)?
        } else {
            warn_after
        };
        let object = |kind: &str, scope: &str, name: &str| json!({ "name": name, "uid": derived_uid(&self.uid_seed, kind, scope, name) });
        let mut kubernetes = Map::new();
        kubernetes.insert("namespace".into(), self.namespace.clone().into());
        if let Some(node) = &self.node {
            // Nodes are cluster-scoped.
            kubernetes.insert("node".into(), object("node", "", node));
        }
        if let Some(pod) = &self.pod {
            kubernetes.insert("pod".into(), object("pod", &self.namespace, pod));
        }
        kubernetes.insert(
            "serviceaccount".into(),
            object("serviceaccount", &self.namespace, &self.service_account),
        );
        // The API server warns about a token used past the lifetime that was asked for: without
        // an extension that is when the token itself expires.
        kubernetes.insert("warnafter".into(), warn_after.into());
        Ok(json!({
            "aud": self.audiences,
            "exp": expires_at,
            "iat": self.issued_at,
            "iss": self.issuer,
            "jti": random_uuid()?,
            "kubernetes.io": kubernetes,
            "nbf": self.issued_at,
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.service_account),
        }))
    }

    /// Signs the claims like the API server: RS256 header with `alg` and `kid`, no `typ`.
    pub fn mint(&self, key: &SigningKey) -> Result<String, DevError> {
        Ok(key.sign_with_typ(None, &self.claims()?)?)
    }
}

/// A uid for a named object, stable for a seed: a UUID shaped like the random (version 4)
/// ones Kubernetes assigns, derived from SHA-256 of the seed, kind, namespace and name.
pub fn derived_uid(seed: &str, kind: &str, namespace: &str, name: &str) -> String {
    let mut hasher = Sha256::new();
    for part in ["tollgate-dev-uid", seed, kind, namespace, name] {
        // Length-prefixed so that ("a:b", "c") and ("a", "b:c") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format_uuid(bytes)
}

fn random_uuid() -> Result<String, DevError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| DevError::Random)?;
    Ok(format_uuid(bytes))
}

fn format_uuid(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ServiceAccountToken {
        ServiceAccountToken {
            issuer: "http://127.0.0.1:8081".into(),
            namespace: "prod".into(),
            service_account: "deployer".into(),
            pod: Some("api-0".into()),
            node: Some("pool-a-1".into()),
            audiences: vec!["http://127.0.0.1:8080/tenants/acme".into()],
            ttl_seconds: 3600,
            extended: false,
            issued_at: 1_700_000_000,
            uid_seed: "seed".into(),
        }
    }

    #[test]
    fn claims_have_the_shape_of_a_projected_token() {
        let claims = request().claims().unwrap();
        assert_eq!(claims["sub"], "system:serviceaccount:prod:deployer");
        assert_eq!(claims["aud"], json!(["http://127.0.0.1:8080/tenants/acme"]));
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_003_600);
        let k8s = &claims["kubernetes.io"];
        assert_eq!(k8s["namespace"], "prod");
        assert_eq!(k8s["serviceaccount"]["name"], "deployer");
        assert_eq!(k8s["pod"]["name"], "api-0");
        assert_eq!(k8s["node"]["name"], "pool-a-1");
        assert_eq!(k8s["warnafter"], 1_700_003_600);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn an_extended_token_lives_a_year_and_warns_after_the_lifetime_asked_for() {
        let claims = ServiceAccountToken {
            ttl_seconds: KUBE_API_ACCESS_SECONDS,
            extended: true,
            ..request()
        }
        .claims()
        .unwrap();
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_000 + 31_536_000);
        // Inside `kubernetes.io`, as a NumericDate, like the API server writes it.
        assert_eq!(claims["kubernetes.io"]["warnafter"], 1_700_000_000 + 3607);
        assert!(claims.get("warnafter").is_none());
        // A lifetime past the extension would warn after the token expired.
        let longer = ServiceAccountToken {
            ttl_seconds: EXTENDED_SECONDS + 1,
            extended: true,
            ..request()
        };
        assert!(matches!(longer.claims(), Err(DevError::InvalidTtl(_))));
    }

    #[test]
    fn pod_and_node_appear_only_when_given() {
        let claims = ServiceAccountToken {
            pod: None,
            node: None,
            ..request()
        }
        .claims()
        .unwrap();
        let k8s = claims["kubernetes.io"].as_object().unwrap();
        assert!(!k8s.contains_key("pod") && !k8s.contains_key("node"));
    }

    #[test]
    fn uids_are_stable_per_name_and_change_with_the_seed() {
        let a = request().claims().unwrap();
        let b = request().claims().unwrap();
        let k = |c: &Value, kind: &str| c["kubernetes.io"][kind]["uid"].clone();
        for kind in ["serviceaccount", "pod", "node"] {
            assert_eq!(k(&a, kind), k(&b, kind));
        }
        assert_ne!(a["jti"], b["jti"], "jti is random per token");
        let recreated = ServiceAccountToken {
            uid_seed: "recreated".into(),
            ..request()
        }
        .claims()
        .unwrap();
        assert_ne!(k(&a, "serviceaccount"), k(&recreated, "serviceaccount"));
        // Same name in another namespace is another object.
        assert_ne!(
            derived_uid("s", "serviceaccount", "prod", "deployer"),
            derived_uid("s", "serviceaccount", "dev", "deployer")
        );
        assert_ne!(
            derived_uid("s", "pod", "a:b", "c"),
            derived_uid("s", "pod", "a", "b:c")
        );
    }

    #[test]
    fn uids_look_like_kubernetes_uids() {
        let uid = derived_uid("seed", "serviceaccount", "prod", "deployer");
        let groups: Vec<usize> = uid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uid[14..15], "4");
        assert!(matches!(&uid[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn a_token_needs_an_audience_and_a_positive_ttl() {
        let no_aud = ServiceAccountToken {
            audiences: vec![],
            ..request()
        };
        assert!(matches!(no_aud.claims(), Err(DevError::NoAudience)));
        let no_ttl = ServiceAccountToken {
            ttl_seconds: 0,
            ..request()
        };
        assert!(matches!(no_ttl.claims(), Err(DevError::InvalidTtl(0))));
    }
}
