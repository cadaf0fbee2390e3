//! Key set entries that must never verify a token.

use super::*;
use jwks::KeySet;

fn with(jwk: &Value, key: &str, value: Option<Value>) -> Value {
    let mut jwk = jwk.clone();
    let map = jwk.as_object_mut().unwrap();
    match value {
        Some(value) => map.insert(key.to_owned(), value),
        None => map.remove(key),
    };
    jwk
}

#[tokio::test]
async fn unusable_entries_are_skipped_and_never_verify() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let token = key.sign(&claims());
    let short_modulus = b64(&[0xc5; 128]);
    let entries = [
        (
            "oct",
            json!({ "kty": "oct", "kid": "k1", "k": b64(b"secret") }),
        ),
        ("use enc", with(&key.jwk, "use", Some(json!("enc")))),
        (
            "key_ops encrypt",
            with(&key.jwk, "key_ops", Some(json!(["encrypt"]))),
        ),
        (
            "1024-bit RSA",
            with(&key.jwk, "n", Some(json!(short_modulus))),
        ),
        (
            "private parts",
            with(&key.jwk, "d", Some(json!(b64(b"private")))),
        ),
        (
            "padded n",
            with(
                &key.jwk,
                "n",
                Some(json!(format!("{}=", key.jwk["n"].as_str().unwrap()))),
            ),
        ),
        ("even e", with(&key.jwk, "e", Some(json!(b64(&[1, 0, 0]))))),
        ("e = 1", with(&key.jwk, "e", Some(json!(b64(&[1]))))),
        ("unknown kty", with(&key.jwk, "kty", Some(json!("RSA-PSS")))),
        ("alg HS256", with(&key.jwk, "alg", Some(json!("HS256")))),
        ("alg none", with(&key.jwk, "alg", Some(json!("none")))),
        ("alg for EC", with(&key.jwk, "alg", Some(json!("ES256")))),
        ("hostile kid", with(&key.jwk, "kid", Some(json!("k1\r\n")))),
    ];
    for (what, entry) in entries {
        let set = KeySet::from_value(&json!({ "keys": [entry] })).unwrap();
        assert!(set.keys.is_empty(), "{what}");
        assert_eq!(set.skipped.len(), 1, "{what}");
        let issuer = jwks_issuer(json!({ "keys": [entry] }));
        assert!(verifier().validate_issuer(&issuer).is_err(), "{what}");
        assert!(check(&issuer, &token).await.is_err(), "{what}");
    }
}

#[tokio::test]
async fn duplicated_kids_disable_every_entry_with_that_kid() {
    let good = TestKey::rsa("k1", Algorithm::RS256);
    let evil = TestKey::rsa("k1", Algorithm::RS256);
    let issuer = static_issuer(&[&good, &evil]);
    for key in [&good, &evil] {
        assert_eq!(
            check(&issuer, &key.sign(&claims())).await,
            Err(VerifyError::UnknownKid("k1".to_owned()))
        );
    }
    let set = KeySet::from_value(&json!({ "keys": [good.jwk, evil.jwk] })).unwrap();
    assert_eq!(set.skipped.len(), 2);
}

#[tokio::test]
async fn key_alg_and_kind_must_match_the_token() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256);
    let ec = TestKey::ec("ec", Algorithm::ES256);
    // The RSA key pinned to RS384 refuses an RS256 token.
    let pinned = with(&rsa.jwk, "alg", Some(json!("RS384")));
    let issuer = jwks_issuer(json!({ "keys": [pinned, ec.jwk] }));
    assert_eq!(
        check(&issuer, &rsa.sign(&claims())).await,
        Err(VerifyError::AlgMismatch)
    );
    // A token naming the EC key but claiming an RSA algorithm (and the reverse).
    let mut header = rsa.header();
    header["kid"] = json!("ec");
    let token = rsa.sign_raw(&header.to_string(), &claims().to_string());
    assert_eq!(check(&issuer, &token).await, Err(VerifyError::AlgMismatch));
    let p384 = TestKey::ec("ec", Algorithm::ES384);
    assert_eq!(
        check(&issuer, &p384.sign(&claims())).await,
        Err(VerifyError::AlgMismatch)
    );
    // PS384/PS512 are outside the allowlist even for RSA keys.
    let ps512 = forge_alg(&rsa, "PS512");
    assert_eq!(
        check(&issuer, &ps512).await,
        Err(VerifyError::AlgNotAllowed("PS512".to_owned()))
    );
}

fn forge_alg(key: &TestKey, alg: &str) -> String {
    let mut header = key.header();
    header["alg"] = json!(alg);
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes()),
        b64(&[7; 256])
    )
}

#[tokio::test]
async fn kid_less_tokens_need_a_single_key() {
    let a = TestKey::ed("a");
    let b = TestKey::ed("b");
    let header = json!({ "alg": "EdDSA" });
    let token = a.sign_raw(&header.to_string(), &claims().to_string());
    check(&static_issuer(&[&a]), &token).await.unwrap();
    assert_eq!(
        check(&static_issuer(&[&a, &b]), &token).await,
        Err(VerifyError::MissingKid)
    );
}

#[tokio::test]
async fn ec_coordinates_and_curves_are_checked() {
    let ec = TestKey::ec("ec", Algorithm::ES256);
    for (what, entry) in [
        ("P-521", with(&ec.jwk, "crv", Some(json!("P-521")))),
        ("secp256k1", with(&ec.jwk, "crv", Some(json!("secp256k1")))),
        ("short x", with(&ec.jwk, "x", Some(json!(b64(&[1; 31]))))),
        ("missing y", with(&ec.jwk, "y", None)),
        (
            "ed curve name",
            with(&ec.jwk, "crv", Some(json!("Ed25519"))),
        ),
    ] {
        let set = KeySet::from_value(&json!({ "keys": [entry] })).unwrap();
        assert!(set.keys.is_empty(), "{what}");
    }
    // A point off the curve parses but never verifies.
    let off_curve = with(&ec.jwk, "y", Some(json!(b64(&[1; 32]))));
    let issuer = jwks_issuer(json!({ "keys": [off_curve] }));
    assert_eq!(
        check(&issuer, &ec.sign(&claims())).await,
        Err(VerifyError::Signature)
    );
}

#[test]
fn key_set_documents_must_be_well_formed() {
    for doc in [
        json!([]),
        json!({ "keys": {} }),
        json!({}),
        json!({ "keys": vec![json!({}); 101] }),
    ] {
        assert!(
            matches!(KeySet::from_value(&doc), Err(VerifyError::Jwks(_))),
            "{doc}"
        );
    }
    assert!(matches!(
        KeySet::from_bytes(br#"{"keys":[],"keys":[]}"#),
        Err(VerifyError::Jwks(_))
    ));
    let issuer = jwks_issuer(json!({ "keys": [] }));
    assert_eq!(
        verifier().validate_issuer(&issuer),
        Err(VerifyError::NoUsableKeys)
    );
}
