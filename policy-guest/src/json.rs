//! Reading one value out of a JSON document without building the whole tree.
//!
//! A policy usually needs one or two claims out of `claims_json`. Parsing the whole payload into
//! a `serde_json::Value` allocates every string and map in it; [`pointer`] walks the document
//! along an RFC 6901 pointer, skipping everything else, and materialises only the value found.

use alloc::borrow::{Cow, ToOwned};
use alloc::vec::Vec;
use core::fmt;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The value at `pointer` (such as `/kubernetes.io/pod/name`) in the JSON text `json`, if any.
/// `""` is the whole document. Invalid JSON reads as absent.
pub fn pointer(json: &str, pointer: &str) -> Option<serde_json::Value> {
    if pointer.is_empty() {
        return serde_json::from_str(json).ok();
    }
    let rest = pointer.strip_prefix('/')?;
    // Each step scans only the subtree it is in; the document is never validated as a whole.
    let mut text = json.trim_start();
    for token in rest.split('/') {
        let token: Cow<'_, str> = if token.contains('~') {
            token.replace("~1", "/").replace("~0", "~").into()
        } else {
            token.into()
        };
        text = step(text, &token)?.get();
    }
    serde_json::from_str(text).ok()
}

fn step<'a>(text: &'a str, token: &str) -> Option<&'a RawValue> {
    match text.as_bytes().first()? {
        b'{' => {
            let mut de = serde_json::Deserializer::from_str(text);
            Member(token).deserialize(&mut de).ok()?
        }
        b'[' => {
            let index: usize = token
                .parse()
                .ok()
                .filter(|_| token == "0" || !token.starts_with('0'))?;
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            items.get(index).copied()
        }
        _ => None,
    }
}

/// Finds one member of an object, skipping the others without allocating them.
struct Member<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            // The last duplicate wins, as with `serde_json::Value`.
            if key.0 == self.0 {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// An object key, borrowed unless it contains escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::pointer;
    use alloc::string::ToString;
    use serde_json::json;

    #[test]
    fn agrees_with_serde_json_pointer() {
        let doc = json!({
            "kubernetes.io": {"pod": {"name": "api-1"}, "namespace": "prod"},
            "a/b": {"m~n": [10, {"x": true}]},
            "esc\"aped": 1,
            "list": ["a", "b"]
        });
        let text = doc.to_string();
        for p in [
            "",
            "/kubernetes.io/pod/name",
            "/kubernetes.io/namespace",
            "/a~1b/m~0n/1/x",
            "/a~1b/m~0n/0",
            "/esc\"aped",
            "/list/1",
            "/list/2",
            "/list/01",
            "/missing",
            "/kubernetes.io/pod/name/deeper",
            "/list/-",
        ] {
            assert_eq!(pointer(&text, p), doc.pointer(p).cloned(), "pointer {p}");
        }
        assert_eq!(pointer("not json", "/a"), None);
        assert_eq!(pointer(&text, "no-slash"), None);
    }
}
