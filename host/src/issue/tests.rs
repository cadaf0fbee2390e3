//! Keys and key rings, checked with jsonwebtoken's verifier against the published JWKs.

use super::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;

const ALL: [Algorithm; 3] = [Algorithm::Es256, Algorithm::Rs256, Algorithm::EdDsa];

/// RSA generation takes a while on a busy machine: generate one key per algorithm once.
fn key(alg: Algorithm) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        ALL.iter()
            .map(|&alg| SigningKey::generate(alg, 1_700_000_000).unwrap())
            .collect()
    });
    keys.iter().find(|k| k.alg() == alg).unwrap()
}

fn verify(token: &str, jwk: &Value, alg: Algorithm) -> jsonwebtoken::errors::Result<Value> {
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let decoding = DecodingKey::from_jwk(&jwk)?;
    let mut validation = Validation::new(alg.to_jsonwebtoken());
    validation.set_audience(&["api"]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    decode::<Value>(token, &decoding, &validation).map(|data| data.claims)
}

fn claims() -> Value {
    json!({"sub": "tenants/acme/identities/deployer", "aud": "api", "exp": 4_000_000_000_i64})
}

#[test]
fn each_algorithm_signs_tokens_that_verify_with_the_published_jwk() {
    for alg in ALL {
        let key = key(alg);
        let token = key.sign(&claims()).unwrap();
        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, alg.to_jsonwebtoken());
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(
            verify(&token, &key.public_jwk(), alg).unwrap(),
            claims(),
            "{alg}"
        );
    }
}

/// Signing keeps its key parsed (`jws.rs`); the tokens must stay what `jsonwebtoken::encode`
/// writes: byte for byte where the signature is deterministic (RS256, EdDSA), and the same
/// header and payload where it is not (ES256 is randomized).
#[test]
fn tokens_are_what_jsonwebtoken_encode_writes() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    for alg in ALL {
        let key = key(alg);
        let der = key.pkcs8_der();
        let encoding = match alg {
            Algorithm::Es256 => EncodingKey::from_ec_der(der),
            // jsonwebtoken signs RSA from PKCS#1 DER.
            Algorithm::Rs256 => EncodingKey::from_rsa_der(
                rsa::RsaPrivateKey::from_pkcs8_der(der)
                    .unwrap()
                    .to_pkcs1_der()
                    .unwrap()
                    .as_bytes(),
            ),
            Algorithm::EdDsa => EncodingKey::from_ed_der(der),
        };
        let mut header = Header::new(alg.to_jsonwebtoken());
        header.kid = Some(key.kid().to_owned());
        let expected = encode(&header, &claims(), &encoding).unwrap();
        let token = key.sign(&claims()).unwrap();
        if alg == Algorithm::Es256 {
            let signed = |t: &str| t.rsplit_once('.').unwrap().0.to_owned();
            assert_eq!(signed(&token), signed(&expected), "{alg}");
        } else {
            assert_eq!(token, expected, "{alg}");
        }
    }
}

#[test]
fn published_jwks_carry_kid_alg_and_use() {
    let expected = [
        (Algorithm::Es256, "EC", &["crv", "x", "y"][..]),
        (Algorithm::Rs256, "RSA", &["n", "e"][..]),
        (Algorithm::EdDsa, "OKP", &["crv", "x"][..]),
    ];
    for (alg, kty, members) in expected {
        let jwk = key(alg).public_jwk();
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["kid"], key(alg).kid());
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        for member in members {
            assert!(jwk[member].is_string(), "{alg} lacks {member}");
        }
        assert!(
            jwk.get("d").is_none() && jwk.get("p").is_none(),
            "private member published"
        );
    }
    assert_eq!(key(Algorithm::Rs256).public_jwk()["e"], "AQAB");
    // 2048-bit modulus: 256 bytes, 342 base64url characters without padding.
    assert_eq!(
        key(Algorithm::Rs256).public_jwk()["n"]
            .as_str()
            .unwrap()
            .len(),
        342
    );
}

#[test]
fn kid_is_the_rfc_7638_thumbprint_of_the_public_key() {
    for alg in ALL {
        let key = key(alg);
        assert_eq!(key.kid(), jwk_thumbprint(&key.public_jwk()).unwrap());
        assert_eq!(key.kid().len(), 43, "base64url of 32 bytes");
    }
}

