//! The event bus behind `GET /v2/events`: every event is a Marathon-shaped JSON object
//! (`eventType`, `timestamp`, fields) broadcast to all attached streams.

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::scheduler::clock::now_rfc3339;

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Value>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (sender, _) = broadcast::channel(4096);
        EventBus { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.sender.subscribe()
    }

    /// Publishes an event; `fields` is an object of the event's own fields.
    pub fn publish(&self, event_type: &str, fields: Value) {
        self.send(event(event_type, fields));
    }

    /// Publishes an event already shaped (from [`event`], or from the leader's commit seen
    /// by a follower's watch).
    pub fn send(&self, event: Value) {
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }
}

/// A Marathon event: `eventType`, `timestamp`, then the event's own fields.
pub fn event(event_type: &str, fields: Value) -> Value {
    let mut event = Map::new();
    event.insert("eventType".into(), Value::String(event_type.to_string()));
    event.insert("timestamp".into(), Value::String(now_rfc3339()));
    if let Value::Object(extra) = fields {
        event.extend(extra);
    }
    Value::Object(event)
}

/// Events collected while the state lock is held, published with the commit they go with
/// (see [`crate::scheduler::core::Scheduler::commit`]).
#[derive(Default, Debug)]
pub struct Pending {
    pub events: Vec<(String, Value)>,
}

impl Pending {
    pub fn push(&mut self, event_type: &str, fields: Value) {
        self.events.push((event_type.to_string(), fields));
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events as published, timestamped now.
    pub fn into_events(self) -> Vec<Value> {
        self.events
            .into_iter()
            .map(|(kind, fields)| event(&kind, fields))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::sync::broadcast::error::TryRecvError;

    /// A subscriber that never reads (an event-stream client that stopped reading) never
    /// holds up publishing: it loses the oldest events and reads on from the newest.
    #[test]
    fn a_subscriber_that_never_reads_lags_and_never_blocks() {
        let bus = EventBus::new();
        let mut stuck = bus.subscribe();
        let mut reader = bus.subscribe();
        let started = std::time::Instant::now();
        for i in 0..10_000 {
            bus.publish("api_post_event", json!({"n": i}));
            if i % 2 == 0 {
                while reader.try_recv().is_ok() {}
            }
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        match stuck.try_recv() {
            Err(TryRecvError::Lagged(skipped)) => assert_eq!(skipped, 10_000 - 4096),
            other => panic!("expected a lag, got {other:?}"),
        }
        let next = stuck.try_recv().expect("reads on after the lag");
        assert_eq!(next["n"], json!(10_000 - 4096));
        while reader.try_recv().is_ok() {}
        bus.publish("last", json!({}));
        assert_eq!(reader.try_recv().expect("the reader")["eventType"], "last");
    }
}
