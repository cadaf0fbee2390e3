//! Shared fixtures of the verification tests: keys made with aws-lc-rs, tokens signed with
//! jsonwebtoken (with headers written by hand, so tests can forge any header), and a local
//! issuer / API server on 127.0.0.1.

mod attacks;
mod claims;
mod fetching;
mod jwks_rules;
mod modes;
mod review;
mod server;
mod tls;

use super::fetch::FetchError;
use super::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// A fixed "now" for tokens checked without a clock.
pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://k8s.example";
pub const AUDIENCE: &str = "https://sts.example.com/acme";

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    pub fn rsa(kid: &str, alg: Algorithm) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD
                .encode(pkcs8.as_ref())
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "kid": kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        Self {
            kid: kid.to_owned(),
            alg,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk,
        }
    }

    pub fn ec(kid: &str, alg: Algorithm) -> Self {
        let (signing, crv, len) = match alg {
            Algorithm::ES256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            _ => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        };
        let pair = EcdsaKeyPair::generate(signing).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": crv, "kid": kid,
            "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..]),
        });
        Self {
            kid: kid.to_owned(),
            alg,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    pub fn ed(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
            "x": b64(pair.public_key().as_ref()),
        });
        Self {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk,
        }
    }

    /// The default header of this key: `alg`, `kid`, `typ`.
    pub fn header(&self) -> Value {
        json!({ "alg": alg_name(self.alg), "kid": self.kid, "typ": "JWT" })
    }

    /// Signs `claims` under the default header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&self.header().to_string(), &claims.to_string())
    }

    /// Signs raw header and payload JSON texts (which may be deliberately broken).
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg)
            .expect("signing");
        format!("{input}.{signature}")
    }
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        _ => unreachable!("no test uses {alg:?}"),
    }
}

/// Claims of a valid projected ServiceAccount token for [`ISSUER`] at [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "system:serviceaccount:prod:deployer",
        "aud": [AUDIENCE],
        "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 3600,
        "jti": "9f1c",
        "kubernetes.io": {
            "namespace": "prod",
            "serviceaccount": { "name": "deployer", "uid": "sa-uid-1" },
            "pod": { "name": "deployer-7d9f", "uid": "pod-uid-1" },
            "node": { "name": "node-a", "uid": "node-uid-1" },
        },
    })
}

/// `claims()` with top-level `key` replaced (or removed when `value` is `None`).
pub fn claims_with(key: &str, value: Option<Value>) -> Value {
    let mut claims = claims();
    let map = claims.as_object_mut().unwrap();
    match value {
        Some(value) => map.insert(key.to_owned(), value),
        None => map.remove(key),
    };
    claims
}

pub fn audiences() -> Vec<String> {
    vec![AUDIENCE.to_owned()]
}

pub fn static_issuer(keys: &[&TestKey]) -> IssuerConfig {
    jwks_issuer(json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
}

pub fn jwks_issuer(jwks: Value) -> IssuerConfig {
    IssuerConfig {
        cache_key: "acme/static".to_owned(),
        issuer_url: ISSUER.to_owned(),
        source: IssuerSource::StaticJwks {
            jwks,
            expires_at: NOW + 86_400,
        },
    }
}

pub fn verifier() -> Verifier {
    Verifier::new(VerifySettings {
        allow_insecure: true,
        ..VerifySettings::default()
    })
    .unwrap()
}

/// Verifies against a static issuer at [`NOW`] with the default audience.
pub async fn check(issuer: &IssuerConfig, token: &str) -> Result<Value, VerifyError> {
    verifier().verify(issuer, token, &audiences(), NOW).await
}
