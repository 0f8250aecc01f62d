//! Ansible's filters that minijinja lacks or implements differently (Python semantics:
//! `bool('yes')`, `int('0x1A', base=16)`, `str()` of values, case-insensitive `unique`,
//! order-keeping set operations, `json.dumps`/`yaml.dump` output, ...).

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind};
use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;
use sha1::Digest as _;

use super::pyfmt::{py_json, py_str, JsonStyle};
use super::pyyaml::py_yaml;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn to_json(v: &Value) -> Result<Json, Error> {
    serde_json::to_value(v).map_err(|e| err(format!("cannot convert value to data: {e}")))
}

fn text(v: &Value) -> String {
    py_str(v)
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    if v.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if v.is_none() {
        return Ok(Vec::new());
    }
    Ok(v.try_iter()?.collect())
}

/// `default(value, default='', boolean=False)` (alias `d`).
pub fn default(
    value: Value,
    other: Option<Value>,
    boolean: Option<bool>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let boolean = boolean
        .or(kw.get::<Option<bool>>("boolean")?)
        .unwrap_or(false);
    kw.assert_all_used()?;
    if value.is_undefined() || (boolean && !value.is_true()) {
        Ok(other.unwrap_or_else(|| Value::from("")))
    } else {
        Ok(value)
    }
}

/// `mandatory(msg=None)`: an undefined value is an error.
pub fn mandatory(value: Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "mandatory variable not defined".into()),
        ))
    } else {
        Ok(value)
    }
}

/// Ansible's `bool`: `yes`/`on`/`1`/`true` (any case) and 1 are true, all else false.
pub fn to_bool(value: Value) -> Result<bool, Error> {
    Ok(match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::None | ValueKind::Undefined => false,
        ValueKind::Number => f64::try_from(value).map(|f| f == 1.0).unwrap_or(false),
        ValueKind::String => matches!(
            value
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_lowercase()
                .as_str(),
            "yes" | "on" | "1" | "true" | "y" | "t"
        ),
        _ => false,
    })
}

/// `int(default=0, base=10)`, Jinja's: text and floats convert, failures give the default.
pub fn to_int(value: Value, default: Option<Value>, kw: Kwargs) -> Result<Value, Error> {
    let base: u32 = kw.get::<Option<u32>>("base")?.unwrap_or(10);
    let default = default
        .or(kw.get::<Option<Value>>("default")?)
        .unwrap_or_else(|| Value::from(0));
    kw.assert_all_used()?;
    let parsed = match value.kind() {
        ValueKind::Bool => Some(i64::from(value.is_true())),
        ValueKind::Number => value
            .as_i64()
            .or_else(|| f64::try_from(value.clone()).ok().map(|f| f.trunc() as i64)),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default().trim().replace('_', "");
            let (neg, digits) = match s.strip_prefix('-') {
                Some(rest) => (true, rest.to_string()),
                None => (false, s.trim_start_matches('+').to_string()),
            };
            let digits = if base == 16 {
                digits
                    .trim_start_matches("0x")
                    .trim_start_matches("0X")
                    .to_string()
            } else if base == 8 {
                digits.trim_start_matches("0o").to_string()
            } else if base == 2 {
                digits.trim_start_matches("0b").to_string()
            } else {
                digits
            };
            i64::from_str_radix(&digits, base)
                .ok()
                .or_else(|| digits.parse::<f64>().ok().map(|f| f.trunc() as i64))
                .map(|i| if neg { -i } else { i })
        }
        _ => None,
    };
    Ok(parsed.map(Value::from).unwrap_or(default))
}

/// `float(default=0.0)`.
pub fn to_float(value: Value, default: Option<Value>) -> Result<Value, Error> {
    let parsed = match value.kind() {
        ValueKind::Bool => Some(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value).ok(),
        ValueKind::String => value
            .as_str()
            .unwrap_or_default()
            .trim()
            .parse::<f64>()
            .ok(),
        _ => None,
    };
    Ok(parsed
        .map(Value::from)
        .unwrap_or_else(|| default.unwrap_or_else(|| Value::from(0.0))))
}

/// `string`: Python's `str()`.
pub fn to_string(value: Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    Ok(text(&value))
}

