//! Infisical's Kubernetes-auth identity config (`/api/v1/auth/kubernetes-auth/identities/{id}`)
//! mapped onto a Tollgate identity: a TokenReview issuer named like the identity (the cluster's
//! API server checks each token), the stock `rules` policy binding the allowed namespaces and
//! service account names, and the token limits. The body is read field by field so that a bad
//! one is refused naming its field; the answer is Infisical's `identityKubernetesAuth`.

use super::bodies::{IdentitySpec, IssuerSpec};
use super::{AdminError, AdminService, Result};
use crate::store::IdentityRecord;
use serde_json::{Map, Value, json};

/// Infisical's bound on both ttls (exclusive): ten years.
const TTL_LIMIT: u64 = 315_360_000;
/// Infisical's default for both ttls: 30 days.
const DEFAULT_TTL: u64 = 2_592_000;

/// An Infisical Kubernetes-auth config, as read from a body or rebuilt from what is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesAuth {
    pub kubernetes_host: String,
    pub ca_cert: String,
    pub token_reviewer_jwt: String,
    pub allowed_namespaces: Vec<String>,
    pub allowed_names: Vec<String>,
    pub allowed_audience: String,
    pub trusted_ips: Vec<String>,
    pub ttl: u32,
    pub max_ttl: u32,
    pub num_uses: u32,
}

/// A body refused: 400 naming the field.
fn bad(field: &str, why: &str) -> AdminError {
    AdminError::BadRequest(format!("`{field}` {why}"))
}

fn string(body: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn integer(body: &Map<String, Value>, field: &str, range: (u64, u64)) -> Result<Option<u32>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let n = value
                .as_u64()
                .filter(|n| (range.0..range.1).contains(n))
                .ok_or_else(|| {
                    bad(
                        field,
                        &format!("must be an integer with {} <= x < {}", range.0, range.1),
                    )
                })?;
            Ok(Some(
                u32::try_from(n).map_err(|_| bad(field, "is too large"))?,
            ))
        }
    }
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

const FIELDS: &[&str] = &[
    "kubernetesHost",
    "caCert",
    "tokenReviewerJwt",
    "allowedNamespaces",
    "allowedNames",
    "allowedAudience",
    "accessTokenTrustedIps",
    "accessTokenTTL",
    "accessTokenMaxTTL",
    "accessTokenNumUsesLimit",
];

