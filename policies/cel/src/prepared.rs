//! A prepared program: the config's expressions parsed once, by the host, when it first sees
//! the config, and handed to the guest in a compact prefix encoding that the guest reads back
//! into the same trees with no tokenizing and no precedence to work out. Each decision is a
//! fresh instance that keeps nothing, so without it every decision parsed its expressions
//! again (46% of the guest's instructions for the `team-scopes` config).
//!
//! The encoding is text (the config is a WIT `string`), and names and strings are cut from it
//! by byte length, so the trees borrow their names from it as they borrow them from the
//! source. Reading it back checks every length, tag and nesting level: a malformed program is
//! an error, which the policy turns into a denial, never a trap. Tenants never write it: a
//! config saved by a tenant is always the JSON object (see [`crate::CelPolicy`]'s
//! `validate-config`).
//!
//! ```text
//! program := "cel1;" expr scopes require claims ttl
//! scopes  := "L" n ";" (len ":" bytes){n}  |  "E" expr
//! require := "0" | "1"
//! claims  := n ";" (len ":" name expr){n}
//! ttl     := "-" | n ";"
//! expr    := "n" | "t" | "f" | "i" int ";" | "d" 16 hex digits (the f64's bits)
//!          | "s" len ":" bytes | "v" len ":" name
//!          | "l" n ";" expr{n} | "m" n ";" (expr expr){n}
//!          | "." len ":" name expr          (field of expr)
//!          | "[" expr expr                  (index)
//!          | "c" n ";" len ":" name expr{n} (function call)
//!          | "C" n ";" len ":" name expr expr{n} (method call: target, then arguments)
//!          | "u" ("!" | "-") expr | "b" op expr expr | "?" expr expr expr
//! ```

use crate::parse::Expr;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;
use tollgate_policy::prepared;

/// What every prepared program starts with.
pub const MAGIC: &str = "cel1;";

/// The deepest tree [`Reader`] reads back. The parser counts brackets and chained operators
/// alike against its own bound, which keeps a tree's height under about twice that bound; the
/// host reads every program back before it hands it over, so a tree this reader refused would
/// never reach a guest.
const MAX_DEPTH: usize = 4 * crate::parse::MAX_DEPTH;

/// The binary operators and their one-byte codes.
const OPERATORS: &[(&str, u8)] = &[
    ("||", b'|'),
    ("&&", b'&'),
    ("==", b'='),
    ("!=", b'!'),
    ("<", b'<'),
    ("<=", b'l'),
    (">", b'>'),
    (">=", b'g'),
    ("in", b'i'),
    ("+", b'+'),
    ("-", b'-'),
    ("*", b'*'),
    ("/", b'/'),
    ("%", b'%'),
];

pub use tollgate_policy::prepared::{write_count, write_str};

/// Appends the encoding of `expr`.
pub fn write_expr(out: &mut String, expr: &Expr<'_>) {
    match expr {
        Expr::Null => out.push('n'),
        Expr::Bool(true) => out.push('t'),
        Expr::Bool(false) => out.push('f'),
        Expr::Int(n) => {
            let _ = write!(out, "i{n};");
        }
        Expr::Double(d) => {
            let _ = write!(out, "d{:016x}", d.to_bits());
        }
        Expr::Str(s) => {
            out.push('s');
            write_str(out, s);
        }
        Expr::Ident(name) => {
            out.push('v');
            write_str(out, name);
        }
        Expr::List(items) => {
            out.push('l');
            write_count(out, items.len());
            items.iter().for_each(|item| write_expr(out, item));
        }
        Expr::Map(entries) => {
            out.push('m');
            write_count(out, entries.len());
            for (key, value) in entries {
                write_expr(out, key);
                write_expr(out, value);
            }
        }
        Expr::Field(target, name) => {
            out.push('.');
            write_str(out, name);
            write_expr(out, target);
        }
        Expr::Index(target, index) => {
            out.push('[');
            write_expr(out, target);
            write_expr(out, index);
        }
        Expr::Call { target, name, args } => {
            out.push(if target.is_some() { 'C' } else { 'c' });
            write_count(out, args.len());
            write_str(out, name);
            if let Some(target) = target {
                write_expr(out, target);
            }
            args.iter().for_each(|arg| write_expr(out, arg));
        }
        Expr::Unary(op, operand) => {
            out.push('u');
            out.push(*op);
            write_expr(out, operand);
        }
        Expr::Binary(left, op, right) => {
            let code = OPERATORS
                .iter()
                .find(|(text, _)| text == op)
                .map_or(b'?', |(_, code)| *code);
            out.push('b');
            out.push(char::from(code));
            write_expr(out, left);
            write_expr(out, right);
        }
        Expr::Ternary(condition, then, otherwise) => {
            out.push('?');
            write_expr(out, condition);
            write_expr(out, then);
            write_expr(out, otherwise);
        }
    }
}

/// Reads a prepared program back, front to back (the SDK's reader, with the nesting level).
pub struct Reader<'s> {
    inner: prepared::Reader<'s>,
    depth: usize,
}

impl<'s> Reader<'s> {
    /// A reader of `text`, which must start with [`MAGIC`].
    pub fn new(text: &'s str) -> Result<Self, String> {
        Ok(Reader {
            inner: prepared::Reader::new(text, MAGIC)?,
            depth: 0,
        })
    }

    fn malformed(&self) -> String {
        self.inner.malformed()
    }

    /// Whether every byte was read.
    pub fn finished(&self) -> bool {
        self.inner.finished()
    }

    /// The next byte.
    pub fn byte(&mut self) -> Result<u8, String> {
        self.inner.byte()
    }

    /// `n;`
    pub fn count(&mut self) -> Result<usize, String> {
        self.inner.count()
    }

