//! Strict parsing of compact JWS tokens and the checks of their registered claims.
//!
//! Nothing here relies on the defaults of a JWT library: the header and every claim are checked
//! by this module, and `jsonwebtoken` is used only for the signature arithmetic.

use super::VerifyError;
use super::strict_json::{self, StrictError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Longest token considered; projected ServiceAccount tokens are 1-2 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest key id accepted.
const MAX_KID_LEN: usize = 128;
/// Latest time claim accepted (9999-12-31T23:59:59Z); larger values are nonsense or overflows.
pub const MAX_TIME: i64 = 253_402_300_799;
/// Header parameters that carry or point at key material: honouring them would let the token
/// choose its own key (or make us fetch a URL), so their presence refuses the token.
const KEY_HEADERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// A compact JWS whose structure and header passed the checks, signature not yet verified.
#[derive(Debug)]
pub struct Jws<'a> {
    /// Algorithm named by the header, already on the allowlist.
    pub alg: Algorithm,
    /// Key id, already checked for length and characters.
    pub kid: Option<String>,
    /// Payload: a JSON object without duplicate keys, screened (`screen::claims`).
    pub payload: Map<String, Value>,
    /// The whole compact token.
    token: &'a str,
    signing_input: &'a str,
    signature: &'a str,
}

/// Whether `alg` is one of the asymmetric algorithms accepted for subject tokens.
pub fn allowed_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Checks a key id from a token or a key set: short, printable, no path characters.
pub fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && !kid.contains("..")
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+=:".contains(&b))
}

/// Decodes canonical unpadded base64url: no padding, no whitespace, no stray trailing bits.
pub fn b64(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Parses a token as a compact JWS and checks its header.
pub fn parse(token: &str) -> Result<Jws<'_>, VerifyError> {
    use VerifyError::Malformed;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Malformed("token is too long"));
    }
    if token.starts_with('{') {
        return Err(Malformed("JSON serialization is not accepted"));
    }
    let segments: Vec<&str> = token.split('.').collect();
    match segments.len() {
        3 => {}
        5 => return Err(VerifyError::Encrypted),
        _ => return Err(Malformed("a compact JWS has exactly three segments")),
    }
    let (header, payload, signature) = (segments[0], segments[1], segments[2]);
    if signature.is_empty() {
        return Err(Malformed("signature is missing"));
    }
    let header = b64(header).ok_or(Malformed("header is not canonical base64url"))?;
    let payload = b64(payload).ok_or(Malformed("payload is not canonical base64url"))?;
    if b64(signature).is_none() {
        return Err(Malformed("signature is not canonical base64url"));
    }
    let header = strict_json::parse_object(&header).map_err(|e| match e {
        StrictError::DuplicateKey => VerifyError::DuplicateKey("header"),
        StrictError::Syntax => Malformed("header is not a JSON object"),
    })?;
    let (alg, kid) = check_header(&header)?;
    let payload = strict_json::parse_object(&payload).map_err(|e| match e {
        StrictError::DuplicateKey => VerifyError::DuplicateKey("payload"),
        StrictError::Syntax => Malformed("payload is not a JSON object"),
    })?;
    super::screen::claims(&payload)?;
    let signing_len = segments[0].len() + 1 + segments[1].len();
    Ok(Jws {
        alg,
        kid,
        payload,
        token,
        signing_input: &token[..signing_len],
        signature,
    })
}

fn check_header(header: &Map<String, Value>) -> Result<(Algorithm, Option<String>), VerifyError> {
    if header.contains_key("enc") {
        return Err(VerifyError::Encrypted);
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        Some(_) => return Err(VerifyError::Malformed("header `alg` must be a string")),
        None => return Err(VerifyError::Malformed("header `alg` is missing")),
    };
    if alg.trim().eq_ignore_ascii_case("none") {
        return Err(VerifyError::AlgNone);
    }
    let alg = allowed_alg(alg).ok_or_else(|| VerifyError::AlgNotAllowed(sanitize(alg)))?;
    if header.contains_key("crit") {
        return Err(VerifyError::Crit);
    }
    if let Some(name) = KEY_HEADERS.iter().find(|h| header.contains_key(**h)) {
        return Err(VerifyError::EmbeddedKey(name));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if valid_kid(kid) => Some(kid.clone()),
        Some(_) => return Err(VerifyError::BadKid),
    };
    Ok((alg, kid))
}

