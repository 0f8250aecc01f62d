//! One round of a deployment for one app, as a pure decision over its tasks: which tasks to
//! kill and how many to start, following upgradeStrategy (start new up to
//! maximumOverCapacity, wait until healthy, stop old down to minimumHealthCapacity), and
//! whether the app has reached its target. Scale-downs honour killSelection.
//! Also the ordering of a multi-app deployment by `dependencies`.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::marathon::UpgradeStrategy;

/// What the decision needs to know about one live (not being killed) task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    /// Launched for an older configuration: to be replaced.
    pub old: bool,
    pub healthy: bool,
    pub staged_at: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub kill: Vec<String>,
    pub start: usize,
    /// The app is at its target: `target` new tasks, all healthy, no old ones.
    pub done: bool,
}

/// Orders tasks for killing: unhealthy first, then by killSelection.
fn kill_order(tasks: &mut [&TaskView], kill_selection: &str) {
    tasks.sort_by(|a, b| {
        a.healthy.cmp(&b.healthy).then_with(|| {
            if kill_selection == "OLDEST_FIRST" {
                a.staged_at.cmp(&b.staged_at)
            } else {
                b.staged_at.cmp(&a.staged_at)
            }
        })
    });
}

pub fn decide(
    tasks: &[TaskView],
    target: usize,
    strategy: &UpgradeStrategy,
    kill_selection: &str,
) -> Decision {
    let mut new: Vec<&TaskView> = tasks.iter().filter(|t| !t.old).collect();
    let mut old: Vec<&TaskView> = tasks.iter().filter(|t| t.old).collect();
    let mut decision = Decision::default();
    if new.len() > target {
        kill_order(&mut new, kill_selection);
        let extra = new.len() - target;
        decision
            .kill
            .extend(new.drain(..extra).map(|t| t.id.clone()));
    }
    let healthy_new = new.iter().filter(|t| t.healthy).count();
    if old.is_empty() {
        decision.start = target - new.len();
        decision.done = decision.start == 0 && healthy_new == target;
        return decision;
    }
    let min_healthy = (target as f64 * strategy.minimum_health_capacity).ceil() as usize;
    let max_total = (target as f64 * (1.0 + strategy.maximum_over_capacity)).floor() as usize;
    let mut healthy_total = healthy_new + old.iter().filter(|t| t.healthy).count();
    kill_order(&mut old, kill_selection);
    let mut killed_old = 0;
    for t in &old {
        if !t.healthy {
            decision.kill.push(t.id.clone());
            killed_old += 1;
        } else if healthy_total > min_healthy || (healthy_new >= target && new.len() >= target) {
            decision.kill.push(t.id.clone());
            healthy_total -= 1;
            killed_old += 1;
        }
    }
    let remaining_old = old.len() - killed_old;
    let need = target - new.len();
    let room = max_total.saturating_sub(remaining_old + new.len());
    decision.start = need.min(room);
    let waiting_for_health = new.iter().any(|t| !t.healthy);
    if decision.kill.is_empty() && decision.start == 0 && need > 0 && !waiting_for_health {
        // minimumHealthCapacity 1 with maximumOverCapacity 0 can only progress by
        // stopping one old task first (never while new tasks may still become healthy).
        if let Some(t) = old.first() {
            decision.kill.push(t.id.clone());
        }
    }
    decision.done = remaining_old == 0 && decision.start == 0 && healthy_new == target;
    decision
}

/// Launch delay after `failures` consecutive failures: backoffSeconds * backoffFactor^(n-1),
/// capped by maxLaunchDelaySeconds; 0 without failures.
pub fn backoff_delay(failures: u32, seconds: f64, factor: f64, max: f64) -> f64 {
    if failures == 0 {
        return 0.0;
    }
    let exp = i32::try_from(failures - 1).unwrap_or(i32::MAX);
    // Capped again here: the delay becomes a Duration, which panics on NaN or past its
    // range (a definition stored before the validation's bound must not crash the loop).
    let delay = (seconds * factor.powi(exp)).min(max).max(0.0);
    if delay.is_nan() {
        return 0.0;
    }
    delay.min(crate::api::appdef::MAX_DELAY_SECONDS)
}

