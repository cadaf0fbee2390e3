//! Evaluation of a parsed expression over JSON values (CEL's null, bool, int, double, string,
//! list and map), and the checks made before it: every name bound, every function known.
//!
//! As in CEL, `&&` and `||` absorb an error on one side when the other side decides
//! (`false && error` is `false`), and any other error makes the whole expression an error,
//! which the policy turns into a denial.

use crate::parse::Expr;
use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

/// The names every expression may use.
pub const VARIABLES: &[&str] = &["assertion", "request", "now"];

const MACROS: &[&str] = &["exists", "all", "exists_one", "filter", "map"];
const METHODS: &[(&str, usize)] = &[
    ("size", 0),
    ("startsWith", 1),
    ("endsWith", 1),
    ("contains", 1),
    ("glob", 1),
];
const FUNCTIONS: &[(&str, usize)] = &[("size", 1), ("has", 1), ("int", 1), ("string", 1)];

/// Checks that `expr` only uses bound names and known functions, with the right arity.
pub fn check<'s>(expr: &Expr<'s>, bound: &mut Vec<&'s str>) -> Result<(), String> {
    match expr {
        Expr::Null | Expr::Bool(_) | Expr::Int(_) | Expr::Double(_) | Expr::Str(_) => Ok(()),
        Expr::List(items) => items.iter().try_for_each(|e| check(e, bound)),
        Expr::Map(entries) => entries.iter().try_for_each(|(k, v)| {
            check(k, bound)?;
            check(v, bound)
        }),
        Expr::Ident(name) => {
            if VARIABLES.contains(name) || bound.contains(name) {
                Ok(())
            } else {
                Err(format!(
                    "unknown name `{name}` (the names are assertion, request and now)"
                ))
            }
        }
        Expr::Field(target, _) => check(target, bound),
        Expr::Index(target, index) => {
            check(target, bound)?;
            check(index, bound)
        }
        Expr::Unary(_, operand) => check(operand, bound),
        Expr::Binary(left, _, right) => {
            check(left, bound)?;
            check(right, bound)
        }
        Expr::Ternary(c, a, b) => {
            check(c, bound)?;
            check(a, bound)?;
            check(b, bound)
        }
        Expr::Call {
            target: Some(target),
            name,
            args,
        } if MACROS.contains(name) => {
            check(target, bound)?;
            let [Expr::Ident(var), body] = args.as_slice() else {
                return Err(format!("`{name}` takes a variable name and an expression"));
            };
            bound.push(var);
            let checked = check(body, bound);
            bound.pop();
            checked
        }
        Expr::Call { target, name, args } => {
            let known = if target.is_some() { METHODS } else { FUNCTIONS };
            match known.iter().find(|(n, _)| n == name) {
                Some((_, arity)) if *arity == args.len() => {}
                Some((_, arity)) => return Err(format!("`{name}` takes {arity} argument(s)")),
                None => return Err(format!("unknown function `{name}`")),
            }
            if *name == "has" && !matches!(args[0], Expr::Field(..) | Expr::Index(..)) {
                return Err("`has` takes a field, such as `has(assertion.email)`".into());
            }
            if let Some(target) = target {
                check(target, bound)?;
            }
            args.iter().try_for_each(|e| check(e, bound))
        }
    }
}

/// Variables in scope: the request's, then macro variables (innermost last).
pub struct Scope<'s> {
    vars: Vec<(&'s str, Value)>,
}

impl<'s> Scope<'s> {
    pub fn new(vars: Vec<(&'s str, Value)>) -> Scope<'s> {
        Scope { vars }
    }

    fn get(&self, name: &str) -> Result<&Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("unknown name `{name}`"))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a double",
        Value::Number(_) => "an int",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn as_bool(value: &Value, what: &str) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{what} is {}, not a boolean", kind(value)))
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => number(a) == number(b),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        _ => a == b,
    }
}

