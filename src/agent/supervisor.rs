//! The agent's task table and its level-triggered rule: [`Supervisor::apply`] gets the full
//! list of tasks the scheduler wants here, starts every one that is not known yet, and kills
//! every running one that is no longer wanted. Background jobs watch each task's exit, run
//! its health checks and forward its output to syslog; [`Supervisor::statuses`] is what the
//! heartbeat reports. Live tasks are persisted (see [`super::table`]) and adopted by
//! [`Supervisor::open`] after a restart.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use tokio::task::AbortHandle;

use super::health::{self, HealthSlots};
use super::process::{self, Exit};
use super::table::{self, Handle, PersistedTask};
use super::{docker, logs};
use crate::api::agent::{TaskSpec, TaskState, TaskStatus};

/// How long a started task must stay up before the agent reports it early (see
/// [`Inner::report_once_settled`]).
const START_SETTLE: Duration = Duration::from_secs(1);

/// Runs the agent's tasks. Dropping it stops watching them; the tasks keep running.
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    /// The canonical data dir, labelling our containers.
    owner: String,
    /// Where task output lines are sent (`/dev/log`).
    syslog_socket: PathBuf,
    docker: Option<Docker>,
    tasks: Mutex<BTreeMap<String, Task>>,
    /// Signalled when a task's reported state or health changes, so the agent reports it
    /// now instead of at its next heartbeat (a started task is running for the scheduler
    /// a heartbeat interval sooner; a deployment waiting for health moves on sooner).
    changed: Arc<tokio::sync::Notify>,
}

struct Task {
    spec: TaskSpec,
    handle: Option<Handle>,
    state: TaskState,
    started_at: Option<String>,
    exit_code: Option<i32>,
    message: Option<String>,
    health: HealthSlots,
    killing: bool,
    /// A heartbeat carrying this terminal state has been accepted by the scheduler.
    acknowledged: bool,
    /// The job that starts (Docker) or watches the task.
    watcher: Option<AbortHandle>,
    /// Health checks; stopped when the task ends.
    side_jobs: Vec<AbortHandle>,
    /// The log follower; stopped shortly after the task ends (its last lines still go out).
    log_job: Option<AbortHandle>,
    /// The task's own addresses on its container network (empty for other tasks).
    ip_addresses: Vec<String>,
}

/// The address of a container network task, or none (logged) when the engine has none.
async fn task_addresses(engine: &bollard::Docker, spec: &TaskSpec, container: &str) -> Vec<String> {
    let Some(network) = spec.docker.as_ref().and_then(|d| d.network_name.as_deref()) else {
        return Vec::new();
    };
    match super::container_network::task_address(engine, container, network).await {
        Ok(address) => vec![address],
        Err(err) => {
            tracing::warn!("{err:#}");
            Vec::new()
        }
    }
}

impl Task {
    fn new(spec: TaskSpec, state: TaskState) -> Self {
        let health = health::new_slots(spec.health_checks.len());
        Task {
            spec,
            handle: None,
            state,
            started_at: None,
            exit_code: None,
            message: None,
            health,
            killing: false,
            acknowledged: false,
            watcher: None,
            side_jobs: Vec::new(),
            log_job: None,
            ip_addresses: Vec::new(),
        }
    }

    fn status(&self) -> TaskStatus {
        TaskStatus {
            task_id: self.spec.task_id.clone(),
            app_id: self.spec.app_id.clone(),
            state: self.state,
            host_ports: self.spec.host_ports.clone(),
            health: health::snapshot(&self.health),
            started_at: self.started_at.clone(),
            exit_code: self.exit_code,
            message: self.message.clone(),
            ip_addresses: self.ip_addresses.clone(),
        }
    }

    fn stop_jobs(&mut self) {
        for job in self.side_jobs.drain(..) {
            job.abort();
        }
        if let Some(job) = self.log_job.take() {
            // A last poll of the output files first (the follower polls twice a second).
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
                        job.abort();
                    });
                }
                Err(_) => job.abort(),
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for task in self.inner.lock().values_mut() {
            task.stop_jobs();
            if let Some(watcher) = task.watcher.take() {
                watcher.abort();
            }
        }
    }
}

