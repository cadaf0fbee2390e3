//! The text encoding of a *prepared* config: a config the host parsed once, natively, and hands
//! to a stock policy in a form the guest reads back with no JSON and no tokenizing. Every
//! decision is a fresh instance that keeps nothing, so a config the guest parses costs that
//! parse at every decision.
//!
//! The encoding is text (a config is a WIT `string`), made of a magic prefix naming the format
//! and its version, then items a policy writes and reads in a fixed order:
//!
//! ```text
//! count := digits ";"            (also an item count)
//! int   := ["-"] digits ";"
//! str   := digits ":" bytes      (cut by byte length: strings are never escaped)
//! ```
//!
//! plus single bytes for tags. [`Reader`] checks every length and count against what is left,
//! so a malformed text is an error, never a panic or a trap, and a count cannot make a reader
//! reserve more than the text's size. Tenants never write this: a stock policy refuses a
//! prepared config in `validate-config`.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use serde::Deserialize;

/// A stock policy's config as the host hands it over: the JSON object a tenant wrote, or the
/// same config prepared by the host, a JSON string holding the prepared text. Told apart by the
/// JSON's own type; a policy's `validate-config` refuses [`Handed::Prepared`], so a tenant can
/// never save one.
#[derive(Debug, Clone, PartialEq)]
pub enum Handed<W> {
    /// The JSON object, as written.
    Written(W),
    /// The prepared text, for the policy's reader.
    Prepared(String),
}

impl<'de, W: Deserialize<'de>> Deserialize<'de> for Handed<W> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<W>(core::marker::PhantomData<W>);
        impl<'de, W: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<W> {
            type Value = Handed<W>;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Handed<W>, E> {
                Ok(Handed::Prepared(text.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Handed<W>, E> {
                Ok(Handed::Prepared(text))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Handed<W>, A::Error> {
                W::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Handed::Written)
            }
        }
        deserializer.deserialize_any(Visitor(core::marker::PhantomData))
    }
}

/// Appends `text` cut by length: `len:bytes`.
pub fn write_str(out: &mut String, text: &str) {
    let _ = write!(out, "{}:{text}", text.len());
}

/// Appends `n;`.
pub fn write_count(out: &mut String, n: usize) {
    let _ = write!(out, "{n};");
}

/// Appends `int;`.
pub fn write_int(out: &mut String, n: i64) {
    let _ = write!(out, "{n};");
}

/// Reads a prepared text front to back.
#[derive(Debug, Clone)]
pub struct Reader<'s> {
    text: &'s str,
    at: usize,
}

impl<'s> Reader<'s> {
    /// A reader of `text`, which must start with `magic`.
    pub fn new(text: &'s str, magic: &str) -> Result<Self, String> {
        if !text.starts_with(magic) {
            return Err("not a prepared config".into());
        }
        Ok(Reader {
            text,
            at: magic.len(),
        })
    }

    /// The error for the byte at `at`.
    #[cold]
    pub fn malformed_at(&self, at: usize) -> String {
        format!("the prepared config is malformed at byte {at}")
    }

    /// The error for the next byte.
    pub fn malformed(&self) -> String {
        self.malformed_at(self.at)
    }

    /// How far it has read, in bytes.
    #[inline]
    pub fn position(&self) -> usize {
        self.at
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.text.len() - self.at
    }

    /// Whether every byte was read.
    #[inline]
    pub fn finished(&self) -> bool {
        self.at == self.text.len()
    }

