//! `team-scopes`: grants each team's scopes to the namespaces the team owns.
//!
//! The config maps namespace prefixes to teams; the longest prefix that matches the token's
//! namespace picks the team, whose scopes are granted with an issued-token claim `team`. The
//! declarative `rules` policy cannot do this: it has one grant per identity, while here the
//! grant depends on *which* namespace matched.
//!
//! ```json
//! {"teams": [{"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read", "team-a.deploy"]}],
//!  "ttl_seconds": 600}
//! ```
//!
//! When the workload asks for scopes, only the ones the team may have are granted.
//!
//! Denial codes: `not-kubernetes` (no `kubernetes.io` claim), `no-team` (no prefix matches the
//! namespace), `scope` (none of the requested scopes belongs to the team).

mod config;

pub use config::{Team, TeamScopesConfig};
use tollgate_policy::{Decision, Grant, Policy, Request, export_policy};

/// Maps namespace prefixes to teams and their scopes.
pub struct TeamScopes;

impl Policy for TeamScopes {
    type Config = TeamScopesConfig;

    fn validate_config(config: &TeamScopesConfig) -> Result<(), String> {
        config.validate()
    }

    fn evaluate(config: &TeamScopesConfig, request: &Request) -> Decision {
        let Some(namespace) = request.token.namespace() else {
            return Decision::deny("not-kubernetes", "token has no `kubernetes.io` claim");
        };
        let Some(team) = config.team_for(namespace) else {
            return Decision::deny(
                "no-team",
                format!("no team prefix matches namespace `{namespace}`"),
            );
        };
        let requested = &request.exchange.requested_scopes;
        let scopes: Vec<&String> = if requested.is_empty() {
            team.scopes.iter().collect()
        } else {
            team.scopes
                .iter()
                .filter(|scope| requested.contains(scope))
                .collect()
        };
        if scopes.is_empty() {
            return Decision::deny(
                "scope",
                format!(
                    "none of the requested scopes belongs to team `{}`",
                    team.team
                ),
            );
        }
        let mut grant = Grant::new()
            .scopes(scopes.into_iter().cloned())
            .claim("team", &team.team);
        if let Some(ttl) = config.ttl_seconds {
            grant = grant.ttl_seconds(ttl);
        }
        Decision::allow(grant)
    }
}

export_policy!(TeamScopes);
