//! Placement of resident apps (apps with local persistent volumes, Marathon's "residency"):
//! the data of an instance lives on the agent it first ran on, so every later task of that
//! instance goes back there. The app record keeps the agents that hold its volumes
//! (`resident_agents`, one per instance, durable); placement pins each missing instance to
//! a resident agent without a live task, and only instances beyond the residents get a new
//! agent (one instance per agent: an agent keeps one copy of an app's volumes).
//!
//! A resident agent that is lost is waited for (the task stays in the launch queue with
//! the reason); `infra restart APP --wipe` forgets the residents to start afresh.

use std::collections::BTreeSet;

use crate::scheduler::placement::{place, AgentSlot, Placement, PlanResult, Strategy};
use crate::scheduler::state::{AppEntry, State};

/// The result of placing instances of a resident app.
#[derive(Debug, Default)]
pub struct ResidentPlan {
    pub plan: PlanResult,
    /// The new resident list when it grew (to commit with the tasks).
    pub residents: Option<Vec<String>>,
}

/// Places `count` instances of `app` (which has persistent volumes).
pub fn place_resident(
    state: &State,
    app: &AppEntry,
    count: usize,
    slots: &mut [AgentSlot],
    strategy: Strategy,
) -> ResidentPlan {
    let app_id = app.spec.app.id.as_str();
    let occupied: BTreeSet<&str> = state
        .tasks_of(app_id)
        .filter(|t| !t.killing)
        .map(|t| t.agent_id.as_str())
        .collect();
    // A killed task still holds its volume on the agent until it stops.
    let stopping: BTreeSet<&str> = state
        .tasks_of(app_id)
        .filter(|t| t.killing)
        .map(|t| t.agent_id.as_str())
        .collect();
    let mut residents = app.record.resident_agents.clone();
    let mut out = ResidentPlan::default();
    let mut reasons = Vec::new();
    let wanted = app.spec.app.instances as usize;
    let mut left = count;
    for agent_id in residents
        .iter()
        .take(wanted)
        .filter(|a| !occupied.contains(a.as_str()))
    {
        if left == 0 {
            break;
        }
        left -= 1;
        let name = state
            .agents
            .get(agent_id)
            .map(|a| a.record.registration.hostname.clone())
            .unwrap_or_else(|| agent_id.clone());
        if stopping.contains(agent_id.as_str()) {
            reasons.push(format!("waiting for the old task on {name} to stop"));
            continue;
        }
        let Some(index) = slots.iter().position(|s| &s.id == agent_id) else {
            reasons.push(format!(
                "waiting for agent {name}, which holds the app's persistent volumes"
            ));
            continue;
        };
        let plan = place(&app.spec, 1, &mut slots[index..=index], strategy);
        match plan.placements.into_iter().next() {
            Some(p) => out.plan.placements.push(Placement {
                agent_index: index,
                host_ports: p.host_ports,
            }),
            None => reasons.push(format!(
                "agent {name} holds the app's persistent volumes but cannot run it: {}",
                plan.reason.unwrap_or_default()
            )),
        }
    }
    // Instances that have no resident agent yet: a fresh agent each.
    let mut grew = false;
    while left > 0 && residents.len() < wanted {
        left -= 1;
        let taken: BTreeSet<String> = residents.iter().cloned().collect();
        let mut candidates: Vec<(usize, AgentSlot)> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !taken.contains(&s.id) && !occupied.contains(s.id.as_str()))
            .map(|(i, s)| (i, s.clone()))
            .collect();
        let mut view: Vec<AgentSlot> = candidates.iter().map(|(_, s)| s.clone()).collect();
        let plan = place(&app.spec, 1, &mut view, strategy);
        let Some(p) = plan.placements.into_iter().next() else {
            reasons.push(match plan.reason {
                Some(r) if !view.is_empty() => r,
                _ => "no agent without a copy of the app's persistent volumes".to_string(),
            });
            break;
        };
        let (index, slot) = &mut candidates[p.agent_index];
        *slot = view[p.agent_index].clone();
        slots[*index] = slot.clone();
        residents.push(slot.id.clone());
        grew = true;
        out.plan.placements.push(Placement {
            agent_index: *index,
            host_ports: p.host_ports,
        });
    }
    if out.plan.placements.len() < count && reasons.is_empty() {
        reasons.push("every agent holding the app's persistent volumes runs a task".into());
    }
    if !reasons.is_empty() {
        out.plan.reason = Some(reasons.join("; "));
    }
    if grew {
        out.residents = Some(residents);
    }
    out
}

impl crate::scheduler::core::Scheduler {
    /// `POST /v2/apps/{id}/restart?wipe=true`: forgets the agents holding the app's
    /// persistent volumes, so the restart starts its tasks afresh wherever they fit (the
    /// way out when a resident agent is gone for good).
    pub async fn forget_residents(&self, app_id: &str) -> anyhow::Result<bool> {
        let writer = self.begin_write().await?;
        let record = {
            let state = self.lock();
            let Some(app) = state.apps.get(app_id) else {
                return Ok(false);
            };
            let mut record = app.record.clone();
            record.resident_agents.clear();
            record
        };
        self.commit(
            &writer,
            vec![crate::scheduler::store::Change::PutApp(record)],
            crate::scheduler::events::Pending::default(),
        )
        .await?;
        tracing::info!("{app_id}: forgot the agents holding its persistent volumes (wipe)");
        Ok(true)
    }
}