/// The value a path of names, fields and literal indexes (`assertion['kubernetes.io'].namespace`)
/// leads to, borrowed from the scope: no copy of the claims per access. `None` when `expr` is
/// not such a path.
fn path<'v>(expr: &Expr<'_>, scope: &'v Scope<'_>) -> Option<Result<&'v Value, String>> {
    Some(match expr {
        Expr::Ident(name) => scope.get(name),
        Expr::Field(target, name) => match path(target, scope)? {
            Ok(Value::Object(map)) => map
                .get(*name)
                .ok_or_else(|| format!("no such key: `{name}`")),
            Ok(other) => Err(format!("`.{name}` of {}", kind(other))),
            Err(e) => Err(e),
        },
        Expr::Index(target, index) => {
            let target = match path(target, scope)? {
                Ok(target) => target,
                Err(e) => return Some(Err(e)),
            };
            match (target, index.as_ref()) {
                (Value::Object(map), Expr::Str(key)) => {
                    map.get(key).ok_or_else(|| format!("no such key: `{key}`"))
                }
                (Value::Array(items), Expr::Int(i)) => usize::try_from(*i)
                    .ok()
                    .and_then(|i| items.get(i))
                    .ok_or_else(|| format!("index {i} out of range")),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Evaluates `expr` in `scope`.
pub fn eval<'s>(expr: &Expr<'s>, scope: &mut Scope<'s>) -> Result<Value, String> {
    if let Some(found) = path(expr, scope) {
        return found.cloned();
    }
    match expr {
        Expr::Null => Ok(Value::Null),
        Expr::Bool(b) => Ok(Value::Bool(*b)),
        Expr::Int(n) => Ok(Value::from(*n)),
        Expr::Double(d) => Ok(serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)),
        Expr::Str(s) => Ok(Value::String(s.clone())),
        Expr::List(items) => items
            .iter()
            .map(|e| eval(e, scope))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Expr::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match eval(k, scope)? {
                    Value::String(s) => s,
                    other => return Err(format!("a map key is {}, not a string", kind(&other))),
                };
                map.insert(key, eval(v, scope)?);
            }
            Ok(Value::Object(map))
        }
        Expr::Ident(name) => scope.get(name).cloned(),
        Expr::Field(target, name) => match eval(target, scope)? {
            Value::Object(mut map) => map
                .remove(*name)
                .ok_or_else(|| format!("no such key: `{name}`")),
            other => Err(format!("`.{name}` of {}", kind(&other))),
        },
        Expr::Index(target, index) => {
            let (target, index) = (eval(target, scope)?, eval(index, scope)?);
            match (target, index) {
                (Value::Object(mut map), Value::String(key)) => map
                    .remove(&key)
                    .ok_or_else(|| format!("no such key: `{key}`")),
                (Value::Array(items), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| items.get(usize::try_from(i).ok()?).cloned())
                    .ok_or_else(|| format!("index {n} out of range")),
                (t, i) => Err(format!("cannot index {} with {}", kind(&t), kind(&i))),
            }
        }
        Expr::Unary('!', operand) => Ok(Value::Bool(!as_bool(
            &eval(operand, scope)?,
            "`!`'s operand",
        )?)),
        Expr::Unary(_, operand) => match eval(operand, scope)? {
            Value::Number(n) if n.is_i64() => Ok(Value::from(
                n.as_i64().unwrap_or(0).checked_neg().ok_or("overflow")?,
            )),
            Value::Number(n) => Ok(Value::from(-n.as_f64().unwrap_or(0.0))),
            other => Err(format!("cannot negate {}", kind(&other))),
        },
        Expr::Binary(left, op @ ("&&" | "||"), right) => logical(left, op, right, scope),
        Expr::Binary(left, op, right) => {
            // Operands that are paths into the claims are borrowed, not copied
            // (`'kubernetes.io' in assertion` would copy every claim).
            let (a, b) = (unless_path(left, scope)?, unless_path(right, scope)?);
            binary(
                operand(a.as_ref(), left, scope)?,
                op,
                operand(b.as_ref(), right, scope)?,
            )
        }
        Expr::Ternary(condition, then, otherwise) => {
            if as_bool(&eval(condition, scope)?, "the condition of `?:`")? {
                eval(then, scope)
            } else {
                eval(otherwise, scope)
            }
        }
        Expr::Call {
            target: Some(target),
            name,
            args,
        } if MACROS.contains(name) => comprehension(target, name, args, scope),
        Expr::Call { target, name, args } => call(target.as_deref(), name, args, scope),
    }
}

