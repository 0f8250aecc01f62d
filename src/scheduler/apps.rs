//! App writes (create, update, scale, restart, delete, kill tasks) and deployment
//! cancellation. Each write is validated, checked against deployment locks, committed to the
//! store with one deployment (steps ordered by `dependencies`) and then only enqueues the
//! affected apps: the reconcile loop does the rest.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::api::appdef::{self, AppSpec};
use crate::api::marathon::{self, event_types};
use crate::scheduler::clock;
use crate::scheduler::core::Scheduler;
use crate::scheduler::deployments::order_by_dependencies;
use crate::scheduler::error::ApiError;
use crate::scheduler::events::Pending;
use crate::scheduler::reconcile::{deployment_event_fields, plan_json, status_event};
use crate::scheduler::state::State;
use crate::scheduler::store::{ActionRecord, AppRecord, Change, DeploymentRecord};

/// One requested write.
#[derive(Debug, Clone)]
pub enum AppWrite {
    /// Create or update from a body; `partial` merges it into the current definition.
    Put {
        body: Map<String, Value>,
        partial: bool,
    },
    Delete(String),
    Restart(String),
    Scale(String, u32),
}

/// What a write started.
#[derive(Debug, Clone)]
pub struct WriteResult {
    pub deployment_id: String,
    pub version: String,
    /// The definitions written (None for deletions), by app id.
    pub apps: BTreeMap<String, Option<Map<String, Value>>>,
    /// Apps that did not exist before.
    pub created: BTreeSet<String>,
}

struct Planned {
    id: String,
    old: Option<Map<String, Value>>,
    new: Option<Map<String, Value>>,
    action: &'static str,
    config_change: bool,
}

fn strip_version(mut def: Map<String, Value>) -> Map<String, Value> {
    def.remove("version");
    def.remove("versionInfo");
    def
}

impl Scheduler {
    /// Applies app writes as one deployment. `client` and `uri` go into api_post_event.
    pub async fn write_apps(
        &self,
        writes: Vec<AppWrite>,
        force: bool,
        client: &str,
        uri: &str,
    ) -> Result<WriteResult, ApiError> {
        let writer = self.begin_write().await?;
        let mut pending = Pending::default();
        let (result, changes) = {
            let mut state = self.lock();
            self.plan_apps(&mut state, writes, force, client, uri, &mut pending)?
        };
        self.commit(&writer, changes, pending).await?;
        drop(writer);
        for id in result.apps.keys() {
            self.enqueue(id);
        }
        Ok(result)
    }

    fn plan_write(&self, state: &State, write: AppWrite) -> Result<Planned, ApiError> {
        let current = |id: &str| state.apps.get(id).map(|a| a.record.definition.clone());
        Ok(match write {
            AppWrite::Put { body, partial } => {
                let raw_id = match body.get("id") {
                    Some(Value::String(id)) => id.clone(),
                    _ => {
                        appdef::validate(&body).map_err(ApiError::invalid)?;
                        return Err(ApiError::invalid(vec![marathon::ErrorDetail {
                            path: "/id".into(),
                            errors: vec!["error.path.missing".into()],
                        }]));
                    }
                };
                appdef::check_app_id(&raw_id).map_err(|e| {
                    ApiError::invalid(vec![marathon::ErrorDetail {
                        path: "/id".into(),
                        errors: vec![e],
                    }])
                })?;
                let id = marathon::canonical_app_id(&raw_id);
                let old = current(&id);
                let merged = match (&old, partial) {
                    (Some(old), true) => {
                        let mut merged = strip_version(old.clone());
                        for (k, v) in body {
                            merged.insert(k, v);
                        }
                        merged
                    }
                    _ => body,
                };
                let mut merged = strip_version(merged);
                merged.insert("id".into(), Value::String(id.clone()));
                if let Some(old) = &old {
                    appdef::inherit_service_ports(&mut merged, old);
                }
                appdef::validate(&merged).map_err(ApiError::invalid)?;
                let (action, config_change) = match &old {
                    None => ("StartApplication", true),
                    Some(old_def) => {
                        // Both sides with the defaults the normalizer fills in, so a field
                        // the user left out (or spelled as its default) is not a change.
                        let complete = |def: Map<String, Value>| {
                            appdef::normalize(def, "", "", &|_| false, (0, 0))
                        };
                        let changed = appdef::changed_fields(
                            &complete(strip_version(old_def.clone())),
                            &complete(merged.clone()),
                        );
                        if changed.iter().all(|k| k.as_str() == "instances") {
                            ("ScaleApplication", false)
                        } else {
                            ("RestartApplication", true)
                        }
                    }
                };
                Planned {
                    id,
                    old,
                    new: Some(merged),
                    action,
                    config_change,
                }
            }
            AppWrite::Delete(id) => {
                let old = current(&id).ok_or_else(|| ApiError::app_not_found(&id))?;
                Planned {
                    id,
                    old: Some(old),
                    new: None,
                    action: "StopApplication",
                    config_change: false,
                }
            }
            AppWrite::Restart(id) => {
                let old = current(&id).ok_or_else(|| ApiError::app_not_found(&id))?;
                Planned {
                    id,
                    new: Some(strip_version(old.clone())),
                    old: Some(old),
                    action: "RestartApplication",
                    config_change: true,
                }
            }
            AppWrite::Scale(id, instances) => {
                let old = current(&id).ok_or_else(|| ApiError::app_not_found(&id))?;
                let mut new = strip_version(old.clone());
                new.insert("instances".into(), json!(instances));
                Planned {
                    id,
                    old: Some(old),
                    new: Some(new),
                    action: "ScaleApplication",
                    config_change: false,
                }
            }
        })
    }

