//! The one error type of verification, with stable codes for the decision log.

use super::fetch::FetchError;

/// Why a token (or an issuer configuration) was refused. Precise, for the decision log:
/// workloads are shown only a generic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("invalid verifier settings: {0}")]
    Settings(&'static str),
    #[error("invalid issuer configuration: {0}")]
    IssuerConfig(String),
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("encrypted tokens (JWE) are not accepted")]
    Encrypted,
    #[error("token {0} has duplicate JSON keys")]
    DuplicateKey(&'static str),
    #[error("algorithm `none` is not accepted")]
    AlgNone,
    #[error("algorithm `{0}` is not accepted")]
    AlgNotAllowed(String),
    #[error("token algorithm does not match the key")]
    AlgMismatch,
    #[error("critical header extensions (`crit`) are not accepted")]
    Crit,
    #[error("header `{0}` (embedded key or key URL) is not accepted")]
    EmbeddedKey(&'static str),
    #[error("key id is not acceptable")]
    BadKid,
    #[error("no key with id `{0}`")]
    UnknownKid(String),
    #[error("token has no key id and the issuer has several keys")]
    MissingKid,
    #[error("signature is not valid")]
    Signature,
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    #[error("claim `{0}` must be a string")]
    NotAString(&'static str),
    #[error("issuer does not match")]
    Issuer,
    #[error("claim `{0}` must be a non-negative integer number of seconds")]
    BadTime(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("token was issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("token lifetime of {lifetime}s exceeds the maximum of {max}s")]
    Lifetime { lifetime: i64, max: i64 },
    #[error("a claim holds a control character")]
    ControlCharacter,
    #[error("claim `kubernetes.io` does not name the service account `sub` names")]
    SubjectMismatch,
    #[error("claim `aud` must be a string or a non-empty list of strings")]
    BadAudience,
    #[error("token audience is not accepted")]
    Audience,
    #[error("the issuer's static keys have expired")]
    StaticKeysExpired,
    #[error("key set is invalid: {0}")]
    Jwks(String),
    #[error("issuer has no usable key")]
    NoUsableKeys,
    #[error("discovery document is invalid: {0}")]
    Discovery(String),
    #[error("fetching the {what} failed: {cause}")]
    Fetch {
        what: &'static str,
        cause: FetchError,
    },
    #[error("token review failed: {0}")]
    TokenReview(String),
    #[error("token review denied: {0}")]
    TokenReviewDenied(String),
}

impl VerifyError {
    /// A short stable code for the decision log and metrics (`malformed`, `alg`, `kid`,
    /// `signature`, `iss`, `exp`, ...).
    pub fn code(&self) -> &'static str {
        use VerifyError::*;
        match self {
            Settings(_) | IssuerConfig(_) => "config",
            Malformed(_) | Encrypted | DuplicateKey(_) | Crit | EmbeddedKey(_) => "malformed",
            AlgNone | AlgNotAllowed(_) | AlgMismatch => "alg",
            BadKid | UnknownKid(_) | MissingKid => "kid",
            Signature => "signature",
            MissingClaim(_) | NotAString(_) | BadTime(_) | BadAudience | ControlCharacter
            | SubjectMismatch => "claims",
            Issuer => "iss",
            Expired => "exp",
            NotYetValid => "nbf",
            IssuedInFuture => "iat",
            Lifetime { .. } => "lifetime",
            Audience => "aud",
            StaticKeysExpired | Jwks(_) | NoUsableKeys => "keys",
            Discovery(_) => "discovery",
            Fetch { .. } => "fetch",
            TokenReview(_) => "token_review_failed",
            TokenReviewDenied(_) => "token_review_denied",
        }
    }

    /// Whether the failure is on the issuer's side (unreachable, broken answers, no keys)
    /// rather than a bad token: worth a retry, an alert, or a 503 instead of a 4xx.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            VerifyError::Fetch { .. }
                | VerifyError::Discovery(_)
                | VerifyError::Jwks(_)
                | VerifyError::NoUsableKeys
                | VerifyError::TokenReview(_)
        )
    }
}