/// `expr` evaluated, or `None` when it is a path, to be borrowed with [`operand`] once every
/// operand is evaluated.
fn unless_path<'s>(expr: &Expr<'s>, scope: &mut Scope<'s>) -> Result<Option<Value>, String> {
    match path(expr, scope) {
        Some(_) => Ok(None),
        None => eval(expr, scope).map(Some),
    }
}

/// An operand evaluated by [`unless_path`], or borrowed from the scope when it is a path.
fn operand<'a>(
    value: Option<&'a Value>,
    expr: &Expr<'_>,
    scope: &'a Scope<'_>,
) -> Result<&'a Value, String> {
    match value {
        Some(v) => Ok(v),
        None => path(expr, scope).expect("evaluated unless a path"),
    }
}

fn logical<'s>(
    left: &Expr<'s>,
    op: &str,
    right: &Expr<'s>,
    scope: &mut Scope<'s>,
) -> Result<Value, String> {
    let decisive = op == "||";
    let a = eval(left, scope).and_then(|v| as_bool(&v, "an operand of a logical operator"));
    if a == Ok(decisive) {
        return Ok(Value::Bool(decisive));
    }
    let b = eval(right, scope).and_then(|v| as_bool(&v, "an operand of a logical operator"));
    match (a, b) {
        (_, Ok(b)) if b == decisive => Ok(Value::Bool(decisive)),
        (Ok(_), Ok(_)) => Ok(Value::Bool(!decisive)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

fn binary(a: &Value, op: &str, b: &Value) -> Result<Value, String> {
    let mismatch = || format!("`{op}` of {} and {}", kind(a), kind(b));
    match op {
        "==" => Ok(Value::Bool(equal(a, b))),
        "!=" => Ok(Value::Bool(!equal(a, b))),
        "in" => match b {
            Value::Array(items) => Ok(Value::Bool(items.iter().any(|item| equal(item, a)))),
            Value::Object(map) => match a {
                Value::String(key) => Ok(Value::Bool(map.contains_key(key))),
                _ => Err(mismatch()),
            },
            _ => Err(mismatch()),
        },
        "<" | "<=" | ">" | ">=" => {
            let ordering = match (a, b) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                _ => {
                    let (x, y) = (
                        number(a).ok_or_else(mismatch)?,
                        number(b).ok_or_else(mismatch)?,
                    );
                    x.partial_cmp(&y).ok_or_else(mismatch)?
                }
            };
            use core::cmp::Ordering::*;
            Ok(Value::Bool(match op {
                "<" => ordering == Less,
                "<=" => ordering != Greater,
                ">" => ordering == Greater,
                _ => ordering != Less,
            }))
        }
        "+" => match (a, b) {
            (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
            (Value::Array(x), Value::Array(y)) => {
                Ok(Value::Array(x.iter().chain(y).cloned().collect()))
            }
            _ => arithmetic(a, op, b).ok_or_else(mismatch)?,
        },
        _ => arithmetic(a, op, b).ok_or_else(mismatch)?,
    }
}

/// `+ - * / %` on two ints (checked) or two numbers of which one is a double.
fn arithmetic(a: &Value, op: &str, b: &Value) -> Option<Result<Value, String>> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let result = match op {
            "+" => x.checked_add(y),
            "-" => x.checked_sub(y),
            "*" => x.checked_mul(y),
            "/" => x.checked_div(y),
            "%" => x.checked_rem(y),
            _ => None,
        };
        return Some(
            result
                .map(Value::from)
                .ok_or_else(|| format!("`{op}` overflows or divides by zero")),
        );
    }
    let (x, y) = (a.as_f64()?, b.as_f64()?);
    let result = match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" => x / y,
        _ => return None,
    };
    Some(
        serde_json::Number::from_f64(result)
            .map(Value::Number)
            .ok_or_else(|| "not a finite number".to_owned()),
    )
}

