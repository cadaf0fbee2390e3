//! The policy request builder (`tollgate::policy::request::build_request`), fed the way the
//! server feeds it: claims that passed the claim checks (rules derived from the claims
//! themselves, so that many inputs pass), and also any JSON at all. Nothing may panic, and a
//! request that is built must carry exactly the claims it was built from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::policy::request::{ExchangeContext, build_request};
use tollgate::verify::jwt::{self, ClaimRules};

fuzz_target!(|data: &[u8]| {
    let Ok(claims) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let context = ExchangeContext {
        tenant: "acme".into(),
        identity: "deployer".into(),
        requested_audiences: vec!["https://registry.example".into()],
        requested_scopes: vec!["registry.pull".into()],
        client_address: Some("127.0.0.1".into()),
        now: 1_800_000_000,
    };
    let verified = claims.as_object().is_some_and(|map| {
        let issuer = map.get("iss").and_then(Value::as_str).unwrap_or_default();
        let audiences: Vec<String> = jwt::audiences(map)
            .map(|list| list.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        let now = jwt::time(map, "iat")
            .ok()
            .flatten()
            .unwrap_or(1_800_000_000);
        let rules = ClaimRules {
            issuer,
            audiences: &audiences,
            now,
            leeway: 60,
            max_lifetime: 48 * 3600,
        };
        jwt::check_claims(map, &rules).is_ok()
    });
    let Ok(request) = build_request(&claims, context.clone(), r#"{"namespaces":["prod"]}"#) else {
        // Verified claims may still be refused here (a malformed `kubernetes.io`): a denial.
        return;
    };
    let token = &request.token;
    let reparsed: Value = serde_json::from_str(&token.claims_json).expect("claims_json is JSON");
    assert!(
        same(&reparsed, &claims),
        "claims_json differs: {reparsed} vs {claims}"
    );
    assert_eq!(Some(token.expires_at), claims["exp"].as_i64());
    if verified {
        // The typed fields say what the checked claims say.
        assert_eq!(token.issuer, claims["iss"].as_str().unwrap());
        assert_eq!(token.subject, claims["sub"].as_str().unwrap());
        assert_eq!(token.issued_at, claims.get("iat").and_then(Value::as_i64));
        assert!(!token.audiences.is_empty());
    }
    assert_eq!(request.exchange.tenant, context.tenant);
    assert_eq!(request.exchange.now, context.now);
});

/// Equal JSON, except that floats may differ in the last bits: serde_json's default float
/// parsing is not correctly rounded (its `float_roundtrip` feature is off), so printing a parsed
/// float and parsing it again can move it by an ulp. No check of the host reads floats.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
