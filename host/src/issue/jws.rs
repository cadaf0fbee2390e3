//! Compact JWS serialization (RFC 7515) with a key pair parsed once.
//!
//! `jsonwebtoken::encode` parses the PKCS#8 key on every call, and for P-256 that derives the
//! public point again (a scalar multiplication): 7% of the server's samples at peak, more than
//! the signature itself (BENCHMARKS.md). The header is still `jsonwebtoken`'s `Header`, so
//! tokens are byte for byte what `encode` wrote.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use serde::Serialize;

/// A parsed private key of one of the algorithms Tollgate signs with.
pub(super) enum KeyPair {
    /// ES256: ECDSA P-256 with SHA-256, fixed-size `r || s` signatures.
    Es256(EcdsaKeyPair),
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256(RsaKeyPair),
    /// EdDSA: Ed25519.
    EdDsa(Ed25519KeyPair),
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub(super) enum JwsError {
    #[error("cannot serialize the {0}: {1}")]
    Serialize(&'static str, serde_json::Error),
    #[error("the signature failed")]
    Sign,
}

impl KeyPair {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JwsError> {
        let rng = SystemRandom::new();
        match self {
            KeyPair::Es256(pair) => pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| JwsError::Sign),
            KeyPair::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| JwsError::Sign)?;
                Ok(signature)
            }
            KeyPair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// `BASE64URL(header) . BASE64URL(claims) . BASE64URL(signature)`.
pub(super) fn compact(
    header: &Header,
    claims: &impl Serialize,
    key: &KeyPair,
) -> Result<String, JwsError> {
    let header = serde_json::to_vec(header).map_err(|e| JwsError::Serialize("header", e))?;
    let claims = serde_json::to_vec(claims).map_err(|e| JwsError::Serialize("claims", e))?;
    let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 400);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}
