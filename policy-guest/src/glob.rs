//! The glob dialect shared by the host and the SDK.
//!
//! A pattern matches the *whole* string. `*` matches any run of characters and `?` any single
//! character, but neither ever crosses a separator (`:` or `/`), so `team-a*` cannot match
//! `team-attacker:sa` and `system:serviceaccount:prod:*` cannot match a deeper path. `**` matches
//! anything, separators included. `[abc]`, `[a-z]` and `[!abc]` (or `[^abc]`) are character
//! classes (a negated class never matches a separator), `{a,b}` is an alternation of
//! sub-patterns, and `\` escapes the next character.
//!
//! Two ways to match, one parser: [`to_regex`] gives the host a regular expression (the host's
//! `glob-match`, reached through [`crate::glob_match`]); [`matches`] and [`Glob`] run the same
//! dialect inside the policy with no host call. A policy that matches only this way and never
//! logs imports no host function, which makes its instance cheaper to create (see
//! [`crate::no_std_runtime!`]). Both are linear in the length of the text whatever the pattern.

#[cfg(test)]
mod differential;
mod nfa;
mod parse;

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::fmt;
use parse::Node;

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

fn parse(pattern: &str) -> Result<alloc::vec::Vec<Node>, GlobError> {
    let fail = |reason| GlobError {
        pattern: pattern.to_owned(),
        reason,
    };
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(fail("longer than 1024 bytes"));
    }
    parse::parse(pattern).map_err(fail)
}

/// Checks that `pattern` is a valid glob.
pub fn validate(pattern: &str) -> Result<(), GlobError> {
    parse(pattern).map(drop)
}

/// A glob compiled for matching inside the policy, for a pattern used many times.
#[derive(Debug)]
pub struct Glob(nfa::Program);

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        parse(pattern).map(|nodes| Glob(nfa::Program::compile(&nodes)))
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// Whether `text` matches the glob `pattern`, evaluated inside the policy (no host call).
///
/// Same answer as [`crate::glob_match`] for every pattern and text (the SDK's tests compare the
/// two on generated inputs); an invalid pattern matches nothing. The literal start and end of
/// the pattern are compared first, and the common shapes (a literal, a literal followed by `*`
/// or `**`) compile nothing.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern.len() > MAX_PATTERN_LEN {
        return false;
    }
    let bytes = pattern.as_bytes();
    let Some(first) = bytes.iter().position(|&b| is_special(b)) else {
        return pattern == text;
    };
    let Some(rest) = text.strip_prefix(&pattern[..first]) else {
        return false;
    };
    let wild = &pattern[first..];
    if wild == "*" {
        return !rest.bytes().any(|b| b == b':' || b == b'/');
    }
    if wild.len() >= 2 && wild.bytes().all(|b| b == b'*') {
        return true;
    }
    // The pattern is `prefix wild-part suffix` with literal ends, so the text must be too.
    let Some(end) = end_of_wild_part(bytes, first) else {
        return false;
    };
    let Some(inner) = rest.strip_suffix(&pattern[end..]) else {
        return false;
    };
    Glob::new(&pattern[first..end]).is_ok_and(|glob| glob.is_match(inner))
}

/// Bytes that may mean something other than themselves (`,` and `}` only do inside `{...}`, but
/// counting them keeps the literal ends literal).
fn is_special(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b',' | b'\\')
}

/// Where the literal suffix starts: just after the last special byte or escaped character.
/// `None` when the pattern ends with a lone `\` (invalid).
fn end_of_wild_part(bytes: &[u8], first: usize) -> Option<usize> {
    let (mut i, mut end) = (first, first);
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            // The escaped character may be several bytes long: skip to the next boundary.
            let next = bytes.get(i + 1)?;
            i += 1 + utf8_len(*next);
            end = i;
        } else {
            if is_special(bytes[i]) {
                end = i + 1;
            }
            i += 1;
        }
    }
    Some(end)
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0..0x80 => 1,
        0xc0..0xe0 => 2,
        0xe0..0xf0 => 3,
        _ => 4,
    }
}

/// Translates `pattern` to an anchored regular expression (syntax of the `regex` crate).
pub fn to_regex(pattern: &str) -> Result<String, GlobError> {
    let nodes = parse(pattern)?;
    let mut out = String::with_capacity(pattern.len() * 2 + 8);
    out.push_str("^(?s:");
    push_nodes(&mut out, &nodes);
    out.push_str(")$");
    Ok(out)
}

fn push_nodes(out: &mut String, nodes: &[Node]) {
    for node in nodes {
        match node {
            Node::Literal(c) => push_escaped(out, *c),
            Node::AnyChar => out.push_str("[^:/]"),
            Node::Star => out.push_str("[^:/]*"),
            Node::DoubleStar => out.push_str(".*"),
            Node::Class { negated, ranges } => {
                out.push_str(if *negated { "[^" } else { "[" });
                for &(low, high) in ranges {
                    push_escaped(out, low);
                    if high != low {
                        out.push('-');
                        push_escaped(out, high);
                    }
                }
                if *negated {
                    out.push_str(":/");
                }
                out.push(']');
            }
            Node::Alternation(branches) => {
                out.push_str("(?:");
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    push_nodes(out, branch);
                }
                out.push(')');
            }
        }
    }
}

/// The `regex` crate accepts an escape before any ASCII punctuation, in and out of classes.
fn push_escaped(out: &mut String, c: char) {
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
        assert_eq!(to_regex("[a-c-]").unwrap(), "^(?s:[a-c\\-])$");
        assert_eq!(to_regex("{x,y*}").unwrap(), "^(?s:(?:x|y[^:/]*))$");
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in [
            "[abc",
            "{a,b",
            "{a,{b}}",
            "abc\\",
            "[z-a]",
            &"x".repeat(1025),
        ] {
            assert!(validate(bad).is_err(), "{bad} should be rejected");
        }
    }
}
