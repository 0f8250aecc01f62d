//! Turns minijinja errors into messages a playbook author can act on: the undefined
//! variable by name (`'foo' is undefined`), the missing attribute of a chain
//! (`'hostvars['web2']' has no attribute 'ip'`), syntax errors, each with the template line
//! and its text.

use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value;

use super::RESULT_VAR;
use crate::Vars;

/// `source` is what was compiled; `shown` the user's expression when `source` wraps it
/// (`when:` conditions); `render` the environment and vars when the error came from
/// rendering (needed to name undefined variables).
pub(super) fn explain(
    err: &Error,
    source: &str,
    render: Option<(&Environment<'static>, &Vars)>,
    shown: Option<&str>,
) -> anyhow::Error {
    let what = match err.kind() {
        ErrorKind::UndefinedError => undefined_message(err, source, render),
        ErrorKind::OutOfFuel => format!(
            "template did not finish within {} steps (an endless or runaway loop?)",
            super::TEMPLATE_FUEL
        ),
        ErrorKind::SyntaxError => format!(
            "template syntax error: {}",
            err.detail().unwrap_or("invalid syntax")
        ),
        _ => match err.detail() {
            Some(d) => d.to_string(),
            None => err.kind().to_string(),
        },
    };
    let what = match innermost_cause(err) {
        Some(cause) => format!("{what}: {cause}"),
        None => what,
    };
    match shown {
        Some(expr) => anyhow::anyhow!("{what} (in `{}`)", one_line(expr)),
        None => {
            let line_no = err.line().unwrap_or(1);
            let line_text = source
                .lines()
                .nth(line_no.saturating_sub(1))
                .unwrap_or(source);
            anyhow::anyhow!(
                "{what} (template line {line_no}: `{}`)",
                one_line(line_text)
            )
        }
    }
}

/// The root cause of an error raised inside an included template (the outer error only
/// says "error in \"a.j2\""), with where it happened.
fn innermost_cause(err: &Error) -> Option<String> {
    let mut cause = std::error::Error::source(err)?;
    while let Some(deeper) = cause.source() {
        cause = deeper;
    }
    let Some(inner) = cause.downcast_ref::<Error>() else {
        return Some(cause.to_string());
    };
    let text = match inner.kind() {
        ErrorKind::OutOfFuel => format!(
            "did not finish within {} steps (an endless or runaway loop?)",
            super::TEMPLATE_FUEL
        ),
        kind => inner
            .detail()
            .map_or_else(|| kind.to_string(), str::to_string),
    };
    Some(match (inner.name(), inner.line()) {
        (Some(name), Some(line)) => format!("{text} ({name} line {line})"),
        _ => text,
    })
}

fn one_line(s: &str) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 {
        format!("{}...", flat.chars().take(160).collect::<String>())
    } else {
        flat
    }
}

