//! The admin service: what tenants and the operator do (tenants and keys, issuers, policy
//! modules, identities, simulation, the decision log), beside the exchange service and below
//! the HTTP layer. Inputs are validated here, at write time, never at exchange; who may call
//! what is the api layer's `Principal`.

pub mod bodies;
mod change;
mod infisical;
mod replay;

use crate::common::cidrs::Cidrs;
use crate::common::unix_now;
use crate::exchange::{Decided, ExchangeError, ExchangeInput, ExchangeService, identity_name};
use crate::policy::limits::MAX_FUEL;
use crate::policy::{LoadError, PolicyRegistry};
use crate::store::{
    DecisionRecord, IdentityRecord, IssuerRecord, KeyRole, PolicyConfig, Shadow, Store, StoreError,
    generate_api_key,
};
use crate::verify::{IssuerConfig, IssuerSource, Verifier};
use bodies::{
    DecisionExport, DecisionPage, IdentityList, IdentitySpec, IdentityView, IssuerList, IssuerSpec,
    IssuerView, KeyCreated, PolicyHistory, PolicyList, PolicyUploaded, Revoked, ShadowSpec,
    SimulateRequest, Simulation, TenantCreated, TenantList,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// What an upload says about itself besides its bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct PolicyUpload<'a> {
    /// The policy name it is a new version of.
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    /// The id of the API key that uploads it.
    pub key_id: Option<&'a str>,
}

/// Why an admin operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is unusable (422), with a message for the admin.
    #[error("{0}")]
    Invalid(String),
    /// The body is malformed (400), naming the field.
    #[error("{0}")]
    BadRequest(String),
    /// It would take over something that exists for another purpose (409).
    #[error("{0}")]
    Conflict(String),
    /// What the operation names does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The policy compiler is busy (503): try again later.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Store(StoreError),
    /// A failure of the server (500); the detail is for the log.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// Names of tenants, issuers and identities: short, URL-safe, no surprises in logs.
fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{kind} name `{name}` must be 1-63 lowercase letters, digits or `-`"
        )))
    }
}

/// How long a pasted key set is trusted when its `expires_at` is not given (Chainguard's
/// default for static identities): clusters rotate their keys.
pub const STATIC_KEYS_DEFAULT_LIFETIME: i64 = 30 * 24 * 3600;

/// Gives a `static_jwks` source without `expires_at` the default one, so the stored record
/// says when it ends.
fn default_static_expiry(source: &mut Value, now: i64) {
    if source.get("mode").and_then(Value::as_str) == Some("static_jwks")
        && let Some(fields) = source.as_object_mut()
        && !fields.contains_key("expires_at")
    {
        fields.insert(
            "expires_at".into(),
            json!(now + STATIC_KEYS_DEFAULT_LIFETIME),
        );
    }
}

/// The admin operations, over the same store, verifier and registry the exchange uses.
pub struct AdminService {
    store: Store,
    verifier: Verifier,
    policies: Arc<PolicyRegistry>,
    exchange: Arc<ExchangeService>,
}

impl AdminService {
    pub fn new(exchange: Arc<ExchangeService>) -> Self {
        Self {
            store: exchange.store.clone(),
            verifier: exchange.verifier.clone(),
            policies: exchange.policies.clone(),
            exchange,
        }
    }

