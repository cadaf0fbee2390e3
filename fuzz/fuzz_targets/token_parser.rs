//! The subject-token parser and claim checks (`tollgate::verify::jwt`), as the server runs them
//! on a token from the network: parse the compact JWS, pick a key from a fixed key set, check
//! the signature, then the claims. Nothing may panic, and what passes each step must satisfy
//! that step's promises. No input can carry a valid signature (the key set holds public keys
//! whose private halves exist nowhere), so a signature that verifies is a crash too.
//!
//! Input: a token as text; or, when the input holds a 0xFF byte (never in UTF-8 text), the raw
//! header JSON, payload JSON and signature separated by 0xFF, which the target base64url-encodes,
//! so that mutations reach the JSON and claim checks instead of dying in base64.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tollgate::verify::jwks::KeySet;
use tollgate::verify::jwt::{self, ClaimRules, MAX_TIME, MAX_TOKEN_BYTES};

/// One key of each accepted kind; kids `rsa`, `ec` and `ed`.
const KEYS: &str = r#"{"keys": [
  {"kty": "RSA", "kid": "rsa", "use": "sig", "e": "AQAB", "n": "v6r3hN6Lk6HEN557HI-FsV3XIxWPFdk7IMaTwPuetBit5dc4tBxnND49HrCj03ZlJsCm4nTxMdjt2J108Ej7z-Bfl-xCiSOM09qNQ7Ar01ajJ76v0pYP1BpoQAAD9gI_ys4VUEw6eQusXF1yf-mSPvlhHzHjt5fiuP82FiHg4h4oKmgndLUieKcFRVwD4kh7UuhcKjea9ESZP4JRcDADnJtK-MgWsmquvLugsXkNE7qVKrSjjGhiX6GFT0gkBguC_wXSAwsxpE7-58R_usS73Q3juD_7TnB10vRIzv05SD6VXzb0NUYuICKw8I0ZqDiDz5E27nhCPZ2HK4DqT2k-Nw"},
  {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "MQ7qnNQvciVl0M-MmtbmXvlHTIICqi6OEml8fJoc0sU", "y": "Xh9KEqKaQoMPj0JORwXNT1He4Fv95_S2ulU5tMS7nQg"},
  {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "cYR3GZAF6XlLyjasAslNjkCQJIU9j18GFmGbV84GjAs"}
]}"#;

static KEY_SET: LazyLock<KeySet> = LazyLock::new(|| {
    let set = KeySet::from_bytes(KEYS.as_bytes()).expect("the fixed key set parses");
    assert_eq!(
        set.keys.len(),
        3,
        "every fixed key is usable: {:?}",
        set.skipped
    );
    set
});

const ISSUER: &str = "https://k8s.example";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let encoded;
    let token = if data.contains(&0xFF) {
        let parts: Vec<String> = data
            .split(|b| *b == 0xFF)
            .map(|part| URL_SAFE_NO_PAD.encode(part))
            .collect();
        encoded = parts.join(".");
        encoded.as_str()
    } else {
        // Tokens arrive as form fields, JSON strings or header values: always text.
        match std::str::from_utf8(data) {
            Ok(token) => token,
            Err(_) => return,
        }
    };
    let Ok(jws) = jwt::parse(token) else {
        return;
    };
    // What `parse` promises.
    assert!(token.len() <= MAX_TOKEN_BYTES);
    assert_eq!(token.split('.').count(), 3);
    assert!(
        jws.kid.as_deref().is_none_or(jwt::valid_kid),
        "{:?}",
        jws.kid
    );
    let name = format!("{:?}", jws.alg);
    assert!(
        jwt::allowed_alg(&name).is_some(),
        "{name} passed the allowlist"
    );

    if let Ok(key) = KEY_SET.select(jws.kid.as_deref(), jws.alg) {
        assert!(key.kind.allows(jws.alg));
        assert!(
            jws.verify_signature(&key.key).is_err(),
            "a signature verified without the private key: {token:?}"
        );
    }

    // The claim checks, judged as if the signature had verified.
    let audiences = vec!["https://sts.example.com/acme".to_owned()];
    for leeway in [0, 60] {
        let rules = ClaimRules {
            issuer: ISSUER,
            audiences: &audiences,
            now: NOW,
            leeway,
            max_lifetime: 48 * 3600,
        };
        if jwt::check_claims(&jws.payload, &rules).is_ok() {
            assert_eq!(jws.payload["iss"], ISSUER);
            let exp = jwt::time(&jws.payload, "exp").unwrap().unwrap();
            assert!((0..=MAX_TIME).contains(&exp));
            assert!(NOW < exp + leeway, "expired token passed");
            let aud = jwt::audiences(&jws.payload).unwrap();
            assert!(aud.iter().any(|a| audiences.iter().any(|r| r == a)));
        }
    }
});
