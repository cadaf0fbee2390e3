//! Changing a policy without fear: what an identity's `policy` names (a digest, a built-in,
//! `NAME` or `NAME@VERSION`), the cases that gate a change (a bundle's at upload, an
//! identity's before it runs a version), the identities that follow a name, rollback,
//! promotion of a shadow candidate, and the policy-change events in the decision log.

use super::bodies::{Follower, RolledBack};
use super::{AdminError, AdminService, Result};
use crate::common::unix_now;
use crate::exchange::identity_name;
use crate::policy::cases::{self, Case, CaseFile};
use crate::policy::{BUILTINS, PolicyModule};
use crate::store::{DecisionRecord, Event, IdentityRecord, PolicyConfig, PolicyVersion};
use serde_json::Value;
use std::sync::Arc;

/// Most failing cases an answer names.
const NAMED_FAILURES: usize = 10;

/// What running a set of cases found.
pub(super) struct CaseRun {
    pub passed: usize,
    /// `name: why` of each failing case.
    pub failures: Vec<String>,
}

impl CaseRun {
    /// `N of M cases fail: a: why; b: why` (the first few named).
    pub fn describe(&self) -> String {
        let total = self.passed + self.failures.len();
        let mut named: Vec<&str> = self
            .failures
            .iter()
            .take(NAMED_FAILURES)
            .map(String::as_str)
            .collect();
        if self.failures.len() > NAMED_FAILURES {
            named.push("…");
        }
        format!(
            "{} of {total} cases fail: {}",
            self.failures.len(),
            named.join("; ")
        )
    }
}

/// `NAME@VERSION` split; `None` for a plain name.
fn split_version(address: &str) -> Result<(&str, Option<u32>)> {
    match address.split_once('@') {
        None => Ok((address, None)),
        Some((name, version)) => version
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .map(|v| (name, Some(v)))
            .ok_or_else(|| {
                AdminError::Invalid(format!(
                    "policy `{address}`: a version is a positive number, as in `{name}@2`"
                ))
            }),
    }
}

/// An identity's cases, checked: each must read as a case of the `policy test` format.
pub(super) fn parse_cases(cases: &[Value]) -> Result<Vec<Case>> {
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            serde_json::from_value(case.clone())
                .map_err(|e| AdminError::Invalid(format!("`cases[{i}]`: {e}")))
        })
        .collect()
}

impl AdminService {
    /// What `address` names for `tenant` now: a built-in, a stored digest, or a named policy's
    /// version (its newest for a plain `NAME`).
    pub(super) async fn resolve_policy(&self, tenant: &str, address: &str) -> Result<String> {
        if BUILTINS.contains(&address) || address.starts_with("sha256:") {
            return Ok(address.to_owned());
        }
        let (name, version) = split_version(address)?;
        match self.store.policy_version(tenant, name, version).await? {
            Some(found) => Ok(found.digest),
            None if version.is_some() => Err(AdminError::Invalid(format!(
                "policy `{name}` has no version {}",
                version.unwrap_or_default()
            ))),
            None => Err(AdminError::Invalid(format!(
                "policy `{address}` is not uploaded"
            ))),
        }
    }

    /// The loaded module at `resolved` (a digest or built-in).
    pub(super) async fn module(&self, tenant: &str, resolved: &str) -> Result<Arc<PolicyModule>> {
        self.exchange
            .policy_module(tenant, resolved)
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?
            .ok_or_else(|| AdminError::Invalid(format!("policy `{resolved}` is not uploaded")))
    }

    /// Runs `file`'s cases on `module` in the sandbox, off the async workers.
    pub(super) async fn run_cases(
        &self,
        module: Arc<PolicyModule>,
        file: CaseFile,
    ) -> Result<CaseRun> {
        let engine = self.policies.engine().clone();
        let results = tokio::task::spawn_blocking(move || cases::run(&engine, &module, &file))
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let (passed, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.passed);
        Ok(CaseRun {
            passed: passed.len(),
            failures: failed
                .into_iter()
                .map(|r| format!("{}: {}", r.name, r.failure.unwrap_or(r.got)))
                .collect(),
        })
    }

