//! The admin API's request and response bodies, declared once: the routes read and write them,
//! the OpenAPI document (`/openapi.json`) is generated from them, and the docs describe them.

use crate::store::{DecisionRecord, IdentityRecord, IssuerRecord, PolicyMeta, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1-63 lowercase letters, digits or `-`.
    pub name: String,
}

/// A tenant just created, with its first API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreated {
    pub name: String,
    pub created_at: i64,
    /// The tenant's first admin API key.
    pub api_key: String,
    /// The audience subject tokens need by default: `{public_url}/tenants/{name}`.
    pub audience: String,
}

/// `GET /v1/tenants`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    #[schema(value_type = Vec<Object>)]
    pub tenants: Vec<Tenant>,
}

/// `POST /v1/tenants/{t}/keys` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// `admin` (default: manages the tenant) or `introspect` (only introspects and revokes the
    /// tenant's tokens: the credential for its resource servers).
    #[serde(default)]
    #[schema(value_type = String)]
    pub role: crate::store::KeyRole,
}

/// Another API key of a tenant (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    pub id: String,
    pub api_key: String,
    /// `admin` or `introspect`.
    #[schema(value_type = String)]
    pub role: crate::store::KeyRole,
}

/// `POST /v1/tenants/{t}/identities/{id}/revoke`: every token the identity issued before now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// Sessions (a token and its renewals) newly revoked.
    pub sessions: u64,
}

/// `PUT /v1/tenants/{t}/issuers/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    /// The exact `iss` of the cluster's tokens.
    pub issuer_url: String,
    /// `{"mode": "discovery"}` (default), `{"mode": "static_jwks", "jwks", "expires_at"}` or
    /// `{"mode": "token_review", "api_server", "ca_pem", "reviewer_token"}`.
    #[serde(default = "discovery")]
    #[schema(value_type = Object)]
    pub source: Value,
}

fn discovery() -> Value {
    serde_json::json!({"mode": "discovery"})
}

/// An issuer as tenants see it: the reviewer token never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerView {
    pub name: String,
    pub issuer_url: String,
    #[schema(value_type = Object)]
    pub source: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&IssuerRecord> for IssuerView {
    fn from(record: &IssuerRecord) -> Self {
        let mut source = record.source.clone();
        if let Some(token) = source.get_mut("reviewer_token") {
            *token = Value::from("<redacted>");
        }
        Self {
            name: record.name.clone(),
            issuer_url: record.issuer_url.clone(),
            source,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// `GET /v1/tenants/{t}/issuers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerList {
    pub issuers: Vec<IssuerView>,
}

/// A module accepted at upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyUploaded {
    /// `sha256:<hex>`: how identities name it.
    pub digest: String,
    pub size: u64,
    pub name: Option<String>,
    pub uploaded_at: i64,
    /// What it imports (the host interface and the minimal WASI set at most).
    pub imports: Vec<String>,
    /// How long compiling it took, in milliseconds.
    pub compile_ms: u64,
}

/// `GET /v1/tenants/{t}/policies`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyList {
    /// The policies every tenant has (`builtin:rules`).
    pub builtin: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<PolicyMeta>,
}

/// `PUT /v1/tenants/{t}/identities/{id}`: who may assume the identity and what it issues.
/// Also the body of an `identity` document of `tollgate admin apply -f`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// The tenant's issuer whose tokens are accepted.
    pub issuer: String,
    /// Audiences a subject token must carry one of (default: the tenant's own).
    #[serde(default)]
    pub accepted_audiences: Vec<String>,
    /// `aud` values issued tokens may carry; the first is the default.
    #[serde(default)]
    pub token_audiences: Vec<String>,
    /// `builtin:rules` (default) or the `sha256:` digest of an uploaded module.
    #[serde(default = "builtin_rules")]
    pub policy: String,
    /// The policy's configuration.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Value,
    /// Scopes issued tokens may carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifetime of issued tokens (default 900).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u32,
    /// Longest a token lives through renewals, from the first token's issue (default 3600).
    #[serde(default = "default_max_ttl")]
    pub max_ttl_seconds: u32,
    /// How many introspections may answer `active: true` for a token and its renewals
    /// (0, the default: unlimited).
    #[serde(default)]
    pub num_uses: u32,
    /// Address ranges (IPv4/IPv6 CIDRs or addresses) exchanges must come from and tokens be
    /// presented from; empty (the default) or `0.0.0.0/0` and `::/0`: any.
    #[serde(default)]
    pub trusted_cidrs: Vec<String>,
    /// Fuel per decision (default: the server's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

fn builtin_rules() -> String {
    crate::policy::BUILTIN_RULES.to_owned()
}

fn default_ttl() -> u32 {
    900
}

fn default_max_ttl() -> u32 {
    3600
}

/// An identity as stored, with its resource name.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    /// `tenants/{tenant}/identities/{id}`.
    pub name: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub record: IdentityRecord,
    /// What of the identity this server does not do as written (a `ttl_seconds` over the
    /// server's cap is clamped to it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<IdentityRecord> for IdentityView {
    fn from(record: IdentityRecord) -> Self {
        Self {
            name: crate::exchange::identity_name(&record),
            record,
            warnings: Vec::new(),
        }
    }
}

/// `GET /v1/tenants/{t}/identities`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
}

/// `POST /v1/tenants/{t}/identities/{id}/simulate`: a dry run of an exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// A subject token, screened and verified as an exchange would.
    pub token: Option<String>,
    /// Or claims as if verified (a dry run of everything after verification).
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Value>,
    /// Requested scopes, as `scope` of an exchange.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Requested audience, as `resource` (or `aud`) of an exchange.
    pub audience: Option<String>,
    /// The address the exchange would come from.
    pub client_address: Option<String>,
    /// The time of the simulated exchange (default: now).
    pub now: Option<i64>,
}

/// What a simulated exchange would issue, or why it would refuse, field by field as the
/// exchange decides it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Simulation {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Where it was decided: `verify`, `request`, `policy` or `grant`.
    pub stage: &'static str,
    /// The code the decision log records, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `code: reason` of a refusal (empty when allowed).
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
    /// Extra claims the policy asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub claims: Option<Vec<(String, Value)>>,
    /// The policy that ran, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// The policy's own answer, with its fuel and logs, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub evaluation: Option<Value>,
}

/// `GET /v1/tenants/{t}/decisions?limit=&before=`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionPage {
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<DecisionRecord>,
    /// Pass as `before` for the next page.
    pub next_before: Option<i64>,
}

/// `GET /v1/decisions?after=&limit=` (operator key): every tenant's records, oldest first, for
/// shipping to a log pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionExport {
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<DecisionRecord>,
    /// Pass as `after` for the next page (the same `after` when nothing new is ready yet).
    pub next_after: i64,
}

/// The admin API's error shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The status's reason, lowercase (`not found`, `unprocessable entity`, ...).
    pub error: String,
    /// What is wrong, for the admin.
    pub message: String,
}

/// The exchange endpoints' error shape (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_scope`, `invalid_target`, `unsupported_grant_type`,
    /// `temporarily_unavailable` or `server_error`.
    pub error: String,
    /// A generic description: never a tenant, policy or pattern detail.
    pub error_description: String,
}
