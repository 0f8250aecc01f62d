//! Moving a resident app's task with its data (`infra move APP --to HOST`,
//! `POST /v2/apps/{id}/move?to=HOST`). The scheduler only sequences; the data goes agent
//! to agent (see src/agent/volume_mover.rs and docs/volumes.md):
//!
//! 1. pre-copy: the receiving agent is told to pull the volumes while the old task runs;
//! 2. once it reports the pre-copy done, the old task is killed (reconcile holds the app
//!    while the move is in its final phase) and, once it is gone, the receiver is told to
//!    copy what changed, compare checksums with the sender and put its copy in place;
//! 3. on success the app's resident agent becomes the receiver (a durable write) and
//!    reconcile starts the task there; only once that write is in the state is the sender
//!    told to delete its copy ([`releases_for`]); on failure (reported, or the receiver
//!    lost) the move is dropped and the app starts again where it was, on its untouched
//!    data.
//!
//! Moves live in memory only: a scheduler restart (or a new leader) drops a move in
//! progress, which is the failure case above. At every point, the agent the store names
//! as the app's resident holds a complete copy: the sender's is deleted only after the
//! store names the receiver, so a lost write or a lost leader costs at worst a stale copy
//! left on disk, never the data.

use std::time::Instant;

use serde_json::{json, Value};

use crate::api::agent::Registration;
use crate::api::appdef::AppSpec;
use crate::api::moves::{MovePhase, MoveProgress, MoveState, VolumeMove};
use crate::scheduler::clock;
use crate::scheduler::core::Scheduler;
use crate::scheduler::placement::{place, AgentSlot, Strategy};
use crate::scheduler::state::State;
use crate::scheduler::store::Change;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done { checksum: Option<String> },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct MoveRecord {
    pub from: String,
    pub to: String,
    pub phase: MovePhase,
    pub outcome: Option<Outcome>,
    pub started_at: String,
    /// When the old task was told to stop (the downtime starts).
    pub final_at: Option<String>,
    pub final_instant: Option<Instant>,
    /// How long the final phase took, old task stop to verified copy.
    pub final_millis: Option<u128>,
}

fn hostname(state: &State, agent_id: &str) -> String {
    state
        .agents
        .get(agent_id)
        .map(|a| a.record.registration.hostname.clone())
        .unwrap_or_else(|| agent_id.to_string())
}

/// The app's move if it is in progress and can still succeed (receiver alive, sender
/// still the resident).
pub fn active<'a>(state: &'a State, app_id: &str) -> Option<&'a MoveRecord> {
    let record = state.moves.get(app_id)?;
    if record.outcome.is_some() {
        return None;
    }
    let receiver_alive = state.agents.get(&record.to).is_some_and(|a| !a.record.lost);
    let still_resident = state
        .apps
        .get(app_id)
        .is_some_and(|a| a.record.resident_agents.contains(&record.from));
    (receiver_alive && still_resident).then_some(record)
}

/// Whether `registration`'s agent satisfies the app's constraints for its one instance.
fn agent_allowed(spec: &AppSpec, registration: &Registration) -> bool {
    spec.constraints.iter().all(|c| {
        c.allows(
            c.agent_value(&registration.hostname, &registration.attributes),
            None,
            0,
        )
    })
}

/// A resident one-instance app whose constraints no longer allow the agent holding its
/// volumes (and which is not moving yet): the host name of the agent to move it to.
pub fn constraint_target(state: &State, app_id: &str) -> Option<String> {
    let app = state.apps.get(app_id)?;
    if !app.spec.has_persistent_volumes() || active(state, app_id).is_some() {
        return None;
    }
    let [from] = app.record.resident_agents.as_slice() else {
        return None;
    };
    let holder = state.agents.get(from)?;
    if agent_allowed(&app.spec, &holder.record.registration) {
        return None;
    }
    let mut slots: Vec<AgentSlot> = state
        .base_slots()
        .into_iter()
        .filter(|s| &s.id != from)
        .filter(|s| {
            state
                .agents
                .get(&s.id)
                .is_some_and(|a| a.record.registration.volume_url.is_some())
        })
        .collect();
    let plan = place(&app.spec, 1, &mut slots, Strategy::Spread);
    let placed = plan.placements.first()?;
    Some(slots[placed.agent_index].hostname.clone())
}