    /// The changes (and events) of app writes as one deployment, not yet committed.
    fn plan_apps(
        &self,
        state: &mut State,
        writes: Vec<AppWrite>,
        force: bool,
        client: &str,
        uri: &str,
        pending: &mut Pending,
    ) -> Result<(WriteResult, Vec<Change>), ApiError> {
        let mut planned: Vec<Planned> = Vec::new();
        for write in writes {
            let p = self.plan_write(state, write)?;
            if planned.iter().any(|q| q.id == p.id) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("app {} is given more than once", p.id),
                ));
            }
            planned.push(p);
        }
        let mut locks: BTreeSet<String> = BTreeSet::new();
        for p in &planned {
            for d in state.deployments_of(&p.id) {
                locks.insert(d.id.clone());
            }
        }
        let mut changes: Vec<Change> = Vec::new();
        if !locks.is_empty() {
            if !force {
                return Err(ApiError::locked(locks.into_iter().collect()));
            }
            for id in &locks {
                if let Some(d) = state.deployments.get(id) {
                    pending.push(
                        event_types::DEPLOYMENT_FAILED,
                        json!({"id": d.id, "plan": plan_json(state, d)}),
                    );
                }
                changes.push(Change::DeleteDeployment(id.clone()));
            }
        }
        let version = clock::new_version();
        let mut taken: BTreeSet<u32> = BTreeSet::new();
        let mut result = WriteResult {
            deployment_id: uuid::Uuid::new_v4().to_string(),
            version: version.clone(),
            apps: BTreeMap::new(),
            created: BTreeSet::new(),
        };
        let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut actions: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut original = BTreeMap::new();
        let mut target = BTreeMap::new();
        for p in planned {
            original.insert(p.id.clone(), p.old.clone());
            actions.insert(p.id.clone(), p.action);
            let Some(new) = p.new else {
                deps.insert(p.id.clone(), Vec::new());
                target.insert(p.id.clone(), None);
                result.apps.insert(p.id.clone(), None);
                changes.push(Change::DeleteApp(p.id.clone()));
                pending.push(event_types::APP_TERMINATED, json!({"appId": p.id}));
                continue;
            };
            let old_record = state.apps.get(&p.id).map(|a| a.record.clone());
            let config_version = match (&old_record, p.config_change) {
                (Some(r), false) => r.config_version.clone(),
                _ => version.clone(),
            };
            // Ports below the first one no app holds are all taken, but for the app's own
            // (free to it again).
            let (low, high) = self.config.service_ports;
            let floor = state.first_free_service_port(low);
            let search_from = if state.holds_service_port_below(&p.id, floor) {
                low
            } else {
                floor.min(high.saturating_add(1))
            };
            let normalized = appdef::normalize(
                new,
                &version,
                &config_version,
                &|port| state.service_port_taken(port, &p.id) || taken.contains(&port),
                (search_from, high),
            );
            let spec = AppSpec::from_definition(&normalized).map_err(ApiError::invalid)?;
            taken.extend(appdef::service_ports(&spec));
            deps.insert(
                p.id.clone(),
                spec.app
                    .dependencies
                    .iter()
                    .map(|d| marathon::canonical_app_id(d))
                    .collect(),
            );
            if p.old.is_none() {
                result.created.insert(p.id.clone());
            }
            if p.config_change {
                state.backoff.remove(&p.id);
            }
            pending.push(
                event_types::API_POST,
                json!({"clientIp": client, "uri": uri, "appDefinition": normalized}),
            );
            target.insert(p.id.clone(), Some(normalized.clone()));
            result.apps.insert(p.id.clone(), Some(normalized.clone()));
            changes.push(Change::PutApp(AppRecord {
                id: p.id.clone(),
                definition: normalized,
                version: version.clone(),
                config_version,
                resident_agents: old_record
                    .as_ref()
                    .map(|r| r.resident_agents.clone())
                    .unwrap_or_default(),
                last_task_failure: old_record.and_then(|r| r.last_task_failure),
            }));
        }
        let steps: Vec<Vec<ActionRecord>> = order_by_dependencies(&deps)
            .into_iter()
            .map(|step| {
                step.into_iter()
                    .map(|app| ActionRecord {
                        action: actions
                            .get(&app)
                            .copied()
                            .unwrap_or("ScaleApplication")
                            .into(),
                        app,
                    })
                    .collect()
            })
            .collect();
        let deployment = DeploymentRecord {
            id: result.deployment_id.clone(),
            version: version.clone(),
            steps,
            current_step: 0,
            done: Vec::new(),
            original,
            target,
        };
        pending.push(
            event_types::DEPLOYMENT_INFO,
            deployment_event_fields(state, &deployment),
        );
        changes.push(Change::PutDeployment(deployment));
        Ok((result, changes))
    }

    /// Kills tasks; with `scale` the apps' instances shrink by as many (a deployment),
    /// otherwise they are replaced. Returns the killed tasks, and the deployment if any.
    pub async fn kill_tasks(
        &self,
        ids: &[String],
        scale: bool,
        force: bool,
        client: &str,
        uri: &str,
    ) -> Result<(Vec<Value>, Option<WriteResult>), ApiError> {
        let writer = self.begin_write().await?;
        let mut pending = Pending::default();
        let mut apps: BTreeSet<String> = BTreeSet::new();
        let (killed, result, changes) = {
            let mut state = self.lock();
            let mut killed = Vec::new();
            let mut changes = Vec::new();
            let mut per_app: BTreeMap<String, u32> = BTreeMap::new();
            for id in ids {
                let Some(task) = state.tasks.get(id) else {
                    continue;
                };
                if task.killing {
                    continue;
                }
                let mut t = task.clone();
                t.killing = true;
                pending.push(
                    event_types::STATUS_UPDATE,
                    status_event(&t, "TASK_KILLING", "killed through the API"),
                );
                killed.push(crate::scheduler::state::task_json(&t, None));
                *per_app.entry(t.app_id.clone()).or_default() += 1;
                apps.insert(t.app_id.clone());
                changes.push(Change::PutTask(Box::new(t)));
            }
            let mut result = None;
            if scale && !per_app.is_empty() {
                let writes: Vec<AppWrite> = per_app
                    .iter()
                    .filter_map(|(app, n)| {
                        let current = state.apps.get(app)?.spec.app.instances;
                        Some(AppWrite::Scale(app.clone(), current.saturating_sub(*n)))
                    })
                    .collect();
                // The scale-down and the kills commit together.
                let (written, scale_changes) =
                    self.plan_apps(&mut state, writes, force, client, uri, &mut pending)?;
                changes.extend(scale_changes);
                result = Some(written);
            }
            (killed, result, changes)
        };
        self.commit(&writer, changes, pending).await?;
        drop(writer);
        for app in apps {
            self.enqueue(&app);
        }
        Ok((killed, result))
    }

    /// `DELETE /v2/deployments/{id}`: with `force` the deployment is dropped where it
    /// stands; otherwise its apps are rolled back to their original definitions.
    pub async fn cancel_deployment(
        &self,
        id: &str,
        force: bool,
        client: &str,
        uri: &str,
    ) -> Result<Option<WriteResult>, ApiError> {
        let writer = self.begin_write().await?;
        let mut pending = Pending::default();
        let (result, changes) = {
            let mut state = self.lock();
            let Some(d) = state.deployments.get(id).cloned() else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("DeploymentPlan {id} does not exist"),
                ));
            };
            pending.push(
                event_types::DEPLOYMENT_FAILED,
                json!({"id": d.id, "plan": plan_json(&state, &d)}),
            );
            // The rollback is planned as if the cancelled deployment were gone already (it
            // no longer locks its apps); both commit together.
            let d = state.remove_deployment(&d.id).unwrap_or(d);
            let mut changes = vec![Change::DeleteDeployment(d.id.clone())];
            let planned = if force {
                Ok(None)
            } else {
                let writes: Vec<AppWrite> = d
                    .original
                    .iter()
                    .filter_map(|(app, def)| match def {
                        Some(def) => Some(AppWrite::Put {
                            body: strip_version(def.clone()),
                            partial: false,
                        }),
                        None => state
                            .apps
                            .contains_key(app)
                            .then(|| AppWrite::Delete(app.clone())),
                    })
                    .collect();
                self.plan_apps(&mut state, writes, true, client, uri, &mut pending)
                    .map(Some)
            };
            // Memory holds only what the store has: the deployment goes back until the
            // commit removes it for good.
            state.put_deployment(d);
            let result = match planned? {
                Some((written, rollback)) => {
                    changes.extend(rollback);
                    Some(written)
                }
                None => None,
            };
            (result, changes)
        };
        self.commit(&writer, changes, pending).await?;
        drop(writer);
        if let Some(r) = &result {
            for app in r.apps.keys() {
                self.enqueue(app);
            }
        }
        Ok(result)
    }
}
