//! The records the store keeps. Times are Unix seconds.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A tenant: the unit of isolation. Every issuer, policy, identity and decision belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Unique name, used in resource names (`tenants/{name}/...`).
    pub name: String,
    /// When it was created.
    pub created_at: i64,
}

/// An admin API key. Only a SHA-256 hash of its secret is stored, so it is never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Random public identifier, safe to show and log.
    pub id: String,
    /// The tenant it manages, or `None` for an operator key.
    pub tenant: Option<String>,
    /// What the creator called it.
    pub label: String,
    /// What it may do.
    pub role: KeyRole,
    /// When it was created.
    pub created_at: i64,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// Everything its tenant (or, for an operator key, the operator) may do.
    #[default]
    Admin,
    /// Only introspection and revocation of its tenant's tokens: the credential a tenant gives
    /// its resource servers.
    Introspect,
}

impl KeyRole {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Admin => "admin",
            KeyRole::Introspect => "introspect",
        }
    }

    /// The role named `name`, if there is one.
    pub fn parse(name: &str) -> Option<KeyRole> {
        match name {
            "admin" => Some(KeyRole::Admin),
            "introspect" => Some(KeyRole::Introspect),
            _ => None,
        }
    }
}

/// A token issuer (a cluster) a tenant trusts. Two tenants may register the same URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuerRecord {
    /// Owning tenant.
    pub tenant: String,
    /// Name, unique within the tenant.
    pub name: String,
    /// The `iss` claim of its tokens.
    pub issuer_url: String,
    /// How its keys are found (the verify module's `IssuerSource`), kept as JSON.
    pub source: serde_json::Value,
    /// Set by the store at the first put.
    pub created_at: i64,
    /// Set by the store at every put.
    pub updated_at: i64,
}

/// A stored policy module, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyMeta {
    /// Owning tenant.
    pub tenant: String,
    /// `sha256:<hex>` of the bytes: its address.
    pub digest: String,
    /// Size of the module in bytes.
    pub size: u64,
    /// When it was first uploaded.
    pub uploaded_at: i64,
    /// An optional human name given at upload.
    pub name: Option<String>,
}

/// A stored policy module with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// What is known about it.
    pub meta: PolicyMeta,
    /// The WebAssembly component.
    pub bytes: Vec<u8>,
}

/// An identity a workload may assume: `tenants/{tenant}/identities/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// Owning tenant.
    pub tenant: String,
    /// Name, unique within the tenant.
    pub id: String,
    /// Opaque unique id, random, assigned by the store at the first put and kept across updates.
    /// Ignored on input.
    pub uid: String,
    /// Name of the tenant's issuer whose tokens are accepted.
    pub issuer: String,
    /// Audiences a subject token must carry one of; empty means the server's default.
    pub accepted_audiences: Vec<String>,
    /// `aud` values issued tokens may carry; the first is the default.
    pub token_audiences: Vec<String>,
    /// `builtin:rules` or the `sha256:<hex>` digest of one of the tenant's policies.
    pub policy: String,
    /// The policy's configuration, as the JSON text the policy reads.
    pub config: PolicyConfig,
    /// Scopes issued tokens may carry.
    pub scopes: Vec<String>,
    /// Default lifetime of issued tokens.
    pub ttl_seconds: u32,
    /// Longest a token can live through renewals, counted from the first token's issue.
    pub max_ttl_seconds: u32,
    /// How many times an issued token may be introspected as active (0: unlimited); renewed
    /// tokens share their first token's count.
    #[serde(default)]
    pub num_uses: u32,
    /// Address ranges exchanges must come from and tokens be presented from (empty: any).
    #[serde(default)]
    pub trusted_cidrs: Vec<String>,
    /// Fuel for one policy decision; `None` means the server's default.
    pub fuel: Option<u64>,
    /// What `policy` resolves to now, the module decisions run: a digest or a built-in. A
    /// `NAME` follows the name's newest version once the identity's `cases` pass on it.
    #[serde(default)]
    pub resolved_policy: String,
    /// The identity's own cases (the `policy test` case format, with the identity's config):
    /// every version it is to run must pass them first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<serde_json::Value>,
    /// A candidate evaluated beside the policy on a sample of exchanges; it never changes an
    /// answer, and the decision log records both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
    /// Set by the store at the first put.
    pub created_at: i64,
    /// Set by the store at every put.
    pub updated_at: i64,
}

impl IdentityRecord {
    /// The module decisions run: `resolved_policy`, or `policy` in a record written before
    /// names existed.
    pub fn policy_address(&self) -> &str {
        if self.resolved_policy.is_empty() {
            &self.policy
        } else {
            &self.resolved_policy
        }
    }
}

/// An identity's shadow candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    /// As the tenant wrote it: `NAME`, `NAME@VERSION`, a digest or a built-in.
    pub policy: String,
    /// What it resolves to now.
    #[serde(default)]
    pub resolved: String,
    /// The share of exchanges that also run it, 0 to 1.
    pub sample: f64,
    /// The config it runs with; `None`: the identity's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PolicyConfig>,
}

