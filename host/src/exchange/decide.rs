//! Everything after verification that decides what an exchange issues: the audience, the policy
//! request (with the real client address), the policy, the scope intersection and the ttl. The
//! exchange and the admin API's simulate both call [`ExchangeService::decide`], so a simulation
//! answers exactly what the exchange would issue, field by field.

use super::recorded::{RecordedRequest, ShadowAnswer};
use super::{
    ExchangeError, ExchangeInput, ExchangeService, Failure, TokenRejection, identity_name,
};
use crate::common::cidrs;
use crate::policy::{Answer, Decision, Evaluation, ExchangeContext, PolicyModule, build_request};
use crate::store::{DecisionRecord, IdentityRecord};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// The ttl when neither the identity nor the policy names one.
const DEFAULT_TTL: u32 = 900;

/// What [`ExchangeService::decide`] found.
#[derive(Debug)]
pub struct Decided {
    /// The digest of the policy that ran (absent when the policy never ran).
    pub policy_digest: Option<String>,
    /// The policy's own answer, with fuel and logs (absent when it never ran).
    pub evaluation: Option<Evaluation>,
    /// What would be issued, or why nothing is.
    pub outcome: Result<Granted, ExchangeError>,
    /// The shadow candidate's answer beside the policy's, when one ran.
    pub shadow: Option<ShadowAnswer>,
    /// What the policy saw, as the record keeps it for replay (when the server keeps requests
    /// and the policy ran).
    pub request: Option<String>,
}

/// What an allowed exchange issues.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    pub audience: String,
    /// The policy's grant within the identity's scopes, narrowed to the requested ones.
    pub scopes: Vec<String>,
    /// The smallest of the identity's ttl, the policy's and the identity's max ttl.
    pub ttl: u32,
    /// Extra claims the policy asked for (reserved ones are dropped when the token is built).
    pub claims: Vec<(String, Value)>,
    pub policy_digest: String,
}

impl Decided {
    fn refused(error: ExchangeError) -> Self {
        Self {
            policy_digest: None,
            evaluation: None,
            outcome: Err(error),
            shadow: None,
            request: None,
        }
    }

    /// Writes what the decision log keeps of it: the policy, its fuel, the first of its log
    /// lines, a policy's or the sandbox's denial with its code and source (other refusals get
    /// theirs from the error), and the shadow's answer. The kept request is the caller's to move
    /// into the record.
    pub fn record_into(&self, record: &mut DecisionRecord) {
        record.policy_digest.clone_from(&self.policy_digest);
        record.shadow = self
            .shadow
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        if let Some(evaluation) = &self.evaluation {
            record.fuel_used = i64::try_from(evaluation.fuel_used).unwrap_or(i64::MAX);
            record.logs = recorded_logs(evaluation);
            if let Decision::Deny(denial) = &evaluation.decision {
                record.code = Some(denial.code.clone());
                record.reason = Some(denial.message.clone());
                record.source = Some(format!("{:?}", denial.source).to_lowercase());
            }
        }
    }
}

impl ExchangeService {
    /// Decides, for verified `claims`, what the exchange `input` asks of `identity` would issue,
    /// with the identity's policy `module` (`None`: not loaded, a failure of the server) as
    /// [`ExchangeService::policy_module`] found it, and its shadow `candidate` when this
    /// exchange is in the candidate's sample (its answer is recorded, never used).
    pub fn decide(
        &self,
        identity: &IdentityRecord,
        module: Option<Arc<PolicyModule>>,
        candidate: Option<Arc<PolicyModule>>,
        claims: &Value,
        input: &ExchangeInput,
        now: i64,
    ) -> Decided {
        // Only a verified caller learns whether an audience exists for this identity.
        let audience = match pick_audience(identity, input.audience.as_deref()) {
            Ok(audience) => audience,
            Err(error) => return Decided::refused(error),
        };
        if !cidrs::allows(&identity.trusted_cidrs, input.client_address.as_deref()) {
            return Decided::refused(ExchangeError::UntrustedAddress(
                input.client_address.clone(),
            ));
        }
        let context = ExchangeContext {
            tenant: identity.tenant.clone(),
            identity: identity.id.clone(),
            requested_audiences: vec![audience.clone()],
            requested_scopes: input.scopes.clone(),
            client_address: input.client_address.clone(),
            now,
        };
        let config = module
            .as_deref()
            .map_or(Cow::Borrowed(identity.config.as_str()), |module| {
                module.config(identity.config.as_str())
            });
        let request = match build_request(claims, context, config) {
            Ok(request) => request,
            Err(e) => {
                return Decided::refused(ExchangeError::InvalidToken(TokenRejection::Claims(e)));
            }
        };
        let Some(module) = module else {
            return Decided::refused(
                Failure::PolicyNotLoaded(identity.policy_address().to_owned()).into(),
            );
        };
        let fuel = identity.fuel.unwrap_or(self.fuel);
        let evaluation = self
            .policies
            .engine()
            .evaluate_with_fuel(&module, &request, fuel);
        let answer = Answer::from(&evaluation.decision);
        let shadow = candidate.map(|candidate| {
            // A candidate with a config of its own sees the same exchange through it (and a
            // candidate that prepares its configs is handed its own preparation).
            let own_config = identity
                .shadow
                .as_ref()
                .and_then(|s| s.config.as_ref())
                .map_or(identity.config.as_str(), |config| config.as_str());
            let config = candidate.config(own_config);
            let own_request = (config != request.config).then(|| {
                let mut own = request.clone();
                own.config = config.into_owned();
                own
            });
            let other = self.policies.engine().evaluate_with_fuel(
                &candidate,
                own_request.as_ref().unwrap_or(&request),
                fuel,
            );
            let candidate_answer = Answer::from(&other.decision);
            ShadowAnswer {
                candidate: candidate.info.digest.clone(),
                agrees: candidate_answer == answer,
                policy_answer: answer.clone(),
                candidate_answer,
                candidate_fuel: other.fuel_used,
            }
        });
        let recorded = if self.keep_requests {
            RecordedRequest::text(
                claims,
                &audience,
                &input.scopes,
                input.client_address.as_deref(),
                now,
                &answer,
            )
        } else {
            None
        };
        let digest = module.info.digest.clone();
        let outcome = match &evaluation.decision {
            Decision::Deny(denial) => Err(ExchangeError::Denied {
                code: denial.code.clone(),
                message: denial.message.clone(),
            }),
            Decision::Allow(grant) => {
                intersect_scopes(&grant.scopes, &identity.scopes, &input.scopes).map(|scopes| {
                    Granted {
                        audience,
                        scopes,
                        ttl: ttl(
                            identity.ttl_seconds,
                            identity.max_ttl_seconds,
                            grant.ttl_seconds,
                        )
                        .min(self.max_issued_ttl),
                        claims: grant.claims.clone(),
                        policy_digest: digest.clone(),
                    }
                })
            }
        };
        Decided {
            policy_digest: Some(digest),
            evaluation: Some(evaluation),
            outcome,
            shadow,
            request: recorded,
        }
    }
}

