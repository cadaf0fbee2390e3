//! The `team-scopes` config and its validation.

use serde::Deserialize;
use std::collections::BTreeSet;

/// Namespace prefixes mapped to teams and the scopes each team may receive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamScopesConfig {
    /// The teams; the longest prefix matching the namespace picks one.
    pub teams: Vec<Team>,
    /// A cap on the issued token's lifetime (default: the identity's).
    pub ttl_seconds: Option<u32>,
}

/// One team: the namespaces it owns and what it may be granted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// A namespace prefix such as `team-a-`. It must end with `-`, so that `team-a-` owns
    /// `team-a-prod` but never `team-ab` or `team-attacker`.
    pub prefix: String,
    /// The team's name, issued as the `team` claim.
    pub team: String,
    /// The scopes the team's workloads receive.
    pub scopes: Vec<String>,
}

impl TeamScopesConfig {
    /// Rejects an empty team list, empty or duplicate prefixes, prefixes that do not end at a
    /// `-` boundary, unnamed teams, teams without scopes and a zero TTL.
    pub fn validate(&self) -> Result<(), String> {
        if self.teams.is_empty() {
            return Err("`teams` is empty: it would match nothing".into());
        }
        let mut seen = BTreeSet::new();
        for (index, team) in self.teams.iter().enumerate() {
            let prefix = &team.prefix;
            if prefix.is_empty() {
                return Err(format!("`teams[{index}].prefix` is empty"));
            }
            // Namespaces are DNS labels: `-` is the only separator a prefix can end on. Without
            // it, `team-a` would also hand team-a's scopes to whoever creates `team-attacker`.
            if !prefix.ends_with('-') || prefix == "-" {
                return Err(format!(
                    "`teams[{index}].prefix` `{prefix}` must end with `-` (like `team-a-`)"
                ));
            }
            if !seen.insert(prefix.as_str()) {
                return Err(format!("duplicate prefix `{prefix}`"));
            }
            if team.team.is_empty() {
                return Err(format!("`teams[{index}].team` is empty"));
            }
            if team.scopes.is_empty() {
                return Err(format!("team `{}` has no scopes", team.team));
            }
            if let Some(scope) = team.scopes.iter().find(|s| !valid_scope(s)) {
                return Err(format!(
                    "team `{}` has an invalid scope `{scope}`: scopes are non-empty and \
                     contain no whitespace",
                    team.team
                ));
            }
        }
        if self.ttl_seconds == Some(0) {
            return Err("`ttl_seconds` must be positive".into());
        }
        Ok(())
    }

    /// The team owning `namespace`: the longest prefix that leaves a non-empty rest.
    pub fn team_for(&self, namespace: &str) -> Option<&Team> {
        self.teams
            .iter()
            .filter(|t| namespace.len() > t.prefix.len() && namespace.starts_with(&t.prefix))
            .max_by_key(|t| t.prefix.len())
    }
}

/// OAuth scopes are joined with spaces in the issued token: a scope must not contain one.
fn valid_scope(scope: &str) -> bool {
    !scope.is_empty() && !scope.chars().any(char::is_whitespace)
}
