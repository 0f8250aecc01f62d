//! Text that is never rendered as a template, however many `{{` it holds.
//!
//! ansible-core 2.19 renders a string only when it came from a trusted source: a playbook,
//! role, inventory or vars file. What a module returned (`register`, gathered facts), what
//! a render produced (`set_fact`, loop items) and what the YAML marks `!unsafe` is data:
//! a command whose output is `{{ foo }}` registers the text `{{ foo }}`, and reading it
//! later prints it instead of failing on an undefined `foo`.
//!
//! Vars are plain JSON here, so such a string is stored as the one-key object Ansible's
//! own JSON encoding uses for unsafe text, `{"__ansible_unsafe": "..."}`. Only strings
//! with template syntax are wrapped (any other string renders as itself), so the marker
//! is rare and costs nothing elsewhere. The lazy vars (`lazy.rs`) read a marker as its
//! plain text without rendering it, and every render of a value (module arguments) gives
//! the plain text back, so no module ever sees the marker.

use serde_json::{Map, Value};

use super::is_template;

/// The key of the marker object (Ansible's JSON name for unsafe text).
pub const UNSAFE_KEY: &str = "__ansible_unsafe";

/// The text of a marker object, or `None` for any other value.
pub fn marked_text(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(UNSAFE_KEY)?.as_str(),
        _ => None,
    }
}

/// `text` as a value that is never rendered: the marker when it holds template syntax,
/// else the plain string.
pub fn unsafe_text(text: String) -> Value {
    if is_template(&text) {
        let mut map = Map::with_capacity(1);
        map.insert(UNSAFE_KEY.into(), Value::String(text));
        Value::Object(map)
    } else {
        Value::String(text)
    }
}

/// Marks every string of `value` (at any depth) that holds template syntax, so storing it
/// as a variable never makes it a template. Markers already there stay as they are.
pub fn mark(value: Value) -> Value {
    match value {
        Value::String(s) => unsafe_text(s),
        Value::Array(items) => Value::Array(items.into_iter().map(mark).collect()),
        Value::Object(map) if marked_text_of_map(&map) => Value::Object(map),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, mark(v))).collect()),
        other => other,
    }
}

/// Marks the values of a map of variables (see [`mark`]).
pub fn mark_vars(vars: Map<String, Value>) -> Map<String, Value> {
    vars.into_iter().map(|(k, v)| (k, mark(v))).collect()
}

/// Whether [`mark`] would change `value`: a string with template syntax that is not
/// marked yet. Lets callers skip copying values that hold none (almost all).
pub fn needs_mark(value: &Value) -> bool {
    match value {
        Value::String(s) => is_template(s),
        Value::Array(items) => items.iter().any(needs_mark),
        Value::Object(map) => !marked_text_of_map(map) && map.values().any(needs_mark),
        _ => false,
    }
}

/// Whether `value` holds a marker anywhere.
pub fn has_marker(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_marker),
        Value::Object(map) => marked_text_of_map(map) || map.values().any(has_marker),
        _ => false,
    }
}

/// `value` with every marker replaced by its plain text (what modules and output see).
pub fn strip(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
        Value::Object(mut map) => {
            if marked_text_of_map(&map) {
                return map.remove(UNSAFE_KEY).unwrap_or(Value::Null);
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, strip(v))).collect())
        }
        other => other,
    }
}

fn marked_text_of_map(map: &Map<String, Value>) -> bool {
    map.len() == 1 && map.get(UNSAFE_KEY).is_some_and(Value::is_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_strings_with_template_syntax_are_marked() {
        let marked = mark(json!({"a": "{{ x }}", "b": ["plain", "{% if %}"], "c": 1}));
        assert_eq!(
            marked,
            json!({"a": {UNSAFE_KEY: "{{ x }}"}, "b": ["plain", {UNSAFE_KEY: "{% if %}"}], "c": 1})
        );
        assert_eq!(
            mark(marked.clone()),
            marked,
            "marking twice changes nothing"
        );
        assert!(!needs_mark(&marked));
        assert!(!needs_mark(&json!({"a": ["plain", 1]})));
        assert!(has_marker(&marked));
        assert_eq!(
            strip(marked),
            json!({"a": "{{ x }}", "b": ["plain", "{% if %}"], "c": 1})
        );
    }

    #[test]
    fn a_user_map_with_the_key_and_other_keys_is_not_a_marker() {
        let v = json!({UNSAFE_KEY: "{{ x }}", "other": 1});
        assert_eq!(marked_text(&v), None);
        assert!(!has_marker(&json!({UNSAFE_KEY: 3})));
    }
}
