//! The exchange, step by step (docs/CONTRACTS.md): screen the token, find the identity, verify
//! the token against the identity's issuer, build the policy request, evaluate the policy in the
//! sandbox, intersect the grant with the identity's limits, sign the access token, record the
//! decision.
//!
//! Nothing here knows about HTTP: the `api` layer maps [`ExchangeError`] to responses that
//! reveal no tenant, policy or pattern detail; the reason goes to the log and the audit record.

use crate::common::{random_id, unix_now};
use crate::issue::Signer;
use crate::metrics::{self, Phase};
use crate::policy::PolicyRegistry;
use crate::store::{DecisionLog, DecisionRecord, IdentityRecord, Store, StoreError};
use crate::verify::jwt::{self, Jws};
use crate::verify::{IssuerConfig, IssuerSource, Verifier};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

mod claims;
mod decide;
mod error;
mod issued;
mod life;
mod modules;
mod recorded;

pub use claims::{Limits, OwnClaims};
pub use decide::{Decided, Granted};
pub use error::{ExchangeError, Failure, Inactive, TokenRejection};
use issued::IssuedClaims;
pub use life::Introspection;
pub use recorded::{RecordedRequest, ShadowAnswer};

/// What a workload asks for.
#[derive(Debug, Clone, Default)]
pub struct ExchangeInput {
    /// `tenants/{tenant}/identities/{id}`, or the identity's opaque unique id.
    pub identity: String,
    pub subject_token: String,
    /// Requested scopes (empty: everything granted).
    pub scopes: Vec<String>,
    /// The audience the issued token should carry (one of the identity's token audiences).
    pub audience: Option<String>,
    pub client_address: Option<String>,
}

/// The issued access token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u32,
    pub scopes: Vec<String>,
    pub audience: String,
    /// The identity's `max_ttl_seconds`, for the Infisical-shaped response.
    pub max_ttl: u32,
    /// Its `jti`.
    pub jti: String,
    /// Its session: the first token's `jti`, kept by renewals.
    pub session: String,
    /// When no renewal of it can live past.
    pub session_ends: i64,
    /// Why what was issued differs from what the identity says (the server's lifetime cap).
    pub warnings: Vec<String>,
}

/// Runs exchanges. Cheap to share behind an `Arc`.
pub struct ExchangeService {
    pub store: Store,
    /// The audit log's writer (group commit on `store`).
    pub decisions: DecisionLog,
    pub verifier: Verifier,
    pub policies: Arc<PolicyRegistry>,
    pub signer: Arc<Signer>,
    /// The server's public URL (`iss` of issued tokens), without a trailing slash.
    pub public_url: String,
    /// Default fuel per decision.
    pub fuel: u64,
    /// The longest lifetime of any issued token (the operator's cap).
    pub max_issued_ttl: u32,
    /// Serializes loading modules on demand (`modules.rs`).
    pub module_loads: tokio::sync::Mutex<()>,
    /// Whether decision records keep the policy request, for replay (`--replay-retention-days`
    /// above 0).
    pub keep_requests: bool,
}

/// `tenants/{tenant}/identities/{id}` split, if the text has that shape.
pub fn parse_identity_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("tenants/")?;
    let (tenant, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix("identities/")?;
    let valid = |s: &str| !s.is_empty() && !s.contains('/');
    (valid(tenant) && valid(id)).then_some((tenant, id))
}

/// The exchange's answer once its audit record was committed, or was not: a token is only
/// handed out with its record (the identity cache can answer while the database cannot be
/// written), so an allowed exchange whose record failed is refused; a refusal stays one.
fn answer<T>(
    result: Result<T, ExchangeError>,
    recorded: Result<(), StoreError>,
) -> Result<T, ExchangeError> {
    let Err(error) = recorded else {
        return result;
    };
    tracing::error!(%error, "could not record a decision");
    match result {
        Ok(_) => Err(Failure::NotRecorded(error).into()),
        refused => refused,
    }
}

/// The resource name of an identity.
pub fn identity_name(identity: &IdentityRecord) -> String {
    format!("tenants/{}/identities/{}", identity.tenant, identity.id)
}

