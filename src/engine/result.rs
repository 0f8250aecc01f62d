//! Ansible's result dicts: what `register` stores and what output shows. One task (or loop
//! item) gives an [`Outcome`]; a loop's items are aggregated into `results` with Ansible's
//! `changed`/`failed`/`skipped`/`msg` on top; `no_log` results are censored for display.

use serde_json::{json, Value};

use crate::report::TextDiff;
use crate::report::{Status, CENSORED};
use crate::Vars;

/// The result of a task, or of one item of a loop, on one host.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// The result dict (`changed`, `failed`, `msg`, `rc`, `stdout`, ...).
    pub result: Vars,
    pub changes: Vec<String>,
    pub diffs: Vec<TextDiff>,
}

impl Outcome {
    pub fn new(status: Status, mut result: Vars) -> Outcome {
        let changed = status == Status::Changed;
        result.entry("changed").or_insert(Value::Bool(changed));
        match status {
            Status::Failed => {
                result.insert("failed".into(), Value::Bool(true));
            }
            Status::Skipped => {
                result.insert("skipped".into(), Value::Bool(true));
            }
            Status::Unreachable => {
                result.insert("unreachable".into(), Value::Bool(true));
            }
            _ => {
                result.entry("failed").or_insert(Value::Bool(false));
            }
        }
        Outcome {
            status,
            result,
            changes: Vec::new(),
            diffs: Vec::new(),
        }
    }

    pub fn failed(msg: impl Into<String>) -> Outcome {
        let mut r = Vars::new();
        r.insert("msg".into(), Value::from(msg.into()));
        Outcome::new(Status::Failed, r)
    }

    pub fn unreachable(msg: impl Into<String>) -> Outcome {
        let mut r = Vars::new();
        r.insert("msg".into(), Value::from(msg.into()));
        Outcome::new(Status::Unreachable, r)
    }

    pub fn skipped_msg(msg: &str) -> Outcome {
        let mut r = Vars::new();
        r.insert("msg".into(), Value::from(msg));
        Outcome::new(Status::Skipped, r)
    }

    /// A `when` that did not hold.
    pub fn skipped_condition(condition: &str) -> Outcome {
        let mut r = Vars::new();
        r.insert("false_condition".into(), Value::from(condition));
        r.insert(
            "skip_reason".into(),
            Value::from("Conditional result was False"),
        );
        Outcome::new(Status::Skipped, r)
    }

    pub fn is_changed(&self) -> bool {
        self.result.get("changed") == Some(&Value::Bool(true))
    }
}

/// Aggregates a loop's item outcomes into the task's outcome, like Ansible: `results` holds
/// every item's dict; changed if one changed, failed if one failed, skipped if all skipped.
pub fn aggregate_loop(items: Vec<Outcome>) -> Outcome {
    let any = |s: Status| items.iter().any(|o| o.status == s);
    let unreachable = any(Status::Unreachable);
    let failed = any(Status::Failed);
    let changed = items.iter().any(|o| o.is_changed());
    let all_skipped = !items.is_empty() && items.iter().all(|o| o.status == Status::Skipped);
    let mut changes = Vec::new();
    let mut diffs = Vec::new();
    let results: Vec<Value> = items
        .into_iter()
        .map(|o| {
            changes.extend(o.changes);
            diffs.extend(o.diffs);
            Value::Object(o.result)
        })
        .collect();
    let mut r = Vars::new();
    r.insert("changed".into(), Value::Bool(changed));
    let status = if unreachable {
        r.insert("msg".into(), json!("One or more items were unreachable"));
        Status::Unreachable
    } else if failed {
        r.insert("msg".into(), json!("One or more items failed"));
        Status::Failed
    } else if all_skipped {
        r.insert("msg".into(), json!("All items skipped"));
        Status::Skipped
    } else {
        r.insert("msg".into(), json!("All items completed"));
        if changed {
            Status::Changed
        } else {
            Status::Ok
        }
    };
    r.insert("results".into(), Value::Array(results));
    let mut out = Outcome::new(status, r);
    if status == Status::Failed {
        out.result.insert("failed".into(), Value::Bool(true));
    }
    out.changes = changes;
    out.diffs = diffs;
    out
}

/// What output shows of a `no_log` result.
pub fn censor(result: &Vars) -> Value {
    let changed = result.get("changed").cloned().unwrap_or(Value::Bool(false));
    json!({"censored": CENSORED, "changed": changed})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: Status, item: &str) -> Outcome {
        let mut r = Vars::new();
        r.insert("item".into(), json!(item));
        Outcome::new(status, r)
    }

    #[test]
    fn loop_of_mixed_items() {
        let out = aggregate_loop(vec![item(Status::Ok, "a"), item(Status::Changed, "b")]);
        assert_eq!(out.status, Status::Changed);
        assert_eq!(out.result["changed"], json!(true));
        assert_eq!(out.result["failed"], json!(false));
        assert_eq!(out.result["msg"], json!("All items completed"));
        let results = out.result["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1]["item"], json!("b"));
        assert_eq!(results[1]["changed"], json!(true));
        assert_eq!(results[0]["changed"], json!(false));
    }

    #[test]
    fn one_failed_item_fails_the_task() {
        let out = aggregate_loop(vec![item(Status::Ok, "a"), item(Status::Failed, "b")]);
        assert_eq!(out.status, Status::Failed);
        assert_eq!(out.result["failed"], json!(true));
        assert_eq!(out.result["results"][1]["failed"], json!(true));
    }

    #[test]
    fn all_skipped_is_skipped() {
        let out = aggregate_loop(vec![item(Status::Skipped, "a")]);
        assert_eq!(out.status, Status::Skipped);
        assert_eq!(out.result["skipped"], json!(true));
        assert_eq!(out.result["results"][0]["skipped"], json!(true));
    }

    #[test]
    fn censored_keeps_only_changed() {
        let mut r = Vars::new();
        r.insert("changed".into(), json!(true));
        r.insert("secret".into(), json!("hunter2"));
        let c = censor(&r);
        assert_eq!(c["changed"], json!(true));
        assert!(!c.to_string().contains("hunter2"));
    }

    #[test]
    fn skipped_by_condition_shape() {
        let o = Outcome::skipped_condition("x == 1");
        assert_eq!(o.result["skipped"], json!(true));
        assert_eq!(o.result["changed"], json!(false));
        assert_eq!(o.result["false_condition"], json!("x == 1"));
    }
}
