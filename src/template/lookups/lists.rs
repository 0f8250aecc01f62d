//! The lookups that reshape lists: `dict`, `together`, `nested`, `subelements`,
//! `sequence`.

use super::*;

pub(super) fn dict(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    let mut out = Vec::new();
    for t in terms {
        let Json::Object(map) = t else {
            return Err(err(format!(
                "with_dict expects a dict, got {}",
                term_text(&t)
            )));
        };
        for (k, v) in map {
            out.push(serde_json::json!({"key": k, "value": v}));
        }
    }
    Ok(out)
}

fn as_list(t: Json, what: &str) -> Result<Vec<Json>, Error> {
    match t {
        Json::Array(a) => Ok(a),
        Json::String(_) | Json::Number(_) | Json::Bool(_) => Ok(vec![t]),
        other => Err(err(format!(
            "{what} requires lists, got {}",
            term_text(&other)
        ))),
    }
}

/// `together`: the lists zipped, shorter ones padded with None.
pub(super) fn together(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    if terms.is_empty() {
        return Err(err(
            "with_together requires at least one element in each list",
        ));
    }
    let lists = terms
        .into_iter()
        .map(|t| as_list(t, "with_together"))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest)
        .map(|i| {
            Json::Array(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or(Json::Null))
                    .collect(),
            )
        })
        .collect())
}

