//! Signing keys: generation (aws-lc-rs), reload from PKCS#8, and JWS signing (`jws`).

use super::algorithm::{Algorithm, KeyError};
use super::jwk::{self, jwk_thumbprint};
use super::jws::{self, KeyPair};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
};
use jsonwebtoken::Header;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// One of Tollgate's signing keys: private PKCS#8 material, its public JWK and its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    created_at: i64,
    pkcs8: Vec<u8>,
    public_jwk: Value,
    /// Parsed once: signing must not parse the key again.
    pair: Arc<KeyPair>,
}

impl fmt::Debug for SigningKey {
    // Never print the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key: P-256 for ES256, 2048-bit RSA for RS256, Ed25519 for EdDSA.
    /// `now` (seconds since the epoch) is recorded as its creation time.
    pub fn generate(alg: Algorithm, now: i64) -> Result<SigningKey, KeyError> {
        let failed = |_| KeyError::Generate { alg };
        let pkcs8 = match alg {
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(failed)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(failed)?
                .as_der()
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
        };
        let (public, pair) = parse(alg, &pkcs8)?;
        let kid = jwk_thumbprint(&public)?;
        Ok(SigningKey::assemble(kid, alg, now, pkcs8, public, pair))
    }

    /// Reloads a stored key. Fails when the material is not a key for `alg`, or when `kid`
    /// is not its thumbprint (a swapped or corrupted row would otherwise publish a `kid`
    /// that verifies nothing).
    pub fn from_parts(
        kid: &str,
        alg: Algorithm,
        pkcs8_der: &[u8],
        created_at: i64,
    ) -> Result<SigningKey, KeyError> {
        let (public, pair) = parse(alg, pkcs8_der)?;
        let actual = jwk_thumbprint(&public)?;
        if actual != kid {
            return Err(KeyError::KidMismatch {
                stored: kid.to_owned(),
                actual,
            });
        }
        Ok(SigningKey::assemble(
            actual,
            alg,
            created_at,
            pkcs8_der.to_vec(),
            public,
            pair,
        ))
    }

    fn assemble(
        kid: String,
        alg: Algorithm,
        created_at: i64,
        pkcs8: Vec<u8>,
        mut public_jwk: Value,
        pair: KeyPair,
    ) -> SigningKey {
        if let Some(members) = public_jwk.as_object_mut() {
            members.insert("kid".into(), kid.clone().into());
            members.insert("alg".into(), alg.as_str().into());
            members.insert("use".into(), "sig".into());
        }
        SigningKey {
            kid,
            alg,
            created_at,
            pkcs8,
            public_jwk,
            pair: Arc::new(pair),
        }
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// When the key was created, in seconds since the epoch.
    pub fn created_at(&self) -> i64 {
        self.created_at
    }

    /// The private key as PKCS#8 DER, for storage. Treat it as a secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK with `kid`, `alg` and `use: "sig"`.
    pub fn public_jwk(&self) -> Value {
        self.public_jwk.clone()
    }

    /// Signs `claims` as a compact JWS with the header `{alg, typ: "JWT", kid}`.
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        self.sign_with_typ(Some("JWT"), claims)
    }

    /// Signs `claims` with the header `{alg, kid}` and the given `typ`, or none (Kubernetes
    /// ServiceAccount tokens carry no `typ`).
    pub fn sign_with_typ(
        &self,
        typ: Option<&str>,
        claims: &impl serde::Serialize,
    ) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.to_jsonwebtoken());
        header.typ = typ.map(str::to_owned);
        header.kid = Some(self.kid.clone());
        jws::compact(&header, claims, &self.pair).map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// Parses PKCS#8 for `alg` into the public JWK members and the key pair that signs.
fn parse(alg: Algorithm, pkcs8: &[u8]) -> Result<(Value, KeyPair), KeyError> {
    let invalid = |reason: String| KeyError::InvalidKey { alg, reason };
    match alg {
        Algorithm::Es256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .map_err(|e| invalid(e.to_string()))?;
            Ok((jwk::ec_public(&pair)?, KeyPair::Es256(pair)))
        }
        Algorithm::Rs256 => {
            let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| invalid(e.to_string()))?;
            if pair.public_modulus_len() < 256 {
                return Err(invalid(format!(
                    "{} bit modulus, at least 2048 required",
                    pair.public_modulus_len() * 8
                )));
            }
            Ok((jwk::rsa_public(&pair), KeyPair::Rs256(pair)))
        }
        Algorithm::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| invalid(e.to_string()))?;
            Ok((jwk::ed25519_public(&pair), KeyPair::EdDsa(pair)))
        }
    }
}
