//! Why an exchange failed: typed to the cause, so the decision log, the metrics and the API error
//! each take what they need. Only the kind reaches the caller (see `api::error`); the detail
//! goes to the log and the tenant's decision record. Each message holds its cause's text once:
//! the causes are fields, not `source()`s, so a chain printer never repeats them.

use crate::issue::{KeyError, OwnTokenError};
use crate::policy::RequestError;
use crate::store::StoreError;
use crate::verify::VerifyError;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("unknown identity")]
    UnknownIdentity,
    #[error("subject token rejected: {0}")]
    InvalidToken(TokenRejection),
    #[error("policy denied: {code}: {message}")]
    Denied { code: String, message: String },
    #[error("requested scope not granted: `{0}`")]
    InvalidScope(String),
    #[error("requested audience is not one of the identity's")]
    InvalidTarget,
    /// The client's address is outside the identity's trusted ranges (or unknown).
    #[error("client address {} is outside the identity's trusted ranges", .0.as_deref().unwrap_or("(unknown)"))]
    UntrustedAddress(Option<String>),
    /// An access token presented for renewal is not active, or its session ended.
    #[error("token cannot be renewed: {0}")]
    NotRenewable(Inactive),
    #[error("internal error: {0}")]
    Internal(Failure),
}

/// Why a subject token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejection {
    /// Verification refused it (`code: message`, the codes of [`VerifyError::code`]).
    #[error("{code}: {error}", code = .0.code(), error = .0)]
    Verify(VerifyError),
    /// Its verified claims do not make a policy request.
    #[error("claims: {0}")]
    Claims(RequestError),
    /// Tollgate's own access tokens are never subject tokens.
    #[error("token was issued by this server")]
    OwnToken,
}

/// Why one of this server's access tokens is not active (introspection) or not renewable.
#[derive(Debug, thiserror::Error)]
pub enum Inactive {
    #[error("{0}")]
    Invalid(OwnTokenError),
    #[error("its claims are not this server's: {0}")]
    Claims(serde_json::Error),
    #[error("it was issued by another server")]
    OtherIssuer,
    #[error("it belongs to another tenant")]
    OtherTenant,
    #[error("its identity no longer exists")]
    IdentityGone,
    #[error("it was revoked")]
    Revoked,
    #[error("its {0} uses are used up")]
    UsedUp(u32),
    #[error("it is presented from {0}, outside its trusted ranges")]
    Address(String),
    #[error("its session reached the identity's max ttl")]
    SessionEnded,
}

/// A failure of the server, not of the request.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Store(StoreError),
    #[error("identity's issuer `{0}` is missing")]
    MissingIssuer(String),
    #[error("stored issuer source: {0}")]
    IssuerSource(serde_json::Error),
    #[error("policy `{0}` is not loaded")]
    PolicyNotLoaded(String),
    #[error("signing: {0}")]
    Signing(KeyError),
    #[error("the decision record was not committed: {0}")]
    NotRecorded(StoreError),
}

impl Failure {
    /// Whether the failure is the database being unreachable: the caller may retry soon.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(error) | Self::NotRecorded(error) => error.is_unavailable(),
            _ => false,
        }
    }
}

impl ExchangeError {
    /// The code the decision log records for a refusal that is not the policy's own.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownIdentity => "unknown-identity",
            Self::InvalidToken(_) => "invalid-token",
            Self::Denied { .. } => "denied",
            Self::InvalidScope(_) => "invalid-scope",
            Self::InvalidTarget => "invalid-target",
            Self::UntrustedAddress(_) => "untrusted-address",
            Self::NotRenewable(_) => "not-renewable",
            Self::Internal(_) => "internal",
        }
    }

    /// Whether the subject token had verified: everything refused after verification
    /// (policy, scope, audience) was asked by a holder of a valid token.
    pub fn after_verification(&self) -> bool {
        matches!(
            self,
            Self::Denied { .. }
                | Self::InvalidScope(_)
                | Self::InvalidTarget
                | Self::UntrustedAddress(_)
        )
    }
}

impl From<StoreError> for ExchangeError {
    fn from(error: StoreError) -> Self {
        Self::Internal(Failure::Store(error))
    }
}

impl From<VerifyError> for ExchangeError {
    fn from(error: VerifyError) -> Self {
        Self::InvalidToken(TokenRejection::Verify(error))
    }
}

impl From<Failure> for ExchangeError {
    fn from(failure: Failure) -> Self {
        Self::Internal(failure)
    }
}