/// Reconcile's view of a resident app that must not change while it moves or until it
/// does: a move in its pre-copy (the old task keeps running, nothing else starts), or
/// constraints that no longer allow the agent holding its volumes (the old task keeps
/// running until a move takes it away). The reason to show in the queue.
pub fn waits(state: &State, app_id: &str) -> Option<String> {
    let app = state.apps.get(app_id)?;
    if !app.spec.has_persistent_volumes() {
        return None;
    }
    if let Some(record) = active(state, app_id) {
        return (record.phase == MovePhase::Precopy).then(|| {
            format!(
                "copying its persistent volumes from {} to {} while it runs",
                hostname(state, &record.from),
                hostname(state, &record.to)
            )
        });
    }
    let [from] = app.record.resident_agents.as_slice() else {
        return None;
    };
    let holder = state.agents.get(from)?;
    if holder.record.lost || agent_allowed(&app.spec, &holder.record.registration) {
        return None;
    }
    Some(format!(
        "the constraints no longer allow agent {}, which holds its persistent volumes: \
         waiting for a move (infra move {app_id} --to HOST)",
        holder.record.registration.hostname
    ))
}

/// Reconcile's view: while a move is in its final phase the app runs nowhere; returns
/// the sending agent (whose tasks of the app are to stop) and the reason to show.
pub fn hold(state: &State, app_id: &str) -> Option<(String, String)> {
    let record = active(state, app_id).filter(|r| r.phase == MovePhase::Final)?;
    Some((
        record.from.clone(),
        format!(
            "moving its persistent volumes from {} to {}",
            hostname(state, &record.from),
            hostname(state, &record.to)
        ),
    ))
}

/// The moves `agent_id` receives, for its heartbeat answer. The final phase is sent only
/// once no task of the app is left on the sender (its data no longer changes).
pub fn assignments_for(state: &State, agent_id: &str) -> Vec<VolumeMove> {
    state
        .moves
        .keys()
        .filter_map(|app_id| {
            let record = active(state, app_id)?;
            if record.to != agent_id {
                return None;
            }
            let source = &state.agents.get(&record.from)?.record.registration;
            let old_gone = state.tasks_of(app_id).all(|t| t.agent_id != record.from);
            Some(VolumeMove {
                app_id: app_id.clone(),
                source_url: source.volume_url.clone()?,
                source_hostname: source.hostname.clone(),
                phase: if record.phase == MovePhase::Final && old_gone {
                    MovePhase::Final
                } else {
                    MovePhase::Precopy
                },
            })
        })
        .collect()
}

/// The apps whose volumes `agent_id` is to delete: it sent them in a move that finished,
/// and the app's resident agents, as committed, now name the receiver instead of it.
pub fn releases_for(state: &State, agent_id: &str) -> Vec<String> {
    state
        .moves
        .iter()
        .filter(|(_, record)| {
            record.from == agent_id && matches!(record.outcome, Some(Outcome::Done { .. }))
        })
        .filter(|(app_id, record)| {
            state.apps.get(*app_id).is_some_and(|app| {
                let residents = &app.record.resident_agents;
                residents.contains(&record.to) && !residents.iter().any(|a| a == agent_id)
            })
        })
        .map(|(app_id, _)| app_id.clone())
        .collect()
}

/// The apps of `held` (volumes an agent reports, ids without the leading `/`) that no
/// longer exist: destroyed, so their volumes go too, as in Marathon. The state is the
/// committed one and only the leader answers heartbeats, so an app being created is
/// already there before any agent can hold a volume for it.
pub fn volumes_of_destroyed_apps(state: &State, held: &[String]) -> Vec<String> {
    held.iter()
        .filter(|id| {
            let trimmed = id.trim_matches('/');
            !state.apps.contains_key(&format!("/{trimmed}")) && !state.apps.contains_key(trimmed)
        })
        .cloned()
        .collect()
}

