//! Looking before changing: recorded decisions evaluated again by another policy (replay), and
//! what a shadow candidate answered beside the policy (`shadow` report).

use super::bodies::{OutcomePair, ReplayReport, ReplayRequest, ShadowReport};
use super::{AdminError, AdminService, Result};
use crate::common::unix_now;
use crate::exchange::{RecordedRequest, ShadowAnswer};
use crate::policy::{Answer, build_request};
use crate::store::PolicyConfig;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// Most records one replay evaluates, and most a shadow report reads.
pub const MAX_REPLAYED: u32 = 100_000;
/// Most changed decisions a replay lists, and disagreements a shadow report shows.
const LISTED_CHANGES: usize = 1000;
const LISTED_EXAMPLES: usize = 20;

impl AdminService {
    /// Evaluates the records of identity `id` that kept their policy request, since
    /// `spec.since_seconds` ago, with `spec.policy`, and reports what would have changed.
    pub async fn replay(
        &self,
        tenant: &str,
        id: &str,
        spec: ReplayRequest,
    ) -> Result<ReplayReport> {
        let identity = self.identity(tenant, id).await?;
        let resolved = self.resolve_policy(tenant, &spec.policy).await?;
        let module = self.module(tenant, &resolved).await?;
        let config = match &spec.config {
            Some(config) => PolicyConfig::from(config),
            None => identity.config.clone(),
        };
        let engine = self.policies.engine().clone();
        let since =
            unix_now().saturating_sub(i64::try_from(spec.since_seconds).unwrap_or(i64::MAX));
        let records = self
            .store
            .replayable_decisions(tenant, id, since, MAX_REPLAYED)
            .await?;
        let fuel = identity.fuel.unwrap_or(self.exchange.fuel);
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        tokio::task::spawn_blocking(move || {
            engine
                .validate_config(&module, config.as_str())
                .map_err(|message| {
                    AdminError::Invalid(format!("`{}` rejects the config: {message}", spec.policy))
                })?;
            let started = Instant::now();
            let mut report = ReplayReport {
                policy: resolved,
                replayed: 0,
                unchanged: 0,
                allowed_to_denied: 0,
                denied_to_allowed: 0,
                scopes_changed: 0,
                codes_changed: 0,
                changes: Vec::new(),
                elapsed_ms: 0,
            };
            let handed = module.config(config.as_str());
            for record in records {
                let Some(recorded) = record
                    .request
                    .and_then(|r| serde_json::from_str::<RecordedRequest>(&r).ok())
                else {
                    continue;
                };
                let context = recorded.context(&tenant, &id);
                let Ok(request) = build_request(&recorded.claims, context, handed.as_ref()) else {
                    continue;
                };
                let after =
                    Answer::from(&engine.evaluate_with_fuel(&module, &request, fuel).decision);
                let before = &recorded.answer;
                report.replayed += 1;
                let counter = match (before.allowed, after.allowed) {
                    _ if *before == after => &mut report.unchanged,
                    (true, false) => &mut report.allowed_to_denied,
                    (false, true) => &mut report.denied_to_allowed,
                    (true, true) => &mut report.scopes_changed,
                    (false, false) => &mut report.codes_changed,
                };
                *counter += 1;
                if *before != after && report.changes.len() < LISTED_CHANGES {
                    report.changes.push(json!({
                        "id": record.id, "at": record.at, "subject": record.subject,
                        "before": before, "after": after,
                    }));
                }
            }
            report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok(report)
        })
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
    }

    /// How identity `id`'s shadow candidate answered beside its policy since `since_seconds` ago.
    pub async fn shadow_report(
        &self,
        tenant: &str,
        id: &str,
        since_seconds: u64,
    ) -> Result<ShadowReport> {
        let identity = self.identity(tenant, id).await?;
        let since = unix_now().saturating_sub(i64::try_from(since_seconds).unwrap_or(i64::MAX));
        let records = self
            .store
            .shadowed_decisions(tenant, id, since, MAX_REPLAYED)
            .await?;
        let mut pairs: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut report = ShadowReport {
            candidate: identity.shadow.map(|s| s.policy),
            evaluated: 0,
            agreed: 0,
            disagreed: 0,
            pairs: Vec::new(),
            examples: Vec::new(),
        };
        for record in records {
            let Some(shadow) = record
                .shadow
                .and_then(|s| serde_json::from_value::<ShadowAnswer>(s).ok())
            else {
                continue;
            };
            report.evaluated += 1;
            let pair = (
                shadow.policy_answer.label(),
                shadow.candidate_answer.label(),
            );
            *pairs.entry(pair).or_default() += 1;
            if shadow.agrees {
                report.agreed += 1;
                continue;
            }
            report.disagreed += 1;
            if report.examples.len() < LISTED_EXAMPLES {
                report.examples.push(json!({
                    "id": record.id, "at": record.at, "subject": record.subject,
                    "candidate": shadow.candidate,
                    "policy_answer": shadow.policy_answer,
                    "candidate_answer": shadow.candidate_answer,
                }));
            }
        }
        report.pairs = pairs
            .into_iter()
            .map(|((policy, candidate), count)| OutcomePair {
                policy,
                candidate,
                count,
            })
            .collect();
        Ok(report)
    }
}
