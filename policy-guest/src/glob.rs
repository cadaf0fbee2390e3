//! The glob dialect shared by the host and the SDK.
//!
//! A pattern matches the *whole* string. `*` matches any run of characters and `?` any single
//! character, but neither ever crosses a separator (`:` or `/`), so `team-a*` cannot match
//! `team-attacker:sa` and `system:serviceaccount:prod:*` cannot match a deeper path. `**` matches
//! anything, separators included. `[abc]`, `[a-z]` and `[!abc]` (or `[^abc]`) are character
//! classes (a negated class never matches a separator), `{a,b}` is an alternation of
//! sub-patterns, and `\` escapes the next character.
//!
//! This module turns a pattern into a regular expression; the host compiles and caches it, so
//! matching is linear in the length of the text whatever the pattern.

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::fmt;

/// Longest pattern accepted, in bytes: patterns come from tenants, keep them bounded.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Why a pattern is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// The offending pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid glob `{}`: {}", self.pattern, self.reason)
    }
}

impl core::error::Error for GlobError {}

/// Checks that `pattern` is a valid glob.
pub fn validate(pattern: &str) -> Result<(), GlobError> {
    to_regex(pattern).map(drop)
}

/// Translates `pattern` to an anchored regular expression (syntax of the `regex` crate).
pub fn to_regex(pattern: &str) -> Result<String, GlobError> {
    let fail = |reason| GlobError {
        pattern: pattern.to_owned(),
        reason,
    };
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(fail("longer than 1024 bytes"));
    }
    let mut out = String::with_capacity(pattern.len() * 2 + 8);
    out.push_str("^(?s:");
    let mut chars = pattern.chars().peekable();
    let mut in_alternation = false;
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if chars.peek() == Some(&'*') {
                    while chars.peek() == Some(&'*') {
                        chars.next();
                    }
                    out.push_str(".*");
                } else {
                    out.push_str("[^:/]*");
                }
            }
            '?' => out.push_str("[^:/]"),
            '[' => translate_class(&mut chars, &mut out).map_err(fail)?,
            '{' if in_alternation => return Err(fail("nested `{` alternation")),
            '{' => {
                in_alternation = true;
                out.push_str("(?:");
            }
            ',' if in_alternation => out.push('|'),
            '}' if in_alternation => {
                in_alternation = false;
                out.push(')');
            }
            '\\' => match chars.next() {
                Some(escaped) => push_literal(&mut out, escaped),
                None => return Err(fail("ends with a lone `\\`")),
            },
            other => push_literal(&mut out, other),
        }
    }
    if in_alternation {
        return Err(fail("unclosed `{`"));
    }
    out.push_str(")$");
    Ok(out)
}

fn translate_class(
    chars: &mut core::iter::Peekable<core::str::Chars<'_>>,
    out: &mut String,
) -> Result<(), &'static str> {
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    out.push('[');
    if negated {
        out.push('^');
    }
    let mut members = 0usize;
    loop {
        let Some(c) = chars.next() else {
            return Err("unclosed `[` class");
        };
        // A `]` right after the opening bracket is a member, as in POSIX globs.
        if c == ']' && members > 0 {
            break;
        }
        if c == '-' && members > 0 && chars.peek().is_some_and(|n| *n != ']') {
            out.push('-');
            continue;
        }
        push_class_member(out, c);
        members += 1;
    }
    if negated {
        out.push_str(":/");
    }
    out.push(']');
    Ok(())
}

fn push_class_member(out: &mut String, c: char) {
    if matches!(c, '\\' | '[' | ']' | '^' | '-' | '&' | '~') {
        out.push('\\');
    }
    out.push(c);
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_punctuation() {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_separators_and_wildcards() {
        assert_eq!(to_regex("a*").unwrap(), "^(?s:a[^:/]*)$");
        assert_eq!(to_regex("a**").unwrap(), "^(?s:a.*)$");
        assert_eq!(to_regex("a?.b").unwrap(), "^(?s:a[^:/]\\.b)$");
        assert_eq!(to_regex("[!ab]").unwrap(), "^(?s:[^ab:/])$");
        assert_eq!(to_regex("{x,y*}").unwrap(), "^(?s:(?:x|y[^:/]*))$");
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in ["[abc", "{a,b", "{a,{b}}", "abc\\", &"x".repeat(1025)] {
            assert!(validate(bad).is_err(), "{bad} should be rejected");
        }
    }
}
