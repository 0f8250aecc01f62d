//! What each heartbeat reports, and which wanted list the agent holds: the agent's side
//! of the delta protocol (`scheduler::delta`). With a scheduler whose answers carry a
//! generation, a heartbeat lists only the statuses that changed since the last heartbeat
//! the scheduler accepted (plus unhealthy tasks, whose grace period runs out without a
//! change), and sends back the generation of the list it holds so that an unchanged list
//! is not sent again. Every [`FULL_REPORT_EVERY`] heartbeats, at start, after a failover
//! and when the scheduler asks, it reports every task: the scheduler's reconciliation
//! (tasks lost, tasks being killed that never arrived) rests on those. With an older
//! scheduler (no generation) every heartbeat is full, as before.
//!
//! This changes what goes out, never when: a started task is still reported running
//! only once it stayed up (the supervisor's START_SETTLE), as the heartbeat loop paces it.

use std::collections::HashMap;

use crate::api::agent::{Assignments, TaskSpec, TaskStatus};

/// How often a heartbeat carries every status although the scheduler has them.
pub const FULL_REPORT_EVERY: u32 = 30;

#[derive(Default)]
pub struct Reports {
    /// The statuses of the last heartbeat the scheduler accepted, by task id; None: no
    /// baseline (the next heartbeat is full).
    accepted: Option<HashMap<String, TaskStatus>>,
    /// The generation of the wanted list held (None: the scheduler does not speak the
    /// delta protocol, or nothing was received yet).
    generation: Option<u64>,
    /// The tasks the scheduler wants here, as of `generation`.
    wanted: Vec<TaskSpec>,
    /// Delta heartbeats accepted since the last full one.
    since_full: u32,
}

/// One heartbeat's report.
pub struct Report {
    pub tasks: Vec<TaskStatus>,
    pub delta: bool,
    pub generation: Option<u64>,
}

impl Reports {
    /// What the next heartbeat sends, out of every task's status `all`.
    pub fn report(&self, all: &[TaskStatus]) -> Report {
        let baseline = match &self.accepted {
            Some(accepted) if self.generation.is_some() && self.since_full < FULL_REPORT_EVERY => {
                accepted
            }
            _ => {
                return Report {
                    tasks: all.to_vec(),
                    delta: false,
                    generation: self.generation,
                }
            }
        };
        let tasks = all
            .iter()
            .filter(|status| {
                baseline.get(&status.task_id) != Some(*status)
                    || status.health.iter().any(|h| !h.alive)
            })
            .cloned()
            .collect();
        Report {
            tasks,
            delta: true,
            generation: self.generation,
        }
    }

    /// The scheduler accepted a heartbeat built from `all` (`delta`: it was sent as a
    /// delta) and answered `answer`: the tasks wanted here now.
    pub fn accepted(
        &mut self,
        all: &[TaskStatus],
        delta: bool,
        answer: Assignments,
    ) -> &[TaskSpec] {
        let mut generation = answer.generation;
        match answer.task_ids {
            Some(ids) if !answer.unchanged => {
                // A task it names is unknown here: the next heartbeat sends no
                // generation, which gets the whole list.
                let complete = self.take_partial(ids, answer.tasks);
                generation = generation.filter(|_| complete);
            }
            _ if !answer.unchanged || self.generation.is_none() => self.wanted = answer.tasks,
            _ => {}
        }
        self.generation = generation;
        self.since_full = if delta { self.since_full + 1 } else { 0 };
        self.accepted = if answer.full_report || answer.generation.is_none() {
            None
        } else {
            Some(
                all.iter()
                    .map(|status| (status.task_id.clone(), status.clone()))
                    .collect(),
            )
        };
        &self.wanted
    }

    /// A partial answer: the tasks wanted are `ids`, with the specs held for them or else
    /// those in `new`. False when a spec is in neither (those ids are left out for now).
    fn take_partial(&mut self, ids: Vec<String>, new: Vec<TaskSpec>) -> bool {
        let mut specs: HashMap<String, TaskSpec> = std::mem::take(&mut self.wanted)
            .into_iter()
            .map(|spec| (spec.task_id.clone(), spec))
            .collect();
        for spec in new {
            specs.insert(spec.task_id.clone(), spec);
        }
        let mut complete = true;
        self.wanted = ids
            .iter()
            .filter_map(|id| {
                let spec = specs.remove(id);
                complete &= spec.is_some();
                spec
            })
            .collect();
        complete
    }

    /// The next heartbeat goes to a scheduler that may not have what earlier ones
    /// reported (another control node answered): report everything.
    pub fn forget_baseline(&mut self) {
        self.accepted = None;
    }