#[test]
fn a_token_does_not_verify_with_another_key_or_after_tampering() {
    let es = key(Algorithm::Es256);
    let token = es.sign(&claims()).unwrap();
    let other = SigningKey::generate(Algorithm::Es256, 0).unwrap();
    assert!(verify(&token, &other.public_jwk(), Algorithm::Es256).is_err());

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged =
        json!({"sub": "tenants/acme/identities/admin", "aud": "api", "exp": 4_000_000_000_i64});
    parts[1] = base64_url(&serde_json::to_vec(&forged).unwrap());
    assert!(verify(&parts.join("."), &es.public_jwk(), Algorithm::Es256).is_err());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn reloading_from_parts_gives_the_same_key() {
    for alg in ALL {
        let key = key(alg);
        let reloaded =
            SigningKey::from_parts(key.kid(), alg, key.pkcs8_der(), key.created_at()).unwrap();
        assert_eq!(reloaded.public_jwk(), key.public_jwk());
        assert_eq!(reloaded.kid(), key.kid());
        assert_eq!(reloaded.created_at(), key.created_at());
        let token = reloaded.sign(&claims()).unwrap();
        assert!(verify(&token, &key.public_jwk(), alg).is_ok());
    }
}

#[test]
fn reloading_rejects_a_wrong_kid_algorithm_or_material() {
    let es = key(Algorithm::Es256);
    let wrong_kid = SigningKey::from_parts("not-the-kid", Algorithm::Es256, es.pkcs8_der(), 0);
    assert!(matches!(wrong_kid, Err(KeyError::KidMismatch { .. })));

    let rs = key(Algorithm::Rs256);
    for (alg, der) in [
        (Algorithm::Rs256, es.pkcs8_der()),
        (Algorithm::EdDsa, rs.pkcs8_der()),
        (Algorithm::Es256, key(Algorithm::EdDsa).pkcs8_der()),
        (Algorithm::Es256, &b"not a key"[..]),
    ] {
        let result = SigningKey::from_parts(es.kid(), alg, der, 0);
        assert!(
            matches!(result, Err(KeyError::InvalidKey { .. })),
            "{alg}: {result:?}"
        );
    }
}

#[test]
fn debug_output_never_contains_the_private_key() {
    let printed = format!("{:?}", key(Algorithm::EdDsa));
    assert!(printed.contains(key(Algorithm::EdDsa).kid()));
    assert!(!printed.contains("pkcs8") && !printed.contains("encoding"));
}

#[test]
fn algorithm_names_round_trip_through_serde_and_clap() {
    use clap::ValueEnum;
    for alg in ALL {
        let json = serde_json::to_value(alg).unwrap();
        assert_eq!(json, alg.as_str());
        assert_eq!(serde_json::from_value::<Algorithm>(json).unwrap(), alg);
        assert_eq!(Algorithm::from_str(alg.as_str(), false).unwrap(), alg);
    }
    assert_eq!(Algorithm::default(), Algorithm::Es256);
    assert!(serde_json::from_value::<Algorithm>(json!("HS256")).is_err());
    assert!(serde_json::from_value::<Algorithm>(json!("none")).is_err());
}

#[test]
fn rotation_makes_the_new_key_current_and_keeps_the_previous_one_published() {
    let old = key(Algorithm::Es256).clone();
    let mut ring = KeyRing::new(vec![old.clone()]);
    assert_eq!(ring.current().kid(), old.kid());
    assert!(!ring.needs_rotation(old.created_at() + 59, Duration::from_secs(60)));
    assert!(ring.needs_rotation(old.created_at() + 60, Duration::from_secs(60)));

    let new = SigningKey::generate(Algorithm::Es256, old.created_at() + 60).unwrap();
    let token_before = ring.current().sign(&claims()).unwrap();
    ring.rotate(new.clone(), 1);
    assert_eq!(ring.current().kid(), new.kid());
    assert!(!ring.needs_rotation(new.created_at() + 59, Duration::from_secs(60)));
    let jwks = ring.jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new.kid(), old.kid()]);

    // A token signed before the rotation still verifies against the published set.
    let published = ring.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old.kid())
        .cloned()
        .unwrap();
    assert!(verify(&token_before, &published, Algorithm::Es256).is_ok());
    assert_eq!(
        decode_header(ring.current().sign(&claims()).unwrap())
            .unwrap()
            .kid
            .as_deref(),
        Some(new.kid())
    );
}

#[test]
fn rotation_drops_keys_beyond_keep_previous() {
    let keys: Vec<SigningKey> = (0..4)
        .map(|i| SigningKey::generate(Algorithm::EdDsa, 100 * i).unwrap())
        .collect();
    let mut ring = KeyRing::new(vec![keys[0].clone()]);
    for key in &keys[1..] {
        ring.rotate(key.clone(), 2);
    }
    let kids: Vec<&str> = ring.keys().iter().map(SigningKey::kid).collect();
    assert_eq!(kids, [keys[3].kid(), keys[2].kid(), keys[1].kid()]);
    assert!(ring.find(keys[0].kid()).is_none());
    assert_eq!(ring.previous().len(), 2);

    ring.rotate(keys[3].clone(), 0);
    assert_eq!(ring.keys().len(), 1);
}

#[test]
fn a_ring_built_from_storage_makes_the_newest_key_current() {
    let a = SigningKey::generate(Algorithm::EdDsa, 10).unwrap();
    let b = SigningKey::generate(Algorithm::EdDsa, 30).unwrap();
    let c = SigningKey::generate(Algorithm::EdDsa, 20).unwrap();
    let ring = KeyRing::new(vec![a.clone(), b.clone(), c.clone()]);
    let kids: Vec<&str> = ring.keys().iter().map(SigningKey::kid).collect();
    assert_eq!(kids, [b.kid(), c.kid(), a.kid()]);
    assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 3);
}