/// Takes in what a receiving agent reported; returns the durable changes (the resident
/// agent of a finished move) and the apps to reconcile.
pub fn note_progress(
    state: &mut State,
    agent_id: &str,
    reports: &[MoveProgress],
) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    let mut apps = Vec::new();
    for report in reports {
        let Some(record) = active(state, &report.app_id) else {
            continue;
        };
        if record.to != agent_id {
            continue;
        }
        let (from, to, phase) = (record.from.clone(), record.to.clone(), record.phase);
        match (report.state, phase) {
            (MoveState::Precopied, MovePhase::Precopy) => {
                if let Some(r) = state.moves.get_mut(&report.app_id) {
                    r.phase = MovePhase::Final;
                    r.final_at = Some(clock::now_rfc3339());
                    r.final_instant = Some(Instant::now());
                }
                tracing::info!("{}: pre-copy done; stopping the old task", report.app_id);
                apps.push(report.app_id.clone());
            }
            (MoveState::Done, MovePhase::Final) => {
                if let Some(app) = state.apps.get(&report.app_id) {
                    let mut app_record = app.record.clone();
                    for agent in app_record.resident_agents.iter_mut() {
                        if *agent == from {
                            *agent = to.clone();
                        }
                    }
                    changes.push(Change::PutApp(app_record));
                }
                if let Some(r) = state.moves.get_mut(&report.app_id) {
                    r.final_millis = r.final_instant.map(|i| i.elapsed().as_millis());
                    r.outcome = Some(Outcome::Done {
                        checksum: report.detail.clone(),
                    });
                }
                tracing::info!("{}: volumes moved to {to}", report.app_id);
                apps.push(report.app_id.clone());
            }
            (MoveState::Failed, _) => {
                let why = report.detail.clone().unwrap_or_else(|| "failed".into());
                tracing::warn!("{}: the volume move failed: {why}", report.app_id);
                if let Some(r) = state.moves.get_mut(&report.app_id) {
                    r.outcome = Some(Outcome::Failed(why));
                }
                apps.push(report.app_id.clone());
            }
            _ => {}
        }
    }
    (changes, apps)
}

/// The move's status, as `GET /v2/apps/{id}/move` shows it.
pub fn status_json(state: &State, app_id: &str) -> Option<Value> {
    let record = state.moves.get(app_id)?;
    let (status, detail) = match &record.outcome {
        Some(Outcome::Done { checksum }) => ("done", checksum.clone()),
        Some(Outcome::Failed(why)) => ("failed", Some(why.clone())),
        None if active(state, app_id).is_none() => (
            "failed",
            Some(format!(
                "the receiving agent {} was lost",
                hostname(state, &record.to)
            )),
        ),
        None => match record.phase {
            MovePhase::Precopy => ("precopy", None),
            MovePhase::Final => ("final", None),
        },
    };
    Some(json!({
        "app": app_id,
        "from": hostname(state, &record.from),
        "to": hostname(state, &record.to),
        "toAgentId": record.to,
        "status": status,
        "detail": detail,
        "startedAt": record.started_at,
        "finalAt": record.final_at,
        "finalMillis": record.final_millis.map(|m| m as u64),
    }))
}

/// Why a move cannot start.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    NotFound,
    Invalid(String),
    Busy(String),
}

/// Checks a move of `app_id` to the agent named `to` and records it.
pub fn begin(state: &mut State, app_id: &str, to: &str) -> Result<Value, Refusal> {
    let app = state.apps.get(app_id).ok_or(Refusal::NotFound)?;
    if !app.spec.has_persistent_volumes() {
        return Err(Refusal::Invalid(format!(
            "{app_id} has no persistent volumes: restart it with a constraint instead"
        )));
    }
    let [from] = app.record.resident_agents.as_slice() else {
        return Err(Refusal::Invalid(format!(
            "{app_id} must have exactly one instance placed to move (it has {} resident agents)",
            app.record.resident_agents.len()
        )));
    };
    let from = from.clone();
    let target = state
        .agents
        .iter()
        .find(|(_, a)| a.record.registration.hostname == to && !a.record.lost)
        .map(|(id, a)| (id.clone(), a.record.registration.volume_url.is_some()));
    let Some((to_id, target_serves)) = target else {
        return Err(Refusal::Invalid(format!("no live agent named {to}")));
    };
    if to_id == from {
        return Err(Refusal::Invalid(format!("{app_id} is already on {to}")));
    }
    let allowed = state
        .agents
        .get(&to_id)
        .is_some_and(|a| agent_allowed(&app.spec, &a.record.registration));
    if !allowed {
        return Err(Refusal::Invalid(format!(
            "agent {to} does not satisfy the constraints of {app_id}"
        )));
    }
    if !target_serves {
        return Err(Refusal::Invalid(format!(
            "agent {to} runs without its cluster certificate (--ca, --tls-cert): it cannot pull volumes"
        )));
    }
    match state.agents.get(&from) {
        Some(a) if !a.record.lost && a.record.registration.volume_url.is_some() => {}
        Some(a) if a.record.lost => {
            return Err(Refusal::Invalid(format!(
            "agent {} holding the volumes is lost: wait for it, or `infra restart {app_id} --wipe`",
            a.record.registration.hostname
        )))
        }
        _ => {
            return Err(Refusal::Invalid(format!(
                "agent {} holding the volumes has no volume server (no cluster certificate)",
                hostname(state, &from)
            )))
        }
    }
    if active(state, app_id).is_some() {
        return Err(Refusal::Busy(format!("{app_id} is already moving")));
    }
    state.moves.insert(
        app_id.to_string(),
        MoveRecord {
            from,
            to: to_id,
            phase: MovePhase::Precopy,
            outcome: None,
            started_at: clock::now_rfc3339(),
            final_at: None,
            final_instant: None,
            final_millis: None,
        },
    );
    tracing::info!("{app_id}: moving to {to}");
    Ok(status_json(state, app_id).unwrap_or(Value::Null))
}

