//! Ansible's Jinja tests (`x is succeeded`, `x is match('re')`, ...) that minijinja lacks,
//! and Python-style methods on values (`d.items()`, `s.split(',')`, `d.get('k', 0)`) that
//! Ansible templates call.

use minijinja::value::{from_args, Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use regex::RegexBuilder;

use super::pyfmt::py_str;

fn result_flag(value: &Value, key: &str, test: &str) -> Result<bool, Error> {
    if value.kind() != ValueKind::Map {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the `{test}` test expects a registered task result (a mapping)"),
        ));
    }
    Ok(value.get_attr(key).map(|v| v.is_true()).unwrap_or(false))
}

pub fn failed(value: Value) -> Result<bool, Error> {
    result_flag(&value, "failed", "failed")
}

pub fn succeeded(value: Value) -> Result<bool, Error> {
    result_flag(&value, "failed", "succeeded").map(|f| !f)
}

pub fn changed(value: Value) -> Result<bool, Error> {
    result_flag(&value, "changed", "changed")
}

pub fn skipped(value: Value) -> Result<bool, Error> {
    result_flag(&value, "skipped", "skipped")
}

fn regex_test(value: &Value, pattern: &str, kw: &Kwargs, anchored: bool) -> Result<bool, Error> {
    let ignorecase: bool = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline: bool = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
    kw.assert_all_used()?;
    let source = if anchored {
        format!("^(?:{pattern})")
    } else {
        pattern.to_string()
    };
    let re = RegexBuilder::new(&source)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("bad regular expression `{pattern}`: {e}"),
            )
        })?;
    Ok(re.is_match(&py_str(value)))
}

/// `match`: Python's `re.match` (anchored at the start).
pub fn is_match(value: Value, pattern: String, kw: Kwargs) -> Result<bool, Error> {
    regex_test(&value, &pattern, &kw, true)
}

/// `search`: Python's `re.search`.
pub fn is_search(value: Value, pattern: String, kw: Kwargs) -> Result<bool, Error> {
    regex_test(&value, &pattern, &kw, false)
}

/// `regex(pattern, match_type='search')`.
pub fn is_regex(value: Value, pattern: String, kw: Kwargs) -> Result<bool, Error> {
    let match_type: Option<String> = kw.get("match_type")?;
    let anchored = match_type.as_deref() == Some("match");
    regex_test(&value, &pattern, &kw, anchored)
}

/// `truthy(convert_bool=False)` / `falsy`.
pub fn truthy(value: Value, kw: Kwargs) -> Result<bool, Error> {
    let convert: bool = kw.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
    kw.assert_all_used()?;
    if convert {
        return super::filters::to_bool(value);
    }
    Ok(value.is_true())
}

pub fn falsy(value: Value, kw: Kwargs) -> Result<bool, Error> {
    truthy(value, kw).map(|t| !t)
}

/// `contains(item)`: the reverse of `in`.
pub fn contains(value: Value, item: Value) -> Result<bool, Error> {
    match value.kind() {
        ValueKind::String => Ok(value.as_str().unwrap_or_default().contains(&py_str(&item))),
        _ => Ok(value.try_iter()?.any(|v| v == item)),
    }
}