/// Groups apps into steps so that every app comes after the apps it depends on (those in
/// the same deployment). Apps in a dependency cycle end up in one final step.
pub fn order_by_dependencies(apps: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut steps = Vec::new();
    let mut remaining: BTreeSet<String> = apps.keys().cloned().collect();
    while !remaining.is_empty() {
        let ready: Vec<String> = remaining
            .iter()
            .filter(|app| {
                apps[*app]
                    .iter()
                    .all(|dep| !apps.contains_key(dep) || placed.contains(dep) || dep == *app)
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            steps.push(remaining.iter().cloned().collect());
            break;
        }
        for app in &ready {
            remaining.remove(app);
            placed.insert(app.clone());
        }
        steps.push(ready);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, old: bool, healthy: bool, staged: &str) -> TaskView {
        TaskView {
            id: id.into(),
            old,
            healthy,
            staged_at: staged.into(),
        }
    }

    fn strategy(min: f64, over: f64) -> UpgradeStrategy {
        UpgradeStrategy {
            minimum_health_capacity: min,
            maximum_over_capacity: over,
        }
    }

    #[test]
    fn scale_up_and_down() {
        let d = decide(
            &[t("a", false, true, "1")],
            3,
            &strategy(1.0, 1.0),
            "YOUNGEST_FIRST",
        );
        assert_eq!(d.start, 2);
        assert!(!d.done);
        let tasks = [
            t("a", false, true, "1"),
            t("b", false, true, "2"),
            t("c", false, true, "3"),
        ];
        let d = decide(&tasks, 1, &strategy(1.0, 1.0), "YOUNGEST_FIRST");
        assert_eq!(d.kill, vec!["c", "b"]);
        assert!(d.done);
        let d = decide(&tasks, 2, &strategy(1.0, 1.0), "OLDEST_FIRST");
        assert_eq!(d.kill, vec!["a"]);
    }

    #[test]
    fn restart_with_full_capacity_starts_new_before_killing_old() {
        let old = [t("a", true, true, "1"), t("b", true, true, "2")];
        let d = decide(&old, 2, &strategy(1.0, 1.0), "YOUNGEST_FIRST");
        assert_eq!(d.start, 2);
        assert!(d.kill.is_empty());
        // New ones started, not yet healthy: wait.
        let mut tasks = old.to_vec();
        tasks.push(t("c", false, false, "3"));
        tasks.push(t("d", false, false, "4"));
        let d = decide(&tasks, 2, &strategy(1.0, 1.0), "YOUNGEST_FIRST");
        assert_eq!((d.start, d.kill.len(), d.done), (0, 0, false));
        // Healthy: the old ones go.
        tasks[2].healthy = true;
        tasks[3].healthy = true;
        let d = decide(&tasks, 2, &strategy(1.0, 1.0), "YOUNGEST_FIRST");
        assert_eq!(d.kill.len(), 2);
        assert!(d.done);
    }

    #[test]
    fn half_capacity_never_drops_below_half_healthy() {
        let old: Vec<TaskView> = (0..4)
            .map(|i| t(&format!("o{i}"), true, true, "1"))
            .collect();
        let d = decide(&old, 4, &strategy(0.5, 0.0), "YOUNGEST_FIRST");
        assert_eq!(d.kill.len(), 2);
        assert_eq!(d.start, 2);
    }

    #[test]
    fn waits_for_new_tasks_to_become_healthy_before_killing_more() {
        let tasks = [
            t("o1", true, true, "1"),
            t("o2", true, true, "1"),
            t("n1", false, false, "2"),
            t("n2", false, false, "2"),
        ];
        let d = decide(&tasks, 4, &strategy(0.5, 0.0), "YOUNGEST_FIRST");
        assert_eq!((d.kill.len(), d.start, d.done), (0, 0, false));
    }

    #[test]
    fn full_health_without_over_capacity_still_progresses() {
        let old = [t("a", true, true, "1")];
        let d = decide(&old, 1, &strategy(1.0, 0.0), "YOUNGEST_FIRST");
        assert_eq!(d.kill, vec!["a"]);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(0, 1.0, 1.15, 300.0), 0.0);
        assert_eq!(backoff_delay(1, 1.0, 1.15, 300.0), 1.0);
        assert!((backoff_delay(3, 1.0, 1.15, 300.0) - 1.3225).abs() < 1e-9);
        assert_eq!(backoff_delay(200, 1.0, 2.0, 300.0), 300.0);
    }

    #[test]
    fn dependencies_order_steps() {
        let apps: BTreeMap<String, Vec<String>> = [
            (
                "/a".to_string(),
                vec!["/b".to_string(), "/elsewhere".to_string()],
            ),
            ("/b".to_string(), vec![]),
            ("/c".to_string(), vec!["/a".to_string()]),
        ]
        .into();
        assert_eq!(
            order_by_dependencies(&apps),
            vec![
                vec!["/b".to_string()],
                vec!["/a".to_string()],
                vec!["/c".to_string()]
            ]
        );
    }
}