fn comprehension<'s>(
    target: &Expr<'s>,
    name: &str,
    args: &[Expr<'s>],
    scope: &mut Scope<'s>,
) -> Result<Value, String> {
    let [Expr::Ident(var), body] = args else {
        return Err(format!("`{name}` takes a variable name and an expression"));
    };
    let items = match eval(target, scope)? {
        Value::Array(items) => items,
        Value::Object(map) => map.into_iter().map(|(k, _)| Value::String(k)).collect(),
        other => return Err(format!("`{name}` over {}", kind(&other))),
    };
    let mut kept = Vec::new();
    let mut count = 0usize;
    for item in items {
        scope.vars.push((var, item.clone()));
        let value = eval(body, scope);
        scope.vars.pop();
        let value = value?;
        match name {
            "map" => kept.push(value),
            _ => {
                if as_bool(&value, &format!("the predicate of `{name}`"))? {
                    count += 1;
                    if name == "filter" {
                        kept.push(item);
                    } else if name == "exists" {
                        return Ok(Value::Bool(true));
                    }
                } else if name == "all" {
                    return Ok(Value::Bool(false));
                }
            }
        }
    }
    Ok(match name {
        "map" | "filter" => Value::Array(kept),
        "exists" => Value::Bool(false),
        "all" => Value::Bool(true),
        _ => Value::Bool(count == 1),
    })
}

