//! The `fresh-pod-pool` config and its validation.

use serde::Deserialize;

/// Characters with a meaning in a glob: a pool name is spliced into `{node_pool}-?*`, so it
/// must stay a literal.
const GLOB_METACHARACTERS: &[char] = &['*', '?', '[', ']', '{', '}', '\\', ','];

/// Which tokens count as fresh and pod-bound, and what they receive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshPodPoolConfig {
    /// The node pool: node names must look like `{node_pool}-<suffix>`.
    pub node_pool: String,
    /// Maximum `now - iat`, in seconds.
    pub max_age_seconds: i64,
    /// Maximum `exp - iat`, in seconds: refuses long-lived tokens even when they are fresh.
    pub max_lifetime_seconds: i64,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl FreshPodPoolConfig {
    /// Rejects an empty pool name or one with glob metacharacters, and non-positive ages.
    pub fn validate(&self) -> Result<(), String> {
        let pool = &self.node_pool;
        if pool.is_empty() {
            return Err("`node_pool` is empty".into());
        }
        if pool.contains(GLOB_METACHARACTERS) {
            return Err(format!(
                "`node_pool` `{pool}` contains a glob metacharacter (one of `*?[]{{}}\\,`)"
            ));
        }
        if pool.contains(['/', ':']) || pool.chars().any(char::is_whitespace) {
            return Err(format!(
                "`node_pool` `{pool}` is not a node name prefix (no `/`, `:` or whitespace)"
            ));
        }
        if self.max_age_seconds <= 0 {
            return Err("`max_age_seconds` must be positive".into());
        }
        if self.max_lifetime_seconds <= 0 {
            return Err("`max_lifetime_seconds` must be positive".into());
        }
        if let Some(scope) = self
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
        {
            return Err(format!(
                "invalid scope `{scope}`: scopes are non-empty and contain no whitespace"
            ));
        }
        Ok(())
    }

    /// The glob node names must match. `?` insists on a non-empty suffix after the dash.
    pub fn node_pattern(&self) -> String {
        format!("{}-?*", self.node_pool)
    }
}
