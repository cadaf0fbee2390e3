//! `pod-claims`: derives the workload from the pod name and grants a scope made for it.
//!
//! A Deployment pod `api-7d9f8b6c5-x2x9z` yields the issued-token claims `workload: "api"` and
//! `replicaset: "api-7d9f8b6c5"`; a StatefulSet pod `db-0` yields `workload: "db"` and
//! `ordinal: 0`; any other name is its own `workload`. The grant is one scope built from a
//! template, such as `deploy.{workload}` -> `deploy.api`. The declarative `rules` policy has no
//! way to compute a grant from a claim.
//!
//! ```json
//! {"namespaces": ["prod", "team-*"], "scope_template": "deploy.{workload}"}
//! ```
//!
//! Pod names are chosen by whoever may create pods in the namespace (a bare pod can be named
//! `api-7d9f8b6c5-x2x9z` too), so the namespace is the trust boundary: the derived workload
//! separates cooperating workloads within an allowed namespace, it does not authenticate them.
//!
//! Denial codes: `not-pod-bound` (no pod in the token), `namespace` (no glob matches the
//! namespace), `pod-name` (the pod name is not a valid Kubernetes name, so it cannot be put in a
//! scope safely).

mod config;
pub mod pod_name;

pub use config::PodClaimsConfig;
use pod_name::Workload;
use tollgate_policy::{Decision, Grant, Policy, Request, export_policy, glob_match};

/// Grants a per-workload scope and claims derived from the pod name.
pub struct PodClaims;

impl Policy for PodClaims {
    type Config = PodClaimsConfig;

    fn validate_config(config: &PodClaimsConfig) -> Result<(), String> {
        config.validate()
    }

    fn evaluate(config: &PodClaimsConfig, request: &Request) -> Decision {
        let token = &request.token;
        let (Some(namespace), Some(pod)) = (token.namespace(), token.pod_name()) else {
            return Decision::deny("not-pod-bound", "token is not bound to a pod");
        };
        if !config.namespaces.iter().any(|p| glob_match(p, namespace)) {
            return Decision::deny(
                "namespace",
                format!("namespace `{namespace}` is not allowed"),
            );
        }
        // The name ends up in a space-separated scope list and in claims: only accept what
        // Kubernetes itself would.
        if !pod_name::is_valid(pod) {
            return Decision::deny("pod-name", format!("pod name `{pod}` is not valid"));
        }
        let workload = pod_name::parse(pod);
        let mut grant = Grant::new()
            .scope(config.scope(workload.name()))
            .claim("workload", workload.name());
        match workload {
            Workload::Deployment { replicaset, .. } => {
                grant = grant.claim("replicaset", replicaset)
            }
            Workload::StatefulSet { ordinal, .. } => grant = grant.claim("ordinal", ordinal),
            Workload::Other(_) => {}
        }
        Decision::allow(grant)
    }
}

export_policy!(PodClaims);
