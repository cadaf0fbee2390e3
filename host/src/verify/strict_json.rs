//! JSON parsing that refuses duplicate object keys at any depth.
//!
//! `serde_json` keeps the last of two equal keys without a word, so `{"sub":"a","sub":"b"}` could
//! mean one thing to us and another to whoever checked it before. Tokens, JWKS and discovery and
//! TokenReview answers are all parsed here.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// A JSON value whose objects had no duplicate keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // `Value::from` maps non-finite floats to null; JSON text cannot produce them anyway.
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom(DUPLICATE));
            }
        }
        Ok(Value::Object(map))
    }
}

const DUPLICATE: &str = "duplicate object key";

/// Why strict parsing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictError {
    /// Not JSON at all (or trailing garbage).
    Syntax,
    /// An object repeated a key.
    DuplicateKey,
}

/// Parses `bytes` as one JSON value, refusing duplicate keys.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict::deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|_| StrictError::Syntax)?;
    Ok(value.0)
}

/// Parses `bytes` as a JSON object, refusing duplicate keys.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictError> {
    match parse(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(StrictError::Syntax),
    }
}

fn classify(err: serde_json::Error) -> StrictError {
    if err.to_string().starts_with(DUPLICATE) {
        StrictError::DuplicateKey
    } else {
        StrictError::Syntax
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_like_serde_json_without_duplicates() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert_eq!(parse(b"[]").unwrap(), json!([]));
    }

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert_eq!(
            parse(br#"{"sub":"a","sub":"b"}"#),
            Err(StrictError::DuplicateKey)
        );
        assert_eq!(
            parse(br#"{"k":{"ns":"a","ns":"b"}}"#),
            Err(StrictError::DuplicateKey)
        );
        assert_eq!(
            parse(br#"[{"x":1},{"x":1,"x":1}]"#),
            Err(StrictError::DuplicateKey)
        );
        // Escapes that decode to the same key are the same key.
        assert_eq!(
            parse(br#"{"sub":"a","s\u0075b":"b"}"#),
            Err(StrictError::DuplicateKey)
        );
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        assert_eq!(parse(b"{} {}"), Err(StrictError::Syntax));
        assert_eq!(parse(b"{\"a\":1,}"), Err(StrictError::Syntax));
        assert_eq!(parse_object(b"[1]"), Err(StrictError::Syntax));
    }
}
