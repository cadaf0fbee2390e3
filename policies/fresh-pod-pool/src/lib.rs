//! `fresh-pod-pool`: grants only to fresh, pod-bound tokens from pods on one node pool.
//!
//! A projected ServiceAccount token bound to a pod and a node (Kubernetes 1.30+) is only as
//! good as its age: a stolen token replayed an hour later, or a long-lived token minted for a
//! legacy client, is refused even though the host verified it. The node must belong to the
//! configured pool, recognised by its name `{node_pool}-<suffix>`.
//!
//! ```json
//! {"node_pool": "pool-a", "max_age_seconds": 300, "max_lifetime_seconds": 3600,
//!  "scopes": ["registry.push"]}
//! ```
//!
//! Denial codes, in the order they are checked: `not-pod-bound` (no pod in the token),
//! `not-node-bound` (no node in the token), `node-pool` (the node is not in the pool), `stale`
//! (no `iat`, or `now - iat > max_age_seconds`), `long-lived` (`exp - iat >
//! max_lifetime_seconds`, measured from `now` if `iat` is in the future).
//!
//! The node name is a prefix match at a `-` boundary: pool `pool-a` also admits nodes of a pool
//! named `pool-a-b`. Name pools so that none is another's prefix followed by `-`.

mod config;

pub use config::FreshPodPoolConfig;
use tollgate_policy::{Decision, Grant, Policy, Request, export_policy, glob_match};

/// Admits fresh, short-lived, pod- and node-bound tokens from one node pool.
pub struct FreshPodPool;

impl Policy for FreshPodPool {
    type Config = FreshPodPoolConfig;

    fn validate_config(config: &FreshPodPoolConfig) -> Result<(), String> {
        config.validate()
    }

    fn evaluate(config: &FreshPodPoolConfig, request: &Request) -> Decision {
        let token = &request.token;
        if token.pod_name().is_none() {
            return Decision::deny("not-pod-bound", "token is not bound to a pod");
        }
        let Some(node) = token.node_name() else {
            return Decision::deny("not-node-bound", "token is not bound to a node");
        };
        if !glob_match(&config.node_pattern(), node) {
            return Decision::deny(
                "node-pool",
                format!("node `{node}` is not in pool `{}`", config.node_pool),
            );
        }
        let Some(issued_at) = token.issued_at else {
            return Decision::deny("stale", "token has no `iat`");
        };
        let age = request.exchange.now.saturating_sub(issued_at);
        if age > config.max_age_seconds {
            return Decision::deny(
                "stale",
                format!(
                    "token is {age}s old, the limit is {}s",
                    config.max_age_seconds
                ),
            );
        }
        // An `iat` in the future must not shorten the lifetime: measure from whichever is
        // earlier, so `iat = exp - 1` on a token that expires in ten years is still long-lived.
        let start = issued_at.min(request.exchange.now);
        let lifetime = token.expires_at.saturating_sub(start);
        if lifetime > config.max_lifetime_seconds {
            return Decision::deny(
                "long-lived",
                format!(
                    "token lives {lifetime}s, the limit is {}s",
                    config.max_lifetime_seconds
                ),
            );
        }
        Decision::allow(Grant::new().scopes(config.scopes.iter().cloned()))
    }
}

export_policy!(FreshPodPool);
