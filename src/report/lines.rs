//! Ansible's default stdout: `PLAY [..]` and `TASK [..]` banners, one line per host result
//! (`ok: [h1]`, `changed: [h1] => (item=x)`, `fatal: [h1]: FAILED! => {...}`), diffs under
//! the task, and the PLAY RECAP. Used in CI and whenever stdout is not a TTY.

use std::io::Write;
use std::sync::Mutex;

use serde_json::Value;

use super::Recap;
use super::{banner, diff, paint, recap, status_color, HostEvent, Reporter, SharedWriter};
use super::{Color, Status, TaskInfo};

/// Line output; see the module doc.
pub struct Lines {
    out: SharedWriter,
    color: bool,
    verbosity: u8,
    /// The id of the last task banner printed (free strategy announces tasks per host).
    last_task: Mutex<Option<usize>>,
}

impl Lines {
    pub fn new(out: SharedWriter, color: bool, verbosity: u8) -> Self {
        Lines {
            out,
            color,
            verbosity,
            last_task: Mutex::new(None),
        }
    }

    fn write(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            // Output errors (a closed pipe) must not stop the run.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Formats one host result as Ansible's default callback does (without the diff).
pub fn format_event(ev: &HostEvent, color: bool, verbosity: u8) -> Option<String> {
    let host = match &ev.delegated {
        Some(d) => format!("{} -> {}", ev.host, d),
        None => ev.host.clone(),
    };
    // include_tasks / include_role; `include_vars` reports like any action.
    if matches!(ev.action.as_str(), "include_tasks" | "include_role") && ev.status == Status::Ok {
        let target = ev
            .result
            .get("include")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut line = format!("included: {target} for {host}");
        if let Some(item) = ev.result.get("item") {
            line.push_str(&format!(" => (item={})", super::label::compact_label(item)));
        }
        return Some(paint(&line, Color::Cyan, color));
    }
    let shown = display_result(ev);
    let show_result = ev.action == "debug" || verbosity > 0;
    let item = ev.item.as_deref();
    let mut text = match (ev.status, ev.loop_summary) {
        // Items were printed one by one; the summary adds nothing but `...ignoring`.
        (Status::Ignored, true) => return Some(paint("...ignoring", Color::Cyan, color)),
        (_, true) => return None,
        (Status::Ok | Status::Changed | Status::Rescued, false) => {
            let word = if ev.status == Status::Changed {
                "changed"
            } else {
                "ok"
            };
            let mut line = format!("{word}: [{host}]");
            if let Some(item) = item {
                line.push_str(&format!(" => (item={item})"));
                if show_result {
                    line.push_str(&format!(" => {}", pretty(&shown)));
                }
            } else if show_result {
                line.push_str(&format!(" => {}", pretty(&shown)));
            }
            paint(&line, status_color(ev.status), color)
        }
        (Status::Skipped, false) => {
            let mut line = format!("skipping: [{host}]");
            if let Some(item) = item {
                line.push_str(&format!(" => (item={item})"));
            }
            if verbosity > 0 {
                line.push_str(&format!(" => {}", compact(&shown)));
            }
            paint(&line, Color::Cyan, color)
        }
        (Status::Failed | Status::Ignored, false) => {
            let line = match item {
                Some(item) => format!("failed: [{host}] (item={item}) => {}", compact(&shown)),
                None => format!("fatal: [{host}]: FAILED! => {}", compact(&shown)),
            };
            let mut line = paint(&line, Color::Red, color);
            if ev.status == Status::Ignored && item.is_none() {
                line.push('\n');
                line.push_str(&paint("...ignoring", Color::Cyan, color));
            }
            line
        }
        (Status::Unreachable, false) => paint(
            &format!("fatal: [{host}]: UNREACHABLE! => {}", compact(&shown)),
            Color::Red,
            color,
        ),
    };
    if verbosity > 0 && !ev.changes.is_empty() && item.is_none() {
        for change in &ev.changes {
            text.push_str(&format!("\n  - {change}"));
        }
    }
    Some(text)
}

/// The result as Ansible's callback shows it: keys sorted, `failed` left out, and for
/// debug `changed` too, and everything but the message when there is one (a loop item's
/// `item` and `ansible_loop_var` among them).
fn display_result(ev: &HostEvent) -> Value {
    let Value::Object(map) = &ev.result else {
        return ev.result.clone();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let debug = ev.action == "debug";
    let debug_msg_only = debug && map.contains_key("msg");
    let mut out = serde_json::Map::new();
    for k in keys {
        if k == "failed" || (k == "changed" && debug) {
            continue;
        }
        if debug_msg_only
            && !matches!(
                k.as_str(),
                "msg" | "exception" | "warnings" | "deprecations"
            )
            && !k.starts_with('_')
        {
            continue;
        }
        out.insert(k.clone(), map[k].clone());
    }
    Value::Object(out)
}

/// JSON on one line with Ansible's `", "` and `": "` separators.
pub fn compact(value: &Value) -> String {
    let mut out = String::new();
    write_compact(value, &mut out);
    out
}

fn write_compact(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_compact(v, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// JSON indented by four spaces, like Ansible's debug output.
pub fn pretty(value: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return compact(value);
    }
    String::from_utf8(buf).unwrap_or_else(|_| compact(value))
}

impl Reporter for Lines {
    fn play_start(&self, name: &str, _hosts: &[String], _tasks: usize) {
        if let Ok(mut last) = self.last_task.lock() {
            *last = None;
        }
        self.write(&format!("\n{}\n", banner(&format!("PLAY [{name}]"))));
    }

    fn task_start(&self, task: &TaskInfo, _hosts: &[String]) {
        if let Ok(mut last) = self.last_task.lock() {
            if *last == Some(task.id) {
                return;
            }
            *last = Some(task.id);
        }
        let kind = if task.handler {
            "RUNNING HANDLER"
        } else {
            "TASK"
        };
        self.write(&format!(
            "\n{}\n",
            banner(&format!("{kind} [{}]", task.name))
        ));
    }

    fn host_result(&self, _task: &TaskInfo, ev: &HostEvent) {
        let mut text = String::new();
        for d in &ev.diffs {
            text.push_str(&diff::unified(d, self.color));
        }
        if let Some(line) = format_event(ev, self.color, self.verbosity) {
            text.push_str(&line);
            text.push('\n');
        }
        if !text.is_empty() {
            self.write(&text);
        }
    }

    fn retry(&self, task: &TaskInfo, host: &str, retries_left: u32) {
        self.write(&format!(
            "{}\n",
            paint(
                &format!(
                    "FAILED - RETRYING: [{host}]: {} ({retries_left} retries left).",
                    task.name
                ),
                Color::Red,
                self.color
            )
        ));
    }

    fn warning(&self, msg: &str) {
        self.write(&format!(
            "{}\n",
            paint(&format!("[WARNING]: {msg}"), Color::Magenta, self.color)
        ));
    }

    fn recap(&self, recap: &Recap) {
        self.write(&recap::format_recap(recap, self.color));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(status: Status, item: Option<&str>, result: Value) -> HostEvent {
        HostEvent {
            host: "h1".into(),
            delegated: None,
            status,
            item: item.map(String::from),
            loop_summary: false,
            action: "copy".into(),
            result,
            changes: vec![],
            diffs: vec![],
        }
    }

    #[test]
    fn statuses_look_like_ansible() {
        let f = |e: &HostEvent| format_event(e, false, 0).unwrap();
        assert_eq!(f(&ev(Status::Ok, None, json!({}))), "ok: [h1]");
        assert_eq!(
            f(&ev(Status::Changed, Some("x"), json!({}))),
            "changed: [h1] => (item=x)"
        );
        assert_eq!(f(&ev(Status::Skipped, None, json!({}))), "skipping: [h1]");
        assert_eq!(
            f(&ev(
                Status::Failed,
                None,
                json!({"changed": false, "msg": "boom"})
            )),
            "fatal: [h1]: FAILED! => {\"changed\": false, \"msg\": \"boom\"}"
        );
        assert_eq!(
            f(&ev(Status::Ignored, None, json!({"msg": "boom"}))),
            "fatal: [h1]: FAILED! => {\"msg\": \"boom\"}\n...ignoring"
        );
        assert_eq!(
            f(&ev(Status::Unreachable, None, json!({"unreachable": true}))),
            "fatal: [h1]: UNREACHABLE! => {\"unreachable\": true}"
        );
    }

    #[test]
    fn debug_results_are_pretty_printed() {
        let mut e = ev(Status::Ok, None, json!({"msg": "hello"}));
        e.action = "debug".into();
        assert_eq!(
            format_event(&e, false, 0).unwrap(),
            "ok: [h1] => {\n    \"msg\": \"hello\"\n}"
        );
    }

    #[test]
    fn loop_summary_prints_only_ignoring() {
        let mut e = ev(Status::Changed, None, json!({}));
        e.loop_summary = true;
        assert_eq!(format_event(&e, false, 0), None);
        e.status = Status::Ignored;
        assert_eq!(format_event(&e, false, 0).unwrap(), "...ignoring");
    }

    #[test]
    fn delegated_host_is_shown() {
        let mut e = ev(Status::Ok, None, json!({}));
        e.delegated = Some("localhost".into());
        assert_eq!(format_event(&e, false, 0).unwrap(), "ok: [h1 -> localhost]");
    }
}