fn undefined_message(
    err: &Error,
    source: &str,
    render: Option<(&Environment<'static>, &Vars)>,
) -> String {
    if let Some(detail) = err.detail().filter(|d| *d != "undefined value") {
        return detail.to_string();
    }
    let missing = render
        .map(|(env, vars)| missing_variables(env, source, vars))
        .unwrap_or_default();
    let chain = err
        .range()
        .and_then(|r| expression_chain(source, r.start, r.end));
    if let Some(chain) = &chain {
        if let Some(name) = missing.iter().find(|m| chain_root(chain) == m.as_str()) {
            return format!("'{name}' is undefined");
        }
        if let Some((_, vars)) = render {
            if let Some(msg) = missing_attribute(chain, vars) {
                return msg;
            }
        }
    }
    if let Some(name) = missing.first() {
        return format!("'{name}' is undefined");
    }
    match chain {
        Some(c) => {
            format!("'{c}' is undefined (a variable, attribute or key in it does not exist)")
        }
        None => "a variable is undefined".to_string(),
    }
}

/// Whether `err` is an undefined value the template guards: the failing attribute chain
/// is followed by `| default`/`| d` or `is [not] defined`/`is [not] undefined`.
pub(super) fn is_guarded_undefined(err: &Error, source: &str) -> bool {
    if err.kind() != ErrorKind::UndefinedError {
        return false;
    }
    let Some(range) = err.range() else {
        return false;
    };
    let Some(end) = chain_end(source, range.end) else {
        return false;
    };
    let rest = source[end..].trim_start();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    if let Some(after) = rest.strip_prefix('|') {
        return matches!(ident(after).as_str(), "default" | "d");
    }
    if let Some(after) = rest.strip_prefix("is") {
        let after = after.trim_start();
        let after = after.strip_prefix("not ").unwrap_or(after);
        return matches!(ident(after).as_str(), "defined" | "undefined");
    }
    false
}

fn is_chain_char(c: char) -> bool {
    c.is_alphanumeric() || "_.[]'\"".contains(c)
}

/// Where the attribute chain containing byte `pos` ends.
fn chain_end(source: &str, pos: usize) -> Option<usize> {
    let pos = pos.min(source.len());
    Some(
        source
            .get(pos..)?
            .char_indices()
            .find(|(_, c)| !is_chain_char(*c))
            .map(|(i, _)| pos + i)
            .unwrap_or(source.len()),
    )
}

/// The attribute chain around the error span (`hostvars['web1'].ip`), found by widening
/// the span to identifier, `.`, quote and bracket characters.
fn expression_chain(source: &str, start: usize, end: usize) -> Option<String> {
    let start = source
        .get(..start)?
        .char_indices()
        .rev()
        .find(|(_, c)| !is_chain_char(*c));
    let start = start.map(|(i, c)| i + c.len_utf8()).unwrap_or(0);
    let end = chain_end(source, end)?;
    let text = source.get(start..end)?.trim_matches('.');
    (!text.is_empty()).then(|| text.to_string())
}

fn chain_root(chain: &str) -> &str {
    chain.split(['.', '[']).next().unwrap_or(chain)
}

/// Walks `a.b['c'][0]` through `vars`; names the first step that does not exist.
fn missing_attribute(chain: &str, vars: &Vars) -> Option<String> {
    let steps = parse_chain(chain)?;
    let (root, rest) = steps.split_first()?;
    let mut current = vars.get(root)?;
    let mut path = root.clone();
    for step in rest {
        let next = match current {
            Value::Object(map) => map.get(step),
            Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => {
                current = v;
                path = if step.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    format!("{path}.{step}")
                } else {
                    format!("{path}['{step}']")
                };
            }
            None => {
                let kind = match current {
                    Value::Object(_) => "dict object",
                    Value::Array(_) => "list object",
                    Value::String(_) => "str object",
                    Value::Number(n) if n.is_f64() => "float object",
                    Value::Number(_) => "int object",
                    Value::Bool(_) => "bool object",
                    Value::Null => "NoneType object",
                };
                return Some(format!("'{path}' ({kind}) has no attribute '{step}'"));
            }
        }
    }
    None
}

fn parse_chain(chain: &str) -> Option<Vec<String>> {
    let mut steps = Vec::new();
    let mut rest = chain;
    let ident_end = |s: &str| {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let n = ident_end(rest);
    if n == 0 {
        return None;
    }
    steps.push(rest[..n].to_string());
    rest = &rest[n..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_end(r);
            if n == 0 {
                return None;
            }
            steps.push(r[..n].to_string());
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let inner = r[..close].trim().trim_matches(['\'', '"']);
            steps.push(inner.to_string());
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Top-level names the template reads that neither `vars` nor the globals define.
fn missing_variables(env: &Environment<'static>, source: &str, vars: &Vars) -> Vec<String> {
    let Ok(tmpl) = env.template_from_str(source) else {
        return Vec::new();
    };
    let globals: Vec<String> = env.globals().map(|(k, _)| k.to_string()).collect();
    let mut missing: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !vars.contains_key(v) && !globals.contains(v) && v != RESULT_VAR)
        .collect();
    missing.sort();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chains_are_walked_to_the_missing_step() {
        let vars = match json!({"hostvars": {"web1": {"ip": "1"}}, "l": [1]}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(
            missing_attribute("hostvars['web2'].ip", &vars).unwrap(),
            "'hostvars' (dict object) has no attribute 'web2'"
        );
        assert_eq!(
            missing_attribute("hostvars.web1.port", &vars).unwrap(),
            "'hostvars.web1' (dict object) has no attribute 'port'"
        );
        assert!(missing_attribute("hostvars.web1.ip", &vars).is_none());
        assert_eq!(
            expression_chain("{{ a.b['c'] | x }}", 4, 6).unwrap(),
            "a.b['c']"
        );
    }
}