impl ExchangeService {
    /// Whether the store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The published signing keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Value {
        self.signer.jwks()
    }

    /// The algorithms issued tokens are signed with.
    pub fn signing_algorithms(&self) -> Vec<String> {
        self.signer.algorithms()
    }

    /// The audience tokens for `tenant` must carry when an identity names none.
    pub fn tenant_audience(&self, tenant: &str) -> String {
        format!("{}/tenants/{tenant}", self.public_url)
    }

    /// Whether `audience` is another tenant's audience (`{public_url}/tenants/{other}`, or
    /// anything under `{public_url}/tenants/` but `tenant`'s own): an identity that accepted it
    /// would take that tenant's tokens. Refused at registration, and ignored at exchange for a
    /// record stored before that check.
    pub fn is_foreign_tenant_audience(&self, tenant: &str, audience: &str) -> bool {
        let prefix = format!("{}/tenants/", self.public_url);
        let under = audience
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&prefix));
        under && audience != self.tenant_audience(tenant)
    }

    /// Step 1: the identity, by resource name or unique id.
    pub async fn find_identity(&self, name: &str) -> Result<IdentityRecord, ExchangeError> {
        let found = match parse_identity_name(name) {
            Some((tenant, id)) => self.store.get_identity(tenant, id).await?,
            None => self.store.get_identity_by_uid(name).await?,
        };
        found.ok_or(ExchangeError::UnknownIdentity)
    }

    /// Records, for its tenant, an exchange naming `tenants/{tenant}/identities/{id}` that does
    /// not exist (deleted, or never created), so the tenant can see who still asks for it.
    /// Only a well-formed token gets here, and only an existing tenant gets a record; the
    /// token is not verified (the identity named no issuer), so its claims are not recorded.
    pub async fn record_unknown_identity(&self, tenant: &str, id: &str, input: &ExchangeInput) {
        match self.store.get_tenant(tenant).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "could not look up the tenant of an unknown identity");
                return;
            }
        }
        let record = DecisionRecord {
            tenant: tenant.to_owned(),
            identity: id.to_owned(),
            at: unix_now(),
            code: Some(ExchangeError::UnknownIdentity.code().into()),
            reason: Some(format!(
                "identity `{id}` does not exist (deleted, or never created)"
            )),
            source: Some("host".into()),
            client_address: input.client_address.clone(),
            ..Default::default()
        };
        if let Err(error) = self.decisions.append(record).await {
            tracing::error!(%error, "could not record a decision");
        }
    }

    /// Before step 1: the subject token parsed and screened (structure, header, claims that
    /// need no issuer). Done before the identity is looked up, so a malformed token is refused
    /// by the same work whether or not the identity it names exists (no lookup, no record).
    /// Whitespace around the token is not part of it: a token file written by
    /// `kubectl create token ... > f` ends in a newline, which clients pass on.
    pub fn screen_token(token: &str) -> Result<Jws<'_>, ExchangeError> {
        Ok(jwt::parse(token.trim())?)
    }

    /// Step 2: the subject token's verified claims.
    pub async fn verify_token(
        &self,
        identity: &IdentityRecord,
        token: Jws<'_>,
        now: i64,
    ) -> Result<Value, ExchangeError> {
        let record = self
            .store
            .get_issuer(&identity.tenant, &identity.issuer)
            .await?
            .ok_or_else(|| Failure::MissingIssuer(identity.issuer.clone()))?;
        let source: IssuerSource =
            serde_json::from_value(record.source).map_err(Failure::IssuerSource)?;
        let issuer = IssuerConfig {
            cache_key: format!("{}/{}", identity.tenant, identity.issuer),
            issuer_url: record.issuer_url,
            source,
        };
        let accepted = if identity.accepted_audiences.is_empty() {
            vec![self.tenant_audience(&identity.tenant)]
        } else {
            identity
                .accepted_audiences
                .iter()
                .filter(|a| !self.is_foreign_tenant_audience(&identity.tenant, a))
                .cloned()
                .collect()
        };
        let claims = self
            .verifier
            .verify_parsed(&issuer, token, &accepted, now)
            .await?;
        // Tollgate's own tokens are access tokens, never subject tokens.
        if claims.get("iss").and_then(Value::as_str) == Some(self.public_url.as_str()) {
            return Err(ExchangeError::InvalidToken(TokenRejection::OwnToken));
        }
        Ok(claims)
    }

    /// The exchange for a token already screened ([`Self::screen_token`]) and an identity
    /// already found ([`Self::find_identity`]), in that order: the caller, `api::run_exchange`,
    /// does both so it can check rate limits between them. Every outcome from here on is
    /// recorded in the audit log.
    pub async fn exchange_as(
        &self,
        identity: &IdentityRecord,
        input: &ExchangeInput,
        token: Jws<'_>,
    ) -> Result<Issued, ExchangeError> {
        let now = unix_now();
        let mut record = DecisionRecord {
            tenant: identity.tenant.clone(),
            identity: identity.id.clone(),
            at: now,
            client_address: input.client_address.clone(),
            ..Default::default()
        };
        let started = Instant::now();
        let result = self.run(identity, input, token, now, &mut record).await;
        match &result {
            Ok(issued) => {
                record.allowed = true;
                record.scopes = issued.scopes.clone();
            }
            Err(error) => {
                record.allowed = false;
                if record.code.is_none() {
                    record.code = Some(error.code().into());
                }
                if record.reason.is_none() {
                    record.reason = Some(error.to_string());
                }
                tracing::info!(tenant = %identity.tenant, identity = %identity.id, %error, "exchange denied");
            }
        }
        let committing = Instant::now();
        let committed = self.decisions.append(record).await;
        let done = Instant::now();
        metrics::observe_phase(Phase::Audit, done - committing);
        metrics::observe_phase(Phase::Total, done - started);
        answer(result, committed)
    }

    async fn run(
        &self,
        identity: &IdentityRecord,
        input: &ExchangeInput,
        token: Jws<'_>,
        now: i64,
        record: &mut DecisionRecord,
    ) -> Result<Issued, ExchangeError> {
        let started = Instant::now();
        let claims = self.verify_token(identity, token, now).await?;
        let verified = Instant::now();
        metrics::observe_phase(Phase::Verify, verified - started);
        record.subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        record.issuer = claims.get("iss").and_then(Value::as_str).map(str::to_owned);
        record.subject_jti = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        // A module another replica accepted is loaded here before the (synchronous) decision.
        let module = self
            .policy_module(&identity.tenant, identity.policy_address())
            .await?;
        let candidate = self.shadow_candidate(identity).await;
        let mut decided = self.decide(identity, module, candidate, &claims, input, now);
        let signing = Instant::now();
        metrics::observe_phase(Phase::Decide, signing - verified);
        decided.record_into(record);
        record.request = decided.request.take();
        if let Some(evaluation) = &decided.evaluation {
            metrics::observe_decision(evaluation.elapsed, evaluation.fuel_used);
        }
        let granted = decided.outcome?;
        let jti = random_id();
        let session_ends = now + i64::from(identity.max_ttl_seconds);
        record.jti = Some(jti.clone());
        record.session = Some(jti.clone());
        record.session_ends = Some(session_ends);
        let token = self.issued_claims(identity, &claims, &granted, now, &jti, session_ends);
        let access_token = self.signer.sign(&token).map_err(Failure::Signing)?;
        metrics::observe_phase(Phase::Sign, signing.elapsed());
        Ok(Issued {
            access_token,
            expires_in: granted.ttl,
            scopes: granted.scopes,
            audience: granted.audience,
            max_ttl: identity.max_ttl_seconds,
            session: jti.clone(),
            jti,
            session_ends,
            warnings: self.ttl_warnings(identity),
        })
    }

    /// What an identity's lifetimes ask that this server does not issue: a `ttl_seconds` over
    /// the operator's cap is clamped to it.
    pub fn ttl_warnings(&self, identity: &IdentityRecord) -> Vec<String> {
        if identity.ttl_seconds <= self.max_issued_ttl {
            return Vec::new();
        }
        vec![format!(
            "ttl_seconds {} is over this server's cap of {} seconds: tokens live {} seconds",
            identity.ttl_seconds, self.max_issued_ttl, self.max_issued_ttl
        )]
    }

    /// The issued token's claims: the server's own, and the policy's extra ones beside them.
    fn issued_claims<'a>(
        &'a self,
        identity: &'a IdentityRecord,
        subject: &'a Value,
        granted: &'a Granted,
        now: i64,
        jti: &'a str,
        session_ends: i64,
    ) -> IssuedClaims<'a> {
        IssuedClaims {
            iss: &self.public_url,
            sub: identity_name(identity),
            aud: &granted.audience,
            scope: granted.scopes.join(" "),
            iat: now,
            nbf: now,
            exp: now + i64::from(granted.ttl),
            jti,
            client_id: subject.get("sub"),
            auth_time: now,
            sid: jti,
            limits: Limits::of(identity, session_ends),
            act: issued::Actor {
                iss: subject.get("iss"),
                sub: subject.get("sub"),
            },
            tenant: &identity.tenant,
            identity: &identity.uid,
            policy: &granted.policy_digest,
            kubernetes: issued::Workload::of(subject),
            extra: issued::extra_claims(&granted.claims),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names() {
        assert_eq!(
            parse_identity_name("tenants/acme/identities/ci"),
            Some(("acme", "ci"))
        );
        for bad in [
            "tenants/acme/identities/",
            "tenants//identities/ci",
            "tenants/a/b/identities/c",
            "acme/ci",
            "tenants/acme/identities/ci/x",
        ] {
            assert_eq!(parse_identity_name(bad), None, "{bad}");
        }
    }

    /// The database fails while the exchange is allowed: no token without its audit record.
    #[tokio::test]
    async fn no_token_is_issued_without_its_audit_record() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store.close().await;
        let recorded = DecisionLog::start(store)
            .append(DecisionRecord::default())
            .await;
        assert!(recorded.is_err(), "a closed store took a record");
        let issued = Issued {
            access_token: "token".into(),
            expires_in: 900,
            scopes: vec![],
            audience: "aud".into(),
            max_ttl: 3600,
            jti: "j".into(),
            session: "j".into(),
            session_ends: 3600,
            warnings: vec![],
        };
        let refused = answer(Ok(issued.clone()), recorded);
        assert!(matches!(refused, Err(ExchangeError::Internal(_))));
        let denied: Result<Issued, _> = Err(ExchangeError::InvalidTarget);
        assert!(matches!(
            answer(denied, Err(StoreError::Invalid("down".into()))),
            Err(ExchangeError::InvalidTarget)
        ));
        assert!(answer(Ok(issued), Ok(())).is_ok());
    }
}
