//! Static key sets expire (the tenant pasted a cluster's JWKS; the cluster rotates its keys), so
//! their coming end is made loud: a warning in the log at most once an hour per issuer, and a
//! metric (`tollgate_static_keys_checks_total{state}`), from a week before the expiry and
//! after it.

use std::collections::HashMap;
use std::sync::Mutex;

/// How long before `expires_at` the warnings start.
pub const WARN_BEFORE: i64 = 7 * 24 * 3600;
/// Least time between two warnings about one issuer.
const WARN_EVERY: i64 = 3600;

/// Where a static key set is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysState {
    Fresh,
    Expiring,
    Expired,
}

/// When each issuer was last warned about.
#[derive(Debug, Default)]
pub struct ExpiryWarnings {
    warned: Mutex<HashMap<String, i64>>,
}

impl ExpiryWarnings {
    /// Notes a use of `issuer`'s static keys at `now`: counts it, and warns if it is time to.
    pub fn note(&self, issuer: &str, expires_at: i64, now: i64) -> KeysState {
        let left = expires_at.saturating_sub(now);
        let state = if left <= 0 {
            KeysState::Expired
        } else if left <= WARN_BEFORE {
            KeysState::Expiring
        } else {
            KeysState::Fresh
        };
        crate::metrics::count_static_keys(state);
        if state == KeysState::Fresh || !self.due(issuer, now) {
            return state;
        }
        if state == KeysState::Expired {
            tracing::warn!(%issuer, expires_at, "static issuer keys have expired: every token is refused until the issuer is registered again with its current JWKS");
        } else {
            tracing::warn!(%issuer, expires_at, seconds_left = left, "static issuer keys expire soon: register the issuer again with its current JWKS");
        }
        state
    }

    fn due(&self, issuer: &str, now: i64) -> bool {
        let mut warned = self.warned.lock().expect("warnings poisoned");
        match warned.get(issuer) {
            Some(last) if now - last < WARN_EVERY => false,
            _ => {
                if warned.len() > 10_000 {
                    warned.clear();
                }
                warned.insert(issuer.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_warnings_at_most_hourly() {
        let warnings = ExpiryWarnings::default();
        let expires = 1_000_000;
        assert_eq!(
            warnings.note("a/x", expires, expires - WARN_BEFORE - 1),
            KeysState::Fresh
        );
        assert!(warnings.due("fresh-never-warned", 0));
        assert_eq!(
            warnings.note("a/x", expires, expires - 60),
            KeysState::Expiring
        );
        assert!(
            !warnings.due("a/x", expires - 30),
            "warned twice within the hour"
        );
        assert_eq!(warnings.note("a/x", expires, expires), KeysState::Expired);
        assert!(warnings.due("a/x", expires + WARN_EVERY));
    }
}
