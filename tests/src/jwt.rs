//! Reading and re-forging JWTs in tests: segments decoded without verification, a header or
//! payload swapped while the signature stays, and the clock tokens are minted against.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    tollgate::common::unix_now()
}

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT segment (0: header, 1: payload), decoded without any verification.
pub fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT segment");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The payload of a JWT.
pub fn payload(token: &str) -> Value {
    segment(token, 1)
}

/// The payload of what may not be a JWT at all.
pub fn try_payload(token: &str) -> Option<Value> {
    let part = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The `kid` of a JWT's header.
pub fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().expect("a kid").to_owned()
}

/// `token` with its payload replaced (the signature no longer matches).
pub fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    )
}

/// `token` with its header's `kid` replaced (the signature no longer matches).
pub fn with_kid(token: &str, kid: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut header = segment(token, 0);
    header["kid"] = json!(kid);
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        parts[1],
        parts[2]
    )
}

/// `header.payload.signature` from JSON texts and a signature segment written by hand.
pub fn forge(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.as_bytes()),
        b64(payload.as_bytes())
    )
}
