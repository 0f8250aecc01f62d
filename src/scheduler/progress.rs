//! Which apps of each open deployment's current step have reached their target.
//!
//! Kept in memory only, beside the deployment records rather than in them: a record
//! carries every affected app's definitions (before and after), so writing it each time
//! one of its apps finished made a deployment of n apps cost n writes of n definitions.
//! The record is now written when the deployment starts and when a step ends; what is
//! done within a step is re-derived after a restart or a failover the way everything a
//! reconcile decides is (every app is reconciled then, and an app at its target is done
//! again). Records written by older versions still carry their `done` list: it seeds
//! this.

use std::collections::{HashMap, HashSet};

use crate::scheduler::store::DeploymentRecord;

/// The apps done in the current step of one deployment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StepProgress {
    pub done: HashSet<String>,
    /// How many distinct apps the current step has (when all are done, it ends).
    pub step_apps: usize,
}

impl StepProgress {
    /// The progress a record starts with: its current step, and the apps its (older)
    /// writer listed as done.
    pub fn of(d: &DeploymentRecord) -> StepProgress {
        StepProgress {
            done: d.done.iter().cloned().collect(),
            step_apps: step_apps(d, d.current_step),
        }
    }
}

/// Distinct apps of a step (a step lists each app once when planned; counted rather than
/// trusted, so that a step can always end).
fn step_apps(d: &DeploymentRecord, step: usize) -> usize {
    d.steps
        .get(step)
        .map(|actions| {
            actions
                .iter()
                .map(|a| a.app.as_str())
                .collect::<HashSet<_>>()
                .len()
        })
        .unwrap_or(0)
}

/// What one reconcile batch found done, on top of the state's progress, until the batch
/// commits (see [`BatchProgress::commit_to`]).
#[derive(Debug, Default)]
pub struct BatchProgress {
    by_deployment: HashMap<String, Added>,
}

#[derive(Debug)]
struct Added {
    /// The deployment moved to its next step in this batch: the state's progress (of
    /// the step before) no longer counts.
    reset: bool,
    step_apps: usize,
    apps: HashSet<String>,
}

/// What marking an app done did.
#[derive(Debug, PartialEq, Eq)]
pub enum Marked {
    /// It was done already (nothing to write).
    Already,
    /// Recorded; other apps of the step are still at work.
    Pending,
    /// It was the step's last app: the step is over.
    StepDone,
}

impl BatchProgress {
    /// Marks `app` done in `d`'s current step, `state` being the committed progress of
    /// `d` (None: none known yet).
    pub fn mark(
        &mut self,
        state: Option<&StepProgress>,
        d: &DeploymentRecord,
        app: &str,
    ) -> Marked {
        let added = self
            .by_deployment
            .entry(d.id.clone())
            .or_insert_with(|| Added {
                reset: false,
                step_apps: state.map_or_else(|| step_apps(d, d.current_step), |p| p.step_apps),
                apps: HashSet::new(),
            });
        let committed = state.filter(|_| !added.reset);
        if added.apps.contains(app) || committed.is_some_and(|p| p.done.contains(app)) {
            return Marked::Already;
        }
        added.apps.insert(app.to_string());
        let done = added.apps.len() + committed.map_or(0, |p| p.done.len());
        if done >= added.step_apps {
            Marked::StepDone
        } else {
            Marked::Pending
        }
    }

    /// `d` (as written, its `current_step` the new one) moved to its next step: nothing
    /// of it is done yet.
    pub fn next_step(&mut self, d: &DeploymentRecord) {
        self.by_deployment.insert(
            d.id.clone(),
            Added {
                reset: true,
                step_apps: step_apps(d, d.current_step),
                apps: HashSet::new(),
            },
        );
    }

    /// Adds what the batch found done to the committed progress (after the batch's
    /// changes are applied: a deployment deleted by them is not brought back).
    pub fn commit_to(self, progress: &mut HashMap<String, StepProgress>) {
        for (id, added) in self.by_deployment {
            let Some(p) = progress.get_mut(&id) else {
                continue;
            };
            if added.reset {
                p.done.clear();
                p.step_apps = added.step_apps;
            }
            p.done.extend(added.apps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::store::ActionRecord;

    fn deployment(steps: &[&[&str]]) -> DeploymentRecord {
        DeploymentRecord {
            id: "d".into(),
            version: "v".into(),
            steps: steps
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|a| ActionRecord {
                            action: "ScaleApplication".into(),
                            app: a.to_string(),
                        })
                        .collect()
                })
                .collect(),
            current_step: 0,
            done: Vec::new(),
            original: Default::default(),
            target: Default::default(),
        }
    }

    #[test]
    fn a_step_ends_with_its_last_app_counting_the_committed_ones() {
        let d = deployment(&[&["/a", "/b", "/c"], &["/d"]]);
        let mut committed = HashMap::from([("d".to_string(), StepProgress::of(&d))]);
        let mut batch = BatchProgress::default();
        assert_eq!(batch.mark(committed.get("d"), &d, "/a"), Marked::Pending);
        assert_eq!(batch.mark(committed.get("d"), &d, "/a"), Marked::Already);
        batch.commit_to(&mut committed);
        let mut batch = BatchProgress::default();
        assert_eq!(batch.mark(committed.get("d"), &d, "/a"), Marked::Already);
        assert_eq!(batch.mark(committed.get("d"), &d, "/b"), Marked::Pending);
        assert_eq!(batch.mark(committed.get("d"), &d, "/c"), Marked::StepDone);
        let mut next = d.clone();
        next.current_step = 1;
        batch.next_step(&next);
        // The step before no longer counts: three apps were done there, one is needed here.
        assert_eq!(
            batch.mark(committed.get("d"), &next, "/d"),
            Marked::StepDone
        );
        batch.commit_to(&mut committed);
        assert_eq!(committed["d"].step_apps, 1);
        assert_eq!(committed["d"].done, HashSet::from(["/d".to_string()]));
    }

    #[test]
    fn an_older_records_done_list_seeds_the_progress_and_duplicates_count_once() {
        let mut d = deployment(&[&["/a", "/b", "/a"]]);
        d.done = vec!["/a".into()];
        let committed = StepProgress::of(&d);
        assert_eq!(committed.step_apps, 2);
        let mut batch = BatchProgress::default();
        assert_eq!(batch.mark(Some(&committed), &d, "/b"), Marked::StepDone);
    }
}
