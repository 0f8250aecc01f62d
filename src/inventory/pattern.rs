//! Ansible host patterns: a host, a group, `all`/`*`, unions (`a:b`, `a,b`),
//! intersections (`a:&b`), exclusions (`a:!b`), shell wildcards (`web*`), regexes
//! (`~web\d+`) and subscripts (`web[0]`, `web[1:2]`, inclusive as in Ansible). Unions
//! apply first, then intersections, then exclusions. [`select`] gives the result in
//! inventory order, [`select_in_pattern_order`] in Ansible's (a play's hosts, the
//! `inventory_hostnames` lookup): each union term's hosts in turn, a group's as
//! [`Inventory::group_hosts`] lists them.

use std::collections::HashSet;

use anyhow::Context;
use regex::Regex;

use super::{is_localhost, Inventory, ALL};

pub(super) fn select(inv: &Inventory, pattern: &str) -> anyhow::Result<Vec<String>> {
    let selected = select_in_pattern_order(inv, pattern)?;
    // Inventory order; an implicit localhost (not in the inventory) goes last.
    let chosen: HashSet<&String> = selected.iter().collect();
    let mut ordered: Vec<String> = inv
        .hosts
        .keys()
        .filter(|h| chosen.contains(h))
        .cloned()
        .collect();
    ordered.extend(
        selected
            .iter()
            .filter(|h| !inv.hosts.contains_key(*h))
            .cloned(),
    );
    Ok(ordered)
}

/// The hosts in the order Ansible's `get_hosts` gives them: the union terms in the order
/// written (each one's hosts in its own order), then narrowed by the `&` and `!` terms.
pub(super) fn select_in_pattern_order(
    inv: &Inventory,
    pattern: &str,
) -> anyhow::Result<Vec<String>> {
    let terms = split_terms(pattern);
    let (mut unions, mut intersections, mut exclusions) = (Vec::new(), Vec::new(), Vec::new());
    for t in &terms {
        if let Some(rest) = t.strip_prefix('&') {
            intersections.push(rest);
        } else if let Some(rest) = t.strip_prefix('!') {
            exclusions.push(rest);
        } else {
            unions.push(t.as_str());
        }
    }
    if unions.is_empty() && !terms.is_empty() {
        unions.push(ALL);
    }
    let mut selected: Vec<String> = Vec::new();
    for term in unions {
        for h in match_term(inv, term)? {
            if !selected.contains(&h) {
                selected.push(h);
            }
        }
    }
    for term in intersections {
        let keep: HashSet<String> = match_term(inv, term)?.into_iter().collect();
        selected.retain(|h| keep.contains(h));
    }
    for term in exclusions {
        let drop: HashSet<String> = match_term(inv, term)?.into_iter().collect();
        selected.retain(|h| !drop.contains(h));
    }
    Ok(selected)
}

