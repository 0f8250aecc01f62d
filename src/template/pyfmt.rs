//! Python's text forms, because Ansible templates print through Python: `str()`/`repr()` of
//! values (`True`, `None`, `['a', 'b']`, `{'k': 1}`) and `json.dumps` (`", "` and `": "`
//! separators, `ensure_ascii`, `sort_keys`, `indent`). Rendered files must match
//! ansible-playbook's byte for byte.

use minijinja::value::{Value, ValueKind};
use serde_json::Value as Json;

/// Python `str(value)`.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        _ => py_repr(v),
    }
}

/// Python `repr(value)`.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out);
    out
}

fn write_repr(v: &Value, out: &mut String) {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number => out.push_str(&py_number(v)),
        ValueKind::String => out.push_str(&py_str_repr(v.as_str().unwrap_or_default())),
        ValueKind::Map => {
            out.push('{');
            let mut first = true;
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    write_repr(&k, out);
                    out.push_str(": ");
                    write_repr(&v.get_item(&k).unwrap_or_default(), out);
                }
            }
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = v.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(&item, out);
                }
            }
            out.push(']');
        }
        _ => out.push_str(&v.to_string()),
    }
}

fn py_number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) => py_float(f),
        Err(_) => v.to_string(),
    }
}

/// Python `repr(float)` for the common cases.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python switches to exponent form: 1e+16, 1e-05
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Python `repr(str)`: single quotes unless the text has a `'` and no `"`.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Options of Python's `json.dumps` that Ansible's filters use.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonStyle {
    pub indent: Option<usize>,
    pub sort_keys: bool,
    pub ensure_ascii: bool,
}

/// Python `json.dumps(value, ...)`.
pub fn py_json(v: &Json, style: JsonStyle) -> String {
    let mut out = String::new();
    write_json(v, style, 0, &mut out);
    out
}

fn write_json(v: &Json, style: JsonStyle, level: usize, out: &mut String) {
    let item_sep = if style.indent.is_some() { "," } else { ", " };
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = style.indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) if f.is_finite() => out.push_str(&py_float(f)),
            (_, _, Some(f)) if f.is_nan() => out.push_str("NaN"),
            (_, _, Some(f)) => out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" }),
            _ => out.push_str(&n.to_string()),
        },
        Json::String(s) => write_json_str(s, style.ensure_ascii, out),
        Json::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json(item, style, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        Json::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json_str(k, style.ensure_ascii, out);
                out.push_str(": ");
                write_json(val, style, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

fn write_json_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_str_and_repr() {
        let v = Value::from_serialize(json!({"a": [1, "x", true, null, 1.5], "b": "it's"}));
        assert_eq!(
            py_str(&v),
            r#"{'a': [1, 'x', True, None, 1.5], 'b': "it's"}"#
        );
        assert_eq!(py_str(&Value::from("plain")), "plain");
        assert_eq!(py_str(&Value::from(false)), "False");
        assert_eq!(py_float(2.0), "2.0");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(0.00001), "1e-05");
    }

    #[test]
    fn python_json_dumps() {
        let v = json!({"b": [1, 2.0, "é"], "a": {"x": null}, "c": []});
        assert_eq!(
            py_json(
                &v,
                JsonStyle {
                    ensure_ascii: true,
                    ..Default::default()
                }
            ),
            r#"{"b": [1, 2.0, "\u00e9"], "a": {"x": null}, "c": []}"#
        );
        assert_eq!(
            py_json(
                &v,
                JsonStyle { indent: Some(4), sort_keys: true, ensure_ascii: false }
            ),
            "{\n    \"a\": {\n        \"x\": null\n    },\n    \"b\": [\n        1,\n        2.0,\n        \"é\"\n    ],\n    \"c\": []\n}"
        );
    }
}
