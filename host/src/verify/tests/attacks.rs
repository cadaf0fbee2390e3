//! Forged and malformed tokens (structure, header, key id, signature), each refused for the
//! right reason.

use super::server::TestServer;
use super::*;
use VerifyError::*;

fn rsa() -> TestKey {
    TestKey::rsa("k1", Algorithm::RS256)
}

/// `header.payload.` + the given signature, all written by hand.
fn forge(header: &Value, payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

#[tokio::test]
async fn alg_none_in_any_casing_is_refused() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    for alg in ["none", "None", "NONE", "nOnE", " none"] {
        let header = json!({ "alg": alg, "kid": "k1" });
        assert_eq!(
            check(&issuer, &forge(&header, &claims(), "")).await,
            Err(Malformed("signature is missing"))
        );
        let with_sig = forge(&header, &claims(), "c2ln");
        assert_eq!(check(&issuer, &with_sig).await, Err(AlgNone), "{alg}");
    }
}

#[tokio::test]
async fn hmac_with_the_public_key_as_secret_is_refused() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    // The classic confusion: HMAC keyed with the issuer's public key material.
    let secret = key.jwk["n"].as_str().unwrap().as_bytes().to_vec();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let hmac = TestKey {
            kid: "k1".to_owned(),
            alg,
            encoding: EncodingKey::from_secret(&secret),
            jwk: Value::Null,
        };
        let result = check(&issuer, &hmac.sign(&claims())).await;
        assert_eq!(result, Err(AlgNotAllowed(alg_name(alg).to_owned())));
    }
    let other = forge(&json!({ "alg": "RS1", "kid": "k1" }), &claims(), "c2ln");
    assert_eq!(
        check(&issuer, &other).await,
        Err(AlgNotAllowed("RS1".to_owned()))
    );
    let lower = forge(&json!({ "alg": "rs256", "kid": "k1" }), &claims(), "c2ln");
    assert!(matches!(
        check(&issuer, &lower).await,
        Err(AlgNotAllowed(_))
    ));
}

#[tokio::test]
async fn signature_tampering_is_refused() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let token = key.sign(&claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        check(&issuer, &format!("{input}.")).await,
        Err(Malformed("signature is missing"))
    );
    assert_eq!(
        check(&issuer, input).await,
        Err(Malformed("a compact JWS has exactly three segments"))
    );
    // Same header, other payload, original signature.
    let (_, signature) = token.rsplit_once('.').unwrap();
    let mut admin = claims_with(
        "sub",
        Some(json!("system:serviceaccount:kube-system:deployer")),
    );
    admin["kubernetes.io"]["namespace"] = json!("kube-system");
    let forged = forge(&key.header(), &admin, signature);
    assert_eq!(check(&issuer, &forged).await, Err(Signature));
    // Signed by another key with the same kid.
    let impostor = rsa();
    assert_eq!(
        check(&issuer, &impostor.sign(&claims())).await,
        Err(Signature)
    );
}

