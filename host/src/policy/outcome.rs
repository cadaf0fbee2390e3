//! What one evaluation produced: the decision, the fuel it burned, what it logged.

pub use super::sandbox::LogLine;
use serde::Serialize;
use std::time::Duration;

/// What an allowed workload receives, as the policy granted it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Grant {
    pub scopes: Vec<String>,
    pub ttl_seconds: Option<u32>,
    /// Extra claims for the issued token, parsed from the policy's JSON.
    pub claims: Vec<(String, serde_json::Value)>,
}

/// Who said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DenialSource {
    /// The policy decided to deny.
    Policy,
    /// The sandbox failed closed: trap, limit, malformed output, host error.
    Sandbox,
}

/// Why a request was denied. Never shown to the workload; kept for the decision log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub code: String,
    pub message: String,
    pub source: DenialSource,
}

impl Denial {
    pub fn sandbox(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            source: DenialSource::Sandbox,
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    Allow(Grant),
    Deny(Denial),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Self::Deny(denial) => Some(denial),
            Self::Allow(_) => None,
        }
    }

    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Self::Allow(grant) => Some(grant),
            Self::Deny(_) => None,
        }
    }
}

/// A decision as replay and shadow mode compare two: allowed or not, the denial code, the
/// granted scopes in order (claims and ttl are not compared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Answer {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl Answer {
    /// `allow` or `deny:CODE`: how a pair of answers is counted.
    pub fn label(&self) -> String {
        match (&self.code, self.allowed) {
            (_, true) => "allow".into(),
            (Some(code), false) => format!("deny:{code}"),
            (None, false) => "deny".into(),
        }
    }
}

impl From<&Decision> for Answer {
    fn from(decision: &Decision) -> Self {
        match decision {
            Decision::Allow(grant) => {
                let mut scopes = grant.scopes.clone();
                scopes.sort();
                scopes.dedup();
                Answer {
                    allowed: true,
                    code: None,
                    scopes,
                }
            }
            Decision::Deny(denial) => Answer {
                allowed: false,
                code: Some(denial.code.clone()),
                scopes: Vec::new(),
            },
        }
    }
}

/// One evaluation of a policy.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    #[serde(flatten)]
    pub decision: Decision,
    /// Fuel the decision burned, instantiation included.
    pub fuel_used: u64,
    /// Wall-clock time for instantiate + evaluate; in JSON `elapsed_us`, microseconds.
    #[serde(rename = "elapsed_us", serialize_with = "micros")]
    pub elapsed: Duration,
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
}

/// A duration in JSON: whole microseconds, under a key that ends in `_us` (docs/CONTRACTS.md).
pub(super) fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}
