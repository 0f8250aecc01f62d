//! Loop expansion: `loop:` (a list), `with_items:` (a list, nested lists flattened one
//! level, a lone value becomes a one-item list), `with_dict:` (a mapping becomes
//! `{key, value}` items); and the item labels shown in output (`(item=...)`).

use anyhow::bail;
use serde_json::{json, Value};

use crate::playbook::LoopSpec;

/// The loop's value before rendering.
pub fn raw_value(spec: &LoopSpec) -> &Value {
    match spec {
        LoopSpec::Items(v) | LoopSpec::WithItems(v) | LoopSpec::Dict(v) => v,
    }
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

/// How an item is shown when no `label` is given: strings as they are, everything else
/// the way Ansible (Python) prints it: `{'key': 'a', 'value': 1}`.
pub fn compact_label(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("'{}': {}", k, python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
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

    #[test]
    fn labels_look_like_python() {
        assert_eq!(compact_label(&json!("x")), "x");
        assert_eq!(
            compact_label(&json!({"key": "a", "value": true, "n": null})),
            "{'key': 'a', 'value': True, 'n': None}"
        );
        assert_eq!(compact_label(&json!([1, "b"])), "[1, 'b']");
    }
}
