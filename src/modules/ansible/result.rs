//! What a module printed, as Ansible reads it: the JSON object on stdout (junk before and
//! after it filtered away, as Ansible's `_filter_non_json_lines` does), or Ansible's
//! "MODULE FAILURE" result when there is none; then the parts the engine needs: status,
//! the registered dict (internal `_ansible_*` keys removed), text diffs, warnings.

use serde_json::{json, Value};

use crate::modules::TextDiff;
use crate::transport::ExecOutput;
use crate::Vars;

/// How the task ends, from the module's own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Changed,
    Skipped,
    Failed,
}

/// A module's result, ready for the engine.
#[derive(Debug, Clone)]
pub struct ModuleResult {
    pub verdict: Verdict,
    /// The registered dict: the module's JSON (with `changed` always present).
    pub result: Vars,
    /// The module's `diff` (one or a list), rendered as text.
    pub diffs: Vec<TextDiff>,
    /// `warnings` and `deprecations`, as lines to show.
    pub warnings: Vec<String>,
}

/// Reads a module's output.
pub fn parse(out: &ExecOutput) -> ModuleResult {
    let mut result = match json_object(&out.stdout) {
        Some((obj, junk)) => {
            let mut obj = obj;
            if let Some(junk) = junk {
                push_warning(
                    &mut obj,
                    format!("Module invocation had junk after the JSON data: {junk}"),
                );
            }
            obj
        }
        None => {
            let mut r = Vars::new();
            r.insert("failed".into(), json!(true));
            r.insert(
                "msg".into(),
                json!("MODULE FAILURE: No start of json char found\nSee stdout/stderr for the exact error"),
            );
            r.insert("module_stdout".into(), json!(out.stdout));
            r.insert("module_stderr".into(), json!(out.stderr));
            r.insert("rc".into(), json!(out.rc));
            r
        }
    };
    result.retain(|k, _| !k.starts_with("_ansible_"));
    let flag = |r: &Vars, k: &str| r.get(k).is_some_and(truthy);
    let verdict = if flag(&result, "failed") {
        Verdict::Failed
    } else if flag(&result, "skipped") {
        Verdict::Skipped
    } else if flag(&result, "changed") {
        Verdict::Changed
    } else {
        Verdict::Ok
    };
    let changed = flag(&result, "changed");
    result.insert("changed".into(), Value::Bool(changed));
    let diffs = match result.get("diff") {
        Some(Value::Array(items)) => items.iter().filter_map(text_diff).collect(),
        Some(one) => text_diff(one).into_iter().collect(),
        None => Vec::new(),
    };
    let mut warnings: Vec<String> = match result.get("warnings") {
        Some(Value::Array(items)) => items.iter().map(warning_text).collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Array(items)) = result.get("deprecations") {
        for d in items {
            let msg = d.get("msg").map(text).unwrap_or_else(|| text(d));
            let when = d
                .get("version")
                .or_else(|| d.get("date"))
                .map(|v| format!(" This feature will be removed in {}.", text(v)))
                .unwrap_or_default();
            warnings.push(format!("[DEPRECATION WARNING]: {msg}.{when}"));
        }
    }
    ModuleResult {
        verdict,
        result,
        diffs,
        warnings,
    }
}

/// A warning's text: a string, or (ansible-core 2.19's warning summaries) an object whose
/// `event.msg` or `msg` holds it.
fn warning_text(w: &Value) -> String {
    let msg = w
        .pointer("/event/msg")
        .or_else(|| w.get("msg"))
        .unwrap_or(w);
    text(msg)
}

fn push_warning(obj: &mut Vars, w: String) {
    match obj.get_mut("warnings") {
        Some(Value::Array(items)) => items.push(Value::from(w)),
        _ => {
            obj.insert("warnings".into(), json!([w]));
        }
    }
}

/// The JSON object in a module's stdout: from the first line starting with `{` to the last
/// line ending with `}`; the text after it, if any, is returned as junk.
fn json_object(stdout: &str) -> Option<(Vars, Option<String>)> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|l| l.trim_start().starts_with('{'))?;
    let end = lines.iter().rposition(|l| l.trim_end().ends_with('}'))?;
    if end < start {
        return None;
    }
    let body = lines[start..=end].join("\n");
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&body) else {
        return None;
    };
    let junk = lines[end + 1..].join("\n");
    let junk = (!junk.trim().is_empty()).then_some(junk);
    Some((obj, junk))
}

