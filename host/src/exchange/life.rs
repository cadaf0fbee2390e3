//! An issued token's life after issue (docs/CONTRACTS.md, "The issued token's life"):
//! introspection (RFC 7662) consuming its uses, revocation (RFC 7009) of its session or of every
//! session of an identity, and renewal within the session's max ttl. Each is recorded in the
//! tenant's audit log as an event; a token that does not verify as this server's names no
//! tenant, so it is refused without a record.

use super::claims::OwnClaims;
use super::{ExchangeError, ExchangeService, Failure, Inactive, Issued, answer};
use crate::common::{cidrs, random_id, unix_now};
use crate::store::{Consumed, DecisionRecord, Event, IdentityRecord};
use serde_json::{Value, json};

/// What introspection found: the token's claims and the uses left, when it is active.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub claims: OwnClaims,
    /// Uses left after this one, when the token's session limits them.
    pub uses_remaining: Option<u32>,
}

impl ExchangeService {
    /// `token` read back as one of this server's live access tokens.
    fn own_token(&self, token: &str) -> Result<(OwnClaims, Value), Inactive> {
        let raw = self
            .signer
            .verify(token.trim())
            .map_err(Inactive::Invalid)?;
        let claims: OwnClaims = serde_json::from_value(raw.clone()).map_err(Inactive::Claims)?;
        if claims.iss != self.public_url {
            return Err(Inactive::OtherIssuer);
        }
        Ok((claims, raw))
    }

    /// The identity a token of `tenant` was issued for, if it still exists.
    async fn token_identity(
        &self,
        claims: &OwnClaims,
    ) -> Result<Result<IdentityRecord, Inactive>, ExchangeError> {
        Ok(
            match self.store.get_identity_by_uid(&claims.identity).await? {
                Some(identity) if identity.tenant == claims.tenant => Ok(identity),
                _ => Err(Inactive::IdentityGone),
            },
        )
    }

    /// Why the token's session is over, if it is: revoked, or (for renewal) every use taken.
    async fn session_state(
        &self,
        claims: &OwnClaims,
        uses_must_remain: bool,
    ) -> Result<Result<(), Inactive>, ExchangeError> {
        if self.store.is_session_revoked(claims.session()).await? {
            return Ok(Err(Inactive::Revoked));
        }
        if let (true, Some(limit)) = (
            uses_must_remain,
            claims.limits.as_ref().and_then(|l| l.uses),
        ) && self.store.uses_consumed(claims.session()).await? >= limit
        {
            return Ok(Err(Inactive::UsedUp(limit)));
        }
        Ok(Ok(()))
    }

    /// Introspects `token` for `tenant`, presented to a resource server from `presented_from`
    /// (when it says). An active answer consumes one use of a limited session, counted in the
    /// store in one statement: of two concurrent introspections of the last use, one is active.
    pub async fn introspect(
        &self,
        tenant: &str,
        token: &str,
        presented_from: Option<&str>,
        caller: Option<String>,
    ) -> Result<Option<Introspection>, ExchangeError> {
        let claims = match self.own_token(token) {
            Ok((claims, _)) if claims.tenant == tenant => claims,
            Ok((claims, _)) => {
                tracing::info!(%tenant, owner = %claims.tenant, "introspection of another tenant's token");
                return Ok(None);
            }
            Err(reason) => {
                tracing::debug!(%reason, "introspected token is not active");
                return Ok(None);
            }
        };
        let mut record = self.event_record(Event::Introspection, &claims, caller);
        if let Some(address) = presented_from {
            record.client_address = Some(address.to_owned());
        }
        let found = self.check_introspected(&claims, presented_from).await;
        let result = match found {
            Ok(Ok(uses_remaining)) => {
                record.allowed = true;
                Ok(Some(Introspection {
                    claims,
                    uses_remaining,
                }))
            }
            Ok(Err(reason)) => {
                record.code = Some("inactive".into());
                record.reason = Some(format!("token is not active: {reason}"));
                Ok(None)
            }
            Err(error) => Err(error),
        };
        self.commit(record, result).await
    }

    async fn check_introspected(
        &self,
        claims: &OwnClaims,
        presented_from: Option<&str>,
    ) -> Result<Result<Option<u32>, Inactive>, ExchangeError> {
        if let Err(reason) = self.token_identity(claims).await? {
            return Ok(Err(reason));
        }
        if let Err(reason) = self.session_state(claims, false).await? {
            return Ok(Err(reason));
        }
        let limits = claims.limits.clone().unwrap_or_default();
        if let Some(address) = presented_from
            && !cidrs::allows(&limits.trusted_cidrs, Some(address))
        {
            return Ok(Err(Inactive::Address(address.to_owned())));
        }
        let Some(limit) = limits.uses else {
            return Ok(Ok(None));
        };
        let consumed = self
            .store
            .consume_use(
                &claims.tenant,
                claims.session(),
                limit,
                claims.session_ends(),
            )
            .await?;
        Ok(match consumed {
            Consumed::Used(used) => Ok(Some(limit.saturating_sub(used))),
            Consumed::Exhausted => Err(Inactive::UsedUp(limit)),
        })
    }