fn call<'s>(
    target: Option<&Expr<'s>>,
    name: &str,
    args: &[Expr<'s>],
    scope: &mut Scope<'s>,
) -> Result<Value, String> {
    // `check` refused these when the config was saved; a decision refuses them again rather
    // than index past the arguments.
    let known = if target.is_some() { METHODS } else { FUNCTIONS };
    match known.iter().find(|(n, _)| *n == name) {
        Some((_, arity)) if *arity == args.len() => {}
        _ => {
            return Err(format!(
                "unknown function `{name}` with {} argument(s)",
                args.len()
            ));
        }
    }
    if name == "has" {
        let (target, key) = match &args[0] {
            Expr::Field(target, key) => (target, (*key).to_owned()),
            Expr::Index(target, key) => match eval(key, scope)? {
                Value::String(key) => (target, key),
                other => return Err(format!("`has` of a key that is {}", kind(&other))),
            },
            _ => return Err("`has` takes a field".into()),
        };
        return Ok(Value::Bool(
            matches!(eval(target, scope)?, Value::Object(map) if map.contains_key(&key)),
        ));
    }
    let text = |value: &Value, what: &str| -> Result<(), String> {
        match value {
            Value::String(_) => Ok(()),
            _ => Err(format!("`{name}`: {what} is {}, not a string", kind(value))),
        }
    };
    if let ("startsWith" | "endsWith" | "contains" | "glob", Some(target)) = (name, target) {
        // Both sides borrowed when they are paths, as binary operators' are.
        let (s, t) = (unless_path(target, scope)?, unless_path(&args[0], scope)?);
        let (s, t) = (
            operand(s.as_ref(), target, scope)?,
            operand(t.as_ref(), &args[0], scope)?,
        );
        text(s, "the receiver")?;
        text(t, "the argument")?;
        let (Value::String(s), Value::String(t)) = (s, t) else {
            unreachable!("checked above")
        };
        return Ok(Value::Bool(match name {
            "startsWith" => s.starts_with(t.as_str()),
            "endsWith" => s.ends_with(t.as_str()),
            "contains" => s.contains(t.as_str()),
            _ => tollgate_policy::glob_match(t, s),
        }));
    }
    let receiver = match target {
        Some(target) => eval(target, scope)?,
        None => eval(&args[0], scope)?,
    };
    match name {
        "size" => match &receiver {
            Value::String(s) => Ok(Value::from(s.chars().count())),
            Value::Array(items) => Ok(Value::from(items.len())),
            Value::Object(map) => Ok(Value::from(map.len())),
            other => Err(format!("`size` of {}", kind(other))),
        },
        "int" => match &receiver {
            Value::Number(n) if n.is_i64() => Ok(receiver.clone()),
            // `as` truncates toward zero (and saturates), as CEL's `int` does.
            Value::Number(n) => Ok(Value::from(n.as_f64().unwrap_or(0.0) as i64)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("`int` of `{s}`")),
            other => Err(format!("`int` of {}", kind(other))),
        },
        "string" => match &receiver {
            Value::String(_) => Ok(receiver.clone()),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                Err(format!("`string` of {}", kind(&receiver)))
            }
            other => Ok(Value::String(other.to_string())),
        },
        _ => Err(format!("unknown function `{name}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use alloc::vec;
    use serde_json::json;

    fn run(source: &str) -> Result<Value, String> {
        let expr = parse(source)?;
        check(&expr, &mut Vec::new())?;
        let mut scope = Scope::new(vec![
            (
                "assertion",
                json!({"sub": "system:serviceaccount:prod:app", "kubernetes.io": {"namespace": "prod"}, "n": 3}),
            ),
            (
                "request",
                json!({"scopes": ["a", "b"], "client_address": null, "now": 100}),
            ),
            ("now", json!(100)),
        ]);
        eval(&expr, &mut scope)
    }

    #[test]
    fn the_language() {
        let cases = [
            (
                "assertion['kubernetes.io'].namespace == 'prod'",
                json!(true),
            ),
            (
                "'kubernetes.io' in assertion && !('x' in assertion)",
                json!(true),
            ),
            ("has(assertion.sub) && !has(assertion.email)", json!(true)),
            (
                "assertion.sub.startsWith('system:') && assertion.sub.endsWith(':app')",
                json!(true),
            ),
            (
                "assertion.sub.glob('system:serviceaccount:prod:*')",
                json!(true),
            ),
            ("assertion.sub.glob('system:*')", json!(false)),
            ("request.scopes.filter(s, s != 'a')", json!(["b"])),
            ("request.scopes.map(s, s + '!')", json!(["a!", "b!"])),
            (
                "request.scopes.exists(s, s == 'b') && request.scopes.all(s, size(s) == 1)",
                json!(true),
            ),
            ("request.scopes.exists_one(s, s in ['a', 'z'])", json!(true)),
            ("assertion.n * 2 + 1 > 6 ? 'big' : 'small'", json!("big")),
            (
                "now - request.now == 0 && request.client_address == null",
                json!(true),
            ),
            (
                "[1, 2] + [3] == [1, 2, 3] && 1 == 1.0 && 7 % 4 == 3",
                json!(true),
            ),
            (
                "{'a': 1}['a'] == 1 && size({'a': 1, 'b': 2}) == 2",
                json!(true),
            ),
            ("int('42') + 1 == 43 && string(1) == '1'", json!(true)),
            // An error on one side of `||` / `&&` is absorbed when the other side decides.
            ("assertion.missing == 1 || true", json!(true)),
            ("false && assertion.missing == 1", json!(false)),
        ];
        for (source, expected) in cases {
            assert_eq!(run(source), Ok(expected), "{source}");
        }
    }

    #[test]
    fn an_unchecked_call_with_the_wrong_arity_is_an_error_not_a_trap() {
        // Decisions skip `check` (validate-config made it); evaluation still refuses these.
        let mut scope = Scope::new(vec![("assertion", json!({"sub": "s"}))]);
        for source in [
            "size()",
            "has()",
            "assertion.sub.startsWith()",
            "nothing(1)",
        ] {
            let expr = parse(source).unwrap();
            let got = eval(&expr, &mut scope).unwrap_err();
            assert!(got.contains("argument"), "{source}: {got}");
        }
    }

    #[test]
    fn errors_and_unknown_names() {
        for (source, error) in [
            ("assertion.missing", "no such key"),
            ("assertion.missing || false", "no such key"),
            ("1 / 0", "divides by zero"),
            ("'a' < 1", "`<` of a string and an int"),
            ("!1", "not a boolean"),
            ("nobody == 1", "unknown name `nobody`"),
            ("assertion.sub.matches('x')", "unknown function `matches`"),
            ("size()", "takes 1 argument"),
            ("request.scopes.exists(1, true)", "a variable name"),
            ("has(assertion)", "takes a field"),
        ] {
            let got = run(source).unwrap_err();
            assert!(got.contains(error), "{source}: {got}");
        }
    }
}
