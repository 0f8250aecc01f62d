//! Reading module arguments the way Ansible does (numbers where strings are expected,
//! comma strings where lists are expected), and quoting for the host's shell. Aliases are
//! not read here: the loader renames them ([`super::ArgSpec::resolve_aliases`]).
//! Every error names the argument.

use serde_json::Value;

use crate::Vars;

/// The first of `names` that is set (not null): one argument, or free-form text and the
/// argument that may hold it instead (`_raw_params`, `cmd`).
pub fn get<'a>(args: &'a Vars, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .filter_map(|n| args.get(*n))
        .find(|v| !v.is_null())
}

/// A scalar as text (numbers and bools are accepted, as Ansible does).
pub fn scalar_text(name: &str, v: &Value) -> anyhow::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "True" } else { "False" }.to_string()),
        other => anyhow::bail!("argument {name}: expected a string, got {other}"),
    }
}

/// An optional string argument (under any of `names`).
pub fn str_opt(args: &Vars, names: &[&str]) -> anyhow::Result<Option<String>> {
    get(args, names)
        .map(|v| scalar_text(names[0], v))
        .transpose()
}

/// A required string argument.
pub fn str_req(args: &Vars, names: &[&str]) -> anyhow::Result<String> {
    str_opt(args, names)?.ok_or_else(|| anyhow::anyhow!("missing required argument: {}", names[0]))
}

/// A list argument: a YAML list, or a comma-separated string.
pub fn list(args: &Vars, names: &[&str]) -> anyhow::Result<Vec<String>> {
    match get(args, names) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|v| scalar_text(names[0], v)).collect(),
        Some(v) => Ok(scalar_text(names[0], v)?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
    }
}

/// An optional integer argument (a number or a numeric string).
pub fn int_opt(args: &Vars, names: &[&str]) -> anyhow::Result<Option<i64>> {
    match get(args, names) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("argument {}: {n} is not an integer", names[0])),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("argument {}: {s:?} is not an integer", names[0])),
        Some(other) => anyhow::bail!("argument {}: {other} is not an integer", names[0]),
    }
}

/// An optional number of seconds (integers or decimals).
pub fn float_opt(args: &Vars, names: &[&str]) -> anyhow::Result<Option<f64>> {
    match get(args, names) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("argument {}: {s:?} is not a number", names[0])),
        Some(other) => anyhow::bail!("argument {}: {other} is not a number", names[0]),
    }
}

/// A bool argument (under any of `names`), Ansible's spellings.
pub fn bool_arg(args: &Vars, names: &[&str], default: bool) -> anyhow::Result<bool> {
    for n in names {
        if args.get(*n).is_some_and(|v| !v.is_null()) {
            return super::arg_bool(args, n, default);
        }
    }
    Ok(default)
}

/// An optional bool argument: `None` when not given.
pub fn bool_opt(args: &Vars, names: &[&str]) -> anyhow::Result<Option<bool>> {
    match get(args, names) {
        None => Ok(None),
        Some(_) => bool_arg(args, names, false).map(Some),
    }
}

/// A string argument that must be one of `choices`.
pub fn choice(
    args: &Vars,
    names: &[&str],
    choices: &[&str],
    default: &str,
) -> anyhow::Result<String> {
    let value = str_opt(args, names)?.unwrap_or_else(|| default.to_string());
    if choices.contains(&value.as_str()) {
        Ok(value)
    } else {
        anyhow::bail!(
            "argument {}: {value:?} is not one of {}",
            names[0],
            choices.join(", ")
        )
    }
}

/// A word for `/bin/sh` as Python's `shlex.quote` writes it: bare when it holds only
/// characters the shell leaves alone, else [`crate::transport::shell::quote`]d.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%_+=:,./-".contains(&b))
    {
        return s.to_string();
    }
    crate::transport::shell::quote(s)
}

/// Builds a `Vars` from pairs (for results).
pub fn vars<const N: usize>(pairs: [(&str, Value); N]) -> Vars {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Vars {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn lists_accept_yaml_lists_and_comma_strings() {
        let a = args(json!({"name": "a, b,c", "pkgs": ["x", 1]}));
        assert_eq!(list(&a, &["name"]).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(list(&a, &["pkgs"]).unwrap(), vec!["x", "1"]);
        assert!(list(&a, &["missing"]).unwrap().is_empty());
    }

    #[test]
    fn aliases_and_errors_name_the_argument() {
        let a = args(json!({"dest": "/x", "n": "abc", "o": {"a": 1}}));
        assert_eq!(str_req(&a, &["path", "dest"]).unwrap(), "/x");
        let e = int_opt(&a, &["n"]).unwrap_err().to_string();
        assert!(e.contains("argument n"), "{e}");
        let e = str_opt(&a, &["o"]).unwrap_err().to_string();
        assert!(e.contains("argument o"), "{e}");
        let e = str_req(&a, &["path"]).unwrap_err().to_string();
        assert!(e.contains("path"), "{e}");
    }

    #[test]
    fn choices_are_checked() {
        let a = args(json!({"state": "bogus"}));
        assert!(choice(&a, &["state"], &["present", "absent"], "present").is_err());
        let a = args(json!({}));
        assert_eq!(
            choice(&a, &["state"], &["present", "absent"], "present").unwrap(),
            "present"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh_quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
