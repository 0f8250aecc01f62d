//! Variable precedence and the helpers around it: the layers a task sees, merged in
//! Ansible's order (later layers win, whole values replace, as with the default
//! `hash_behaviour=replace`); `-e` parsing; the `omit` marker; lazy resolution of variables
//! whose values are templates themselves.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::template::{untrusted, Templar};
use crate::Vars;

/// The value of `omit` (the Templar's); arguments rendered to it are dropped.
pub use crate::template::OMIT;

/// The layers of one task's variables on one host, lowest precedence first.
#[derive(Default)]
pub struct Layers<'a> {
    /// Every role of the play's defaults, the task's own role last.
    pub role_defaults: Vec<&'a Vars>,
    /// `Inventory::host_vars` (all < parent groups < child groups < host < files).
    pub inventory: Option<&'a Vars>,
    /// Gathered facts (`ansible_*`, `ansible_facts`).
    pub facts: Option<&'a Vars>,
    pub play_vars: Option<&'a Vars>,
    pub vars_files: Option<&'a Vars>,
    /// The task's role: its `vars/` then the parameters it was given.
    pub role_vars: Vec<&'a Vars>,
    /// Enclosing blocks' and includes' vars, outermost first.
    pub block_vars: Vec<&'a Vars>,
    pub task_vars: Option<&'a Vars>,
    /// What `include_vars` loaded on the host.
    pub include_vars: Option<&'a Vars>,
    /// `set_fact` and `register` results.
    pub host_facts: Option<&'a Vars>,
    pub extra_vars: Option<&'a Vars>,
}

impl Layers<'_> {
    /// Merges the layers: a later layer replaces an earlier one's value for the same name.
    pub fn merge(&self) -> Vars {
        let layers: Vec<&Vars> = self
            .role_defaults
            .iter()
            .copied()
            .chain(self.inventory)
            .chain(self.facts)
            .chain(self.play_vars)
            .chain(self.vars_files)
            .chain(self.role_vars.iter().copied())
            .chain(self.block_vars.iter().copied())
            .chain(self.task_vars)
            .chain(self.include_vars)
            .chain(self.host_facts)
            .chain(self.extra_vars)
            .collect();
        // A name keeps the place of the lowest layer that has it (as inserting layer after
        // layer would) and takes the value of the highest one; only that value is copied.
        // Facts are large nested maps and most of a task's lower layers are shadowed in
        // part: copying every layer in turn made merging the bulk of a converged run's
        // work on the controller.
        let mut out = Vars::new();
        for (i, layer) in layers.iter().enumerate() {
            for (k, v) in layer.iter() {
                if out.contains_key(k) {
                    continue;
                }
                let winner = layers[i + 1..]
                    .iter()
                    .rev()
                    .find_map(|higher| higher.get(k))
                    .unwrap_or(v);
                out.insert(k.clone(), winner.clone());
            }
        }
        out
    }
}