    /// Revokes the session of `token` if it is a live token of `tenant`; whether it did. A
    /// token of another tenant, or none of this server's, is left alone (and the caller told
    /// nothing, RFC 7009 §2.2).
    pub async fn revoke(
        &self,
        tenant: &str,
        token: &str,
        caller: Option<String>,
    ) -> Result<bool, ExchangeError> {
        let claims = match self.own_token(token) {
            Ok((claims, _)) if claims.tenant == tenant => claims,
            _ => return Ok(false),
        };
        let mut record = self.event_record(Event::Revocation, &claims, caller);
        let result = self
            .store
            .revoke_session(tenant, claims.session(), claims.session_ends())
            .await
            .map_err(ExchangeError::from);
        if let Ok(newly) = &result {
            record.allowed = true;
            record.reason = Some(if *newly {
                "session revoked".into()
            } else {
                "session was already revoked".into()
            });
        }
        self.commit(record, result.map(|_| true)).await
    }

    /// Revokes every session `identity` started that may still be alive; how many.
    pub async fn revoke_identity(&self, identity: &IdentityRecord) -> Result<u64, ExchangeError> {
        let now = unix_now();
        let revoked = self
            .store
            .revoke_identity_sessions(&identity.tenant, &identity.id, now)
            .await?;
        let record = DecisionRecord {
            event: Event::Revocation,
            tenant: identity.tenant.clone(),
            identity: identity.id.clone(),
            at: now,
            allowed: true,
            reason: Some(format!(
                "every token issued before now revoked ({revoked} sessions)"
            )),
            ..Default::default()
        };
        self.commit(record, Ok(revoked)).await
    }

    /// Renews `token`: a new token of the same session, living the identity's ttl (capped by
    /// the server) but never past the session's end. A revoked, used-up or expired token, one
    /// presented from outside its trusted ranges, or one whose identity is gone, is refused.
    pub async fn renew(
        &self,
        token: &str,
        client_address: Option<String>,
    ) -> Result<Issued, ExchangeError> {
        let (claims, raw) = self.own_token(token).map_err(ExchangeError::NotRenewable)?;
        let mut record = self.event_record(Event::Renewal, &claims, client_address.clone());
        record.subject_jti = Some(claims.jti.clone());
        record.subject = claims.client_id.clone();
        let result = self
            .renewed(&claims, raw, client_address.as_deref(), &mut record)
            .await;
        match &result {
            Ok(issued) => {
                record.allowed = true;
                record.jti = Some(issued.jti.clone());
                record.scopes = issued.scopes.clone();
            }
            Err(error) => {
                record.code = Some(error.code().into());
                record.reason = Some(error.to_string());
                tracing::info!(tenant = %claims.tenant, %error, "renewal refused");
            }
        }
        answer(result, self.decisions.append(record).await)
    }

    async fn renewed(
        &self,
        claims: &OwnClaims,
        mut raw: Value,
        client_address: Option<&str>,
        record: &mut DecisionRecord,
    ) -> Result<Issued, ExchangeError> {
        let refuse = ExchangeError::NotRenewable;
        let identity = self.token_identity(claims).await?.map_err(refuse)?;
        record.identity = identity.id.clone();
        self.session_state(claims, true).await?.map_err(refuse)?;
        let limits = claims.limits.clone().unwrap_or_default();
        if !cidrs::allows(&limits.trusted_cidrs, client_address) {
            return Err(refuse(Inactive::Address(
                client_address.unwrap_or("(unknown)").to_owned(),
            )));
        }
        let now = unix_now();
        let ends = claims.session_ends();
        let left = u32::try_from(ends.saturating_sub(now).max(0)).unwrap_or(u32::MAX);
        let ttl = identity.ttl_seconds.min(self.max_issued_ttl).min(left);
        if ttl == 0 {
            return Err(refuse(Inactive::SessionEnded));
        }
        // The identity may have narrowed its scopes since: the renewal keeps only those left.
        let scopes: Vec<String> = claims
            .scopes()
            .into_iter()
            .filter(|s| identity.scopes.contains(s))
            .collect();
        let jti = random_id();
        if let Value::Object(map) = &mut raw {
            map.insert("iat".into(), json!(now));
            map.insert("nbf".into(), json!(now));
            map.insert("exp".into(), json!(now + i64::from(ttl)));
            map.insert("jti".into(), json!(jti));
            map.insert("scope".into(), json!(scopes.join(" ")));
            map.insert("sid".into(), json!(claims.session()));
        }
        let access_token = self.signer.sign(&raw).map_err(Failure::Signing)?;
        Ok(Issued {
            access_token,
            expires_in: ttl,
            scopes,
            audience: claims.aud.as_str().unwrap_or_default().to_owned(),
            max_ttl: identity.max_ttl_seconds,
            jti,
            session: claims.session().to_owned(),
            session_ends: ends,
            warnings: self.ttl_warnings(&identity),
        })
    }

    /// The record of an event of `claims`' token.
    fn event_record(
        &self,
        event: Event,
        claims: &OwnClaims,
        client_address: Option<String>,
    ) -> DecisionRecord {
        let identity = super::parse_identity_name(&claims.sub)
            .map_or_else(|| claims.identity.clone(), |(_, id)| id.to_owned());
        DecisionRecord {
            event,
            tenant: claims.tenant.clone(),
            identity,
            at: unix_now(),
            client_address,
            jti: Some(claims.jti.clone()),
            session: Some(claims.session().to_owned()),
            session_ends: Some(claims.session_ends()),
            subject: claims.client_id.clone(),
            scopes: claims.scopes(),
            ..Default::default()
        }
    }

    /// Commits `record`, then answers `result` ([`answer`]).
    async fn commit<T>(
        &self,
        record: DecisionRecord,
        result: Result<T, ExchangeError>,
    ) -> Result<T, ExchangeError> {
        answer(result, self.decisions.append(record).await)
    }
}
