//! The CEL syntax this policy understands, parsed by hand (precedence climbing): small and fast
//! enough to parse at every decision, since each decision is a fresh instance that keeps
//! nothing. Errors name their line and column.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// An expression tree. Names borrow from the source text (no copy per name at every decision).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr<'s> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    List(Vec<Expr<'s>>),
    Map(Vec<(Expr<'s>, Expr<'s>)>),
    Ident(&'s str),
    /// `target.field`
    Field(Box<Expr<'s>>, &'s str),
    /// `target[index]`
    Index(Box<Expr<'s>>, Box<Expr<'s>>),
    /// `name(args)` or `target.name(args)`.
    Call {
        target: Option<Box<Expr<'s>>>,
        name: &'s str,
        args: Vec<Expr<'s>>,
    },
    Unary(char, Box<Expr<'s>>),
    Binary(Box<Expr<'s>>, &'static str, Box<Expr<'s>>),
    Ternary(Box<Expr<'s>>, Box<Expr<'s>>, Box<Expr<'s>>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token<'s> {
    Ident(&'s str),
    Int(i64),
    Double(f64),
    Str(String),
    Punct(&'static str),
    End,
}

/// The punctuation token `rest` starts with, longest first.
fn punct(rest: &[u8]) -> Option<&'static str> {
    let two = match rest {
        [b'&', b'&', ..] => Some("&&"),
        [b'|', b'|', ..] => Some("||"),
        [b'=', b'=', ..] => Some("=="),
        [b'!', b'=', ..] => Some("!="),
        [b'<', b'=', ..] => Some("<="),
        [b'>', b'=', ..] => Some(">="),
        _ => None,
    };
    two.or(match rest.first()? {
        b'<' => Some("<"),
        b'>' => Some(">"),
        b'!' => Some("!"),
        b'?' => Some("?"),
        b':' => Some(":"),
        b'.' => Some("."),
        b',' => Some(","),
        b'(' => Some("("),
        b')' => Some(")"),
        b'[' => Some("["),
        b']' => Some("]"),
        b'{' => Some("{"),
        b'}' => Some("}"),
        b'+' => Some("+"),
        b'-' => Some("-"),
        b'*' => Some("*"),
        b'/' => Some("/"),
        b'%' => Some("%"),
        _ => None,
    })
}

/// Where a token starts: byte offset.
struct Lexed<'s> {
    tokens: Vec<(Token<'s>, usize)>,
}

/// `message` at byte `at` of `source`, as `line L, column C: message`.
fn error_at(source: &str, at: usize, message: impl core::fmt::Display) -> String {
    let before = &source[..at.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

fn lex(source: &str) -> Result<Lexed<'_>, String> {
    let bytes = source.as_bytes();
    // About one token per four characters of expression: no regrowth for typical ones.
    let mut tokens = Vec::with_capacity(source.len() / 4 + 4);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push((Token::Ident(&source[start..i]), start));
        } else if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let is_double =
                i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit();
            if is_double {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let value = source[start..i]
                    .parse()
                    .map_err(|_| error_at(source, start, "not a number"))?;
                tokens.push((Token::Double(value), start));
            } else {
                let value = source[start..i]
                    .parse()
                    .map_err(|_| error_at(source, start, "integer out of range"))?;
                // `1u` is an unsigned literal in CEL: the same number here.
                if i < bytes.len() && (bytes[i] == b'u' || bytes[i] == b'U') {
                    i += 1;
                }
                tokens.push((Token::Int(value), start));
            }
        } else if c == b'\'' || c == b'"' {
            let quote = c;
            i += 1;
            let mut text = String::new();
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(error_at(source, start, "unterminated string"));
                };
                if b == quote {
                    i += 1;
                    break;
                }
                if b == b'\\' {
                    let escaped = bytes.get(i + 1).copied();
                    text.push(match escaped {
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'\\') => '\\',
                        Some(b'\'') => '\'',
                        Some(b'"') => '"',
                        _ => return Err(error_at(source, i, "unknown escape")),
                    });
                    i += 2;
                    continue;
                }
                // Up to the next quote or backslash (ASCII: the cut is a char boundary).
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == quote || b == b'\\')
                    .map_or(bytes.len(), |n| i + n);
                text.push_str(&source[i..end]);
                i = end;
            }
            tokens.push((Token::Str(text), start));
        } else if let Some(p) = punct(&bytes[i..]) {
            i += p.len();
            tokens.push((Token::Punct(p), start));
        } else {
            let ch = source[i..].chars().next().unwrap_or('?');
            return Err(error_at(source, start, format!("unexpected `{ch}`")));
        }
    }
    tokens.push((Token::End, source.len()));
    Ok(Lexed { tokens })
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<(Token<'s>, usize)>,
    at: usize,
    depth: usize,
}

/// Deepest nesting accepted, where each operator or member access chained onto an operand
/// counts as a level as well as each bracket: a bound on the parser's recursion and on the
/// tree's height, so that every walk of a tree (evaluation, the host's encoding of a prepared
/// program, dropping it) recurses a bounded number of times.
pub const MAX_DEPTH: usize = 64;

