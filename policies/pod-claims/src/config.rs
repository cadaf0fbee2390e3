//! The `pod-claims` config and its validation.

use serde::Deserialize;
use tollgate_policy::glob;

/// The placeholder a scope template must contain.
pub const WORKLOAD: &str = "{workload}";

/// Which namespaces may exchange, and the scope each workload receives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodClaimsConfig {
    /// Globs on the namespace, such as `prod` or `team-*`.
    pub namespaces: Vec<String>,
    /// The granted scope, with `{workload}` replaced by the workload's name: `deploy.{workload}`.
    pub scope_template: String,
}

impl PodClaimsConfig {
    /// Rejects an empty namespace list, invalid globs and a template without `{workload}`, with
    /// other braces, or with whitespace (which would split the scope in two).
    pub fn validate(&self) -> Result<(), String> {
        if self.namespaces.is_empty() {
            return Err("`namespaces` is empty: it would match nothing".into());
        }
        for pattern in &self.namespaces {
            glob::validate(pattern).map_err(|e| format!("`namespaces`: {e}"))?;
        }
        let template = &self.scope_template;
        if !template.contains(WORKLOAD) {
            return Err(format!(
                "`scope_template` `{template}` does not contain `{WORKLOAD}`"
            ));
        }
        if template.replace(WORKLOAD, "").contains(['{', '}']) {
            return Err(format!(
                "`scope_template` `{template}` has a placeholder other than `{WORKLOAD}`"
            ));
        }
        if template.chars().any(char::is_whitespace) {
            return Err(format!("`scope_template` `{template}` contains whitespace"));
        }
        Ok(())
    }

    /// The scope for one workload.
    pub fn scope(&self, workload: &str) -> String {
        self.scope_template.replace(WORKLOAD, workload)
    }
}
