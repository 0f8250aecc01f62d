//! Ansible's INI inventory format: host lines (`web[01:03] ansible_port=2222 x="a b"`),
//! `[group]`, `[group:vars]` and `[group:children]` sections, hosts before any section
//! being ungrouped. Values are typed as Ansible's `ast.literal_eval` would type them
//! (`1` is an int, `True` a bool, `yes` stays text). Errors name file:line:col.

use std::path::Path;

use serde_json::Value;

use super::range::expand_host_range;
use super::{Inventory, ALL};
use crate::Vars;

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

/// Parses INI `text` (the content of `file`) into `inv`.
pub(super) fn parse_into(inv: &mut Inventory, text: &str, file: &Path) -> anyhow::Result<()> {
    let mut section = Section::Hosts(super::UNGROUPED.to_string());
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let col = raw.len() - raw.trim_start().len() + 1;
        let at = |msg: String| anyhow::anyhow!("{}:{line_no}:{col}: {msg}", file.display());
        if let Some(header) = line.strip_prefix('[') {
            let Some(header) = header.split(']').next().filter(|_| header.contains(']')) else {
                return Err(at(format!("section header `{line}` lacks its closing `]`")));
            };
            section = match header.split_once(':') {
                None => Section::Hosts(header.to_string()),
                Some((g, "vars")) => Section::Vars(g.to_string()),
                Some((g, "children")) => Section::Children(g.to_string()),
                Some((_, other)) => {
                    return Err(at(format!(
                        "section `[{header}]`: `{other}` is not `vars` or `children`"
                    )))
                }
            };
            let name = match &section {
                Section::Hosts(g) | Section::Vars(g) | Section::Children(g) => g.clone(),
            };
            if name.is_empty() {
                return Err(at("empty group name".into()));
            }
            inv.ensure_group(&name);
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let group = group.clone();
                parse_host_line(inv, line, &group).map_err(at)?;
            }
            Section::Vars(group) => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(at(format!(
                        "expected `key=value` in [{group}:vars], got `{line}`"
                    )));
                };
                let value = literal_value(v.trim());
                inv.ensure_group(group)
                    .vars
                    .insert(k.trim().to_string(), value);
            }
            Section::Children(group) => {
                let child = line.split_whitespace().next().unwrap_or(line).to_string();
                if child == ALL {
                    return Err(at("`all` cannot be a child group".into()));
                }
                inv.ensure_group(&child);
                let parent = inv.ensure_group(group);
                if !parent.children.contains(&child) {
                    parent.children.push(child);
                }
            }
        }
    }
    Ok(())
}

fn parse_host_line(inv: &mut Inventory, line: &str, group: &str) -> Result<(), String> {
    let without_comment = strip_comment(line);
    let tokens =
        shlex::split(without_comment).ok_or_else(|| format!("unbalanced quotes in `{line}`"))?;
    let Some((pattern, assignments)) = tokens.split_first() else {
        return Ok(());
    };
    let (name, port) = split_port(pattern)?;
    let mut vars = Vars::new();
    if let Some(port) = port {
        vars.insert("ansible_port".into(), port.into());
    }
    for token in assignments {
        let Some((k, v)) = token.split_once('=') else {
            return Err(format!(
                "expected a `key=value` host variable, got `{token}`"
            ));
        };
        vars.insert(k.to_string(), literal_value(v));
    }
    for host in expand_host_range(name)? {
        inv.add_host_vars(&host, vars.clone());
        if group != super::UNGROUPED {
            inv.add_host_to_group(&host, group);
        }
    }
    Ok(())
}

/// Drops a `#` comment that starts a token outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn split_port(pattern: &str) -> Result<(&str, Option<u16>), String> {
    let outside_brackets = pattern.rfind(']').map(|i| i + 1).unwrap_or(0);
    let tail = &pattern[outside_brackets..];
    // One colon outside brackets is a port; more is an IPv6 address.
    if pattern[..outside_brackets].contains(':') && outside_brackets > 0 {
        if let Some(i) = tail.find(':') {
            let port = &tail[i + 1..];
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("`{port}` in host `{pattern}` is not a port number"))?;
            return Ok((&pattern[..outside_brackets + i], Some(port)));
        }
        return Ok((pattern, None));
    }
    if pattern.matches(':').count() == 1 {
        let (name, port) = pattern.split_once(':').unwrap_or((pattern, ""));
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("`{port}` in host `{pattern}` is not a port number"))?;
        return Ok((name, Some(port)));
    }
    Ok((pattern, None))
}

/// A value typed as Python's `ast.literal_eval` would, else the text itself.
pub fn literal_value(v: &str) -> Value {
    match v {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(i) = v.trim_start_matches('+').parse::<i64>() {
            return Value::from(i);
        }
    }
    let looks_float = !digits.is_empty()
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && (digits.contains('.') || digits.contains(['e', 'E']));
    if looks_float {
        if let Ok(f) = v.parse::<f64>() {
            return Value::from(f);
        }
    }
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted {
        return Value::String(v[1..v.len() - 1].to_string());
    }
    if v.starts_with('[') || v.starts_with('{') {
        if let Ok(parsed) = serde_json::from_str::<Value>(v) {
            return parsed;
        }
    }
    Value::String(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literal_values_are_typed_like_python() {
        assert_eq!(literal_value("1"), json!(1));
        assert_eq!(literal_value("-2"), json!(-2));
        assert_eq!(literal_value("1.5"), json!(1.5));
        assert_eq!(literal_value("True"), json!(true));
        assert_eq!(literal_value("true"), json!("true"));
        assert_eq!(literal_value("yes"), json!("yes"));
        assert_eq!(literal_value("'1'"), json!("1"));
        assert_eq!(literal_value("[1, 2]"), json!([1, 2]));
        assert_eq!(literal_value("10.0.0.1"), json!("10.0.0.1"));
    }

    #[test]
    fn comments_and_ports() {
        assert_eq!(strip_comment("h1 a=1 # note"), "h1 a=1 ");
        assert_eq!(strip_comment("h1 a='x # y'"), "h1 a='x # y'");
        assert_eq!(split_port("h:2222").unwrap(), ("h", Some(2222)));
        assert_eq!(split_port("w[1:3]:22").unwrap(), ("w[1:3]", Some(22)));
        assert_eq!(split_port("w[1:3]").unwrap(), ("w[1:3]", None));
        assert_eq!(split_port("fe80::1").unwrap(), ("fe80::1", None));
    }
}