    /// `len:bytes`, borrowed.
    pub fn str(&mut self) -> Result<&'s str, String> {
        self.inner.str()
    }

    fn boxed(&mut self) -> Result<Box<Expr<'s>>, String> {
        self.expr().map(Box::new)
    }

    /// One expression.
    pub fn expr(&mut self) -> Result<Expr<'s>, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.malformed());
        }
        let expr = match self.byte()? {
            b'n' => Expr::Null,
            b't' => Expr::Bool(true),
            b'f' => Expr::Bool(false),
            b'i' => Expr::Int(self.inner.int()?),
            b'd' => {
                let hex = self.inner.take(16)?;
                let bits = u64::from_str_radix(hex, 16).map_err(|_| self.malformed())?;
                Expr::Double(f64::from_bits(bits))
            }
            b's' => Expr::Str(self.str()?.to_string()),
            b'v' => Expr::Ident(self.str()?),
            b'l' => {
                let n = self.inner.items()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.expr()?);
                }
                Expr::List(items)
            }
            b'm' => {
                let n = self.inner.items()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push((self.expr()?, self.expr()?));
                }
                Expr::Map(entries)
            }
            b'.' => {
                let name = self.str()?;
                Expr::Field(self.boxed()?, name)
            }
            b'[' => Expr::Index(self.boxed()?, self.boxed()?),
            tag @ (b'c' | b'C') => {
                let n = self.inner.items()?;
                let name = self.str()?;
                let target = if tag == b'C' {
                    Some(self.boxed()?)
                } else {
                    None
                };
                let mut args = Vec::with_capacity(n);
                for _ in 0..n {
                    args.push(self.expr()?);
                }
                Expr::Call { target, name, args }
            }
            b'u' => match self.byte()? {
                op @ (b'!' | b'-') => Expr::Unary(char::from(op), self.boxed()?),
                _ => return Err(self.malformed()),
            },
            b'b' => {
                let code = self.byte()?;
                let op = OPERATORS
                    .iter()
                    .find(|(_, c)| *c == code)
                    .map(|(text, _)| *text)
                    .ok_or_else(|| self.malformed())?;
                Expr::Binary(self.boxed()?, op, self.boxed()?)
            }
            b'?' => Expr::Ternary(self.boxed()?, self.boxed()?, self.boxed()?),
            _ => return Err(self.inner.malformed_at(self.inner.position() - 1)),
        };
        self.depth -= 1;
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use alloc::format;

    fn round_trip(source: &str) {
        let expr = parse(source).unwrap();
        let mut text = String::from(MAGIC);
        write_expr(&mut text, &expr);
        let mut reader = Reader::new(&text).unwrap();
        assert_eq!(reader.expr().unwrap(), expr, "{source} as {text}");
        assert!(reader.finished(), "{text}");
    }

    #[test]
    fn every_kind_of_expression_reads_back_as_parsed() {
        for source in [
            "null || true && !false",
            "-1 + 2 * 3 / 4 % 5 - -9223372036854775807",
            "1.5 == 0.1 + 2.25 || 3.0 != 4.0",
            "'a:b' + \"c;d\" + 'quote \\' and \\\\ and \\n' + 'ünïcödé'",
            "[1, [2], []] == {'a': {1: 2}, 'b': {}}",
            "assertion['kubernetes.io'].namespace.startsWith('team-') ? 'x' : 'y'",
            "request.scopes.exists(s, s in ['a', 'b']) && size(request.scopes) <= 2",
            "has(assertion.sub) && int('3') > 2 && string(1) >= '1' && now < 5",
            "request.scopes.filter(s, s.glob('a*')).map(s, s + '!')[0]",
        ] {
            round_trip(source);
        }
    }

    #[test]
    fn a_malformed_program_is_an_error_not_a_trap() {
        let mut good = String::from(MAGIC);
        write_expr(&mut good, &parse("a.b['c'] + f(1, 2.5)").unwrap());
        // Every truncation, and every byte replaced by another tag or digit, reads to an
        // error or to some expression: never a panic, never past the end.
        for end in MAGIC.len()..good.len() {
            let mut reader = Reader::new(&good[..end]).unwrap();
            assert!(reader.expr().is_err() || !reader.finished());
        }
        for at in MAGIC.len()..good.len() {
            for byte in [b'9', b':', b';', b'x', b'l', b'b', b'C', b'd'] {
                let mut bytes = good.clone().into_bytes();
                bytes[at] = byte;
                let text = String::from_utf8(bytes).unwrap();
                let _ = Reader::new(&text).unwrap().expr();
            }
        }
        // Counts and lengths past the end, a length that cuts a character, and nesting past
        // the bound.
        for text in [
            "cel1;l99999999999;",
            "cel1;s99999999999999999999:",
            "cel1;s18446744073709551615:x",
            "cel1;s1:ü",
            "cel1;bzvv",
            "cel1;d12",
            "cel1;uxn",
            "",
        ] {
            assert!(
                Reader::new(text).and_then(|mut r| r.expr()).is_err(),
                "{text}"
            );
        }
        assert_eq!(Reader::new("cel1;i-5;").unwrap().expr(), Ok(Expr::Int(-5)));
        assert!(Reader::new("cel1;i-;").unwrap().expr().is_err());
        assert!(
            Reader::new("cel1;i9223372036854775808;")
                .unwrap()
                .expr()
                .is_err()
        );
        let deep = format!("{MAGIC}{}n", "u!".repeat(MAX_DEPTH + 1));
        assert!(Reader::new(&deep).unwrap().expr().is_err());
        let shallow = format!("{MAGIC}{}n", "u!".repeat(MAX_DEPTH - 1));
        assert!(Reader::new(&shallow).unwrap().expr().is_ok());
    }
}