/// `nested`: every combination of one item of each list, first list outermost.
pub(super) fn nested(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    if terms.is_empty() {
        return Err(err(
            "with_nested requires at least one element in the nested list",
        ));
    }
    let mut combos: Vec<Vec<Json>> = vec![Vec::new()];
    for t in terms {
        let list = as_list(t, "with_nested")?;
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                list.iter().map(move |x| {
                    let mut next = prefix.clone();
                    next.push(x.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combos.into_iter().map(Json::Array).collect())
}

/// `subelements`: `[list of dicts, 'key.path', {skip_missing}]` -> `[element, sub]` pairs;
/// the element loses the key, as in Ansible.
pub(super) fn subelements(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    let usage = "subelements lookup expects a list of two or three items";
    if !(2..=3).contains(&terms.len()) {
        return Err(err(usage));
    }
    let elements = match &terms[0] {
        Json::Array(a) => a.clone(),
        Json::Object(m) if m.get("skipped").is_some_and(truthy) => return Ok(Vec::new()),
        Json::Object(m) => m.values().cloned().collect(),
        _ => {
            return Err(err(format!(
                "{usage}, first a dict or a list, second a string pointing to the subkey"
            )))
        }
    };
    let Json::String(keys) = &terms[1] else {
        return Err(err(format!(
            "{usage}, first a dict or a list, second a string pointing to the subkey"
        )));
    };
    let skip_missing = match terms.get(2) {
        None => false,
        Some(Json::Object(flags)) => flags.get("skip_missing").is_some_and(truthy),
        Some(_) => {
            return Err(err(format!(
                "{usage}, the optional third item must be a dict with flags ('skip_missing',)"
            )))
        }
    };
    let keys: Vec<&str> = keys.split('.').collect();
    let mut out = Vec::new();
    for mut element in elements {
        let Json::Object(map) = &element else {
            return Err(err(format!(
                "subelements lookup expects a dictionary, got '{}'",
                term_text(&element)
            )));
        };
        if map.get("skipped").is_some_and(truthy) {
            continue;
        }
        let sublist = match take_sub(&mut element, &keys)? {
            Some(list) => list,
            None if skip_missing => continue,
            None => {
                return Err(err(format!(
                    "could not find '{}' key in iterated item '{}'",
                    keys.join("."),
                    term_text(&element)
                )))
            }
        };
        for sub in sublist {
            out.push(Json::Array(vec![element.clone(), sub]));
        }
    }
    Ok(out)
}

/// Removes and returns the list at `keys` (dicts along the way).
fn take_sub(element: &mut Json, keys: &[&str]) -> Result<Option<Vec<Json>>, Error> {
    let (last, parents) = keys
        .split_last()
        .ok_or_else(|| err("empty subelements key"))?;
    let mut current = element;
    for k in parents {
        current = match current.get_mut(*k) {
            Some(next @ Json::Object(_)) => next,
            Some(other) => {
                return Err(err(format!(
                    "the key {k} should point to a dictionary, got '{}'",
                    term_text(other)
                )))
            }
            None => return Ok(None),
        };
    }
    let Json::Object(map) = current else {
        return Ok(None);
    };
    match map.get(*last) {
        None => Ok(None),
        Some(Json::Array(_)) => match map.remove(*last) {
            Some(Json::Array(a)) => Ok(Some(a)),
            _ => Ok(None),
        },
        Some(other) => Err(err(format!(
            "the key {last} should point to a list, got '{}'",
            term_text(other)
        ))),
    }
}

/// `sequence`: `start=1 end=10 stride=2 format=host%02d` or `[start-]end[/stride][:format]`,
/// `count=` instead of `end`. Numbers may be hexadecimal (`0x10`) or octal (`0o10`).
pub(super) fn sequence(term: &str) -> Result<Vec<String>, Error> {
    let mut start: i64 = 1;
    let mut end: Option<i64> = None;
    let mut count: Option<i64> = None;
    let mut stride: i64 = 1;
    let mut format = "%d".to_string();
    let num = |s: &str| -> Result<i64, Error> {
        let s = s.trim();
        let parsed = if let Some(h) = s.strip_prefix("0x") {
            i64::from_str_radix(h, 16)
        } else if let Some(o) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0")) {
            if o.is_empty() {
                Ok(0)
            } else {
                i64::from_str_radix(o, 8)
            }
        } else {
            s.parse()
        };
        parsed.map_err(|_| err(format!("can't parse arg={s:?} as integer")))
    };
    let words = shlex::split(term).unwrap_or_else(|| vec![term.to_string()]);
    if words.iter().any(|w| w.contains('=')) {
        for w in &words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| err(format!("unrecognized arguments to with_sequence: {w}")))?;
            match k {
                "start" => start = num(v)?,
                "end" => end = Some(num(v)?),
                "count" => count = Some(num(v)?),
                "stride" => stride = num(v)?,
                "format" => format = v.to_string(),
                other => {
                    return Err(err(format!(
                        "unrecognized arguments to with_sequence: ['{other}']"
                    )))
                }
            }
        }
    } else {
        let mut rest = term.trim();
        if let Some((r, f)) = rest.split_once(':') {
            format = f.to_string();
            rest = r;
        }
        if let Some((r, s)) = rest.split_once('/') {
            stride = num(s)?;
            rest = r;
        }
        match rest.split_once('-') {
            Some((s, e)) if !s.is_empty() => {
                start = num(s)?;
                end = Some(num(e)?);
            }
            _ => end = Some(num(rest)?),
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => return Err(err("can't specify both count and end in with_sequence")),
        (Some(e), None) => e,
        (None, Some(0)) => return Ok(Vec::new()),
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err(err("must specify count or end in with_sequence")),
    };
    if stride == 0 {
        return Ok(Vec::new());
    }
    if (stride > 0 && end < start) || (stride < 0 && end > start) {
        return Err(err("to count backwards make stride negative"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(printf_int(&format, i)?);
        i += stride;
    }
    Ok(out)
}

/// Python's `format % i` for one integer conversion (`%d`, `%02x`, `%o`, `%5d`, `%%`).
pub(super) fn printf_int(format: &str, value: i64) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut used = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' || d == '0' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let conv = chars
            .next()
            .ok_or_else(|| err(format!("bad formatting string: {format}")))?;
        let body = match conv {
            'd' | 'i' | 'u' => value.to_string(),
            'x' => format!("{value:x}"),
            'X' => format!("{value:X}"),
            'o' => format!("{value:o}"),
            _ => return Err(err(format!("bad formatting string: {format}"))),
        };
        let left = spec.starts_with('-');
        let zero = spec.trim_start_matches('-').starts_with('0');
        let width: usize = spec.trim_start_matches(['-', '0']).parse().unwrap_or(0);
        let padded = if body.len() >= width {
            body
        } else if left {
            format!("{body:<width$}")
        } else if zero {
            format!("{body:0>width$}")
        } else {
            format!("{body:>width$}")
        };
        out.push_str(&padded);
        used = true;
    }
    if !used {
        return Err(err(format!("bad formatting string: {format}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sequence_forms() {
        assert_eq!(sequence("start=1 end=3").unwrap(), ["1", "2", "3"]);
        assert_eq!(sequence("4").unwrap(), ["1", "2", "3", "4"]);
        assert_eq!(sequence("2-6/2").unwrap(), ["2", "4", "6"]);
        assert_eq!(
            sequence("start=0 count=3 format=host%02d").unwrap(),
            ["host00", "host01", "host02"]
        );
        assert_eq!(sequence("0x0a-0x0c:%x").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            sequence("start=5 end=1 stride=-2").unwrap(),
            ["5", "3", "1"]
        );
        assert!(sequence("start=5 end=1").is_err());
        assert!(sequence("start=1 end=2 count=2").is_err());
        assert!(sequence("start=1 bogus=2").is_err());
    }

    #[test]
    fn nested_and_together() {
        let out = nested(vec![json!(["a", "b"]), json!([1, 2])]).unwrap();
        assert_eq!(
            out,
            vec![
                json!(["a", 1]),
                json!(["a", 2]),
                json!(["b", 1]),
                json!(["b", 2])
            ]
        );
        let out = together(vec![json!(["a", "b"]), json!([1])]).unwrap();
        assert_eq!(out, vec![json!(["a", 1]), json!(["b", null])]);
    }

    #[test]
    fn subelements_pairs_and_skip_missing() {
        let users = json!([
            {"name": "alice", "keys": ["k1", "k2"]},
            {"name": "bob"}
        ]);
        assert!(subelements(vec![users.clone(), json!("keys")]).is_err());
        let out = subelements(vec![users, json!("keys"), json!({"skip_missing": true})]).unwrap();
        assert_eq!(
            out,
            vec![
                json!([{"name": "alice"}, "k1"]),
                json!([{"name": "alice"}, "k2"])
            ]
        );
        let nested_key = json!([{"n": 1, "mysql": {"hosts": ["a"]}}]);
        let out = subelements(vec![nested_key, json!("mysql.hosts")]).unwrap();
        assert_eq!(out, vec![json!([{"n": 1, "mysql": {}}, "a"])]);
    }

    #[test]
    fn printf_like_python() {
        assert_eq!(printf_int("%05d", 42).unwrap(), "00042");
        assert_eq!(printf_int("x%-3dy", 7).unwrap(), "x7  y");
        assert_eq!(printf_int("100%%-%d", 1).unwrap(), "100%-1");
        assert!(printf_int("none", 1).is_err());
    }
}