/// One `diff` entry as text: strings as they are, other values as Ansible's callback shows
/// them (JSON, sorted keys, 4 spaces). `prepared` diffs have no before/after: they are
/// shown as the "after" of an empty "before".
fn text_diff(d: &Value) -> Option<TextDiff> {
    let obj = d.as_object()?;
    if let Some(prepared) = obj.get("prepared") {
        return Some(TextDiff {
            before_header: String::new(),
            after_header: String::new(),
            before: String::new(),
            after: text(prepared),
        });
    }
    if !obj.contains_key("before") && !obj.contains_key("after") {
        return None;
    }
    let side = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            let mut s = pretty_sorted(other);
            s.push('\n');
            s
        }
    };
    let header =
        |k: &str, default: &str| obj.get(k).map(text).unwrap_or_else(|| default.to_string());
    Some(TextDiff {
        before_header: header("before_header", "before"),
        after_header: header("after_header", "after"),
        before: side("before"),
        after: side("after"),
    })
}

fn pretty_sorted(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    let sorted = sort(v);
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(&sorted, &mut ser).is_err() {
        return sorted.to_string();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "true" | "1" | "on" | "y" | "t"
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str, rc: i32) -> ExecOutput {
        ExecOutput {
            rc,
            stdout: stdout.to_string(),
            stderr: "boom".to_string(),
        }
    }

    #[test]
    fn reads_the_json_among_junk() {
        let r = parse(&out(
            "motd\n{\"changed\": true, \"msg\": \"m\", \"_ansible_no_log\": false,\n \"diff\": {\"before\": \"a\\n\", \"after\": \"b\\n\", \"before_header\": \"f\"}}\ntrailing\n",
            0,
        ));
        assert_eq!(r.verdict, Verdict::Changed);
        assert!(!r.result.contains_key("_ansible_no_log"));
        assert_eq!(r.diffs.len(), 1);
        assert_eq!(r.diffs[0].before_header, "f");
        assert_eq!(r.diffs[0].after_header, "after");
        assert_eq!(r.diffs[0].after, "b\n");
        assert!(r.warnings[0].contains("junk after the JSON data: trailing"));
    }

    #[test]
    fn no_json_is_a_module_failure() {
        let r = parse(&out("Traceback ...\n", 1));
        assert_eq!(r.verdict, Verdict::Failed);
        assert!(r.result["msg"]
            .as_str()
            .unwrap()
            .starts_with("MODULE FAILURE"));
        assert_eq!(r.result["module_stderr"], json!("boom"));
        assert_eq!(r.result["rc"], json!(1));
        assert_eq!(r.result["changed"], json!(false));
    }

    #[test]
    fn failed_wins_then_skipped_then_changed() {
        let p = |s: &str| parse(&out(s, 0)).verdict;
        assert_eq!(p(r#"{"failed": true, "changed": true}"#), Verdict::Failed);
        assert_eq!(p(r#"{"skipped": true}"#), Verdict::Skipped);
        assert_eq!(p(r#"{"changed": false}"#), Verdict::Ok);
    }

    #[test]
    fn structured_diffs_and_deprecations_are_text() {
        let r = parse(&out(
            r#"{"diff": [{"before": {"b": 1, "a": 2}, "after": {}}], "deprecations": [{"msg": "old", "version": "3.0"}], "warnings": ["w"]}"#,
            0,
        ));
        assert_eq!(r.diffs[0].before, "{\n    \"a\": 2,\n    \"b\": 1\n}\n");
        assert_eq!(
            r.warnings,
            [
                "w",
                "[DEPRECATION WARNING]: old. This feature will be removed in 3.0."
            ]
        );
    }

    #[test]
    fn warning_summaries_show_their_message() {
        let summary =
            json!({"event": {"msg": "remote_tmp was created"}, "__ansible_type": "WarningSummary"});
        assert_eq!(warning_text(&summary), "remote_tmp was created");
        assert_eq!(warning_text(&json!("plain")), "plain");
    }
}