/// One version of a tenant's named policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub name: String,
    /// 1, 2, ... in upload order.
    pub version: u32,
    /// The module.
    pub digest: String,
    pub created_at: i64,
    /// The id of the API key that made it (never its secret).
    pub created_by: Option<String>,
    pub description: Option<String>,
}

/// A policy configuration, kept as the JSON text the policy is handed: an exchange passes it
/// on without serializing it again, and a cached identity holds a few hundred bytes of text
/// instead of a tree of maps (BENCHMARKS.md, scale). Serialized as the JSON it holds.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicyConfig(Box<RawValue>);

impl PolicyConfig {
    /// `{}`: no rules configured.
    pub fn empty() -> Self {
        Self::from(&serde_json::json!({}))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl From<&serde_json::Value> for PolicyConfig {
    /// The value's compact JSON text.
    fn from(value: &serde_json::Value) -> Self {
        Self(serde_json::value::to_raw_value(value).expect("a JSON value serializes"))
    }
}

impl PartialEq for PolicyConfig {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for PolicyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of Tollgate's own token signing keys.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// Key id, unique.
    pub kid: String,
    /// JWS algorithm (`ES256`, `EdDSA`, ...).
    pub alg: String,
    /// The private key, PKCS#8 DER. Never serialized.
    #[serde(skip_serializing, default)]
    pub private_pkcs8: Vec<u8>,
    /// The public key as a JWK, for `/.well-known/jwks.json`.
    pub public_jwk: serde_json::Value,
    /// When it was created; the newest unretired key signs.
    pub created_at: i64,
    /// When it stopped signing; it is still published while tokens it signed may be alive.
    pub retired_at: Option<i64>,
}

// Keeps the private key out of logs and panics.
impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pkcs8", &"<redacted>")
            .field("public_jwk", &self.public_jwk)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// What a record of the audit log is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// A subject token exchanged for an access token (or refused).
    #[default]
    Exchange,
    /// An access token renewed (or refused).
    Renewal,
    /// An access token introspected: `allowed` is whether it was active.
    Introspection,
    /// An access token, or every token of an identity, revoked.
    Revocation,
    /// The identity's policy changed: saved, a followed name's new version, a rollback or a
    /// promotion (or a new version it refused).
    #[serde(rename = "policy-change")]
    PolicyChange,
}

impl Event {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Exchange => "exchange",
            Event::Renewal => "renewal",
            Event::Introspection => "introspection",
            Event::Revocation => "revocation",
            Event::PolicyChange => "policy-change",
        }
    }

    /// The event named `name`; unknown names (from a newer server) read as exchanges.
    pub fn parse(name: &str) -> Event {
        match name {
            "renewal" => Event::Renewal,
            "introspection" => Event::Introspection,
            "revocation" => Event::Revocation,
            "policy-change" => Event::PolicyChange,
            _ => Event::Exchange,
        }
    }
}

/// One decision in the append-only audit log: an exchange, or a later event of an issued
/// token's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DecisionRecord {
    /// Assigned by the store on append (ignored on input); increases with time.
    pub id: i64,
    /// What happened.
    pub event: Event,
    /// Tenant of the identity.
    pub tenant: String,
    /// Identity id within the tenant.
    pub identity: String,
    /// When it was decided.
    pub at: i64,
    /// Whether a token was issued.
    pub allowed: bool,
    /// Denial code (`fuel-exhausted`, `subject-mismatch`, ...).
    pub code: Option<String>,
    /// Denial reason, for the tenant's eyes only.
    pub reason: Option<String>,
    /// Who decided the denial (`host`, `policy`, `sandbox`).
    pub source: Option<String>,
    /// `sub` of the subject token.
    pub subject: Option<String>,
    /// `iss` of the subject token.
    pub issuer: Option<String>,
    /// Digest of the policy that ran.
    pub policy_digest: Option<String>,
    /// Fuel the policy used.
    pub fuel_used: i64,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Address of the client that asked.
    pub client_address: Option<String>,
    /// `jti` of the token issued (exchange, renewal) or acted on (introspection, revocation).
    pub jti: Option<String>,
    /// `jti` of the subject token (exchange) or of the token renewed (renewal).
    pub subject_jti: Option<String>,
    /// The session the token belongs to: its first token's `jti`, kept through renewals.
    pub session: Option<String>,
    /// When the session can live no longer (the first token's issue plus `max_ttl_seconds`).
    pub session_ends: Option<i64>,
    /// What the policy logged, bounded (`policy::limits`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// What the policy saw, for replay, as JSON text (`exchange::RecordedRequest`), never the
    /// token. Kept for the operator's replay window, and read only by replay (not shown in
    /// pages). Text, not a value: it is written once per exchange and read back only by replay.
    #[serde(default, skip_serializing)]
    pub request: Option<String>,
    /// The shadow candidate's answer beside the policy's, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<serde_json::Value>,
}
