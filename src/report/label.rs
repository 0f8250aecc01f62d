//! How a loop item is named in output (`(item=...)`) when the task gives no `label`.

use serde_json::Value;

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
    use serde_json::json;

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
