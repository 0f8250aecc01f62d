//! A minimal server-sent events parser for the scheduler's `GET /v2/events`: bytes in,
//! `(event type, data)` pairs out. Comments (`: keep-alive`) count as activity only.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or (Marathon puts it in the data too) `eventType` of the data.
    pub kind: String,
    pub data: String,
}

/// Accumulates chunks and yields complete events.
#[derive(Default)]
pub struct SseParser {
    buffer: String,
    kind: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    out.push(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.kind = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let kind = std::mem::take(&mut self.kind);
        let data = std::mem::take(&mut self.data);
        if data.is_empty() && kind.is_empty() {
            return None;
        }
        let data = data.join("\n");
        let kind = if kind.is_empty() {
            serde_json::from_str::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| v.get("eventType")?.as_str().map(str::to_string))
                .unwrap_or_default()
        } else {
            kind
        };
        Some(SseEvent { kind, data })
    }
}

/// Events after which the set of apps or of healthy tasks may have changed.
pub fn is_relevant(kind: &str) -> bool {
    matches!(
        kind,
        "status_update_event"
            | "health_status_changed_event"
            | "instance_health_changed_event"
            | "failed_health_check_event"
            | "deployment_success"
            | "deployment_failed"
            | "deployment_step_success"
            | "app_terminated_event"
            | "api_post_event"
            | "instance_changed_event"
            | "unhealthy_task_kill_event"
            | "unhealthy_instance_kill_event"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nevent: status_upd").is_empty());
        let events = p.feed(b"ate_event\ndata: {\"a\":1}\r\n\r\ndata: {\"eventType\":\"x\"}\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    kind: "status_update_event".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    kind: "x".into(),
                    data: "{\"eventType\":\"x\"}".into()
                },
            ]
        );
    }

    #[test]
    fn relevance() {
        assert!(is_relevant("status_update_event"));
        assert!(is_relevant("deployment_success"));
        assert!(!is_relevant("event_stream_attached"));
    }
}