/// Splits on `,` if present, else on `:` outside brackets (so `web[1:2]` stays whole).
fn split_terms(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut depth = 0usize;
        for c in pattern.chars() {
            match c {
                '[' => {
                    depth += 1;
                    current.push(c);
                }
                ']' => {
                    depth = depth.saturating_sub(1);
                    current.push(c);
                }
                ':' if depth == 0 => parts.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        parts.push(current);
        parts
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// One term, without its `&`/`!` prefix.
fn match_term(inv: &Inventory, term: &str) -> anyhow::Result<Vec<String>> {
    let (base, subscript) = split_subscript(term)?;
    let mut hosts = match_base(inv, base)?;
    if let Some(sub) = subscript {
        hosts = sub.apply(hosts);
    }
    Ok(hosts)
}

fn match_base(inv: &Inventory, term: &str) -> anyhow::Result<Vec<String>> {
    if term == ALL || term == "*" {
        return Ok(inv.group_hosts(ALL));
    }
    if inv.hosts.contains_key(term) && !inv.groups.contains_key(term) {
        return Ok(vec![term.to_string()]);
    }
    let matcher = Matcher::new(term)?;
    let mut out: Vec<String> = Vec::new();
    let mut any_group = false;
    for g in inv.groups.keys().filter(|g| matcher.matches(g)) {
        any_group = true;
        for h in inv.group_hosts(g) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    if !any_group || matcher.is_wild() {
        for h in inv.hosts.keys().filter(|h| matcher.matches(h)) {
            if !out.contains(h) {
                out.push(h.clone());
            }
        }
    }
    if out.is_empty() && !any_group && is_localhost(term) {
        out.push(term.to_string());
    }
    Ok(out)
}

enum Matcher {
    Exact(String),
    Wild(Regex),
}

impl Matcher {
    fn new(term: &str) -> anyhow::Result<Matcher> {
        if let Some(re) = term.strip_prefix('~') {
            // Python's re.match: anchored at the start only.
            let re = Regex::new(&format!("^(?:{re})"))
                .with_context(|| format!("bad regex in host pattern `{term}`"))?;
            return Ok(Matcher::Wild(re));
        }
        if term.contains(['*', '?', '[']) {
            let re = Regex::new(&glob_to_regex(term))
                .with_context(|| format!("bad wildcard in host pattern `{term}`"))?;
            return Ok(Matcher::Wild(re));
        }
        Ok(Matcher::Exact(term.to_string()))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == name,
            Matcher::Wild(re) => re.is_match(name),
        }
    }

    fn is_wild(&self) -> bool {
        matches!(self, Matcher::Wild(_))
    }
}

/// fnmatch-style: `*`, `?`, `[seq]`, `[!seq]`; everything else literal; whole-name match.
fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => match chars[i + 1..].iter().position(|c| *c == ']') {
                Some(len) => {
                    let mut class: String = chars[i + 1..i + 1 + len].iter().collect();
                    if let Some(rest) = class.strip_prefix('!') {
                        class = format!("^{rest}");
                    }
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\"));
                    re.push(']');
                    i += len + 1;
                }
                None => re.push_str("\\["),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

enum Subscript {
    Index(i64),
    Slice(Option<usize>, Option<usize>),
}

impl Subscript {
    fn apply(&self, hosts: Vec<String>) -> Vec<String> {
        match *self {
            Subscript::Index(i) => {
                let idx = if i < 0 { hosts.len() as i64 + i } else { i };
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| hosts.get(i).cloned())
                    .into_iter()
                    .collect()
            }
            Subscript::Slice(start, end) => {
                let start = start.unwrap_or(0);
                let end = end.map(|e| e + 1).unwrap_or(hosts.len()).min(hosts.len());
                if start >= end {
                    return Vec::new();
                }
                hosts[start..end].to_vec()
            }
        }
    }
}

/// `name[3]`, `name[-1]`, `name[1:2]`, `name[:2]`, `name[1:]`; regex terms have none.
fn split_subscript(term: &str) -> anyhow::Result<(&str, Option<Subscript>)> {
    if term.starts_with('~') || !term.ends_with(']') {
        return Ok((term, None));
    }
    let Some(open) = term.rfind('[') else {
        return Ok((term, None));
    };
    let inner = &term[open + 1..term.len() - 1];
    let base = &term[..open];
    let is_subscript = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '-' || c == ' ');
    if !is_subscript || base.is_empty() {
        return Ok((term, None));
    }
    let bad = || anyhow::anyhow!("bad subscript `[{inner}]` in host pattern `{term}`");
    let sub = match inner.split_once(':') {
        None => Subscript::Index(inner.trim().parse().map_err(|_| bad())?),
        Some((a, b)) => {
            let parse = |s: &str| -> anyhow::Result<Option<usize>> {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse().map(Some).map_err(|_| bad())
                }
            };
            Subscript::Slice(parse(a)?, parse(b)?)
        }
    };
    Ok((base, Some(sub)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_terms() {
        assert_eq!(split_terms("a:&b:!c"), ["a", "&b", "!c"]);
        assert_eq!(split_terms("a, b"), ["a", "b"]);
        assert_eq!(split_terms("web[0:1]:db"), ["web[0:1]", "db"]);
    }

    #[test]
    fn globs() {
        let re = Regex::new(&glob_to_regex("web?.ex*")).unwrap();
        assert!(re.is_match("web1.example"));
        assert!(!re.is_match("web12.example"));
        let re = Regex::new(&glob_to_regex("db[!ab]")).unwrap();
        assert!(re.is_match("dbc"));
        assert!(!re.is_match("dba"));
    }
}