    /// The scheduler forgot this agent (it registers again): start over.
    pub fn reset(&mut self) {
        *self = Reports::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::agent::{HealthReport, TaskState};

    fn status(id: &str, state: TaskState) -> TaskStatus {
        TaskStatus {
            task_id: id.into(),
            app_id: "/a".into(),
            state,
            host_ports: Vec::new(),
            health: Vec::new(),
            started_at: None,
            exit_code: None,
            message: None,
            ip_addresses: Vec::new(),
        }
    }

    fn answer(generation: Option<u64>, unchanged: bool, ids: &[&str]) -> Assignments {
        let tasks = ids
            .iter()
            .map(|id| {
                serde_json::from_value(serde_json::json!({
                    "taskId": id, "appId": "/a", "appVersion": "v", "cmd": "x", "env": {},
                    "labels": {}, "cpus": 0.1, "mem": 16, "disk": 0, "hostPorts": [],
                    "healthChecks": [], "killGracePeriodSeconds": 3
                }))
                .unwrap()
            })
            .collect();
        Assignments {
            tasks,
            task_ids: None,
            volume_moves: Vec::new(),
            volume_releases: Vec::new(),
            generation,
            unchanged,
            full_report: false,
        }
    }

    #[test]
    fn an_older_scheduler_always_gets_everything() {
        let mut reports = Reports::default();
        let all = vec![status("t1", TaskState::Running)];
        for _ in 0..3 {
            let report = reports.report(&all);
            assert!(!report.delta);
            assert_eq!(report.tasks.len(), 1);
            assert_eq!(report.generation, None);
            let wanted = reports.accepted(&all, report.delta, answer(None, false, &["t1"]));
            assert_eq!(wanted.len(), 1);
        }
    }

    #[test]
    fn only_changes_go_out_and_an_unchanged_answer_keeps_the_list() {
        let mut reports = Reports::default();
        let mut all = vec![
            status("t1", TaskState::Running),
            status("t2", TaskState::Starting),
        ];
        let first = reports.report(&all);
        assert!(!first.delta, "nothing accepted yet: full");
        reports.accepted(&all, false, answer(Some(7), false, &["t1", "t2"]));
        let second = reports.report(&all);
        assert!(second.delta);
        assert!(second.tasks.is_empty());
        assert_eq!(second.generation, Some(7));
        let wanted = reports.accepted(&all, true, answer(Some(7), true, &[]));
        assert_eq!(wanted.len(), 2, "unchanged: the list held stays");
        all[1].state = TaskState::Running;
        all[0].health = vec![HealthReport {
            index: 0,
            alive: false,
            consecutive_failures: 1,
            first_success: None,
            last_success: None,
            last_failure: None,
            last_failure_cause: None,
        }];
        let third = reports.report(&all);
        let ids: Vec<&str> = third.tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids, ["t1", "t2"]);
        reports.accepted(&all, true, answer(Some(7), true, &[]));
        // The unhealthy task goes out every time; the settled one no more.
        let fourth = reports.report(&all);
        let ids: Vec<&str> = fourth.tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids, ["t1"]);
    }

    #[test]
    fn a_full_report_when_asked_after_a_failover_and_now_and_then() {
        let mut reports = Reports::default();
        let all = vec![status("t1", TaskState::Running)];
        reports.accepted(&all, false, answer(Some(1), false, &["t1"]));
        assert!(reports.report(&all).delta);
        let mut asked = answer(Some(1), true, &[]);
        asked.full_report = true;
        reports.accepted(&all, true, asked);
        assert!(
            !reports.report(&all).delta,
            "the scheduler asked for everything"
        );
        reports.accepted(&all, false, answer(Some(1), true, &[]));
        reports.forget_baseline();
        assert!(!reports.report(&all).delta, "another scheduler answered");
        reports.accepted(&all, false, answer(Some(1), true, &[]));
        let mut deltas = 0;
        while reports.report(&all).delta {
            deltas += 1;
            reports.accepted(&all, true, answer(Some(1), true, &[]));
        }
        assert_eq!(deltas, FULL_REPORT_EVERY);
        reports.reset();
        let report = reports.report(&all);
        assert!(!report.delta);
        assert_eq!(report.generation, None);
    }

    #[test]
    fn a_partial_answer_keeps_the_specs_held_and_drops_what_it_leaves_out() {
        let mut reports = Reports::default();
        let all = vec![status("t1", TaskState::Running)];
        reports.accepted(&all, false, answer(Some(1), false, &["t1", "t2"]));
        let mut partial = answer(Some(2), false, &["t3"]);
        partial.task_ids = Some(vec!["t2".into(), "t3".into()]);
        let wanted: Vec<&str> = reports
            .accepted(&all, true, partial)
            .iter()
            .map(|t| t.task_id.as_str())
            .collect();
        assert_eq!(wanted, ["t2", "t3"], "t1 is no longer wanted");
        assert_eq!(reports.report(&all).generation, Some(2));
        // A task named without a spec (the agent never had it): the list held is what
        // can be had, and the next heartbeat asks for all of it.
        let mut gap = answer(Some(3), false, &[]);
        gap.task_ids = Some(vec!["t3".into(), "t4".into()]);
        let wanted = reports.accepted(&all, true, gap).len();
        assert_eq!(wanted, 1);
        assert_eq!(reports.report(&all).generation, None);
    }
}
