//! JSON Web Key Sets: which entries may verify a token, and the choice of key for one token.
//!
//! Entries that are symmetric (`oct`), meant for encryption, private, too weak, of an unknown type
//! or curve, malformed, or that share their `kid` with another entry are never used.

use super::VerifyError;
use super::jwt::{allowed_alg, b64, valid_kid};
use super::strict_json::{self, StrictError};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (the verifier's own upper bound).
const MAX_RSA_BITS: usize = 8192;
/// Most entries considered in one key set.
const MAX_KEYS: usize = 100;

/// The kind of a usable key, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind may verify a token signed with `alg`.
    pub fn allows(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256),
            Self::P256 => alg == ES256,
            Self::P384 => alg == ES384,
            Self::Ed25519 => alg == EdDSA,
        }
    }
}

/// One key that passed every rule.
pub struct UsableKey {
    pub kid: Option<String>,
    /// The entry's `alg`, when it named one: tokens must then use exactly it.
    pub alg: Option<Algorithm>,
    pub kind: KeyKind,
    pub key: DecodingKey,
}

impl std::fmt::Debug for UsableKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsableKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The usable keys of a key set, and why the other entries were left out.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<UsableKey>,
    /// One line per entry left out (index and reason), for the admin API and logs.
    pub skipped: Vec<String>,
}

impl KeySet {
    /// Parses a key set from the bytes of an HTTP answer (duplicate JSON keys refused).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerifyError> {
        let value = strict_json::parse(bytes).map_err(|e| {
            VerifyError::Jwks(match e {
                StrictError::DuplicateKey => "duplicate JSON keys".to_owned(),
                StrictError::Syntax => "not valid JSON".to_owned(),
            })
        })?;
        Self::from_value(&value)
    }

    /// Filters a key set document (`{"keys": [...]}`) down to its usable keys.
    pub fn from_value(value: &Value) -> Result<Self, VerifyError> {
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| VerifyError::Jwks("`keys` must be an array".to_owned()))?;
        if entries.len() > MAX_KEYS {
            return Err(VerifyError::Jwks(format!("more than {MAX_KEYS} keys")));
        }
        let mut set = KeySet::default();
        let mut kid_count: HashMap<String, usize> = HashMap::new();
        for entry in entries {
            if let Some(kid) = entry.get("kid").and_then(Value::as_str) {
                *kid_count.entry(kid.to_owned()).or_default() += 1;
            }
        }
        for (index, entry) in entries.iter().enumerate() {
            let duplicated = entry
                .get("kid")
                .and_then(Value::as_str)
                .is_some_and(|kid| kid_count.get(kid).copied().unwrap_or(0) > 1);
            let result = if duplicated {
                Err("`kid` is shared with another key".to_owned())
            } else {
                usable(entry)
            };
            match result {
                Ok(key) => set.keys.push(key),
                Err(reason) => set.skipped.push(format!("key {index}: {reason}")),
            }
        }
        Ok(set)
    }

    /// Picks the key for a token: by `kid` when the token has one; without one only when the
    /// set holds a single key. The key must allow `alg`.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&UsableKey, VerifyError> {
        let key = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| VerifyError::UnknownKid(kid.to_owned()))?,
            None => match self.keys.as_slice() {
                [only] => only,
                [] => return Err(VerifyError::NoUsableKeys),
                _ => return Err(VerifyError::MissingKid),
            },
        };
        if !key.kind.allows(alg) || key.alg.is_some_and(|a| a != alg) {
            return Err(VerifyError::AlgMismatch);
        }
        Ok(key)
    }

    /// Whether the set has a key with this id.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn string<'a>(entry: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match entry.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

fn bytes(entry: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = string(entry, name)?.ok_or_else(|| format!("`{name}` is missing"))?;
    b64(text).ok_or_else(|| format!("`{name}` is not canonical base64url"))
}

/// Turns one entry into a usable key, or says why it is not one.
fn usable(entry: &Value) -> Result<UsableKey, String> {
    let entry = entry.as_object().ok_or("not an object")?;
    let kty = string(entry, "kty")?.ok_or("`kty` is missing")?;
    if kty == "oct" {
        return Err("symmetric keys (`oct`) are never used".to_owned());
    }
    if let Some(usage) = string(entry, "use")?
        && usage != "sig"
    {
        return Err("`use` is not `sig`".to_owned());
    }
    if let Some(ops) = entry.get("key_ops") {
        let ops = ops.as_array().ok_or("`key_ops` must be an array")?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("`key_ops` does not include `verify`".to_owned());
        }
    }
    // A public key set that carries private parameters is broken; refuse to use it.
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|p| entry.contains_key(*p))
    {
        return Err("entry carries private key material".to_owned());
    }
    let kid = match string(entry, "kid")? {
        Some(kid) if valid_kid(kid) => Some(kid.to_owned()),
        Some(_) => return Err("`kid` is not acceptable".to_owned()),
        None => None,
    };
    let alg = match string(entry, "alg")? {
        Some(name) => Some(allowed_alg(name).ok_or("`alg` is not an accepted algorithm")?),
        None => None,
    };
    let (kind, key) = match kty {
        "RSA" => rsa(entry)?,
        "EC" => ec(entry)?,
        "OKP" => okp(entry)?,
        _ => return Err("unsupported `kty`".to_owned()),
    };
    if alg.is_some_and(|alg| !kind.allows(alg)) {
        return Err("`alg` does not fit the key type".to_owned());
    }
    Ok(UsableKey {
        kid,
        alg,
        kind,
        key,
    })
}

fn rsa(entry: &Map<String, Value>) -> Result<(KeyKind, DecodingKey), String> {
    let n = bytes(entry, "n")?;
    let e = bytes(entry, "e")?;
    let n_trimmed = strip_zeros(&n);
    let bits = n_trimmed.first().map_or(0, |top| {
        (n_trimmed.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    });
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is under {MIN_RSA_BITS}"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("RSA modulus of {bits} bits is over {MAX_RSA_BITS}"));
    }
    let e = strip_zeros(&e);
    if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b % 2 == 0) || e == [1] {
        return Err("RSA exponent is not acceptable".to_owned());
    }
    Ok((
        KeyKind::Rsa,
        DecodingKey::from_rsa_raw_components(n_trimmed, e),
    ))
}

fn ec(entry: &Map<String, Value>) -> Result<(KeyKind, DecodingKey), String> {
    let (kind, len) = match string(entry, "crv")? {
        Some("P-256") => (KeyKind::P256, 32),
        Some("P-384") => (KeyKind::P384, 48),
        _ => return Err("unsupported EC curve".to_owned()),
    };
    let x = bytes(entry, "x")?;
    let y = bytes(entry, "y")?;
    if x.len() != len || y.len() != len {
        return Err("EC coordinates have the wrong length".to_owned());
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((kind, DecodingKey::from_ec_der(&point)))
}

fn okp(entry: &Map<String, Value>) -> Result<(KeyKind, DecodingKey), String> {
    if string(entry, "crv")? != Some("Ed25519") {
        return Err("unsupported OKP curve".to_owned());
    }
    let x = bytes(entry, "x")?;
    if x.len() != 32 {
        return Err("Ed25519 key has the wrong length".to_owned());
    }
    Ok((KeyKind::Ed25519, DecodingKey::from_ed_der(&x)))
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
