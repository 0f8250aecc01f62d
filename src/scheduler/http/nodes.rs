//! `GET /v2/infra/agents`: the agents as the web UI's Nodes page shows them (Marathon has
//! no such endpoint; Mesos had `/slaves`). Read-only: each agent's registration (hostname,
//! address, attributes such as datacenter and rack), what it offers, what its tasks use,
//! its tasks, whether it is lost and how long ago it was heard from. Also
//! `GET /v2/infra/control-nodes`: the schedulers and which one leads.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Shared;

/// Resources used on one agent, summed over the tasks placed on it.
#[derive(Default)]
struct Used {
    cpus: f64,
    mem: f64,
    disk: f64,
    ports: usize,
    tasks: Vec<String>,
}

pub async fn agents(State(s): State<Shared>) -> Response {
    let state = s.lock();
    let mut used: BTreeMap<&str, Used> = BTreeMap::new();
    for task in state.tasks.values() {
        let u = used.entry(task.agent_id.as_str()).or_default();
        u.cpus += task.spec.cpus;
        u.mem += task.spec.mem;
        u.disk += task.spec.disk;
        u.ports += task.spec.host_ports.len();
        u.tasks.push(task.id.clone());
    }
    let list: Vec<Value> = state
        .agents
        .iter()
        .map(|(id, entry)| {
            let r = &entry.record.registration;
            let u = used.remove(id.as_str()).unwrap_or_default();
            let (low, high) = r.port_range;
            json!({
                "id": id,
                "hostname": r.hostname,
                "address": r.address,
                "attributes": r.attributes,
                "docker": r.docker,
                "version": r.version,
                "lost": entry.record.lost,
                "lastSeenSecondsAgo": entry.last_seen.elapsed().as_secs_f64(),
                "offered": {
                    "cpus": r.cpus, "mem": r.mem, "disk": r.disk,
                    "ports": u32::from(high.saturating_sub(low)) + 1,
                    "portRange": [low, high],
                },
                "used": {
                    "cpus": u.cpus, "mem": u.mem, "disk": u.disk,
                    "ports": u.ports + entry.busy_ports.len(),
                },
                "tasks": u.tasks,
            })
        })
        .collect();
    Json(json!({"agents": list})).into_response()
}

/// `GET /v2/infra/control-nodes`: every control node in the election (oldest candidate
/// first) and which one leads, from this node's view of the candidates (any node answers).
pub async fn control_nodes(State(s): State<Shared>) -> Response {
    let nodes: Vec<Value> = s
        .leadership
        .control_nodes()
        .into_iter()
        .map(|node| {
            json!({
                "url": node.url,
                "hostPort": super::info::host_port(&node.url),
                "leader": node.leads,
                "self": node.url == s.leadership.advertise,
            })
        })
        .collect();
    Json(json!({"controlNodes": nodes})).into_response()
}