#[tokio::test]
async fn ecdsa_der_and_zero_signatures_are_refused() {
    let key = TestKey::ec("ec", Algorithm::ES256);
    let issuer = static_issuer(&[&key]);
    let token = key.sign(&claims());
    let (input, signature) = token.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    // DER form of the same (valid) r, s.
    let der_int = |bytes: &[u8]| {
        let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = raw.split_at(32);
    let body = [der_int(r), der_int(s)].concat();
    let der = [vec![0x30, body.len() as u8], body].concat();
    let zero = [0u8; 32];
    let key_set = jwks::KeySet::from_value(&json!({ "keys": [key.jwk] })).unwrap();
    for forged in [
        der,
        [zero.as_slice(), zero.as_slice()].concat(),
        [zero.as_slice(), s].concat(),
        [r, zero.as_slice()].concat(),
        raw[..63].to_vec(),
        [raw.as_slice(), &[0]].concat(),
    ] {
        let token = format!("{input}.{}", b64(&forged));
        assert_eq!(check(&issuer, &token).await, Err(Signature));
        // The library alone refuses them too: no reliance on our length pre-check.
        let alone = jsonwebtoken::crypto::verify(
            &b64(&forged),
            input.as_bytes(),
            &key_set.keys[0].key,
            Algorithm::ES256,
        );
        assert!(!alone.unwrap_or(false));
    }
    check(&issuer, &token).await.unwrap();
}

#[tokio::test]
async fn structure_attacks_are_refused() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let token = key.sign(&claims());
    let segs: Vec<&str> = token.split('.').collect();
    let cases = [
        (
            format!("{}.{}.{}.x.y", segs[0], segs[1], segs[2]),
            Encrypted,
        ),
        (
            format!("{}.{}.{}.x", segs[0], segs[1], segs[2]),
            Malformed("a compact JWS has exactly three segments"),
        ),
        (
            format!(r#"{{"payload":"{}","signatures":[]}}"#, segs[1]),
            Malformed("JSON serialization is not accepted"),
        ),
        (
            format!("{}=.{}.{}", segs[0], segs[1], segs[2]),
            Malformed("header is not canonical base64url"),
        ),
        (
            format!("{}.{} .{}", segs[0], segs[1], segs[2]),
            Malformed("payload is not canonical base64url"),
        ),
        (
            format!("{}.{}.{}==", segs[0], segs[1], segs[2]),
            Malformed("signature is not canonical base64url"),
        ),
        (
            format!("{}.{}.{}", segs[0].replace('e', "+"), segs[1], segs[2]),
            Malformed("header is not canonical base64url"),
        ),
        (
            format!("{}.{}.{}", "x".repeat(20_000), segs[1], segs[2]),
            Malformed("token is too long"),
        ),
        (
            forge(
                &json!({"alg": "RSA-OAEP", "enc": "A256GCM"}),
                &claims(),
                "c2ln",
            ),
            Encrypted,
        ),
        (
            format!("{}.{}.{}", b64(b"[1]"), segs[1], segs[2]),
            Malformed("header is not a JSON object"),
        ),
        (
            format!("{}.{}.{}", segs[0], b64(b"\"str\""), segs[2]),
            Malformed("payload is not a JSON object"),
        ),
        (
            forge(
                &json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}),
                &claims(),
                segs[2],
            ),
            Crit,
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            check(&issuer, &token).await,
            Err(expected.clone()),
            "{expected}"
        );
    }
}

#[tokio::test]
async fn duplicate_keys_are_refused() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let payload = claims().to_string();
    let dup_sub = payload.replacen(
        '{',
        r#"{"sub":"system:serviceaccount:kube-system:admin","#,
        1,
    );
    assert_eq!(
        check(&issuer, &key.sign_raw(&key.header().to_string(), &dup_sub)).await,
        Err(DuplicateKey("payload"))
    );
    let nested = payload.replacen(
        r#""namespace":"prod""#,
        r#""namespace":"kube-system","namespace":"prod""#,
        1,
    );
    assert_eq!(
        check(&issuer, &key.sign_raw(&key.header().to_string(), &nested)).await,
        Err(DuplicateKey("payload"))
    );
    let header = r#"{"alg":"RS256","kid":"k1","alg":"RS256"}"#;
    assert_eq!(
        check(&issuer, &key.sign_raw(header, &payload)).await,
        Err(DuplicateKey("header"))
    );
}

#[tokio::test]
async fn key_headers_are_never_followed() {
    let key = rsa();
    let server = TestServer::start(json!({ "keys": [key.jwk] })).await;
    let issuer = static_issuer(&[&key]);
    let url = format!("{}/keys", server.base());
    for (name, value) in [
        ("jku", json!(url)),
        ("x5u", json!(url)),
        ("jwk", key.jwk.clone()),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut header = key.header();
        header[name] = value;
        let token = key.sign_raw(&header.to_string(), &claims().to_string());
        assert_eq!(check(&issuer, &token).await, Err(EmbeddedKey(name)));
    }
    assert_eq!(server.total_hits(), 0);
}

#[tokio::test]
async fn hostile_kids_are_refused_without_echo() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    for kid in [
        json!("k".repeat(10_000)),
        json!("k1\r\nX-Injected: yes"),
        json!("../../etc/passwd"),
        json!("a/b"),
        json!(""),
        json!(7),
        json!(null),
        json!("k1\u{0}"),
    ] {
        let mut header = key.header();
        header["kid"] = kid.clone();
        let token = key.sign_raw(&header.to_string(), &claims().to_string());
        let err = check(&issuer, &token).await.unwrap_err();
        assert_eq!(err, BadKid, "{kid}");
        assert!(!err.to_string().contains('\n'));
    }
    let mut header = key.header();
    header["kid"] = json!("k2");
    let token = key.sign_raw(&header.to_string(), &claims().to_string());
    assert_eq!(
        check(&issuer, &token).await,
        Err(UnknownKid("k2".to_owned()))
    );
}