/// Parses `-e` values in order (later wins): `k=v k2=v2` (strings; quoting as in a shell),
/// `@file.yaml` (YAML or JSON), or an inline JSON/YAML mapping (`{"k": 1}`).
pub fn parse_extra_vars(args: &[String], base_dir: &Path) -> anyhow::Result<Vars> {
    let mut out = Vars::new();
    for arg in args {
        let arg = arg.trim();
        let parsed = if let Some(file) = arg.strip_prefix('@') {
            let path = base_dir.join(file);
            let text = crate::vault::yaml::read_to_string(&path)
                .with_context(|| format!("-e @{file}: cannot read {}", path.display()))?;
            parse_mapping(&text).with_context(|| format!("-e @{file}: {}", path.display()))?
        } else if arg.starts_with('{') {
            parse_mapping(arg).with_context(|| format!("-e {arg:?}"))?
        } else {
            let words =
                shlex::split(arg).with_context(|| format!("-e {arg:?}: unbalanced quotes"))?;
            let mut vars = Vars::new();
            for word in words {
                let Some((k, v)) = word.split_once('=') else {
                    bail!("-e {arg:?}: expected key=value, @file or a JSON/YAML mapping");
                };
                if k.is_empty() {
                    bail!("-e {arg:?}: empty variable name");
                }
                vars.insert(k.to_string(), Value::String(v.to_string()));
            }
            vars
        };
        for (k, v) in parsed {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// A YAML (or JSON) document that must be a mapping (an empty document is an empty one).
pub fn parse_mapping(text: &str) -> anyhow::Result<Vars> {
    let value: Value = crate::vault::yaml::from_str(text).map_err(|e| match e {
        crate::vault::yaml::YamlError::Syntax(e) => {
            anyhow::Error::new(e).context("invalid YAML/JSON")
        }
        crate::vault::yaml::YamlError::Vault(e) => e,
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Vars::new()),
        other => bail!("expected a mapping of variables, got {}", kind(&other)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Whether a value holds a template somewhere (`{{`, `{%`).
pub fn is_templated(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(items) => items.iter().any(is_templated),
        // Text marked unsafe is data: resolving it would turn it into a template.
        Value::Object(_) if untrusted::marked_text(v).is_some() => false,
        Value::Object(map) => map.values().any(is_templated),
        _ => false,
    }
}

/// The identifiers a value's templates may refer to (a superset: every word).
pub fn identifiers(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            let mut word = String::new();
            for c in s.chars().chain(std::iter::once(' ')) {
                if c.is_ascii_alphanumeric() || c == '_' {
                    word.push(c);
                } else if !word.is_empty() {
                    if !word.starts_with(|c: char| c.is_ascii_digit()) {
                        out.insert(std::mem::take(&mut word));
                    } else {
                        word.clear();
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| identifiers(i, out)),
        Value::Object(map) => map.values().for_each(|i| identifiers(i, out)),
        _ => {}
    }
}

/// Resolves variables whose values are templates, as Ansible's lazy templating does:
/// only those named in `roots` (and what they refer to), or all when `roots` is `None`.
/// A variable that cannot be rendered (say it refers to an undefined name) stays as it is:
/// it is an error only if a task really uses it.
pub fn resolve_lazy(vars: &mut Vars, roots: Option<&HashSet<String>>, templar: &Templar) {
    let names: Vec<String> = match roots {
        Some(roots) => roots
            .iter()
            .filter(|n| vars.contains_key(n.as_str()))
            .cloned()
            .collect(),
        None => vars.keys().cloned().collect(),
    };
    let mut done = HashSet::new();
    let mut visiting = HashSet::new();
    for name in names {
        resolve_one(&name, vars, templar, &mut visiting, &mut done, 0);
    }
}

fn resolve_one(
    name: &str,
    vars: &mut Vars,
    templar: &Templar,
    visiting: &mut HashSet<String>,
    done: &mut HashSet<String>,
    depth: usize,
) {
    if depth > 32 || done.contains(name) || visiting.contains(name) {
        return;
    }
    let Some(value) = vars.get(name) else { return };
    if !is_templated(value) {
        done.insert(name.to_string());
        return;
    }
    let value = value.clone();
    visiting.insert(name.to_string());
    let mut deps = HashSet::new();
    identifiers(&value, &mut deps);
    for dep in deps {
        if vars.contains_key(&dep) {
            resolve_one(&dep, vars, templar, visiting, done, depth + 1);
        }
    }
    if let Ok(rendered) = templar.render_value(&value, vars) {
        // What a render produced is final: text with template syntax left in it (from a
        // marked value, `{% raw %}`) must not become a template again.
        vars.insert(name.to_string(), untrusted::mark(rendered));
    }
    visiting.remove(name);
    done.insert(name.to_string());
}

/// Drops arguments rendered to `omit` (top level, and inside lists and mappings).
pub fn drop_omitted(args: Vars) -> Vars {
    args.into_iter()
        .filter(|(_, v)| !is_omit(v))
        .map(|(k, v)| (k, strip_omit(v)))
        .collect()
}

fn is_omit(v: &Value) -> bool {
    matches!(v, Value::String(s) if s == OMIT)
}

fn strip_omit(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|i| !is_omit(i))
                .map(strip_omit)
                .collect(),
        ),
        Value::Object(map) => Value::Object(drop_omitted(map)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(k: &str, v: &str) -> Vars {
        let mut m = Vars::new();
        m.insert(k.into(), json!(v));
        m
    }

    #[test]
    fn every_layer_beats_the_ones_below() {
        let names = [
            "defaults",
            "inventory",
            "facts",
            "play",
            "vars_files",
            "role_vars",
            "block",
            "task",
            "include_vars",
            "set_fact",
            "extra",
        ];
        let layers: Vec<Vars> = names.iter().map(|n| one("x", n)).collect();
        // With the first n layers present, the n-th wins.
        for (top, name) in names.iter().enumerate() {
            let mut l = Layers::default();
            let present = |i: usize| if i <= top { Some(&layers[i]) } else { None };
            l.role_defaults = present(0).into_iter().collect();
            l.inventory = present(1);
            l.facts = present(2);
            l.play_vars = present(3);
            l.vars_files = present(4);
            l.role_vars = present(5).into_iter().collect();
            l.block_vars = present(6).into_iter().collect();
            l.task_vars = present(7);
            l.include_vars = present(8);
            l.host_facts = present(9);
            l.extra_vars = present(10);
            assert_eq!(l.merge()["x"], json!(name), "layer {name}");
        }
    }

    #[test]
    fn later_roles_and_inner_blocks_win() {
        let a = one("x", "outer");
        let b = one("x", "inner");
        let l = Layers {
            block_vars: vec![&a, &b],
            ..Default::default()
        };
        assert_eq!(l.merge()["x"], json!("inner"));
    }

    #[test]
    fn a_name_keeps_the_place_of_its_lowest_layer() {
        let low: Vars = serde_json::from_value(json!({"a": 1, "b": 1, "c": 1})).unwrap();
        let mid: Vars = serde_json::from_value(json!({"d": 2, "b": 2})).unwrap();
        let high: Vars = serde_json::from_value(json!({"c": 3, "e": 3})).unwrap();
        let l = Layers {
            inventory: Some(&low),
            play_vars: Some(&mid),
            extra_vars: Some(&high),
            ..Default::default()
        };
        let merged = l.merge();
        let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e"]);
        assert_eq!(
            Value::Object(merged),
            json!({"a": 1, "b": 2, "c": 3, "d": 2, "e": 3})
        );
    }

    #[test]
    fn extra_vars_forms() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("e.yaml"), "a: 1\nlist: [1, 2]\n").unwrap();
        let v = parse_extra_vars(
            &[
                "k=v 'q=a b'".into(),
                "@e.yaml".into(),
                r#"{"j": {"n": 1}, "k": "json"}"#.into(),
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(v["q"], json!("a b"));
        assert_eq!(v["a"], json!(1));
        assert_eq!(v["list"], json!([1, 2]));
        assert_eq!(v["j"]["n"], json!(1));
        assert_eq!(v["k"], json!("json"));
        assert!(parse_extra_vars(&["novalue".into()], dir.path()).is_err());
        assert!(parse_extra_vars(&["@missing.yaml".into()], dir.path()).is_err());
        assert!(parse_extra_vars(&["{bad".into()], dir.path()).is_err());
    }

    #[test]
    fn omit_is_dropped_everywhere() {
        let mut args = Vars::new();
        args.insert("a".into(), json!(OMIT));
        args.insert("b".into(), json!([1, OMIT]));
        args.insert("c".into(), json!({"d": OMIT, "e": 2}));
        let out = drop_omitted(args);
        assert_eq!(Value::Object(out), json!({"b": [1], "c": {"e": 2}}));
    }

    #[test]
    fn identifiers_are_words() {
        let mut ids = HashSet::new();
        identifiers(
            &json!(["{{ a.b | default(c_1) }}", {"x": "{{ 1 + d }}"}]),
            &mut ids,
        );
        for w in ["a", "b", "default", "c_1", "d"] {
            assert!(ids.contains(w), "{w}");
        }
        assert!(!ids.contains("1"));
    }
}
