//! Loop expansion: `loop:` (a list), `with_items:` (a list, nested lists flattened one
//! level, a lone value becomes a one-item list), `with_dict:` (a mapping becomes
//! `{key, value}` items); the item labels shown in output (`(item=...)`) are
//! [`crate::report::label`]'s; `with_<lookup>:` (the lookup plugin run on the rendered
//! terms, see [`crate::template::Templar::with_lookup`]); and `ansible_loop` for
//! `loop_control: {extended: true}`.

use std::sync::Arc;

use anyhow::bail;
use serde_json::{json, Value};

use crate::playbook::{LoopControl, LoopSpec};
use crate::report::label::compact_label;
use crate::template::Templar;
use crate::Vars;

/// The loop's value before rendering.
pub fn raw_value(spec: &LoopSpec) -> &Value {
    match spec {
        LoopSpec::Items(v) | LoopSpec::WithItems(v) | LoopSpec::Dict(v) => v,
        LoopSpec::Lookup { terms, .. } => terms,
    }
}

/// The folder `with_first_found` searches first, chosen from the task's action as
/// Ansible does: `template` in the name gives `templates`, then `var` gives `vars`,
/// anything else `files`.
pub fn lookup_subdir(action: &str) -> &'static str {
    if action.contains("template") {
        "templates"
    } else if action.contains("var") {
        "vars"
    } else {
        "files"
    }
}

/// The items of a task's loop on one host: the loop value rendered with `vars`, then
/// expanded (a `with_<lookup>` runs its lookup on the controller).
pub fn items(
    templar: &Templar,
    spec: &LoopSpec,
    vars: &Arc<Vars>,
    action: &str,
) -> anyhow::Result<Vec<Value>> {
    match spec {
        LoopSpec::Lookup { name, terms } => {
            let rendered = if short_lookup(name) == "first_found" {
                render_dropping_undefined(templar, terms, vars)?.unwrap_or(Value::Null)
            } else {
                templar.render_value_shared(terms, vars)?
            };
            templar.with_lookup(name, &rendered, Some(lookup_subdir(action)), vars)
        }
        _ => expand(spec, templar.render_value_shared(raw_value(spec), vars)?),
    }
}

fn short_lookup(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}

/// Renders `with_first_found` terms, leaving out those that are undefined (a
/// `{{ ansible_distribution_release }}.yml` candidate on a host without that fact), as
/// Ansible does for this loop only. Other errors stay errors.
fn render_dropping_undefined(
    templar: &Templar,
    value: &Value,
    vars: &Arc<Vars>,
) -> anyhow::Result<Option<Value>> {
    Ok(match value {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.extend(render_dropping_undefined(templar, item, vars)?);
            }
            Some(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Vars::new();
            for (k, v) in map {
                if let Some(v) = render_dropping_undefined(templar, v, vars)? {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        other => match templar.render_value_shared(other, vars) {
            Ok(v) => Some(v),
            Err(e) if format!("{e:#}").contains("is undefined") => None,
            Err(e) => return Err(e),
        },
    })
}

/// `ansible_loop` for item `index` of `all` (`loop_control: {extended: true}`).
pub fn extended(control: &LoopControl, all: &[Value], index: usize) -> Value {
    let len = all.len();
    let mut out = json!({
        "index": index + 1,
        "index0": index,
        "revindex": len - index,
        "revindex0": len - index - 1,
        "first": index == 0,
        "last": index + 1 == len,
        "length": len,
    });
    if let Value::Object(m) = &mut out {
        if index > 0 {
            m.insert("previtem".into(), all[index - 1].clone());
        }
        if index + 1 < len {
            m.insert("nextitem".into(), all[index + 1].clone());
        }
        if control.extended_allitems.unwrap_or(true) {
            m.insert("allitems".into(), Value::Array(all.to_vec()));
        }
    }
    out
}

/// Turns the rendered loop value into the list of items.
pub fn expand(spec: &LoopSpec, rendered: Value) -> anyhow::Result<Vec<Value>> {
    match spec {
        LoopSpec::Items(_) => match rendered {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            other => bail!(
                "Invalid data passed to 'loop', it requires a list, got this instead: {}. \
                 Hint: If you passed a list/dict of just one element, try adding wantlist=True \
                 to your lookup invocation or use q/query instead of lookup.",
                compact_label(&other)
            ),
        },
        LoopSpec::WithItems(_) => match rendered {
            Value::Array(items) => {
                let mut flat = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Array(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                Ok(flat)
            }
            Value::Null => Ok(Vec::new()),
            other => Ok(vec![other]),
        },
        LoopSpec::Lookup { name, .. } => {
            bail!("with_{name} needs the lookup run: use loops::items")
        }
        LoopSpec::Dict(_) => match rendered {
            Value::Object(map) => Ok(map
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()),
            Value::Null => Ok(Vec::new()),
            other => bail!(
                "with_dict expects a dict, got this instead: {}",
                compact_label(&other)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_requires_a_list() {
        let spec = LoopSpec::Items(Value::Null);
        assert_eq!(
            expand(&spec, json!([1, 2])).unwrap(),
            vec![json!(1), json!(2)]
        );
        assert!(expand(&spec, json!("x")).is_err());
        assert!(expand(&spec, Value::Null).unwrap().is_empty());
    }

    #[test]
    fn with_items_flattens_one_level() {
        let spec = LoopSpec::WithItems(Value::Null);
        assert_eq!(
            expand(&spec, json!([1, [2, [3]], "a"])).unwrap(),
            vec![json!(1), json!(2), json!([3]), json!("a")]
        );
        assert_eq!(expand(&spec, json!("one")).unwrap(), vec![json!("one")]);
    }

    #[test]
    fn with_dict_gives_key_value_items() {
        let spec = LoopSpec::Dict(Value::Null);
        assert_eq!(
            expand(&spec, json!({"a": 1, "b": {"x": 2}})).unwrap(),
            vec![
                json!({"key": "a", "value": 1}),
                json!({"key": "b", "value": {"x": 2}})
            ]
        );
        assert!(expand(&spec, json!([1])).is_err());
    }
}