    /// The store, for the api layer's key lookup.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn create_tenant(&self, name: &str) -> Result<TenantCreated> {
        check_name("tenant", name)?;
        let tenant = self.store.create_tenant(name).await?;
        let (secret, hash) = generate_api_key()?;
        self.store
            .create_api_key(Some(&tenant.name), &hash, "initial")
            .await?;
        Ok(TenantCreated {
            audience: self.exchange.tenant_audience(&tenant.name),
            name: tenant.name,
            created_at: tenant.created_at,
            api_key: secret,
        })
    }

    pub async fn list_tenants(&self) -> Result<TenantList> {
        Ok(TenantList {
            tenants: self.store.list_tenants().await?,
        })
    }

    pub async fn create_key(&self, tenant: &str, role: KeyRole) -> Result<KeyCreated> {
        self.require_tenant(tenant).await?;
        let (secret, hash) = generate_api_key()?;
        let key = self
            .store
            .create_api_key_as(Some(tenant), &hash, role.as_str(), role)
            .await?;
        Ok(KeyCreated {
            id: key.id,
            api_key: secret,
            role: key.role,
        })
    }

    async fn require_tenant(&self, tenant: &str) -> Result<()> {
        match self.store.get_tenant(tenant).await? {
            Some(_) => Ok(()),
            None => Err(AdminError::NotFound(format!("tenant `{tenant}`"))),
        }
    }

    pub async fn put_issuer(
        &self,
        tenant: &str,
        name: &str,
        spec: IssuerSpec,
    ) -> Result<IssuerView> {
        check_name("issuer", name)?;
        let mut spec = spec;
        default_static_expiry(&mut spec.source, unix_now());
        let source: IssuerSource = serde_json::from_value(spec.source.clone())
            .map_err(|e| AdminError::Invalid(format!("invalid issuer source: {e}")))?;
        let config = IssuerConfig {
            cache_key: format!("{tenant}/{name}"),
            issuer_url: spec.issuer_url.clone(),
            source,
        };
        self.verifier
            .validate_issuer(&config)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        // Validate early: a pasted key set that has already expired would only ever deny.
        if let IssuerSource::StaticJwks { expires_at, .. } = &config.source
            && *expires_at <= unix_now()
        {
            return Err(AdminError::Invalid(
                "static `expires_at` is in the past".into(),
            ));
        }
        let record = IssuerRecord {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            issuer_url: spec.issuer_url,
            source: spec.source,
            created_at: 0,
            updated_at: 0,
        };
        let stored = self.store.put_issuer(&record).await?;
        self.verifier.forget(&config.cache_key);
        if let IssuerSource::StaticJwks { expires_at, .. } = &config.source
            && *expires_at - unix_now() <= crate::verify::STATIC_KEYS_WARN_BEFORE
        {
            tracing::warn!(%tenant, issuer = %name, expires_at, "static issuer keys expire within a week");
        }
        Ok(IssuerView::from(&stored))
    }

    pub async fn get_issuer(&self, tenant: &str, name: &str) -> Result<IssuerView> {
        let record = self.store.get_issuer(tenant, name).await?;
        let record = record.ok_or_else(|| AdminError::NotFound(format!("issuer `{name}`")))?;
        Ok(IssuerView::from(&record))
    }

    pub async fn list_issuers(&self, tenant: &str) -> Result<IssuerList> {
        let issuers = self.store.list_issuers(tenant).await?;
        Ok(IssuerList {
            issuers: issuers.iter().map(IssuerView::from).collect(),
        })
    }

    pub async fn delete_issuer(&self, tenant: &str, name: &str) -> Result<()> {
        if !self.store.delete_issuer(tenant, name).await? {
            return Err(AdminError::NotFound(format!("issuer `{name}`")));
        }
        self.verifier.forget(&format!("{tenant}/{name}"));
        Ok(())
    }

    /// Validates and compiles `bytes` (off the async workers), runs the cases a bundle
    /// carries, then stores them; under a `name`, as its newest version, which the
    /// identities following the name switch to once their own cases pass.
    pub async fn upload_policy(
        &self,
        tenant: &str,
        bytes: axum::body::Bytes,
        upload: PolicyUpload<'_>,
    ) -> Result<PolicyUploaded> {
        self.require_tenant(tenant).await?;
        if let Some(name) = upload.name {
            check_name("policy", name)?;
        }

        let registry = self.policies.clone();
        let owner = tenant.to_owned();
        let data = bytes.clone();
        let module = tokio::task::spawn_blocking(move || registry.load(&owner, &data))
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?
            .map_err(|e| match e {
                // Not the module's fault: the compiler is taken (possibly by abandoned bombs).
                LoadError::Busy => AdminError::Busy(e.to_string()),
                _ => AdminError::Invalid(format!("module rejected: {e}")),
            })?;
        // Read once the module is known to be one (its own errors come first).
        let bundled = crate::policy::bundle::embedded_cases(&bytes)
            .map_err(|e| AdminError::Invalid(format!("module rejected: {e}")))?
            .map(|text| {
                serde_yaml_ng::from_str::<crate::policy::cases::CaseFile>(&text).map_err(|e| {
                    AdminError::Invalid(format!("module rejected: its bundled cases: {e}"))
                })
            })
            .transpose()?;
        let cases_passed = match bundled {
            Some(file) => {
                let run = self.run_cases(module.clone(), file).await?;
                if !run.failures.is_empty() {
                    return Err(AdminError::Invalid(format!(
                        "module rejected: {}",
                        run.describe()
                    )));
                }
                Some(run.passed)
            }
            None => None,
        };
        let meta = self
            .store
            .put_policy(tenant, &module.info.digest, &bytes, upload.name)
            .await?;
        let (version, followers) = match upload.name {
            Some(name) => {
                let (version, added) = self
                    .store
                    .add_policy_version(
                        tenant,
                        name,
                        &meta.digest,
                        upload.key_id,
                        upload.description,
                    )
                    .await?;
                let followers = if added {
                    self.follow(tenant, &version).await?
                } else {
                    Vec::new()
                };
                (Some(version.version), followers)
            }
            None => (None, Vec::new()),
        };
        Ok(PolicyUploaded {
            digest: meta.digest,
            size: meta.size,
            name: meta.name,
            uploaded_at: meta.uploaded_at,
            imports: module.info.imports.clone(),
            compile_ms: u64::try_from(module.info.compile_time.as_millis()).unwrap_or(u64::MAX),
            version,
            cases_passed,
            followers,
        })
    }

    /// The versions of `tenant`'s policy `name`, newest first.
    pub async fn policy_history(&self, tenant: &str, name: &str) -> Result<PolicyHistory> {
        self.require_tenant(tenant).await?;
        let versions = self.store.policy_versions(tenant, name).await?;
        if versions.is_empty() {
            return Err(AdminError::NotFound(format!("policy `{name}`")));
        }
        Ok(PolicyHistory {
            name: name.to_owned(),
            versions,
        })
    }

    pub async fn list_policies(&self, tenant: &str) -> Result<PolicyList> {
        Ok(PolicyList {
            builtin: crate::policy::BUILTINS
                .iter()
                .map(|b| b.to_string())
                .collect(),
            policies: self.store.list_policies(tenant).await?,
        })
    }

    pub async fn put_identity(
        &self,
        tenant: &str,
        id: &str,
        spec: IdentitySpec,
    ) -> Result<IdentityView> {
        check_name("identity", id)?;
        let invalid = |message: &str| Err(AdminError::Invalid(message.to_owned()));
        if spec.ttl_seconds == 0
            || spec.max_ttl_seconds == 0
            || spec.ttl_seconds > spec.max_ttl_seconds
        {
            return invalid("need 0 < `ttl_seconds` <= `max_ttl_seconds`");
        }
        let trusted_cidrs = Cidrs::parse(&spec.trusted_cidrs)
            .map_err(|e| AdminError::Invalid(format!("`trusted_cidrs`: {e}")))?
            .to_strings();
        if spec.fuel.is_some_and(|f| f == 0 || f > MAX_FUEL) {
            return Err(AdminError::Invalid(format!(
                "`fuel` must be between 1 and {MAX_FUEL}"
            )));
        }
        if spec
            .scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return invalid("scopes must be non-empty and contain no whitespace");
        }
        if let Some(foreign) = spec
            .accepted_audiences
            .iter()
            .find(|a| self.exchange.is_foreign_tenant_audience(tenant, a))
        {
            return Err(AdminError::Invalid(format!(
                "accepted audience `{foreign}` belongs to another tenant"
            )));
        }
        if self.store.get_issuer(tenant, &spec.issuer).await?.is_none() {
            return Err(AdminError::Invalid(format!(
                "issuer `{}` is not registered",
                spec.issuer
            )));
        }
        let resolved = self.resolve_policy(tenant, &spec.policy).await?;
        let module = self.module(tenant, &resolved).await?;
        let config = if spec.config.is_null() {
            PolicyConfig::empty()
        } else {
            PolicyConfig::from(&spec.config)
        };
        self.validate(&module, &config)
            .await?
            .map_err(|message| AdminError::Invalid(format!("policy config rejected: {message}")))?;
        change::parse_cases(&spec.cases)?;
        let shadow = match &spec.shadow {
            Some(shadow) => Some(self.shadow(tenant, shadow, &config).await?),
            None => None,
        };
        let record = IdentityRecord {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            uid: String::new(),
            issuer: spec.issuer,
            accepted_audiences: spec.accepted_audiences,
            token_audiences: spec.token_audiences,
            policy: spec.policy,
            config,
            scopes: spec.scopes,
            ttl_seconds: spec.ttl_seconds,
            max_ttl_seconds: spec.max_ttl_seconds,
            num_uses: spec.num_uses,
            trusted_cidrs,
            fuel: spec.fuel,
            resolved_policy: resolved,
            cases: spec.cases,
            shadow,
            created_at: 0,
            updated_at: 0,
        };
        if let Some(run) = self.identity_cases(&record, module).await?
            && !run.failures.is_empty()
        {
            return Err(AdminError::Invalid(format!(
                "identity rejected: on `{}`, {}",
                record.policy,
                run.describe()
            )));
        }
        let before = self.store.get_identity(tenant, id).await?;
        let stored = self.store.put_identity(&record).await?;
        // A change of an existing identity's policy is an event of its log (its creation is
        // not: the log is of what happened to it).
        if let Some(was) = before.as_ref().map(IdentityRecord::policy_address)
            && was != stored.policy_address()
        {
            let reason = format!("saved with `{}` (was {was})", stored.policy);
            self.record_change(&stored, true, stored.policy_address(), reason)
                .await?;
        }
        let warnings = self.exchange.ttl_warnings(&stored);
        for warning in &warnings {
            tracing::warn!(%tenant, identity = %id, "{warning}");
        }
        Ok(IdentityView {
            warnings,
            ..IdentityView::from(stored)
        })
    }

    /// An identity's shadow candidate, resolved and checked: it loads and accepts `config`.
    async fn shadow(
        &self,
        tenant: &str,
        spec: &ShadowSpec,
        config: &PolicyConfig,
    ) -> Result<Shadow> {
        if !(0.0..=1.0).contains(&spec.sample) {
            return Err(AdminError::Invalid(
                "`shadow.sample` is a share of exchanges, from 0 to 1".into(),
            ));
        }
        let resolved = self.resolve_policy(tenant, &spec.policy).await?;
        let module = self.module(tenant, &resolved).await?;
        let own = spec.config.as_ref().map(PolicyConfig::from);
        self.validate(&module, own.as_ref().unwrap_or(config))
            .await?
            .map_err(|message| {
                AdminError::Invalid(format!(
                    "shadow `{}` rejects the config: {message}",
                    spec.policy
                ))
            })?;
        Ok(Shadow {
            policy: spec.policy.clone(),
            resolved,
            sample: spec.sample,
            config: own,
        })
    }

    /// Revokes every token identity `id` issued before now.
    pub async fn revoke_identity(&self, tenant: &str, id: &str) -> Result<Revoked> {
        let identity = self.identity(tenant, id).await?;
        let sessions = self
            .exchange
            .revoke_identity(&identity)
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        Ok(Revoked { sessions })
    }

    async fn identity(&self, tenant: &str, id: &str) -> Result<IdentityRecord> {
        self.store
            .get_identity(tenant, id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("identity `{id}`")))
    }

    pub async fn get_identity(&self, tenant: &str, id: &str) -> Result<IdentityView> {
        Ok(IdentityView::from(self.identity(tenant, id).await?))
    }

    pub async fn list_identities(&self, tenant: &str) -> Result<IdentityList> {
        let identities = self.store.list_identities(tenant).await?;
        Ok(IdentityList {
            identities: identities.into_iter().map(IdentityView::from).collect(),
        })
    }

    pub async fn delete_identity(&self, tenant: &str, id: &str) -> Result<()> {
        if !self.store.delete_identity(tenant, id).await? {
            return Err(AdminError::NotFound(format!("identity `{id}`")));
        }
        Ok(())
    }

    /// A dry run of an exchange: the exchange's own screening and verification (for a token),
    /// then exactly its decision ([`ExchangeService::decide`]), answered field by field as the
    /// exchange would issue it or record its refusal.
    pub async fn simulate(
        &self,
        tenant: &str,
        id: &str,
        request: SimulateRequest,
    ) -> Result<Simulation> {
        let identity = self.identity(tenant, id).await?;
        let now = request.now.unwrap_or_else(unix_now);
        let input = ExchangeInput {
            identity: identity_name(&identity),
            subject_token: request.token.clone().unwrap_or_default(),
            scopes: request.scopes,
            audience: request.audience,
            client_address: request.client_address,
        };
        let claims = match (request.token, request.claims) {
            (Some(token), None) => match self.verify(&identity, &token, now).await {
                Ok(claims) => claims,
                Err(error) => return Ok(refused("verify", &error, None)),
            },
            (None, Some(mut claims)) => {
                if let Some(map) = claims.as_object_mut() {
                    map.entry("exp").or_insert(json!(now + 3600));
                }
                claims
            }
            _ => {
                return Err(AdminError::Invalid(
                    "give exactly one of `token` or `claims`".into(),
                ));
            }
        };
        let module = self
            .exchange
            .policy_module(tenant, identity.policy_address())
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        Ok(simulation(
            self.exchange
                .decide(&identity, module, None, &claims, &input, now),
        ))
    }

    async fn verify(
        &self,
        identity: &IdentityRecord,
        token: &str,
        now: i64,
    ) -> std::result::Result<Value, ExchangeError> {
        let token = ExchangeService::screen_token(token)?;
        self.exchange.verify_token(identity, token, now).await
    }

    pub async fn decisions(
        &self,
        tenant: &str,
        limit: Option<u32>,
        before: Option<i64>,
    ) -> Result<DecisionPage> {
        let limit = limit
            .unwrap_or(100)
            .clamp(1, crate::store::MAX_DECISION_PAGE);
        let decisions = self.store.list_decisions(tenant, limit, before).await?;
        Ok(DecisionPage {
            next_before: decisions.last().map(|d| d.id),
            decisions,
        })
    }
}