impl KubernetesAuth {
    /// Reads `body` over `base` (a PATCH: fields absent keep `base`'s) or, with no base, as a
    /// new config (required fields must be there, the others take Infisical's defaults).
    pub fn read(body: &Value, base: Option<&KubernetesAuth>) -> Result<KubernetesAuth> {
        let body = body
            .as_object()
            .ok_or_else(|| AdminError::BadRequest("the body must be a JSON object".into()))?;
        if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(bad(unknown, "is not a field of a Kubernetes auth config"));
        }
        let required = |field: &str, base: Option<&String>| -> Result<String> {
            match string(body, field)? {
                Some(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
                Some(_) => Err(bad(field, "must not be empty")),
                None => base.cloned().ok_or_else(|| bad(field, "is required")),
            }
        };
        let list = |field: &str, base: Option<&Vec<String>>| -> Result<Vec<String>> {
            Ok(match string(body, field)? {
                Some(text) => comma_list(&text),
                None => base.cloned().unwrap_or_default(),
            })
        };
        let ttl_range = (1, TTL_LIMIT);
        let config = KubernetesAuth {
            kubernetes_host: required("kubernetesHost", base.map(|b| &b.kubernetes_host))?,
            token_reviewer_jwt: required("tokenReviewerJwt", base.map(|b| &b.token_reviewer_jwt))?,
            ca_cert: string(body, "caCert")?
                .or_else(|| base.map(|b| b.ca_cert.clone()))
                .unwrap_or_default(),
            allowed_namespaces: list("allowedNamespaces", base.map(|b| &b.allowed_namespaces))?,
            allowed_names: list("allowedNames", base.map(|b| &b.allowed_names))?,
            allowed_audience: string(body, "allowedAudience")?
                .map(|a| a.trim().to_owned())
                .or_else(|| base.map(|b| b.allowed_audience.clone()))
                .unwrap_or_default(),
            trusted_ips: match body.get("accessTokenTrustedIps") {
                None | Some(Value::Null) => base.map_or_else(
                    || vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()],
                    |b| b.trusted_ips.clone(),
                ),
                Some(value) => trusted_ips(value)?,
            },
            ttl: integer(body, "accessTokenTTL", ttl_range)?
                .or(base.map(|b| b.ttl))
                .unwrap_or(DEFAULT_TTL as u32),
            max_ttl: integer(body, "accessTokenMaxTTL", ttl_range)?
                .or(base.map(|b| b.max_ttl))
                .unwrap_or(DEFAULT_TTL as u32),
            num_uses: integer(body, "accessTokenNumUsesLimit", (0, u64::from(u32::MAX)))?
                .or(base.map(|b| b.num_uses))
                .unwrap_or(0),
        };
        if config.ttl > config.max_ttl {
            return Err(bad(
                "accessTokenTTL",
                "must not be greater than `accessTokenMaxTTL`",
            ));
        }
        if config.allowed_audience.is_empty() {
            return Err(bad(
                "allowedAudience",
                "must name the audience the pods' tokens carry (the TokenReview checks it)",
            ));
        }
        Ok(config)
    }

    /// The API server's URL: a bare host or `host:port` is reached over `https`.
    fn api_server(&self) -> String {
        let host = self.kubernetes_host.trim_end_matches('/');
        if host.contains("://") {
            host.to_owned()
        } else {
            format!("https://{host}")
        }
    }

    /// The TokenReview issuer this config stands for.
    fn issuer(&self) -> IssuerSpec {
        let mut source = json!({
            "mode": "token_review",
            "api_server": self.api_server(),
            "reviewer_token": self.token_reviewer_jwt,
            "any_issuer": true,
        });
        if !self.ca_cert.trim().is_empty() {
            source["ca_pem"] = json!(self.ca_cert);
        }
        IssuerSpec {
            issuer_url: self.api_server(),
            source,
        }
    }

    /// The identity this config stands for, trusting issuer `issuer`.
    fn identity(&self, issuer: &str) -> IdentitySpec {
        let mut config = Map::new();
        // Infisical reads an empty list as "any": `rules` needs one binding, so any namespace.
        if self.allowed_namespaces.is_empty() && self.allowed_names.is_empty() {
            config.insert("namespaces".into(), json!(["*"]));
        }
        if !self.allowed_namespaces.is_empty() {
            config.insert("namespaces".into(), json!(self.allowed_namespaces));
        }
        if !self.allowed_names.is_empty() {
            config.insert("service_accounts".into(), json!(self.allowed_names));
        }
        IdentitySpec {
            issuer: issuer.to_owned(),
            accepted_audiences: vec![self.allowed_audience.clone()],
            token_audiences: Vec::new(),
            policy: crate::policy::BUILTIN_RULES.to_owned(),
            config: Value::Object(config),
            scopes: Vec::new(),
            ttl_seconds: self.ttl,
            max_ttl_seconds: self.max_ttl,
            num_uses: self.num_uses,
            trusted_cidrs: self.trusted_ips.clone(),
            fuel: None,
            cases: Vec::new(),
            shadow: None,
        }
    }

    /// Rebuilds the config from a stored identity and its issuer's source.
    fn from_stored(identity: &IdentityRecord, source: &Value) -> KubernetesAuth {
        let config: Value = serde_json::from_str(identity.config.as_str()).unwrap_or_default();
        let list = |key: &str| -> Vec<String> {
            config
                .get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|s| *s != "*")
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |key: &str| source.get(key).and_then(Value::as_str).unwrap_or_default();
        KubernetesAuth {
            kubernetes_host: text("api_server").to_owned(),
            ca_cert: text("ca_pem").to_owned(),
            token_reviewer_jwt: text("reviewer_token").to_owned(),
            allowed_namespaces: list("namespaces"),
            allowed_names: list("service_accounts"),
            allowed_audience: identity
                .accepted_audiences
                .first()
                .cloned()
                .unwrap_or_default(),
            trusted_ips: identity.trusted_cidrs.clone(),
            ttl: identity.ttl_seconds,
            max_ttl: identity.max_ttl_seconds,
            num_uses: identity.num_uses,
        }
    }

    /// Infisical's answer: `{"identityKubernetesAuth": {...}}`; the reviewer token is redacted.
    fn answer(&self, identity: &IdentityRecord) -> Value {
        let ips: Vec<Value> = self
            .trusted_ips
            .iter()
            .map(|cidr| {
                let (address, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
                let kind = if address.contains(':') {
                    "ipv6"
                } else {
                    "ipv4"
                };
                json!({"ipAddress": address, "type": kind, "prefix": prefix.parse::<u8>().ok()})
            })
            .collect();
        json!({"identityKubernetesAuth": {
            "id": identity.uid,
            "identityId": identity.uid,
            "name": crate::exchange::identity_name(identity),
            "accessTokenTTL": self.ttl,
            "accessTokenMaxTTL": self.max_ttl,
            "accessTokenNumUsesLimit": self.num_uses,
            "accessTokenTrustedIps": ips,
            "createdAt": rfc3339(identity.created_at),
            "updatedAt": rfc3339(identity.updated_at),
            "kubernetesHost": self.kubernetes_host,
            "allowedNamespaces": self.allowed_namespaces.join(","),
            "allowedNames": self.allowed_names.join(","),
            "allowedAudience": self.allowed_audience,
            "caCert": self.ca_cert,
            "tokenReviewerJwt": "<redacted>",
        }})
    }
}

