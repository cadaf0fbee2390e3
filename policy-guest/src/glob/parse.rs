//! The one parser of the glob dialect: both the host's regular expression and the in-policy
//! matcher are built from its output, so they cannot read a pattern differently.

use alloc::vec::Vec;
use core::iter::Peekable;
use core::str::Chars;

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// This character.
    Literal(char),
    /// `?`: one character that is not a separator.
    AnyChar,
    /// `*`: any run of characters without a separator.
    Star,
    /// `**`: any run of characters, separators included.
    DoubleStar,
    /// `[...]`: inclusive character ranges; a negated class never matches a separator.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `{a,b}`: one of these sub-patterns.
    Alternation(Vec<Vec<Node>>),
}

/// Parses `pattern` (whose length the caller has checked).
pub(crate) fn parse(pattern: &str) -> Result<Vec<Node>, &'static str> {
    let mut chars = pattern.chars().peekable();
    let mut top = Vec::new();
    // Inside `{...}`: the alternatives closed so far and the one being read.
    let mut alternation: Option<(Vec<Vec<Node>>, Vec<Node>)> = None;
    while let Some(c) = chars.next() {
        let node = match c {
            '*' if chars.peek() == Some(&'*') => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                Node::DoubleStar
            }
            '*' => Node::Star,
            '?' => Node::AnyChar,
            '[' => class(&mut chars)?,
            '{' if alternation.is_some() => return Err("nested `{` alternation"),
            '{' => {
                alternation = Some((Vec::new(), Vec::new()));
                continue;
            }
            ',' if alternation.is_some() => {
                let (done, current) = alternation.as_mut().expect("checked");
                done.push(core::mem::take(current));
                continue;
            }
            '}' if alternation.is_some() => {
                let (mut done, current) = alternation.take().expect("checked");
                done.push(current);
                top.push(Node::Alternation(done));
                continue;
            }
            '\\' => Node::Literal(chars.next().ok_or("ends with a lone `\\`")?),
            other => Node::Literal(other),
        };
        match &mut alternation {
            Some((_, current)) => current.push(node),
            None => top.push(node),
        }
    }
    if alternation.is_some() {
        return Err("unclosed `{`");
    }
    Ok(top)
}

/// Reads a class after its `[`. A `]` right after the opening bracket (or `!`/`^`) is a member,
/// as in POSIX globs; `a-z` is a range unless the `-` is followed by the closing `]`.
fn class(chars: &mut Peekable<Chars<'_>>) -> Result<Node, &'static str> {
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    loop {
        let low = chars.next().ok_or("unclosed `[` class")?;
        if low == ']' && !ranges.is_empty() {
            return Ok(Node::Class { negated, ranges });
        }
        let mut ahead = chars.clone();
        let high = match (ahead.next(), ahead.next()) {
            (Some('-'), Some(high)) if high != ']' => {
                chars.next();
                chars.next();
                high
            }
            _ => low,
        };
        if high < low {
            return Err("reversed range in `[` class");
        }
        ranges.push((low, high));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn reads_every_construct() {
        let nodes = parse("a?*/**[!b-d]{x,y*}\\*").unwrap();
        assert_eq!(
            nodes,
            vec![
                Node::Literal('a'),
                Node::AnyChar,
                Node::Star,
                Node::Literal('/'),
                Node::DoubleStar,
                Node::Class {
                    negated: true,
                    ranges: vec![('b', 'd')]
                },
                Node::Alternation(vec![
                    vec![Node::Literal('x')],
                    vec![Node::Literal('y'), Node::Star]
                ]),
                Node::Literal('*'),
            ]
        );
    }

    #[test]
    fn class_edges() {
        let class = |p: &str| match parse(p).unwrap().remove(0) {
            Node::Class { ranges, .. } => ranges,
            other => panic!("{other:?}"),
        };
        assert_eq!(class("[]a]"), vec![(']', ']'), ('a', 'a')]);
        assert_eq!(class("[a-]"), vec![('a', 'a'), ('-', '-')]);
        assert_eq!(class("[-a]"), vec![('-', '-'), ('a', 'a')]);
        assert_eq!(class("[a-c-e]"), vec![('a', 'c'), ('-', '-'), ('e', 'e')]);
        assert_eq!(parse("[z-a]"), Err("reversed range in `[` class"));
        assert_eq!(parse("[a"), Err("unclosed `[` class"));
        assert_eq!(parse("[]"), Err("unclosed `[` class"));
    }

    #[test]
    fn commas_and_braces_outside_alternation_are_literal() {
        assert_eq!(
            parse("a,b}").unwrap(),
            vec![
                Node::Literal('a'),
                Node::Literal(','),
                Node::Literal('b'),
                Node::Literal('}')
            ]
        );
    }
}
