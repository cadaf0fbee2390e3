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
    /// The version of `name` it is (uploaded under a name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// How many of its bundled cases passed (all of them, or it was refused); absent without
    /// cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cases_passed: Option<usize>,
    /// The identities that follow `name`, and whether each switched to this version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub followers: Vec<Follower>,
}

/// An identity following a policy name, when the name got a new version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Follower {
    pub identity: String,
    /// `switched` (its cases passed), `kept` (its cases or config failed: it stays on its
    /// version) or `shadow` (its shadow candidate follows the name).
    pub outcome: &'static str,
    /// The module it runs now.
    pub policy: String,
    /// Its failing cases, `name: why`, when kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// `GET /v1/tenants/{t}/policies/{name}`: the versions of a named policy, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyHistory {
    pub name: String,
    #[schema(value_type = Vec<Object>)]
    pub versions: Vec<crate::store::PolicyVersion>,
}

/// `POST /v1/tenants/{t}/policies/{name}/rollback` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to go back to (default: the newest one before the current with another
    /// module).
    pub version: Option<u32>,
}

/// A rollback: the new version, which runs an older version's module.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolledBack {
    pub name: String,
    pub version: u32,
    /// The version whose module it runs.
    pub restores: u32,
    pub digest: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub followers: Vec<Follower>,
}

/// An identity's shadow candidate, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowSpec {
    /// `NAME`, `NAME@VERSION`, a digest or a built-in.
    pub policy: String,
    /// The share of exchanges that also run it (default 1: all).
    #[serde(default = "all")]
    pub sample: f64,
    /// The config it runs with (default: the identity's); a candidate may be the same
    /// policy with a changed config. Promotion makes it the identity's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

fn all() -> f64 {
    1.0
}

/// `GET /v1/tenants/{t}/identities/{id}/shadow?since=SECONDS`: how the candidate's answers
/// compared with the policy's.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowReport {
    /// The candidate now (absent when the identity has none any more).
    pub candidate: Option<String>,
    /// Exchanges on which the candidate ran.
    pub evaluated: usize,
    pub agreed: usize,
    pub disagreed: usize,
    /// Counts by (policy's answer, candidate's answer), such as `allow` / `deny:namespace`.
    pub pairs: Vec<OutcomePair>,
    /// The first disagreements, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub examples: Vec<Value>,
}

/// How often a pair of answers occurred.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomePair {
    pub policy: String,
    pub candidate: String,
    pub count: usize,
}

/// `POST /v1/tenants/{t}/identities/{id}/replay`: recorded decisions evaluated by another
/// policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `NAME`, `NAME@VERSION`, a digest or a built-in.
    pub policy: String,
    /// How far back, in seconds (default 86,400: a day).
    #[serde(default = "a_day")]
    pub since_seconds: u64,
    /// The config to run it with (default: the identity's).
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

fn a_day() -> u64 {
    86_400
}

/// What a replay found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayReport {
    /// The module replayed.
    pub policy: String,
    /// Recorded decisions evaluated again.
    pub replayed: usize,
    pub unchanged: usize,
    pub allowed_to_denied: usize,
    pub denied_to_allowed: usize,
    /// Allowed both times, with other scopes.
    pub scopes_changed: usize,
    /// Denied both times, with another code.
    pub codes_changed: usize,
    /// The changed decisions (the first 1,000), oldest first: `id`, `at`, `subject`,
    /// `before`, `after`.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Value>,
    /// How long the evaluation took, milliseconds.
    pub elapsed_ms: u64,
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
    /// `builtin:rules` (default), `builtin:cel`, the `sha256:` digest of an uploaded module,
    /// `NAME` (a named policy's newest version, followed) or `NAME@VERSION` (pinned).
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
    /// The identity's own cases (the `policy test` case format, run with this config): the
    /// policy must pass them now, and every new version of a followed name before the
    /// identity switches to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub cases: Vec<Value>,
    /// A candidate policy run beside this one on a sample of exchanges (never changing an
    /// answer); `promote` makes it the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowSpec>,
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