fn trusted_ips(value: &Value) -> Result<Vec<String>> {
    let field = "accessTokenTrustedIps";
    let items = value
        .as_array()
        .ok_or_else(|| bad(field, "must be a list of `{\"ipAddress\": ...}`"))?;
    let mut ips = Vec::with_capacity(items.len());
    for item in items {
        let address = item
            .get("ipAddress")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(field, "entries need an `ipAddress` string"))?;
        ips.push(address.to_owned());
    }
    crate::common::cidrs::Cidrs::parse(&ips)
        .map(|cidrs| cidrs.to_strings())
        .map_err(|e| bad(field, &format!("has an entry that {e}")))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl AdminService {
    /// The identity `reference` names in `tenant`: its unique id, or its name.
    async fn infisical_identity(
        &self,
        tenant: &str,
        reference: &str,
    ) -> Result<Option<IdentityRecord>> {
        if let Some(found) = self.store.get_identity_by_uid(reference).await?
            && found.tenant == tenant
        {
            return Ok(Some(found));
        }
        if super::check_name("identity", reference).is_err() {
            return Ok(None);
        }
        Ok(self.store.get_identity(tenant, reference).await?)
    }

    async fn infisical_config(&self, identity: &IdentityRecord) -> Result<KubernetesAuth> {
        let issuer = self
            .store
            .get_issuer(&identity.tenant, &identity.issuer)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("issuer `{}`", identity.issuer)))?;
        if issuer.source.get("mode").and_then(Value::as_str) != Some("token_review") {
            return Err(AdminError::NotFound(format!(
                "Kubernetes auth config of identity `{}`",
                identity.id
            )));
        }
        Ok(KubernetesAuth::from_stored(identity, &issuer.source))
    }

    /// `POST` (create; an existing identity is replaced) and `PATCH` (change the fields given).
    pub async fn infisical_put(
        &self,
        tenant: &str,
        reference: &str,
        body: &Value,
        patch: bool,
    ) -> Result<Value> {
        self.require_tenant(tenant).await?;
        let existing = self.infisical_identity(tenant, reference).await?;
        let base = match (&existing, patch) {
            (Some(identity), true) => Some(self.infisical_config(identity).await?),
            (None, true) => return Err(AdminError::NotFound(format!("identity `{reference}`"))),
            (_, false) => None,
        };
        let config = KubernetesAuth::read(body, base.as_ref())?;
        let id = match &existing {
            Some(identity) => identity.id.clone(),
            None => {
                super::check_name("identity", reference)?;
                reference.to_owned()
            }
        };
        // The identity's own issuer, named like it; one that exists in another mode is the
        // tenant's for something else, and is not taken over.
        if let Some(issuer) = self.store.get_issuer(tenant, &id).await?
            && issuer.source.get("mode").and_then(Value::as_str) != Some("token_review")
        {
            return Err(AdminError::Conflict(format!(
                "issuer `{id}` exists and is not a TokenReview issuer"
            )));
        }
        self.put_issuer(tenant, &id, config.issuer()).await?;
        let view = self.put_identity(tenant, &id, config.identity(&id)).await?;
        Ok(config.answer(&view.record))
    }

    pub async fn infisical_get(&self, tenant: &str, reference: &str) -> Result<Value> {
        let identity = self
            .infisical_identity(tenant, reference)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("identity `{reference}`")))?;
        Ok(self.infisical_config(&identity).await?.answer(&identity))
    }

    /// Deletes the identity and its issuer; answers the config as it was.
    pub async fn infisical_delete(&self, tenant: &str, reference: &str) -> Result<Value> {
        let identity = self
            .infisical_identity(tenant, reference)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("identity `{reference}`")))?;
        let answer = self.infisical_config(&identity).await?.answer(&identity);
        self.delete_identity(tenant, &identity.id).await?;
        if identity.issuer == identity.id {
            // Another identity may trust it too: then it stays.
            let _ = self.delete_issuer(tenant, &identity.issuer).await;
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_body() -> Value {
        json!({
            "kubernetesHost": "https://10.0.0.1:6443",
            "caCert": "",
            "tokenReviewerJwt": "reviewer",
            "allowedNamespaces": "prod, staging",
            "allowedNames": "deployer",
            "allowedAudience": "vault",
            "accessTokenTrustedIps": [{"ipAddress": "0.0.0.0/0"}, {"ipAddress": "::/0"}],
            "accessTokenTTL": 2592000,
            "accessTokenMaxTTL": 2592000,
            "accessTokenNumUsesLimit": 0
        })
    }

    #[test]
    fn the_seed_body_maps_onto_an_identity() {
        let config = KubernetesAuth::read(&seed_body(), None).unwrap();
        assert_eq!(config.allowed_namespaces, ["prod", "staging"]);
        let spec = config.identity("ci");
        assert_eq!(
            spec.config,
            json!({"namespaces": ["prod", "staging"], "service_accounts": ["deployer"]})
        );
        assert_eq!(spec.accepted_audiences, ["vault"]);
        assert_eq!(spec.trusted_cidrs, ["0.0.0.0/0", "::/0"]);
        assert_eq!(
            (spec.ttl_seconds, spec.max_ttl_seconds, spec.num_uses),
            (2592000, 2592000, 0)
        );
        assert_eq!(
            config.issuer().source["api_server"],
            "https://10.0.0.1:6443"
        );
        assert!(config.issuer().source.get("ca_pem").is_none());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("accessTokenTTL", json!(0), "accessTokenTTL"),
            ("accessTokenTTL", json!(315360000), "accessTokenTTL"),
            ("accessTokenMaxTTL", json!(-5), "accessTokenMaxTTL"),
            (
                "accessTokenNumUsesLimit",
                json!("3"),
                "accessTokenNumUsesLimit",
            ),
            ("kubernetesHost", json!(""), "kubernetesHost"),
            ("allowedNamespaces", json!(["prod"]), "allowedNamespaces"),
            (
                "accessTokenTrustedIps",
                json!([{"ipAddress": "10.0.0.0/33"}]),
                "accessTokenTrustedIps",
            ),
            (
                "accessTokenTrustedIps",
                json!(["10.0.0.1"]),
                "accessTokenTrustedIps",
            ),
            ("bogus", json!(1), "bogus"),
        ];
        for (field, value, named) in cases {
            let mut body = seed_body();
            body[field] = value;
            let error = KubernetesAuth::read(&body, None).unwrap_err().to_string();
            assert!(error.contains(&format!("`{named}`")), "{field}: {error}");
        }
        let mut missing = seed_body();
        missing.as_object_mut().unwrap().remove("tokenReviewerJwt");
        assert!(
            KubernetesAuth::read(&missing, None)
                .unwrap_err()
                .to_string()
                .contains("`tokenReviewerJwt` is required")
        );
        let mut longer = seed_body();
        longer["accessTokenTTL"] = json!(7200);
        longer["accessTokenMaxTTL"] = json!(3600);
        assert!(KubernetesAuth::read(&longer, None).is_err());
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_empty_lists_mean_any() {
        let base = KubernetesAuth::read(&seed_body(), None).unwrap();
        let patched = KubernetesAuth::read(
            &json!({"accessTokenNumUsesLimit": 3, "allowedNamespaces": ""}),
            Some(&base),
        )
        .unwrap();
        assert_eq!(patched.num_uses, 3);
        assert_eq!(patched.token_reviewer_jwt, "reviewer");
        assert!(patched.allowed_namespaces.is_empty());
        let mut any = base.clone();
        any.allowed_names.clear();
        any.allowed_namespaces.clear();
        assert_eq!(any.identity("x").config, json!({"namespaces": ["*"]}));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
