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
