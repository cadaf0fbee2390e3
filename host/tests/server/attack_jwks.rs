//! Key-set entries that must never verify a token, against the real `tollgate serve`: the
//! issuer (a loopback OIDC issuer of the test) publishes each bad entry next to a good key, a
//! token is signed with the bad entry's private key, and the server refuses it with the generic
//! answer because the entry was left out (the decision log says the `kid` is unknown, or the
//! algorithm does not fit). The same sets pasted as static JWKS are refused at registration.

use tollgate_tests::attack as support;

use jsonwebtoken::Algorithm;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use support::{Target, TestKey, b64, hs256};

/// A 1024-bit RSA key, made for this test only (aws-lc-rs will not make or use one).
const RSA_1024_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBANV9+rYpmorGB4Aw
3Km0v8yeG1ZidMNm47z2P025dN9hZkp03HfFPXun73Tntkv1HireXwPtzBDDH6O2
XV47YONv0UPczDbNp8/kQAmrfXi6TB+X5KOI+hXShuabPoXjjv9l3T7I3NCn+Yz0
q1EmiBGjz1HgN6EZ0KyrFjzHQ6rpAgMBAAECgYEAtAK8Ubp0p0xgaLNKbAGOs14g
2M69e0EXB25uY//azrsWf/NXLdnuhIROQLlbmWI9pJHJdcudBAkydVzAD0Nr5e8+
PSMsdGWgTu9Kg83sqXlHwTbW/Qzn94tXhdizCjAOgVgFVf2bbtl6hmkFAH+lrn0V
kyc0NqYHy2yrqo0pDAECQQDu1FoP4GxTIEXyWGOnjnmciNWDGf2pAFO/jrCOJUJi
h/dX6PS6+bIwS2TD88yLWC+QNk87zGhiRCL7iPwdCA6BAkEA5NdLM6KcFNs2bY4T
AL+tDpbwHsBDCm4L+oW4vBweM2mB7g80k8HYOfmpZ2PzTpDESggvepVmCuA2S2Hp
kgm4aQJAKleFnBj6u4YWQJABIvy0fNcZm4OpICRJtMV0cc8TROq8JF7NvLR2Le+/
7qmzkuTQke2/AGgN/ZX86cFwiSkbgQJAO2J/Wmv1Uxg7/Jwk5EnZb/LNZz1/aEJ8
i0uOUAp/79mOZSe+/iUMpqbaRkFSz22T8p5DK+1/KI1cqZ1EDqjFGQJAMm41KFXj
UT0kduOpbJcE+LCyoFYKSCLS6S2MkAzo56ReGgGuxJJpTpcPA+1zkaPXeg8CWqX2
Bt7vo3RwnrfJQA==
-----END PRIVATE KEY-----
";

/// The weak key's public JWK and an RS256 token of `claims` signed with it.
fn weak_rsa(kid: &str, claims: &Value) -> (Value, String) {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_1024_PEM).unwrap();
    assert_eq!(key.n().bits(), 1024);
    let jwk = json!({
        "kty": "RSA", "use": "sig", "kid": kid,
        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
    });
    let header = json!({ "alg": "RS256", "kid": kid, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    // DER DigestInfo of SHA-256, then the hash: what PKCS#1 v1.5 signs.
    let mut info = hex::decode("3031300d060960864801650304020105000420").unwrap();
    info.extend_from_slice(digest.as_ref());
    let signature = key
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &info)
        .unwrap();
    (jwk, format!("{input}.{}", b64(&signature)))
}

/// One bad key set: its name, the entries beside the good key, the token that only the bad
/// entry could vouch for, and the reason the server must record. `unusable` entries are also
/// refused when pasted as a static set; the others are sound keys that the token misuses.
struct Case {
    name: &'static str,
    entries: Vec<Value>,
    token: String,
    reason: &'static str,
    unusable: bool,
}

