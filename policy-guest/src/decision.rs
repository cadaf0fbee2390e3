//! What a policy answers: allow with a grant, or deny with a reason.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

/// What an allowed workload receives. Build it with [`Grant::new`] and the chained setters.
///
/// The host intersects the grant with the identity's own limits: scopes outside the identity's
/// allowed scopes are dropped and the TTL is capped by the identity's maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// A cap on the issued token's lifetime, in seconds.
    pub ttl_seconds: Option<u32>,
    /// Extra claims for the issued token, as (name, JSON value) pairs.
    pub claims: Vec<(String, String)>,
}

impl Grant {
    /// An empty grant: no scopes, the identity's default TTL, no extra claims.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Adds several scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Caps the issued token's lifetime.
    pub fn ttl_seconds(mut self, ttl: u32) -> Self {
        self.ttl_seconds = Some(ttl);
        self
    }

    /// Adds a claim to the issued token; `value` is serialized to JSON.
    ///
    /// # Panics
    ///
    /// Never for strings, numbers, booleans and collections of them; only for values whose
    /// `Serialize` implementation fails (such as maps with non-string keys).
    pub fn claim(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let json = serde_json::to_string(&value).expect("claim value serializes to JSON");
        self.claims.push((name.into(), json));
        self
    }
}

/// Why a request was denied. The code is short and machine-readable (`namespace`, `pod`, ...);
/// the message is for the tenant's decision log and is never shown to the workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Denial {
    /// A short machine-readable reason, such as `namespace`.
    pub code: String,
    /// A human-readable explanation for the decision log.
    pub message: String,
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The workload may assume the identity, with this grant.
    Allow(Grant),
    /// The workload may not assume the identity.
    Deny(Denial),
}

impl Decision {
    /// Allows with the given grant.
    pub fn allow(grant: Grant) -> Self {
        Self::Allow(grant)
    }

    /// Denies with a reason code and a message for the decision log.
    pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Deny(Denial {
            code: code.into(),
            message: message.into(),
        })
    }

    /// Whether this is an allow.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// The grant, if allowed.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Self::Allow(grant) => Some(grant),
            Self::Deny(_) => None,
        }
    }

    /// The denial code, if denied.
    pub fn denial_code(&self) -> Option<&str> {
        match self {
            Self::Allow(_) => None,
            Self::Deny(denial) => Some(&denial.code),
        }
    }
}
