//! Public JWKs of the keys we generate, and their RFC 7638 thumbprints.

use super::algorithm::{Algorithm, KeyError};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public members of an RSA key (RFC 7518 §6.3.1): unsigned big-endian, no leading zeros.
pub(super) fn rsa_public(pair: &RsaKeyPair) -> Value {
    let public = pair.public_key();
    json!({
        "kty": "RSA",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    })
}

/// The public members of a P-256 key (RFC 7518 §6.2.1), from the uncompressed point `04 || x || y`.
pub(super) fn ec_public(pair: &EcdsaKeyPair) -> Result<Value, KeyError> {
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 0x04 {
        return Err(KeyError::InvalidKey {
            alg: Algorithm::Es256,
            reason: "public point is not an uncompressed P-256 point".into(),
        });
    }
    Ok(json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64(&point[1..33]),
        "y": b64(&point[33..65]),
    }))
}

/// The public members of an Ed25519 key (RFC 8037 §2).
pub(super) fn ed25519_public(pair: &Ed25519KeyPair) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64(pair.public_key().as_ref()),
    })
}

/// The RFC 7638 thumbprint of a public JWK: base64url (no padding) of the SHA-256 of its
/// required members, in lexicographic order, without whitespace.
///
/// Supports `RSA` (`e`, `kty`, `n`), `EC` (`crv`, `kty`, `x`, `y`) and `OKP` (`crv`, `kty`, `x`).
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, KeyError> {
    let member = |name: &str| -> Result<&str, KeyError> {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| KeyError::InvalidJwk(format!("missing string member `{name}`")))
    };
    let kty = member("kty")?;
    // Members are base64url strings or fixed names; serde_json escapes them exactly as the
    // RFC's canonical form requires (they contain nothing to escape).
    let canonical = match kty {
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            Value::from(member("e")?),
            Value::from(member("n")?)
        ),
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            Value::from(member("crv")?),
            Value::from(member("x")?),
            Value::from(member("y")?)
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            Value::from(member("crv")?),
            Value::from(member("x")?)
        ),
        other => {
            return Err(KeyError::InvalidJwk(format!(
                "unsupported key type `{other}`"
            )));
        }
    };
    Ok(b64(&Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 7638 §3.1.
    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_ignores_optional_members_and_their_order() {
        let a = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let b = json!({"x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "use": "sig", "crv": "Ed25519", "kty": "OKP", "kid": "x"});
        assert_eq!(jwk_thumbprint(&a).unwrap(), jwk_thumbprint(&b).unwrap());
    }

    /// RFC 8037 Appendix A.3 gives the thumbprint of its Ed25519 example key.
    #[test]
    fn thumbprint_matches_the_rfc_8037_example() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn thumbprint_rejects_incomplete_or_unknown_keys() {
        assert!(jwk_thumbprint(&json!({"kty": "RSA", "n": "AQAB"})).is_err());
        assert!(jwk_thumbprint(&json!({"kty": "oct", "k": "AQAB"})).is_err());
        assert!(jwk_thumbprint(&json!({"kty": 1})).is_err());
    }
}
