//! What an issued access token says about its own life, read back when it is introspected,
//! renewed or revoked. The signature makes these claims trustworthy: the limits an identity had
//! when the token was issued travel with it, so a later change to the identity binds only later
//! tokens (except deletion and revocation, which the store knows).

use crate::store::IdentityRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `limits` claim: what the token's session may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// How many introspections may answer `active: true` over the session (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// Where the token may be presented from (absent: anywhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_cidrs: Vec<String>,
    /// No renewal of the token lives past this: the first token's issue plus the identity's
    /// `max_ttl_seconds`.
    pub renew_until: i64,
}

impl Limits {
    /// The limits of a session `identity` starts now, ending at `session_ends`.
    pub fn of(identity: &IdentityRecord, session_ends: i64) -> Limits {
        Limits {
            uses: (identity.num_uses > 0).then_some(identity.num_uses),
            trusted_cidrs: identity.trusted_cidrs.clone(),
            renew_until: session_ends,
        }
    }
}

/// The claims of an issued access token this server reads back.
#[derive(Debug, Clone, Deserialize)]
pub struct OwnClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Value,
    #[serde(default)]
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub tenant: String,
    /// The identity's unique id.
    pub identity: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The session: the first token's `jti` (a token from before sessions is its own).
    #[serde(default)]
    pub sid: Option<String>,
    /// When the session started.
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

impl OwnClaims {
    /// The session this token belongs to.
    pub fn session(&self) -> &str {
        self.sid.as_deref().unwrap_or(&self.jti)
    }

    /// When the session can live no longer.
    pub fn session_ends(&self) -> i64 {
        self.limits.as_ref().map_or(self.exp, |l| l.renew_until)
    }

    /// The scopes, split.
    pub fn scopes(&self) -> Vec<String> {
        self.scope.split_whitespace().map(str::to_owned).collect()
    }
}