/// `join(sep='', attribute=None)` with `str()` of each item.
pub fn join(value: Value, sep: Option<String>, kw: Kwargs) -> Result<String, Error> {
    let attribute: Option<String> = kw.get("attribute")?;
    kw.assert_all_used()?;
    if let Some(s) = value.as_str() {
        // Jinja joins the characters of a string.
        return Ok(s
            .chars()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(sep.as_deref().unwrap_or("")));
    }
    let parts: Result<Vec<String>, Error> = items(&value)?
        .iter()
        .map(|i| match &attribute {
            Some(a) => Ok(text(&i.get_attr(a)?)),
            None => Ok(text(i)),
        })
        .collect();
    Ok(parts?.join(sep.as_deref().unwrap_or("")))
}

fn build_regex(pattern: &str, kw: &Kwargs) -> Result<Regex, Error> {
    let ignorecase: bool = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline: bool = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
    RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| err(format!("bad regular expression `{pattern}`: {e}")))
}

/// Python's `re.sub` replacement (`\1`, `\g<1>`, `\g<name>`) in the regex crate's syntax.
fn python_replacement(rep: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = rep.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '$' => out.push_str("$$"),
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                if n.is_ascii_digit() {
                    let mut j = i + 1;
                    while j < chars.len() && chars[j].is_ascii_digit() && j < i + 3 {
                        j += 1;
                    }
                    let num: String = chars[i + 1..j].iter().collect();
                    out.push_str(&format!("${{{num}}}"));
                    i = j;
                    continue;
                }
                if n == 'g' && chars.get(i + 2) == Some(&'<') {
                    if let Some(end) = chars[i + 3..].iter().position(|c| *c == '>') {
                        let name: String = chars[i + 3..i + 3 + end].iter().collect();
                        out.push_str(&format!("${{{name}}}"));
                        i += 4 + end;
                        continue;
                    }
                }
                match n {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    '\\' => out.push('\\'),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                i += 2;
                continue;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `regex_replace(pattern, replacement='', ignorecase=False, multiline=False, count=0)`.
pub fn regex_replace(
    value: Value,
    pattern: String,
    replacement: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let re = build_regex(&pattern, &kw)?;
    let count: usize = kw.get::<Option<usize>>("count")?.unwrap_or(0);
    kw.assert_all_used()?;
    let rep = python_replacement(replacement.as_deref().unwrap_or(""));
    Ok(re.replacen(&text(&value), count, rep.as_str()).into_owned())
}

/// `regex_search(pattern, *groups)`: the match, or the listed groups (`'\\1'`,
/// `'\\g<name>'`); none when nothing matches.
pub fn regex_search(
    value: Value,
    pattern: String,
    groups: Rest<String>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let re = build_regex(&pattern, &kw)?;
    kw.assert_all_used()?;
    let subject = text(&value);
    let Some(caps) = re.captures(&subject) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map(|m| m.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(num) = g.strip_prefix('\\') {
            match num.parse::<usize>() {
                Ok(n) => caps.get(n),
                Err(_) => num
                    .strip_prefix("g<")
                    .and_then(|r| r.strip_suffix('>'))
                    .and_then(|name| caps.name(name)),
            }
        } else {
            return Err(err(format!("unknown regex_search argument `{g}`")));
        };
        out.push(
            m.map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::from(())),
        );
    }
    Ok(Value::from(out))
}

/// `regex_findall(pattern)`.
pub fn regex_findall(value: Value, pattern: String, kw: Kwargs) -> Result<Value, Error> {
    let re = build_regex(&pattern, &kw)?;
    kw.assert_all_used()?;
    let subject = text(&value);
    let found: Vec<Value> = re
        .captures_iter(&subject)
        .map(|c| match c.len() {
            1 => Value::from(c.get(0).map(|m| m.as_str()).unwrap_or("")),
            2 => Value::from(c.get(1).map(|m| m.as_str()).unwrap_or("")),
            n => Value::from(
                (1..n)
                    .map(|i| Value::from(c.get(i).map(|m| m.as_str()).unwrap_or("")))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    Ok(Value::from(found))
}

/// `regex_escape`.
pub fn regex_escape(value: Value) -> String {
    regex::escape(&text(&value))
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
pub fn split(value: Value, sep: Option<String>, maxsplit: Option<i64>) -> Result<Value, Error> {
    let s = text(&value);
    let max = maxsplit.filter(|m| *m >= 0).map(|m| m as usize);
    let parts: Vec<String> = match sep.as_deref() {
        None => {
            let mut parts: Vec<String> = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if max.is_some_and(|m| parts.len() == m) {
                    parts.push(rest.to_string());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                parts.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            parts
        }
        Some("") => return Err(err("split: empty separator")),
        Some(sep) => match max {
            Some(m) => s.splitn(m + 1, sep).map(str::to_string).collect(),
            None => s.split(sep).map(str::to_string).collect(),
        },
    };
    Ok(Value::from(parts))
}

/// Python's `str.replace(old, new, count=-1)` (Jinja's `replace`).
pub fn replace(
    value: Value,
    old: String,
    new: String,
    count: Option<i64>,
) -> Result<String, Error> {
    let s = text(&value);
    Ok(match count {
        Some(n) if n >= 0 => s.replacen(&old, &new, n as usize),
        _ => s.replace(&old, &new),
    })
}

/// Jinja's `round(precision=0, method='common')`: Python's round-half-even for
/// `common`; an integer stays an integer.
pub fn round(value: Value, precision: Option<i32>, method: Option<String>) -> Result<Value, Error> {
    if value.is_integer() {
        return Ok(value);
    }
    let x = f64::try_from(value).map_err(|_| err("round expects a number"))?;
    let factor = 10f64.powi(precision.unwrap_or(0));
    let scaled = x * factor;
    let rounded = match method.as_deref().unwrap_or("common") {
        "common" => scaled.round_ties_even(),
        "ceil" => scaled.ceil(),
        "floor" => scaled.floor(),
        other => return Err(err(format!("round: unknown method `{other}`"))),
    };
    Ok(Value::from(rounded / factor))
}

fn json_style(kw: &Kwargs, indent: Option<usize>, sort_keys: bool) -> Result<JsonStyle, Error> {
    let style = JsonStyle {
        indent: kw.get::<Option<usize>>("indent")?.or(indent),
        sort_keys: kw.get::<Option<bool>>("sort_keys")?.unwrap_or(sort_keys),
        ensure_ascii: kw.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true),
    };
    kw.assert_all_used()?;
    Ok(style)
}

/// `to_json`: Python's `json.dumps`.
pub fn to_json_filter(value: Value, kw: Kwargs) -> Result<String, Error> {
    let style = json_style(&kw, None, false)?;
    Ok(py_json(&to_json(&value)?, style))
}

/// `to_nice_json`: `indent=4, sort_keys=True`.
pub fn to_nice_json(value: Value, kw: Kwargs) -> Result<String, Error> {
    let style = json_style(&kw, Some(4), true)?;
    Ok(py_json(&to_json(&value)?, style))
}

/// `to_yaml`: PyYAML with flow style for leaf collections.
pub fn to_yaml(value: Value, kw: Kwargs) -> Result<String, Error> {
    let indent: usize = kw.get::<Option<usize>>("indent")?.unwrap_or(2);
    kw.assert_all_used()?;
    Ok(py_yaml(&to_json(&value)?, indent, true))
}

/// `to_nice_yaml`: block style, `indent=4`.
pub fn to_nice_yaml(value: Value, kw: Kwargs) -> Result<String, Error> {
    let indent: usize = kw.get::<Option<usize>>("indent")?.unwrap_or(4);
    kw.assert_all_used()?;
    Ok(py_yaml(&to_json(&value)?, indent, false))
}

pub fn from_json(value: Value) -> Result<Value, Error> {
    let parsed: Json =
        serde_json::from_str(&text(&value)).map_err(|e| err(format!("from_json: {e}")))?;
    Ok(Value::from_serialize(parsed))
}

pub fn from_yaml(value: Value) -> Result<Value, Error> {
    let parsed: Json =
        serde_yaml::from_str(&text(&value)).map_err(|e| err(format!("from_yaml: {e}")))?;
    Ok(Value::from_serialize(parsed))
}

pub fn b64encode(value: Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(text(&value))
}

pub fn b64decode(value: Value) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text(&value).trim())
        .map_err(|e| err(format!("b64decode: {e}")))?;
    String::from_utf8(bytes).map_err(|_| err("b64decode: the result is not UTF-8 text"))
}

/// Python's `os.path.basename`.
pub fn basename(value: Value) -> String {
    let s = text(&value);
    s.rsplit('/').next().unwrap_or("").to_string()
}

/// Python's `os.path.dirname`.
pub fn dirname(value: Value) -> String {
    let s = text(&value);
    match s.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &s[..=i];
            if head.chars().all(|c| c == '/') {
                head.to_string()
            } else {
                head.trim_end_matches('/').to_string()
            }
        }
    }
}

/// Python's `shlex.quote`.
pub fn quote(value: Value) -> String {
    let s = if value.is_none() {
        String::new()
    } else {
        text(&value)
    };
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || "@%+=:,./-".contains(c));
    if safe {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

fn same(a: &Value, b: &Value, case_sensitive: bool) -> bool {
    if !case_sensitive {
        if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
            return x.to_lowercase() == y.to_lowercase();
        }
    }
    a == b
}

fn dedup(list: Vec<Value>, case_sensitive: bool, attribute: Option<&str>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut keys: Vec<Value> = Vec::new();
    for item in list {
        let key = match attribute {
            Some(a) => item.get_attr(a).unwrap_or_default(),
            None => item.clone(),
        };
        if !keys.iter().any(|k| same(k, &key, case_sensitive)) {
            keys.push(key);
            out.push(item);
        }
    }
    out
}

/// `unique(case_sensitive=False, attribute=None)`, order kept.
pub fn unique(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let case_sensitive: bool = kw.get::<Option<bool>>("case_sensitive")?.unwrap_or(false);
    let attribute: Option<String> = kw.get("attribute")?;
    kw.assert_all_used()?;
    Ok(Value::from(dedup(
        items(&value)?,
        case_sensitive,
        attribute.as_deref(),
    )))
}

pub fn union(a: Value, b: Value) -> Result<Value, Error> {
    let mut all = items(&a)?;
    all.extend(items(&b)?);
    Ok(Value::from(dedup(all, true, None)))
}

pub fn intersect(a: Value, b: Value) -> Result<Value, Error> {
    let other = items(&b)?;
    let kept: Vec<Value> = items(&a)?
        .into_iter()
        .filter(|x| other.contains(x))
        .collect();
    Ok(Value::from(dedup(kept, true, None)))
}

pub fn difference(a: Value, b: Value) -> Result<Value, Error> {
    let other = items(&b)?;
    let kept: Vec<Value> = items(&a)?
        .into_iter()
        .filter(|x| !other.contains(x))
        .collect();
    Ok(Value::from(dedup(kept, true, None)))
}

pub fn symmetric_difference(a: Value, b: Value) -> Result<Value, Error> {
    let (xa, xb) = (items(&a)?, items(&b)?);
    let mut kept: Vec<Value> = xa.iter().filter(|x| !xb.contains(x)).cloned().collect();
    kept.extend(xb.iter().filter(|x| !xa.contains(x)).cloned());
    Ok(Value::from(dedup(kept, true, None)))
}

/// `dict2items(key_name='key', value_name='value')`.
pub fn dict2items(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let key_name: String = kw
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let value_name: String = kw
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kw.assert_all_used()?;
    if value.kind() != ValueKind::Map {
        return Err(err("dict2items requires a dictionary"));
    }
    let mut out = Vec::new();
    for k in value.try_iter()? {
        let v = value.get_item(&k)?;
        let mut entry = serde_json::Map::new();
        entry.insert(key_name.clone(), to_json(&k)?);
        entry.insert(value_name.clone(), to_json(&v)?);
        out.push(Json::Object(entry));
    }
    Ok(Value::from_serialize(out))
}

/// `items2dict(key_name='key', value_name='value')`.
pub fn items2dict(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let key_name: String = kw
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let value_name: String = kw
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kw.assert_all_used()?;
    let mut out = serde_json::Map::new();
    for item in items(&value)? {
        let k = item.get_attr(&key_name)?;
        let v = item.get_attr(&value_name)?;
        if k.is_undefined() || v.is_undefined() {
            return Err(err(format!(
                "items2dict: every item needs `{key_name}` and `{value_name}`"
            )));
        }
        out.insert(text(&k), to_json(&v)?);
    }
    Ok(Value::from_serialize(Json::Object(out)))
}

fn merge(base: &mut Json, other: Json, recursive: bool, list_merge: &str) {
    match (base, other) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if recursive && existing.is_object() && v.is_object() => {
                        merge(existing, v, recursive, list_merge)
                    }
                    Some(Json::Array(existing)) if v.is_array() && list_merge != "replace" => {
                        let Json::Array(new) = v else { continue };
                        match list_merge {
                            "keep" => {}
                            "append" => existing.extend(new),
                            "prepend" => {
                                let mut n = new;
                                n.append(existing);
                                *existing = n;
                            }
                            "append_rp" => {
                                existing.retain(|x| !new.contains(x));
                                existing.extend(new);
                            }
                            "prepend_rp" => {
                                let mut n = new;
                                let old: Vec<Json> =
                                    existing.drain(..).filter(|x| !n.contains(x)).collect();
                                n.extend(old);
                                *existing = n;
                            }
                            _ => *existing = new,
                        }
                    }
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `combine(*dicts, recursive=False, list_merge='replace')`.
pub fn combine(value: Value, others: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let recursive: bool = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge: String = kw
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".into());
    kw.assert_all_used()?;
    // `[{...}, {...}] | combine` merges the list's dicts, as Ansible flattens its terms.
    let mut dicts = if value.kind() == ValueKind::Seq {
        value.try_iter()?.collect()
    } else {
        vec![value]
    };
    for o in others.iter() {
        if o.kind() == ValueKind::Seq {
            dicts.extend(o.try_iter()?);
        } else {
            dicts.push(o.clone());
        }
    }
    let mut out = Json::Object(serde_json::Map::new());
    for d in dicts {
        if d.kind() != ValueKind::Map {
            return Err(err("combine expects dictionaries"));
        }
        merge(&mut out, to_json(&d)?, recursive, &list_merge);
    }
    Ok(Value::from_serialize(out))
}

/// `hash('sha1'|'sha256'|'sha512'|'md5')`.
pub fn hash(value: Value, algo: Option<String>) -> Result<String, Error> {
    let data = text(&value);
    let algo = algo.unwrap_or_else(|| "sha1".into());
    Ok(match algo.as_str() {
        "sha1" => hex::encode(sha1::Sha1::digest(data.as_bytes())),
        "sha224" => hex::encode(sha2::Sha224::digest(data.as_bytes())),
        "sha256" => hex::encode(sha2::Sha256::digest(data.as_bytes())),
        "sha384" => hex::encode(sha2::Sha384::digest(data.as_bytes())),
        "sha512" => hex::encode(sha2::Sha512::digest(data.as_bytes())),
        other => return Err(err(format!("hash: unsupported algorithm `{other}`"))),
    })
}

/// `checksum`: sha1, as Ansible.
pub fn checksum(value: Value) -> Result<String, Error> {
    hash(value, Some("sha1".into()))
}

/// `ternary(true_val, false_val, none_val=None)`.
pub fn ternary(value: Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    match none {
        Some(n) if value.is_none() => n,
        _ if value.is_true() => yes,
        _ => no,
    }
}

/// `flatten(levels=None, skip_nulls=True)`.
pub fn flatten(value: Value, levels: Option<usize>, kw: Kwargs) -> Result<Value, Error> {
    let levels = levels.or(kw.get::<Option<usize>>("levels")?);
    let skip_nulls: bool = kw.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kw.assert_all_used()?;
    fn walk(list: Vec<Value>, levels: Option<usize>, skip_nulls: bool, out: &mut Vec<Value>) {
        for item in list {
            if item.kind() == ValueKind::Seq && levels != Some(0) {
                let inner: Vec<Value> = item.try_iter().map(|i| i.collect()).unwrap_or_default();
                walk(inner, levels.map(|l| l - 1), skip_nulls, out);
            } else if !(skip_nulls && item.is_none()) {
                out.push(item);
            }
        }
    }
    let mut out = Vec::new();
    walk(items(&value)?, levels, skip_nulls, &mut out);
    Ok(Value::from(out))
}

/// `type_debug`: the Python type name.
pub fn type_debug(value: Value) -> &'static str {
    match value.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Map => "dict",
        ValueKind::Seq => "list",
        _ => "object",
    }
}