    /// The next byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8, String> {
        let byte = *self
            .text
            .as_bytes()
            .get(self.at)
            .ok_or_else(|| self.malformed())?;
        self.at += 1;
        Ok(byte)
    }

    /// The next `len` bytes, borrowed (they must end on a character boundary).
    #[inline]
    pub fn take(&mut self, len: usize) -> Result<&'s str, String> {
        let end = self.at.checked_add(len).ok_or_else(|| self.malformed())?;
        let text = self
            .text
            .get(self.at..end)
            .ok_or_else(|| self.malformed())?;
        self.at = end;
        Ok(text)
    }

    /// Decimal digits up to `end` (a scan for the end and a parse: in wasm, cheaper than one
    /// pass with a checked multiply per digit).
    #[inline]
    fn digits(&mut self, end: u8) -> Result<&'s str, String> {
        let rest = self.text.as_bytes().get(self.at..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&b| b == end)
            .ok_or_else(|| self.malformed())?;
        let digits = self.take(n)?;
        self.at += 1;
        Ok(digits)
    }

    /// `n;`
    #[inline]
    pub fn count(&mut self) -> Result<usize, String> {
        self.digits(b';')?.parse().map_err(|_| self.malformed())
    }

    /// `n;` for `n` items, with `n` no larger than the bytes left (each item takes one at
    /// least): safe to reserve room for.
    #[inline]
    pub fn items(&mut self) -> Result<usize, String> {
        let n = self.count()?;
        if n > self.remaining() {
            return Err(self.malformed());
        }
        Ok(n)
    }

    /// `int;`, with an optional `-`.
    #[inline]
    pub fn int(&mut self) -> Result<i64, String> {
        self.digits(b';')?.parse().map_err(|_| self.malformed())
    }

    /// `len:bytes`, borrowed.
    #[inline]
    pub fn str(&mut self) -> Result<&'s str, String> {
        let len: usize = self.digits(b':')?.parse().map_err(|_| self.malformed())?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Written {
        a: u32,
    }

    #[test]
    fn an_object_is_written_and_a_string_is_prepared() {
        let parse = crate::parse_config::<Handed<Written>>;
        assert_eq!(parse(r#"{"a": 1}"#), Ok(Handed::Written(Written { a: 1 })));
        assert_eq!(parse(r#""x1;\"""#), Ok(Handed::Prepared("x1;\"".into())));
        for bad in [r#"{"b": 1}"#, "[]", "1", "not json"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let mut out = String::from("x1;");
        write_count(&mut out, 3);
        write_str(&mut out, "é:;\"\\");
        write_int(&mut out, -42);
        write_int(&mut out, i64::MIN);
        write_int(&mut out, i64::MAX);
        write_str(&mut out, "");
        out.push('t');
        let mut reader = Reader::new(&out, "x1;").unwrap();
        assert_eq!(reader.items(), Ok(3));
        assert_eq!(reader.str(), Ok("é:;\"\\"));
        assert_eq!(reader.int(), Ok(-42));
        assert_eq!(reader.int(), Ok(i64::MIN));
        assert_eq!(reader.int(), Ok(i64::MAX));
        assert_eq!(reader.str(), Ok(""));
        assert_eq!(reader.byte(), Ok(b't'));
        assert!(reader.finished());
        assert!(reader.byte().is_err());
    }

    #[test]
    fn every_cut_and_corruption_is_an_error_not_a_panic() {
        assert!(Reader::new("y1;", "x1;").is_err());
        let mut text = String::from("x1;");
        write_count(&mut text, 2);
        write_str(&mut text, "ab");
        write_str(&mut text, "é");
        let read = |text: &str| -> Result<(), String> {
            let mut reader = Reader::new(text, "x1;")?;
            for _ in 0..reader.items()? {
                reader.str()?;
            }
            reader
                .finished()
                .then_some(())
                .ok_or_else(|| reader.malformed())
        };
        assert_eq!(read(&text), Ok(()));
        for cut in 3..text.len() {
            if text.is_char_boundary(cut) {
                assert!(read(&text[..cut]).is_err(), "{}", &text[..cut]);
            }
        }
        // A length that ends inside a character, a count larger than the text, huge numbers.
        for bad in [
            "x1;1;1:\u{e9}",
            "x1;99;1:a",
            "x1;1;99999999999999999999999:a",
            "x1;-1;",
            "x1;;",
            "x1;1;:",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