    /// Runs `identity`'s own cases, with its config and fuel, on `module`: `None` when it has
    /// none.
    pub(super) async fn identity_cases(
        &self,
        identity: &IdentityRecord,
        module: Arc<PolicyModule>,
    ) -> Result<Option<CaseRun>> {
        if identity.cases.is_empty() {
            return Ok(None);
        }
        let file = CaseFile {
            module: None,
            config: serde_json::from_str(identity.config.as_str())
                .map_err(|e| AdminError::Internal(e.to_string()))?,
            fuel: identity.fuel,
            cases: parse_cases(&identity.cases)?,
        };
        self.run_cases(module, file).await.map(Some)
    }

    /// `module`'s `validate-config` of `config`, off the async workers: `Err` holds the
    /// module's message.
    pub(super) async fn validate(
        &self,
        module: &Arc<PolicyModule>,
        config: &PolicyConfig,
    ) -> Result<std::result::Result<(), String>> {
        let engine = self.policies.engine().clone();
        let (module, config) = (module.clone(), config.clone());
        tokio::task::spawn_blocking(move || engine.validate_config(&module, config.as_str()))
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))
    }

    /// Whether `identity` may run `module`: its config validates and its cases pass; else the
    /// reasons.
    pub(super) async fn admits(
        &self,
        identity: &IdentityRecord,
        module: Arc<PolicyModule>,
    ) -> Result<std::result::Result<(), Vec<String>>> {
        if let Err(message) = self.validate(&module, &identity.config).await? {
            return Ok(Err(vec![format!("the identity's config: {message}")]));
        }
        Ok(match self.identity_cases(identity, module).await? {
            Some(run) if !run.failures.is_empty() => Err(run.failures),
            _ => Ok(()),
        })
    }

    /// Records a change (or a refused change) of `identity`'s policy in its decision log.
    pub(super) async fn record_change(
        &self,
        identity: &IdentityRecord,
        changed: bool,
        digest: &str,
        reason: String,
    ) -> Result<()> {
        let record = DecisionRecord {
            event: Event::PolicyChange,
            tenant: identity.tenant.clone(),
            identity: identity.id.clone(),
            at: unix_now(),
            allowed: changed,
            code: Some(
                if changed {
                    "policy-changed"
                } else {
                    "policy-change-refused"
                }
                .into(),
            ),
            reason: Some(reason),
            source: Some("admin".into()),
            policy_digest: Some(digest.to_owned()),
            ..Default::default()
        };
        self.exchange
            .decisions
            .append(record)
            .await
            .map_err(AdminError::from)
    }

    /// Moves the identities that follow `name` (and the shadow candidates that name it) to
    /// its newest version `version`: each identity only once its config and cases pass.
    pub(super) async fn follow(
        &self,
        tenant: &str,
        version: &PolicyVersion,
    ) -> Result<Vec<Follower>> {
        let name = version.name.as_str();
        let mut followers = Vec::new();
        for mut identity in self.store.list_identities(tenant).await? {
            let follows = identity.policy == name && identity.resolved_policy != version.digest;
            let shadows = identity
                .shadow
                .as_ref()
                .is_some_and(|s| s.policy == name && s.resolved != version.digest);
            if !follows && !shadows {
                continue;
            }
            let full_name = identity_name(&identity);
            if shadows && let Some(shadow) = identity.shadow.as_mut() {
                shadow.resolved.clone_from(&version.digest);
                followers.push(Follower {
                    identity: full_name.clone(),
                    outcome: "shadow",
                    policy: version.digest.clone(),
                    failures: Vec::new(),
                });
            }
            if follows {
                let module = self.module(tenant, &version.digest).await?;
                let what = format!("version {} of `{name}`", version.version);
                match self.admits(&identity, module).await? {
                    Ok(()) => {
                        let was = std::mem::replace(
                            &mut identity.resolved_policy,
                            version.digest.clone(),
                        );
                        self.record_change(
                            &identity,
                            true,
                            &version.digest,
                            format!("follows {what} (was {was})"),
                        )
                        .await?;
                        followers.push(Follower {
                            identity: full_name,
                            outcome: "switched",
                            policy: version.digest.clone(),
                            failures: Vec::new(),
                        });
                    }
                    Err(failures) => {
                        let run = CaseRun {
                            passed: identity.cases.len().saturating_sub(failures.len()),
                            failures: failures.clone(),
                        };
                        self.record_change(
                            &identity,
                            false,
                            &version.digest,
                            format!(
                                "stays on {}: {what} fails it ({})",
                                identity.resolved_policy,
                                run.describe()
                            ),
                        )
                        .await?;
                        followers.push(Follower {
                            identity: full_name,
                            outcome: "kept",
                            policy: identity.resolved_policy.clone(),
                            failures,
                        });
                    }
                }
            }
            self.store.put_identity(&identity).await?;
        }
        Ok(followers)
    }

    /// Makes an older version's module the newest version of `name` again.
    pub async fn rollback(
        &self,
        tenant: &str,
        name: &str,
        to: Option<u32>,
        created_by: Option<&str>,
    ) -> Result<RolledBack> {
        self.require_tenant(tenant).await?;
        let versions = self.store.policy_versions(tenant, name).await?;
        let Some(current) = versions.first() else {
            return Err(AdminError::NotFound(format!("policy `{name}`")));
        };
        let target = match to {
            Some(v) => versions
                .iter()
                .find(|found| found.version == v)
                .ok_or_else(|| {
                    AdminError::Invalid(format!("policy `{name}` has no version {v}"))
                })?,
            None => versions
                .iter()
                .find(|found| found.digest != current.digest)
                .ok_or_else(|| {
                    AdminError::Conflict(format!(
                        "policy `{name}` has no earlier version with another module"
                    ))
                })?,
        };
        if target.digest == current.digest {
            return Err(AdminError::Conflict(format!(
                "version {} of `{name}` runs the current module already",
                target.version
            )));
        }
        let description = format!("rollback to version {}", target.version);
        let (version, _) = self
            .store
            .add_policy_version(tenant, name, &target.digest, created_by, Some(&description))
            .await?;
        let followers = self.follow(tenant, &version).await?;
        Ok(RolledBack {
            name: name.to_owned(),
            version: version.version,
            restores: target.version,
            digest: version.digest,
            followers,
        })
    }

    /// Makes identity `id`'s shadow candidate its policy, once its config and cases pass on it.
    pub async fn promote(&self, tenant: &str, id: &str) -> Result<super::bodies::IdentityView> {
        let mut identity = self.identity(tenant, id).await?;
        let Some(shadow) = identity.shadow.take() else {
            return Err(AdminError::Conflict(format!(
                "identity `{id}` has no shadow candidate to promote"
            )));
        };
        let resolved = self.resolve_policy(tenant, &shadow.policy).await?;
        let module = self.module(tenant, &resolved).await?;
        if let Some(config) = &shadow.config {
            identity.config = config.clone();
        }
        if let Err(failures) = self.admits(&identity, module).await? {
            let run = CaseRun {
                passed: identity.cases.len().saturating_sub(failures.len()),
                failures,
            };
            return Err(AdminError::Conflict(format!(
                "`{}` is not promoted: {}",
                shadow.policy,
                run.describe()
            )));
        }
        let was = std::mem::replace(&mut identity.resolved_policy, resolved.clone());
        identity.policy = shadow.policy.clone();
        self.record_change(
            &identity,
            true,
            &resolved,
            format!("promoted shadow `{}` (was {was})", shadow.policy),
        )
        .await?;
        let stored = self.store.put_identity(&identity).await?;
        Ok(super::bodies::IdentityView::from(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_positive_numbers() {
        assert_eq!(split_version("team").unwrap(), ("team", None));
        assert_eq!(split_version("team@3").unwrap(), ("team", Some(3)));
        for bad in ["team@", "team@0", "team@x", "team@-1"] {
            assert!(split_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_case_run_names_its_failures() {
        let run = CaseRun {
            passed: 2,
            failures: (0..12).map(|i| format!("c{i}: why")).collect(),
        };
        let text = run.describe();
        assert!(
            text.starts_with("12 of 14 cases fail: c0: why; c1: why"),
            "{text}"
        );
        assert!(text.ends_with("; …"), "{text}");
    }
}