/// Parses `source` as one expression.
pub fn parse(source: &str) -> Result<Expr<'_>, String> {
    let Lexed { tokens } = lex(source)?;
    let mut parser = Parser {
        source,
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.expr()?;
    match parser.peek() {
        Token::End => Ok(expr),
        other => Err(parser.error(format!(
            "unexpected {} after the expression",
            describe(other)
        ))),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Ident(name) => format!("`{name}`"),
        Token::Int(n) => format!("`{n}`"),
        Token::Double(d) => format!("`{d}`"),
        Token::Str(_) => "a string".to_owned(),
        Token::Punct(p) => format!("`{p}`"),
        Token::End => "the end".to_owned(),
    }
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token<'s> {
        &self.tokens[self.at].0
    }

    /// Takes the current token (each is consumed once; only its position is read again) and
    /// moves on; the final `End` stays.
    fn next(&mut self) -> Token<'s> {
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
            core::mem::replace(&mut self.tokens[self.at - 1].0, Token::End)
        } else {
            Token::End
        }
    }

    fn error(&self, message: impl core::fmt::Display) -> String {
        error_at(self.source, self.tokens[self.at].1, message)
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Token::Punct(p) if *p == punct) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), String> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected `{punct}`, found {}",
                describe(self.peek())
            )))
        }
    }

    /// One level deeper, unless that is past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("the expression is nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr<'s>, String> {
        self.deeper()?;
        let condition = self.binary(0)?;
        let expr = if self.eat("?") {
            let then = self.binary(0)?;
            self.expect(":")?;
            let otherwise = self.expr()?;
            Expr::Ternary(Box::new(condition), Box::new(then), Box::new(otherwise))
        } else {
            condition
        };
        self.depth -= 1;
        Ok(expr)
    }

    /// The binary operator at the cursor and its precedence (loosest 0), if any.
    fn operator(&self) -> Option<(&'static str, usize)> {
        let op = match self.peek() {
            Token::Punct(p) => *p,
            Token::Ident("in") => "in",
            _ => return None,
        };
        let level = match op {
            "||" => 0,
            "&&" => 1,
            "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" => 2,
            "+" | "-" => 3,
            "*" | "/" | "%" => 4,
            _ => return None,
        };
        Some((op, level))
    }

    /// Binary operators of precedence `min` or tighter, left-associative (precedence climbing:
    /// one call per operand, not one per level).
    fn binary(&mut self, min: usize) -> Result<Expr<'s>, String> {
        let depth = self.depth;
        let mut left = self.unary()?;
        while let Some((op, level)) = self.operator().filter(|(_, level)| *level >= min) {
            self.next();
            self.deeper()?;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(Box::new(left), op, Box::new(right));
        }
        self.depth = depth;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr<'s>, String> {
        for (op, text) in [('!', "!"), ('-', "-")] {
            if self.eat(text) {
                self.deeper()?;
                let operand = self.unary()?;
                self.depth -= 1;
                return Ok(Expr::Unary(op, Box::new(operand)));
            }
        }
        self.member()
    }

    fn member(&mut self) -> Result<Expr<'s>, String> {
        let depth = self.depth;
        let mut expr = self.primary()?;
        loop {
            if self.eat(".") {
                self.deeper()?;
                let name = match self.next() {
                    Token::Ident(name) => name,
                    other => {
                        return Err(self.error(format!(
                            "expected a name after `.`, found {}",
                            describe(&other)
                        )));
                    }
                };
                if self.eat("(") {
                    let args = self.args(")")?;
                    expr = Expr::Call {
                        target: Some(Box::new(expr)),
                        name,
                        args,
                    };
                } else {
                    expr = Expr::Field(Box::new(expr), name);
                }
            } else if self.eat("[") {
                self.deeper()?;
                let index = self.expr()?;
                self.expect("]")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                self.depth = depth;
                return Ok(expr);
            }
        }
    }

    fn args(&mut self, close: &str) -> Result<Vec<Expr<'s>>, String> {
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(close) {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Expr<'s>, String> {
        match self.next() {
            Token::Int(n) => Ok(Expr::Int(n)),
            Token::Double(d) => Ok(Expr::Double(d)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Ident(name) => match name {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "null" => Ok(Expr::Null),
                _ if self.eat("(") => Ok(Expr::Call {
                    target: None,
                    name,
                    args: self.args(")")?,
                }),
                _ => Ok(Expr::Ident(name)),
            },
            Token::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Punct("[") => Ok(Expr::List(self.args("]")?)),
            Token::Punct("{") => {
                let mut entries = Vec::new();
                if self.eat("}") {
                    return Ok(Expr::Map(entries));
                }
                loop {
                    let key = self.expr()?;
                    self.expect(":")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    if self.eat("}") {
                        return Ok(Expr::Map(entries));
                    }
                    self.expect(",")?;
                }
            }
            other => {
                // Point at the token just consumed.
                self.at = self.at.saturating_sub(usize::from(other != Token::End));
                Err(self.error(format!(
                    "expected an expression, found {}",
                    describe(&other)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_members() {
        let e = parse("a.b[0] == 'x' || !c && d in [1, 2.5] ? f(1) : g.h(2)").unwrap();
        let Expr::Ternary(condition, _, _) = e else {
            panic!("{e:?}")
        };
        assert!(
            matches!(*condition, Expr::Binary(_, "||", _)),
            "{condition:?}"
        );
        assert_eq!(
            parse("1 + 2 * 3").unwrap(),
            Expr::Binary(
                Box::new(Expr::Int(1)),
                "+",
                Box::new(Expr::Binary(
                    Box::new(Expr::Int(2)),
                    "*",
                    Box::new(Expr::Int(3))
                )),
            )
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            parse("a ==").unwrap_err(),
            "line 1, column 5: expected an expression, found the end"
        );
        assert_eq!(
            parse("a &&\n  ) b").unwrap_err(),
            "line 2, column 3: expected an expression, found `)`"
        );
        assert!(
            parse("'open")
                .unwrap_err()
                .starts_with("line 1, column 1: unterminated")
        );
        assert!(parse("a # b").unwrap_err().contains("unexpected `#`"));
        assert!(
            parse(&"(".repeat(200))
                .unwrap_err()
                .contains("nested too deeply")
        );
        assert!(parse("a b").unwrap_err().contains("after the expression"));
    }
}