impl AdminService {
    /// Every tenant's records after `after`, oldest first: each record once, whichever
    /// server wrote it (records newer than a few seconds wait for the next page).
    pub async fn export_decisions(&self, after: i64, limit: Option<u32>) -> Result<DecisionExport> {
        let limit = limit
            .unwrap_or(1000)
            .clamp(1, crate::store::MAX_DECISION_PAGE);
        let decisions = self
            .store
            .export_decisions(after, limit, unix_now())
            .await?;
        Ok(DecisionExport {
            next_after: decisions.last().map_or(after, |d| d.id),
            decisions,
        })
    }
}

/// A simulation of a refused exchange: the code and reason its decision record would carry.
fn refused(stage: &'static str, error: &ExchangeError, decided: Option<&Decided>) -> Simulation {
    let mut record = DecisionRecord::default();
    if let Some(decided) = decided {
        decided.record_into(&mut record);
    }
    let code = record.code.unwrap_or_else(|| error.code().to_owned());
    let reason = record.reason.unwrap_or_else(|| error.to_string());
    Simulation {
        decision: "deny",
        stage,
        reasons: vec![format!("{code}: {reason}")],
        code: Some(code),
        audience: None,
        scopes: None,
        ttl_seconds: None,
        claims: None,
        policy_digest: None,
        evaluation: None,
    }
}

/// What a simulation answers for a decision.
fn simulation(decided: Decided) -> Simulation {
    let mut answer = match &decided.outcome {
        Ok(granted) => Simulation {
            decision: "allow",
            stage: "grant",
            code: None,
            reasons: Vec::new(),
            audience: Some(granted.audience.clone()),
            scopes: Some(granted.scopes.clone()),
            ttl_seconds: Some(granted.ttl),
            claims: Some(granted.claims.clone()),
            policy_digest: None,
            evaluation: None,
        },
        Err(error) => {
            let stage = match (&decided.evaluation, error) {
                (None, _) => "request",
                (Some(_), ExchangeError::Denied { .. }) => "policy",
                (Some(_), _) => "grant",
            };
            refused(stage, error, Some(&decided))
        }
    };
    answer.policy_digest.clone_from(&decided.policy_digest);
    answer.evaluation = decided.evaluation.map(|evaluation| json!(evaluation));
    answer
}
