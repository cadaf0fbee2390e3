//! The algorithms Tollgate signs with, and the one error of key handling: a leaf that the key,
//! JWK and signer modules all use, so that none of them imports another for its types.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A JWS algorithm Tollgate signs with.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256: small keys, fast signing (the default).
    #[default]
    #[serde(rename = "ES256")]
    #[value(name = "ES256", alias = "es256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and a 2048-bit key: what every relying party supports.
    #[serde(rename = "RS256")]
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
}

impl Algorithm {
    /// The JOSE name (`ES256`, `RS256`, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The matching jsonwebtoken algorithm.
    pub fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be generated, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library failed to generate a key.
    #[error("cannot generate a {alg} key")]
    Generate {
        /// The algorithm asked for.
        alg: Algorithm,
    },
    /// Stored key material does not parse as a key for its algorithm.
    #[error("invalid {alg} key: {reason}")]
    InvalidKey {
        /// The algorithm the key was stored with.
        alg: Algorithm,
        /// What was wrong.
        reason: String,
    },
    /// A stored key's `kid` is not the thumbprint of its public key.
    #[error("key id `{stored}` does not match the key (its thumbprint is `{actual}`)")]
    KidMismatch {
        /// The `kid` it was stored under.
        stored: String,
        /// The thumbprint of the key material.
        actual: String,
    },
    /// A JWK lacks a member or has an unsupported type.
    #[error("invalid jwk: {0}")]
    InvalidJwk(String),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(String),
}