/// A short, printable rendering of attacker-supplied text for error messages and logs.
pub fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if text.chars().count() > 32 {
        out.push('…');
    }
    out
}

/// Expected signature length in bytes (range) for an algorithm. ECDSA signatures must be the
/// fixed-width `r || s` of JWS, never DER.
fn signature_len(alg: Algorithm) -> (usize, usize) {
    match alg {
        Algorithm::ES256 | Algorithm::EdDSA => (64, 64),
        Algorithm::ES384 => (96, 96),
        // 2048 to 8192-bit moduli.
        _ => (256, 1024),
    }
}

impl<'a> Jws<'a> {
    /// The compact token this was parsed from.
    pub fn token(&self) -> &'a str {
        self.token
    }

    /// Verifies the signature with `key` under the header's algorithm (which the caller has
    /// already matched against the key).
    pub fn verify_signature(&self, key: &DecodingKey) -> Result<(), VerifyError> {
        let raw = b64(self.signature).ok_or(VerifyError::Signature)?;
        let (min, max) = signature_len(self.alg);
        if raw.len() < min || raw.len() > max {
            return Err(VerifyError::Signature);
        }
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            key,
            self.alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(VerifyError::Signature),
        }
    }
}

/// What the claims of a token must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRules<'a> {
    /// The exact expected `iss`.
    pub issuer: &'a str,
    /// `aud` must contain at least one of these.
    pub audiences: &'a [String],
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: i64,
    /// Longest accepted lifetime in seconds.
    pub max_lifetime: i64,
}

/// `kubernetes.io.warnafter`, when the token has one.
fn warn_after(claims: &Map<String, Value>) -> Result<Option<i64>, VerifyError> {
    match claims.get("kubernetes.io").and_then(Value::as_object) {
        Some(k8s) => {
            time(k8s, "warnafter").map_err(|_| VerifyError::BadTime("kubernetes.io.warnafter"))
        }
        None => Ok(None),
    }
}

/// Checks the registered claims of a payload.
pub fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
) -> Result<(), VerifyError> {
    match claims.get("iss") {
        None => return Err(VerifyError::MissingClaim("iss")),
        Some(Value::String(iss)) if iss == rules.issuer => {}
        Some(Value::String(_)) => return Err(VerifyError::Issuer),
        Some(_) => return Err(VerifyError::NotAString("iss")),
    }
    match claims.get("sub") {
        None => return Err(VerifyError::MissingClaim("sub")),
        Some(Value::String(sub)) if !sub.is_empty() => {}
        Some(Value::String(_)) => return Err(VerifyError::MissingClaim("sub")),
        Some(_) => return Err(VerifyError::NotAString("sub")),
    }
    let exp = time(claims, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
    // A kube-api-access token lives a year (`exp`) for old clients' sake but should be
    // refreshed after about an hour (`kubernetes.io.warnafter`): judged by its warn time.
    let exp = match warn_after(claims)? {
        Some(warn) => exp.min(warn),
        None => exp,
    };
    let nbf = time(claims, "nbf")?;
    let iat = time(claims, "iat")?;
    let (now, leeway) = (rules.now, rules.leeway);
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(VerifyError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(VerifyError::IssuedInFuture);
    }
    let lifetime = exp.saturating_sub(iat.unwrap_or(now));
    if lifetime > rules.max_lifetime {
        return Err(VerifyError::Lifetime {
            lifetime,
            max: rules.max_lifetime,
        });
    }
    let audiences = audiences(claims)?;
    if !audiences
        .iter()
        .any(|a| rules.audiences.iter().any(|r| r == a))
    {
        return Err(VerifyError::Audience);
    }
    Ok(())
}

/// A time claim: absent, or a non-negative integer of seconds (not a float, string or bool).
pub fn time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) if !n.is_f64() => match n.as_i64() {
            Some(t) if (0..=MAX_TIME).contains(&t) => Ok(Some(t)),
            _ => Err(VerifyError::BadTime(name)),
        },
        Some(_) => Err(VerifyError::BadTime(name)),
    }
}

/// The `aud` claim as a list: a string, or a non-empty array of strings.
pub fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, VerifyError> {
    match claims.get("aud") {
        None => Err(VerifyError::MissingClaim("aud")),
        Some(Value::String(aud)) => Ok(vec![aud.as_str()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().ok_or(VerifyError::BadAudience))
            .collect(),
        Some(_) => Err(VerifyError::BadAudience),
    }
}