/// Python methods called on values; anything else is minijinja's "unknown method" error.
pub fn python_method(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match (value.kind(), method) {
        (ValueKind::Map, "items") => {
            let _: () = from_args(args)?;
            state.apply_filter("items", std::slice::from_ref(value))
        }
        (ValueKind::Map, "keys") => {
            let _: () = from_args(args)?;
            Ok(Value::from(value.try_iter()?.collect::<Vec<_>>()))
        }
        (ValueKind::Map, "values") => {
            let _: () = from_args(args)?;
            let vals: Result<Vec<Value>, Error> =
                value.try_iter()?.map(|k| value.get_item(&k)).collect();
            Ok(Value::from(vals?))
        }
        (ValueKind::Map, "get") => {
            let (key, default): (Value, Option<Value>) = from_args(args)?;
            let v = value.get_item(&key)?;
            Ok(if v.is_undefined() {
                default.unwrap_or(Value::from(()))
            } else {
                v
            })
        }
        (ValueKind::String, _) => string_method(value.as_str().unwrap_or_default(), method, args),
        (ValueKind::Seq, "index") => {
            let (item,): (Value,) = from_args(args)?;
            value
                .try_iter()?
                .position(|v| v == item)
                .map(Value::from)
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "item not in list"))
        }
        (ValueKind::Seq, "count") => {
            let (item,): (Value,) = from_args(args)?;
            Ok(Value::from(
                value.try_iter()?.filter(|v| *v == item).count(),
            ))
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    Ok(match method {
        "split" => {
            let (sep, max): (Option<String>, Option<i64>) = from_args(args)?;
            return super::filters::split(Value::from(s), sep, max);
        }
        "startswith" | "endswith" => {
            let (prefix,): (Value,) = from_args(args)?;
            let candidates: Vec<String> = if prefix.kind() == ValueKind::Seq {
                prefix.try_iter()?.map(|v| py_str(&v)).collect()
            } else {
                vec![py_str(&prefix)]
            };
            Value::from(candidates.iter().any(|p| {
                if method == "startswith" {
                    s.starts_with(p.as_str())
                } else {
                    s.ends_with(p.as_str())
                }
            }))
        }
        "strip" | "lstrip" | "rstrip" => {
            let (chars,): (Option<String>,) = from_args(args)?;
            let is_strip = |c: char| match &chars {
                Some(set) => set.contains(c),
                None => c.is_whitespace(),
            };
            Value::from(match method {
                "strip" => s.trim_matches(is_strip),
                "lstrip" => s.trim_start_matches(is_strip),
                _ => s.trim_end_matches(is_strip),
            })
        }
        "lower" => Value::from(s.to_lowercase()),
        "upper" => Value::from(s.to_uppercase()),
        "replace" => {
            let (old, new): (String, String) = from_args(args)?;
            Value::from(s.replace(&old, &new))
        }
        "join" => {
            let (items,): (Value,) = from_args(args)?;
            let parts: Vec<String> = items.try_iter()?.map(|v| py_str(&v)).collect();
            Value::from(parts.join(s))
        }
        "find" => {
            let (needle,): (String,) = from_args(args)?;
            Value::from(
                s.find(&needle)
                    .map(|i| s[..i].chars().count() as i64)
                    .unwrap_or(-1),
            )
        }
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        "splitlines" => Value::from(s.lines().map(str::to_string).collect::<Vec<_>>()),
        "format" => return str_format(s, args),
        "capitalize" | "title" => return Err(Error::from(ErrorKind::UnknownMethod)),
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// Python's `str.format` for plain fields: `{}`, `{0}`, `{name}` and `{{`/`}}`. A field
/// with a format spec or a conversion (`{:>5}`, `{!r}`) is an error, not a guess.
fn str_format(s: &str, args: &[Value]) -> Result<Value, Error> {
    let (positional, kw): (Rest<Value>, Kwargs) = from_args(args)?;
    let bad = |msg: String| Error::new(ErrorKind::InvalidOperation, msg);
    let mut out = String::with_capacity(s.len());
    let mut next = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(bad("Single '}' encountered in format string".into())),
            '{' => {
                let field: String = chars.by_ref().take_while(|c| *c != '}').collect();
                if field.contains([':', '!']) {
                    return Err(bad(format!(
                        "str.format: the field {{{field}}} has a format spec or conversion, which infra does not support; use the format filter"
                    )));
                }
                let value = if field.is_empty() {
                    next += 1;
                    positional.get(next - 1).cloned()
                } else if let Ok(i) = field.parse::<usize>() {
                    positional.get(i).cloned()
                } else {
                    kw.get::<Option<Value>>(&field)?
                };
                let value = value.ok_or_else(|| {
                    bad(format!("str.format: no argument for the field {{{field}}}"))
                })?;
                out.push_str(&py_str(&value));
            }
            c => out.push(c),
        }
    }
    Ok(Value::from(out))
}

/// Compares dotted versions loosely: numeric parts numerically, others as text.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.split(['.', '-', '_', '+'])
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (pa.get(i), pb.get(i));
        let ord = match (x, y) {
            (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => x.cmp(y),
            },
            (Some(_), None) => std::cmp::Ordering::Greater,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (None, None) => std::cmp::Ordering::Equal,
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

/// `version(other, operator='eq')` (alias `version_compare`).
pub fn version(value: Value, other: Value, op: Option<String>, kw: Kwargs) -> Result<bool, Error> {
    let _strict: Option<bool> = kw.get("strict")?;
    let _version_type: Option<String> = kw.get("version_type")?;
    let op = op
        .or(kw.get::<Option<String>>("operator")?)
        .unwrap_or_else(|| "eq".into());
    kw.assert_all_used()?;
    let ord = compare_versions(&py_str(&value), &py_str(&other));
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("version: unknown operator `{other}`"),
            ))
        }
    })
}

pub fn subset(value: Value, other: Value) -> Result<bool, Error> {
    let big: Vec<Value> = other.try_iter()?.collect();
    Ok(value.try_iter()?.all(|v| big.contains(&v)))
}

pub fn superset(value: Value, other: Value) -> Result<bool, Error> {
    subset(other, value)
}

pub fn any(value: Value) -> Result<bool, Error> {
    Ok(value.try_iter()?.any(|v| v.is_true()))
}

pub fn all(value: Value) -> Result<bool, Error> {
    Ok(value.try_iter()?.all(|v| v.is_true()))
}