impl Scheduler {
    /// `POST /v2/apps/{id}/move?to=HOST`. In memory, but the leader's only: it answers
    /// from the state the writes go through.
    pub async fn start_move(
        &self,
        app_id: &str,
        to: &str,
    ) -> anyhow::Result<Result<Value, Refusal>> {
        let writer = self.begin_write().await?;
        let result = begin(&mut self.lock(), app_id, to);
        drop(writer);
        self.enqueue(app_id);
        Ok(result)
    }

    /// After an app write: a resident app whose new constraints no longer allow the agent
    /// holding its volumes moves (with its data) to an agent they allow.
    pub async fn follow_constraints(&self, app_ids: &[String]) {
        for app_id in app_ids {
            let Some(to) = constraint_target(&self.lock(), app_id) else {
                continue;
            };
            match self.start_move(app_id, &to).await {
                Ok(Ok(_)) => tracing::info!("{app_id}: its constraints moved it to {to}"),
                Ok(Err(refusal)) => tracing::warn!("{app_id}: cannot move to {to}: {refusal:?}"),
                Err(err) => tracing::warn!("{app_id}: cannot move to {to}: {err:#}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::reconcile::tests::state_with;
    use serde_json::json;

    /// `/db` resident on `a`, moving to `b`, the receiver's copy verified.
    fn verified_move() -> State {
        let mut state = state_with(
            json!({"id": "/db", "cmd": "x", "instances": 1, "cpus": 0.1, "mem": 16,
                   "container": {"type": "MESOS", "volumes": [
                       {"containerPath": "data", "mode": "RW", "persistent": {"size": 8}}]}}),
            &["a", "b"],
        );
        let mut record = state.apps["/db"].record.clone();
        record.resident_agents = vec!["a".into()];
        state.apply(Change::PutApp(record)).unwrap();
        state.moves.insert(
            "/db".into(),
            MoveRecord {
                from: "a".into(),
                to: "b".into(),
                phase: MovePhase::Final,
                outcome: None,
                started_at: String::new(),
                final_at: None,
                final_instant: None,
                final_millis: None,
            },
        );
        state
    }

    fn done(state: &mut State) -> Vec<Change> {
        let report = MoveProgress {
            app_id: "/db".into(),
            state: MoveState::Done,
            detail: Some("sum".into()),
        };
        let (changes, _) = note_progress(state, "b", &[report]);
        changes
    }

    #[test]
    fn the_sender_deletes_its_copy_only_once_the_new_agent_is_committed() {
        let mut state = verified_move();
        assert!(releases_for(&state, "a").is_empty(), "released mid-move");
        let changes = done(&mut state);
        // Decided, not yet committed: the store still names the sender as the resident
        // (a write that fails here must not cost the data).
        assert!(
            releases_for(&state, "a").is_empty(),
            "released before the commit"
        );
        for change in changes {
            state.apply(change).unwrap();
        }
        assert_eq!(
            state.apps["/db"].record.resident_agents,
            vec!["b".to_string()]
        );
        assert_eq!(releases_for(&state, "a"), vec!["/db".to_string()]);
        assert!(
            releases_for(&state, "b").is_empty(),
            "the receiver keeps its copy"
        );
    }

    #[test]
    fn a_move_back_to_the_sender_cancels_its_release() {
        let mut state = verified_move();
        for change in done(&mut state) {
            state.apply(change).unwrap();
        }
        // Moved back before `a` heard of the release: `a` is a resident again.
        let mut record = state.apps["/db"].record.clone();
        record.resident_agents = vec!["a".into()];
        state.apply(Change::PutApp(record)).unwrap();
        assert!(releases_for(&state, "a").is_empty());
    }
}
