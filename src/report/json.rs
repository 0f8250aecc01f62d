//! `--output json`: one JSON document at the end, shaped like Ansible's json callback:
//! `{"plays": [{"play": {..}, "tasks": [{"task": {..}, "hosts": {"h1": result}}]}],
//!   "stats": {"h1": {"ok": .., ...}}}`. Results arrive already censored under no_log.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::Recap;
use super::{HostEvent, Reporter, SharedWriter, Status, TaskInfo};

#[derive(Default)]
struct Doc {
    plays: Vec<PlayDoc>,
    warnings: Vec<String>,
}

struct PlayDoc {
    name: String,
    hosts: Vec<String>,
    tasks: Vec<TaskDoc>,
}

struct TaskDoc {
    id: usize,
    name: String,
    handler: bool,
    hosts: Map<String, Value>,
}

/// Collects everything and prints one document at the recap.
pub struct Json {
    out: SharedWriter,
    doc: Mutex<Doc>,
}

impl Json {
    pub fn new(out: SharedWriter) -> Self {
        Json {
            out,
            doc: Mutex::new(Doc::default()),
        }
    }

    /// The document so far (the recap's stats included when given).
    fn document(&self, recap: Option<&Recap>) -> Value {
        let Ok(doc) = self.doc.lock() else {
            return Value::Null;
        };
        let plays: Vec<Value> = doc
            .plays
            .iter()
            .map(|p| {
                let tasks: Vec<Value> = p
                    .tasks
                    .iter()
                    .map(|t| {
                        json!({
                            "task": {"name": t.name, "handler": t.handler},
                            "hosts": t.hosts,
                        })
                    })
                    .collect();
                json!({"play": {"name": p.name, "hosts": p.hosts}, "tasks": tasks})
            })
            .collect();
        let stats = recap
            .map(|r| serde_json::to_value(&r.hosts).unwrap_or(Value::Null))
            .unwrap_or_else(|| json!({}));
        json!({"plays": plays, "stats": stats, "warnings": doc.warnings})
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Changed => "changed",
        Status::Skipped => "skipped",
        Status::Failed => "failed",
        Status::Unreachable => "unreachable",
        Status::Rescued => "rescued",
        Status::Ignored => "ignored",
    }
}

impl Reporter for Json {
    fn play_start(&self, name: &str, hosts: &[String], _tasks: usize) {
        if let Ok(mut doc) = self.doc.lock() {
            doc.plays.push(PlayDoc {
                name: name.to_string(),
                hosts: hosts.to_vec(),
                tasks: Vec::new(),
            });
        }
    }

    fn task_start(&self, task: &TaskInfo, _hosts: &[String]) {
        let Ok(mut doc) = self.doc.lock() else { return };
        let Some(play) = doc.plays.last_mut() else {
            return;
        };
        if play.tasks.iter().any(|t| t.id == task.id) {
            return;
        }
        play.tasks.push(TaskDoc {
            id: task.id,
            name: task.name.clone(),
            handler: task.handler,
            hosts: Map::new(),
        });
    }

    fn host_result(&self, task: &TaskInfo, ev: &HostEvent) {
        if ev.item.is_some() {
            // Items are part of the loop summary's `results`.
            return;
        }
        let Ok(mut doc) = self.doc.lock() else { return };
        let Some(play) = doc.plays.last_mut() else {
            return;
        };
        let Some(entry) = play.tasks.iter_mut().find(|t| t.id == task.id) else {
            return;
        };
        let mut result = match &ev.result {
            Value::Object(m) => m.clone(),
            other => {
                let mut m = Map::new();
                m.insert("result".into(), other.clone());
                m
            }
        };
        result.insert("status".into(), Value::from(status_word(ev.status)));
        result.insert("action".into(), Value::from(ev.action.clone()));
        if let Some(d) = &ev.delegated {
            result.insert("delegated_to".into(), Value::from(d.clone()));
        }
        if !ev.changes.is_empty() {
            result.insert("changes".into(), json!(ev.changes));
        }
        if !ev.diffs.is_empty() {
            result.insert(
                "diff".into(),
                serde_json::to_value(&ev.diffs).unwrap_or(Value::Null),
            );
        }
        entry.hosts.insert(ev.host.clone(), Value::Object(result));
    }

    fn retry(&self, _task: &TaskInfo, _host: &str, _retries_left: u32) {}

    fn warning(&self, msg: &str) {
        if let Ok(mut doc) = self.doc.lock() {
            doc.warnings.push(msg.to_string());
        }
    }

    fn recap(&self, recap: &Recap) {
        let doc = self.document(Some(recap));
        let text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::HostStats;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_document_with_plays_tasks_hosts_and_stats() {
        let buf = Buf::default();
        let j = Json::new(super::super::shared(Box::new(buf.clone())));
        j.play_start("p", &["h1".into()], 1);
        let t = TaskInfo {
            id: 7,
            name: "t".into(),
            handler: false,
        };
        j.task_start(&t, &["h1".into()]);
        j.host_result(
            &t,
            &HostEvent {
                host: "h1".into(),
                delegated: None,
                status: Status::Changed,
                item: None,
                loop_summary: false,
                action: "copy".into(),
                result: json!({"changed": true}),
                changes: vec!["write /x".into()],
                diffs: vec![],
            },
        );
        let mut recap = Recap::default();
        recap.hosts.insert(
            "h1".into(),
            HostStats {
                ok: 1,
                changed: 1,
                ..Default::default()
            },
        );
        j.recap(&recap);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["plays"][0]["play"]["name"], "p");
        assert_eq!(
            v["plays"][0]["tasks"][0]["hosts"]["h1"]["status"],
            "changed"
        );
        assert_eq!(v["stats"]["h1"]["changed"], 1);
    }
}