/// Most policy log lines a decision record keeps, and the most characters of each.
const RECORDED_LOG_LINES: usize = 20;
const RECORDED_LOG_CHARS: usize = 500;

/// The policy's log lines as the record keeps them: `stream: message`, the first
/// [`RECORDED_LOG_LINES`] of at most [`RECORDED_LOG_CHARS`] each, and a last line saying how
/// many were left out.
fn recorded_logs(evaluation: &Evaluation) -> Vec<String> {
    let mut lines: Vec<String> = evaluation
        .logs
        .iter()
        .take(RECORDED_LOG_LINES)
        .map(|line| {
            let mut text: String = line.message.chars().take(RECORDED_LOG_CHARS).collect();
            if text.len() < line.message.len() {
                text.push('…');
            }
            format!("{}: {text}", line.stream)
        })
        .collect();
    let left_out = evaluation.logs.len().saturating_sub(RECORDED_LOG_LINES);
    if left_out > 0 || evaluation.logs_truncated {
        lines.push(format!(
            "({left_out} more lines, or more bytes than the log budget, left out)"
        ));
    }
    lines
}

/// The requested audience if the identity has it, else its first, else its own name.
fn pick_audience(
    identity: &IdentityRecord,
    requested: Option<&str>,
) -> Result<String, ExchangeError> {
    match (requested, identity.token_audiences.first()) {
        (Some(want), _) if identity.token_audiences.iter().any(|a| a == want) => {
            Ok(want.to_owned())
        }
        (Some(_), _) => Err(ExchangeError::InvalidTarget),
        (None, Some(first)) => Ok(first.clone()),
        (None, None) => Ok(identity_name(identity)),
    }
}

/// The smallest of the identity's ttl, its max ttl and the policy's (0: not set).
fn ttl(identity: u32, max: u32, policy: Option<u32>) -> u32 {
    [Some(identity), policy, Some(max)]
        .into_iter()
        .flatten()
        .filter(|t| *t > 0)
        .min()
        .unwrap_or(DEFAULT_TTL)
}

/// Scopes the policy granted, limited to the identity's, narrowed to what was requested.
fn intersect_scopes(
    granted: &[String],
    allowed: &[String],
    requested: &[String],
) -> Result<Vec<String>, ExchangeError> {
    let effective: Vec<String> = granted
        .iter()
        .filter(|s| allowed.contains(s))
        .cloned()
        .collect();
    if requested.is_empty() {
        return Ok(effective);
    }
    let mut narrowed: Vec<String> = Vec::with_capacity(requested.len());
    for scope in requested {
        if !effective.contains(scope) {
            return Err(ExchangeError::InvalidScope(scope.clone()));
        }
        if !narrowed.contains(scope) {
            narrowed.push(scope.clone());
        }
    }
    Ok(narrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_intersected_and_narrowed() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let granted = s(&["a", "b", "evil"]);
        let allowed = s(&["a", "b", "c"]);
        assert_eq!(
            intersect_scopes(&granted, &allowed, &[]).unwrap(),
            s(&["a", "b"])
        );
        assert_eq!(
            intersect_scopes(&granted, &allowed, &s(&["b"])).unwrap(),
            s(&["b"])
        );
        assert!(matches!(
            intersect_scopes(&granted, &allowed, &s(&["evil"])),
            Err(ExchangeError::InvalidScope(_))
        ));
        assert!(matches!(
            intersect_scopes(&granted, &allowed, &s(&["c"])),
            Err(ExchangeError::InvalidScope(_))
        ));
    }

    #[test]
    fn ttl_is_the_smallest_bound() {
        assert_eq!(ttl(600, 3600, None), 600);
        assert_eq!(ttl(600, 3600, Some(5000)), 600);
        assert_eq!(ttl(600, 3600, Some(60)), 60);
        assert_eq!(ttl(600, 3600, Some(0)), 600);
        assert_eq!(ttl(0, 0, None), DEFAULT_TTL);
    }
}