/// `extract(container, morekeys=None)`: `container[item]`, then each of `morekeys`
/// (`groups['db'] | map('extract', hostvars, 'ansible_host')`).
pub fn extract(item: Value, container: Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut current = container.get_item(&item)?;
    if current.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("extract: no key `{}` in the container", text(&item)),
        ));
    }
    let keys: Vec<Value> = match morekeys {
        None => Vec::new(),
        Some(k) if k.kind() == ValueKind::Seq => k.try_iter()?.collect(),
        Some(k) => vec![k],
    };
    for k in keys {
        let next = current.get_item(&k)?;
        if next.is_undefined() {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                format!("extract: no key `{}` under `{}`", text(&k), text(&item)),
            ));
        }
        current = next;
    }
    Ok(current)
}

/// `path_join`: Python's `os.path.join` of a list (an absolute part restarts the path).
pub fn path_join(value: Value) -> Result<String, Error> {
    let parts: Vec<String> = if value.kind() == ValueKind::String {
        vec![text(&value)]
    } else {
        items(&value)?.iter().map(text).collect()
    };
    let mut out = String::new();
    for p in parts {
        if p.starts_with('/') || out.is_empty() {
            out = p;
        } else if out.ends_with('/') {
            out.push_str(&p);
        } else {
            out.push('/');
            out.push_str(&p);
        }
    }
    Ok(out)
}