/// `key`'s JWK with `changes` merged in.
fn jwk_with(key: &TestKey, changes: Value) -> Value {
    let mut jwk = key.jwk.clone();
    for (name, value) in changes.as_object().unwrap() {
        jwk[name] = value.clone();
    }
    jwk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_set_entries_that_must_never_verify_are_left_out() {
    let good = TestKey::rsa("good", Algorithm::RS256);
    let target = Target::start("atk-jwks", json!({ "keys": [good.jwk] })).await;
    let claims_for = |name: &str| {
        let mut claims = target.claims();
        claims["iss"] = json!(format!("{}/{name}", target.issuer.url()));
        claims
    };

    let secret = b"0123456789abcdef0123456789abcdef";
    let enc = TestKey::rsa("enc", Algorithm::RS256);
    let ops = TestKey::rsa("ops", Algorithm::RS256);
    let pinned = TestKey::rsa("pinned", Algorithm::RS256);
    let ec = TestKey::ec("ec");
    let ec_as_rsa = TestKey::ec("ec-rs");
    let private = TestKey::rsa("private", Algorithm::RS256);
    let dup_a = TestKey::rsa("dup", Algorithm::RS256);
    let dup_b = TestKey::rsa("dup", Algorithm::RS256);
    let (weak_jwk, weak_token) = weak_rsa("weak", &claims_for("rsa-1024"));
    let hs_header = json!({ "alg": "HS256", "kid": "sym", "typ": "JWT" });
    // A token RS256-signed by the good key but naming an entry's kid: verifies only if that
    // entry were (wrongly) loaded as the good key's twin.
    let rs_with_kid = |kid: &str, name: &str| {
        let header = json!({ "alg": "RS256", "kid": kid, "typ": "JWT" });
        good.sign_raw(&header.to_string(), &claims_for(name).to_string())
    };
    let cases = vec![
        Case {
            name: "oct",
            entries: vec![json!({ "kty": "oct", "kid": "sym", "alg": "HS256", "k": b64(secret) })],
            token: hs256(&hs_header, &claims_for("oct"), secret),
            reason: "algorithm `HS256` is not accepted",
            unusable: true,
        },
        Case {
            name: "oct-rs",
            entries: vec![json!({ "kty": "oct", "kid": "sym", "alg": "RS256", "k": b64(secret) })],
            token: rs_with_kid("sym", "oct-rs"),
            reason: "no key with id `sym`",
            unusable: true,
        },
        Case {
            name: "use-enc",
            entries: vec![jwk_with(&enc, json!({ "use": "enc" }))],
            token: enc.sign(&claims_for("use-enc")),
            reason: "no key with id `enc`",
            unusable: true,
        },
        Case {
            name: "key-ops",
            entries: vec![jwk_with(&ops, json!({ "key_ops": ["encrypt", "wrapKey"] }))],
            token: ops.sign(&claims_for("key-ops")),
            reason: "no key with id `ops`",
            unusable: true,
        },
        Case {
            name: "alg-pinned",
            entries: vec![jwk_with(&pinned, json!({ "alg": "RS512" }))],
            token: pinned.sign(&claims_for("alg-pinned")),
            reason: "token algorithm does not match the key",
            unusable: false,
        },
        Case {
            name: "alg-kind",
            entries: vec![ec.jwk.clone()],
            token: rs_with_kid("ec", "alg-kind"),
            reason: "token algorithm does not match the key",
            unusable: false,
        },
        Case {
            name: "alg-unfit",
            entries: vec![jwk_with(&ec_as_rsa, json!({ "alg": "RS256" }))],
            token: ec_as_rsa.sign(&claims_for("alg-unfit")),
            reason: "no key with id `ec-rs`",
            unusable: true,
        },
        Case {
            name: "rsa-1024",
            entries: vec![weak_jwk],
            token: weak_token,
            reason: "no key with id `weak`",
            unusable: true,
        },
        Case {
            name: "private",
            entries: vec![jwk_with(&private, json!({ "d": b64(b"not really") }))],
            token: private.sign(&claims_for("private")),
            reason: "no key with id `private`",
            unusable: true,
        },
        Case {
            name: "dup-kid",
            entries: vec![dup_a.jwk.clone(), dup_b.jwk.clone()],
            token: dup_a.sign(&claims_for("dup-kid")),
            reason: "no key with id `dup`",
            unusable: true,
        },
    ];

    for case in &cases {
        let mut keys = vec![good.jwk.clone()];
        keys.extend(case.entries.iter().cloned());
        let jwks = json!({ "keys": keys });
        let url = target.issuer.publish(case.name, jwks.clone());
        target.add_issuer(case.name, &url).await;
        target.add_identity(case.name, case.name).await;
        // The good key of the same set works: the set was fetched and used.
        target
            .assert_accepted(case.name, &good.sign(&claims_for(case.name)), case.name)
            .await;
        // An algorithm off the allowlist is refused by the token's own header, before the
        // identity is looked up (and so unrecorded); every other case by the key set.
        if case.reason.starts_with("algorithm") {
            target
                .assert_screened(case.name, &case.token, case.name, case.reason)
                .await;
        } else {
            target
                .assert_refused(case.name, &case.token, case.name, case.reason)
                .await;
        }

        if !case.unusable {
            continue;
        }
        // Pasted as a static key set, the same entries are refused at registration.
        let source =
            json!({ "mode": "static_jwks", "jwks": jwks, "expires_at": support::now() + 3600 });
        let body = json!({ "issuer_url": url, "source": source });
        let (status, answer) = target
            .put_issuer(&format!("{}-static", case.name), body)
            .await;
        assert_eq!(status, 422, "{}: static set accepted: {answer}", case.name);
    }
    // Nothing above disturbed the tenant's main issuer.
    target
        .assert_accepted("deployer", &good.sign(&target.claims()), "control after")
        .await;
}