impl Supervisor {
    /// Opens the data dir, adopts the tasks of the persisted table that still run (and
    /// records those that ended meanwhile), and removes our containers nobody knows of.
    pub async fn open(data_dir: &Path, docker: Option<Docker>) -> anyhow::Result<Self> {
        Self::open_with_syslog(data_dir, docker, Path::new(logs::SYSLOG_SOCKET)).await
    }

    /// [`Supervisor::open`], sending task output to the syslog socket `syslog_socket`.
    pub async fn open_with_syslog(
        data_dir: &Path,
        docker: Option<Docker>,
        syslog_socket: &Path,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir.join("tasks"))
            .with_context(|| format!("creating {}", data_dir.join("tasks").display()))?;
        let persisted = table::load(data_dir)?;
        let owner = std::fs::canonicalize(data_dir)
            .with_context(|| format!("resolving {}", data_dir.display()))?
            .display()
            .to_string();
        let supervisor = Supervisor {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                owner,
                syslog_socket: syslog_socket.to_path_buf(),
                docker,
                tasks: Mutex::new(BTreeMap::new()),
                changed: Arc::new(tokio::sync::Notify::new()),
            }),
        };
        for entry in persisted {
            supervisor.adopt(entry).await;
        }
        if let Some(docker) = &supervisor.inner.docker {
            let known: HashSet<String> = supervisor.inner.lock().keys().cloned().collect();
            for (name, task_id) in docker::list_ours(docker, &supervisor.inner.owner)
                .await
                .unwrap_or_default()
            {
                if !known.contains(&task_id) {
                    tracing::info!("removing container {name} of unknown task {task_id}");
                    let _ = docker::remove(docker, &name).await;
                }
            }
        }
        supervisor.inner.persist();
        Ok(supervisor)
    }

    async fn adopt(&self, entry: PersistedTask) {
        let task_id = entry.spec.task_id.clone();
        let mut task = Task::new(entry.spec, TaskState::Running);
        task.started_at = entry.started_at.clone();
        task.handle = Some(entry.handle.clone());
        let ended: Option<Exit> = match &entry.handle {
            Handle::Process { pid, .. } => {
                if process::is_running(&entry.handle) {
                    None
                } else {
                    let sandbox = process::sandbox_dir(&self.inner.data_dir, &task_id);
                    let mut exit = process::adopted_exit(*pid, &sandbox);
                    let note = "exited while the agent was not running";
                    exit.message = Some(match exit.message {
                        Some(message) => format!("{note}; {message}"),
                        None => note.to_string(),
                    });
                    Some(exit)
                }
            }
            Handle::Docker { container } => match &self.inner.docker {
                None => Some(Exit {
                    code: None,
                    message: Some("Docker is not reachable to adopt the container".into()),
                }),
                Some(docker) => match docker::state(docker, container).await {
                    Ok(None) => None,
                    Ok(Some(exit)) => Some(exit),
                    Err(err) => Some(Exit {
                        code: None,
                        message: Some(format!("container is gone: {err:#}")),
                    }),
                },
            },
        };
        match ended {
            Some(exit) => {
                super::cgroup::remove(&task_id);
                task.state = terminal_state(false, &exit);
                task.exit_code = exit.code;
                task.message = exit.message;
                self.inner.lock().insert(task_id, task);
            }
            None => {
                tracing::info!("adopted running task {task_id}");
                if let (Some(engine), Handle::Docker { container }) =
                    (&self.inner.docker, &entry.handle)
                {
                    task.ip_addresses = task_addresses(engine, &task.spec, container).await;
                }
                let since = started_instant(entry.started_at.as_deref());
                self.inner.lock().insert(task_id.clone(), task);
                Inner::watch(&self.inner, &task_id, entry.handle, None, since, false);
            }
        }
    }

    /// Level-triggered: start every wanted task not known yet, kill every live task that is
    /// not wanted, forget acknowledged terminal tasks that are not wanted.
    pub async fn apply(&self, wanted: &[TaskSpec]) {
        let wanted_ids: HashSet<&str> = wanted.iter().map(|s| s.task_id.as_str()).collect();
        let known: HashSet<String> = self.inner.lock().keys().cloned().collect();
        for spec in wanted {
            if !known.contains(&spec.task_id) {
                self.start(spec.clone());
            }
        }
        let mut to_kill = Vec::new();
        let mut to_forget = Vec::new();
        for (id, task) in self.inner.lock().iter() {
            if wanted_ids.contains(id.as_str()) {
                continue;
            }
            if task.state.is_terminal() {
                if task.acknowledged {
                    to_forget.push(id.clone());
                }
            } else if !task.killing {
                to_kill.push(id.clone());
            }
        }
        for id in to_kill {
            self.kill(&id);
        }
        for id in to_forget {
            self.forget(&id);
        }
    }

    /// Starts one task: a process at once, a Docker task in the background (pulls can be
    /// slow; it reports TASK_STAGING meanwhile). Start errors become TASK_FAILED.
    pub fn start(&self, spec: TaskSpec) {
        let task_id = spec.task_id.clone();
        let sandbox = process::sandbox_dir(&self.inner.data_dir, &task_id);
        let spec = match super::volumes::attach(&self.inner.data_dir, &sandbox, spec.clone()) {
            Ok(attached) => attached,
            Err(err) => {
                let mut task = Task::new(spec, TaskState::Failed);
                task.message = Some(format!("{err:#}"));
                self.inner.lock().insert(task_id, task);
                return;
            }
        };
        if spec.docker.is_some() {
            self.start_docker(spec);
            return;
        }
        match process::spawn(&spec, &sandbox) {
            Ok((handle, child)) => {
                let mut task = Task::new(spec, TaskState::Running);
                task.started_at = Some(chrono::Utc::now().to_rfc3339());
                task.handle = Some(handle.clone());
                self.inner.lock().insert(task_id.clone(), task);
                self.inner.persist();
                self.inner.report_once_settled();
                Inner::watch(
                    &self.inner,
                    &task_id,
                    handle,
                    Some(child),
                    Instant::now(),
                    true,
                );
            }
            Err(err) => {
                let mut task = Task::new(spec, TaskState::Failed);
                task.message = Some(format!("{err:#}"));
                self.inner.lock().insert(task_id, task);
                self.inner.changed.notify_one();
            }
        }
    }

    fn start_docker(&self, spec: TaskSpec) {
        let task_id = spec.task_id.clone();
        let Some(engine) = self.inner.docker.clone() else {
            let mut task = Task::new(spec, TaskState::Failed);
            task.message = Some("Docker is not available on this agent".into());
            self.inner.lock().insert(task_id, task);
            self.inner.changed.notify_one();
            return;
        };
        self.inner
            .lock()
            .insert(task_id.clone(), Task::new(spec.clone(), TaskState::Staging));
        let inner = self.inner.clone();
        let key = task_id.clone();
        let job = tokio::spawn(async move {
            let syslog = Some(inner.syslog_socket.as_path()).filter(|s| s.exists());
            match docker::start(&engine, &spec, &inner.owner, syslog).await {
                Ok(container) => {
                    let addresses = task_addresses(&engine, &spec, &container).await;
                    let handle = Handle::Docker { container };
                    {
                        let mut tasks = inner.lock();
                        let Some(task) = tasks.get_mut(&task_id) else {
                            return;
                        };
                        task.state = TaskState::Running;
                        task.started_at = Some(chrono::Utc::now().to_rfc3339());
                        task.handle = Some(handle.clone());
                        task.ip_addresses = addresses;
                    }
                    inner.persist();
                    inner.report_once_settled();
                    Inner::watch(&inner, &task_id, handle, None, Instant::now(), true);
                }
                Err(err) => inner.finish(
                    &task_id,
                    Exit {
                        code: None,
                        message: Some(format!("{err:#}")),
                    },
                ),
            }
        });
        // Unless the job already got past starting (and installed its exit watcher).
        if let Some(task) = self
            .inner
            .lock()
            .get_mut(&key)
            .filter(|t| t.handle.is_none())
        {
            task.watcher = Some(job.abort_handle());
        }
    }

    /// Kills one task: SIGTERM then SIGKILL after its grace period (processes), `docker
    /// stop` with that timeout and removal (containers). Reports TASK_KILLING, then
    /// TASK_KILLED once it is gone.
    pub fn kill(&self, task_id: &str) {
        let (handle, grace) = {
            let mut tasks = self.inner.lock();
            let Some(task) = tasks.get_mut(task_id) else {
                return;
            };
            if task.state.is_terminal() || task.killing {
                return;
            }
            task.killing = true;
            task.state = TaskState::Killing;
            (
                task.handle.clone(),
                Duration::from_secs(task.spec.kill_grace_period_seconds),
            )
        };
        let inner = self.inner.clone();
        let task_id = task_id.to_string();
        match handle {
            Some(handle @ Handle::Process { .. }) => {
                tokio::spawn(async move { process::kill(&handle, grace).await });
            }
            Some(Handle::Docker { container }) => {
                tokio::spawn(async move {
                    if let Some(engine) = &inner.docker {
                        if let Err(err) = docker::kill(engine, &container, grace).await {
                            tracing::warn!("killing {container}: {err:#}");
                        }
                    }
                });
            }
            None => {
                // Still being pulled/created: stop that and remove whatever it created.
                if let Some(watcher) = inner
                    .lock()
                    .get_mut(&task_id)
                    .and_then(|t| t.watcher.take())
                {
                    watcher.abort();
                }
                inner.finish(
                    &task_id,
                    Exit {
                        code: None,
                        message: Some("killed before it started".into()),
                    },
                );
                tokio::spawn(async move {
                    if let Some(engine) = &inner.docker {
                        let _ = docker::remove(engine, &docker::container_name(&task_id)).await;
                    }
                });
            }
        }
    }

    fn forget(&self, task_id: &str) {
        let removed = self.inner.lock().remove(task_id);
        super::cgroup::remove(task_id);
        if let Some(Task {
            handle: Some(Handle::Docker { container }),
            ..
        }) = removed
        {
            if let Some(engine) = self.inner.docker.clone() {
                tokio::spawn(async move {
                    let _ = docker::remove(&engine, &container).await;
                });
            }
        }
    }

    /// Every task's status, for the heartbeat.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.inner.lock().values().map(Task::status).collect()
    }

    /// One task's status.
    pub fn status(&self, task_id: &str) -> Option<TaskStatus> {
        self.inner.lock().get(task_id).map(Task::status)
    }

    /// The scheduler accepted a heartbeat with these statuses: terminal ones among them may
    /// be forgotten once they are no longer assigned.
    pub fn acknowledge(&self, reported: &[TaskStatus]) {
        let mut tasks = self.inner.lock();
        for status in reported.iter().filter(|s| s.state.is_terminal()) {
            if let Some(task) = tasks.get_mut(&status.task_id) {
                if task.state == status.state {
                    task.acknowledged = true;
                }
            }
        }
    }

    /// Whether this agent can run Docker tasks.
    /// Resolves when a task's state or health changed since the last call (at once if one
    /// did meanwhile): the heartbeat loop reports then rather than at its next interval.
    pub async fn changed(&self) {
        self.inner.changed.notified().await
    }

    pub fn has_docker(&self) -> bool {
        self.inner.docker.is_some()
    }

    /// Whether a task of `app_id` is here and not ended; `app_id` with or without its
    /// leading `/` (volume folders keep it without).
    pub fn runs_app(&self, app_id: &str) -> bool {
        let wanted = app_id.trim_matches('/');
        self.inner
            .lock()
            .values()
            .any(|task| task.spec.app_id.trim_matches('/') == wanted && !task.state.is_terminal())
    }

    /// The engine, and each Docker task's id with its container (an ended task's until it
    /// is forgotten): where a Docker task's recent output is read from (it is not in the
    /// sandbox).
    pub fn containers(&self) -> Option<(Docker, Vec<(String, String)>)> {
        let engine = self.inner.docker.clone()?;
        let containers = self
            .inner
            .lock()
            .iter()
            // Ended tasks too: their container stays until the task is forgotten, and
            // its last lines (why it failed) are the ones that matter most.
            .filter_map(|(id, task)| match &task.handle {
                Some(Handle::Docker { container }) => Some((id.clone(), container.clone())),
                _ => None,
            })
            .collect();
        Some((engine, containers))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Task>> {
        // A panic while holding the lock leaves a consistent map; keep going.
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the exit watcher, the health checks and (processes) the log follower.
    fn watch(
        inner: &Arc<Inner>,
        task_id: &str,
        handle: Handle,
        child: Option<tokio::process::Child>,
        started: Instant,
        new_task: bool,
    ) {
        let mut tasks = inner.lock();
        let Some(task) = tasks.get_mut(task_id) else {
            return;
        };
        let sandbox = process::sandbox_dir(&inner.data_dir, task_id);
        let watcher = {
            let inner = inner.clone();
            let sandbox = sandbox.clone();
            let task_id = task_id.to_string();
            let handle = handle.clone();
            tokio::spawn(async move {
                let exit = match &handle {
                    Handle::Process { .. } => process::wait_exit(child, &handle, &sandbox).await,
                    Handle::Docker { container } => match &inner.docker {
                        Some(engine) => docker::wait_exit(engine, container).await,
                        None => Exit {
                            code: None,
                            message: Some("Docker is not available".into()),
                        },
                    },
                };
                inner.finish(&task_id, exit);
            })
        };
        task.watcher = Some(watcher.abort_handle());
        let place = match (&handle, &inner.docker) {
            (Handle::Docker { container }, Some(engine)) => health::CheckPlace::Container {
                engine: engine.clone(),
                name: container.clone(),
            },
            _ => health::CheckPlace::Host,
        };
        for (index, check) in task.spec.health_checks.iter().enumerate() {
            let job = tokio::spawn(health::run_check(
                index,
                check.clone(),
                task.health.clone(),
                started,
                place.clone(),
                inner.changed.clone(),
            ));
            task.side_jobs.push(job.abort_handle());
        }
        if let Handle::Process { .. } = handle {
            let job = tokio::spawn(logs::follow(
                sandbox,
                logs::tag_for(&task.spec.app_id),
                inner.syslog_socket.clone(),
                new_task,
            ));
            task.log_job = Some(job.abort_handle());
        }
    }

    /// A task just started: tell the heartbeat loop once it has stayed up for
    /// [`START_SETTLE`], as supervisord's `startsecs` does, so that a command failing at
    /// once is reported failed (which a deploy stops at) rather than running for a moment
    /// (which would end the deploy as if it had worked). An exit before then is reported at
    /// once by [`Inner::finish`].
    fn report_once_settled(&self) {
        let changed = self.changed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(START_SETTLE).await;
            changed.notify_one();
        });
    }

    /// Records how a task ended, stops its side jobs, and persists the table.
    fn finish(&self, task_id: &str, exit: Exit) {
        {
            let mut tasks = self.lock();
            let Some(task) = tasks.get_mut(task_id) else {
                return;
            };
            if task.state.is_terminal() {
                return;
            }
            task.state = terminal_state(task.killing, &exit);
            task.exit_code = exit.code;
            task.message = exit.message;
            task.stop_jobs();
            tracing::info!(
                "task {task_id} ended: {:?} {:?}",
                task.state,
                task.exit_code
            );
        }
        self.persist();
        self.changed.notify_one();
    }

    /// Writes the live tasks to the table; a failure is logged (the tasks still run).
    fn persist(&self) {
        let entries: Vec<PersistedTask> = self
            .lock()
            .values()
            .filter(|t| !t.state.is_terminal())
            .filter_map(|t| {
                Some(PersistedTask {
                    spec: t.spec.clone(),
                    handle: t.handle.clone()?,
                    started_at: t.started_at.clone(),
                })
            })
            .collect();
        if let Err(err) = table::save(&self.data_dir, &entries) {
            tracing::error!("cannot persist the task table: {err:#}");
        }
    }
}

fn terminal_state(killing: bool, exit: &Exit) -> TaskState {
    if killing {
        TaskState::Killed
    } else if exit.code == Some(0) {
        TaskState::Finished
    } else {
        TaskState::Failed
    }
}

/// The `Instant` a task started at, from its RFC 3339 start time (now when unknown).
fn started_instant(started_at: Option<&str>) -> Instant {
    let now = Instant::now();
    let Some(started) = started_at.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    else {
        return now;
    };
    let elapsed = chrono::Utc::now().signed_duration_since(started);
    elapsed
        .to_std()
        .ok()
        .and_then(|e| now.checked_sub(e))
        .unwrap_or(now)
}
