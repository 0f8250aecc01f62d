//! Runs one batch of a play: fact gathering, pre_tasks, roles, tasks, post_tasks, with
//! handlers flushed after each section; the linear strategy (each task on all hosts, in
//! parallel up to `--forks`, before the next) and the free one (each host on its own);
//! blocks with rescue/always, includes resolved at run time, `meta`, and the play-wide stops
//! (`any_errors_fatal`, `max_fail_percentage`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures::future::{join_all, BoxFuture};
use serde_json::{json, Value};

use super::facts;
use super::loops;
use super::result::Outcome;
use super::state::{Frame, Runner};
use super::tags::should_run;
use super::vars::{resolve_lazy, Layers};
use crate::modules::ReadAhead;
use crate::playbook::{self, Batch, Play, Role, RoleFiles, Strategy, Task, TaskKind};
use crate::report::{HostEvent, Status, TaskInfo};
use crate::transport::ExecOptions;
use crate::Vars;
use tracing::Instrument;

/// Whether variables anywhere in the play mention `hostvars` or `groups` (then every task
/// gets them; otherwise only tasks that name them do).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mentions {
    pub hostvars: bool,
    pub groups: bool,
}

#[derive(Clone)]
struct Handler {
    task: Arc<Task>,
    role: Option<Arc<Role>>,
}

/// One batch of one play.
pub struct PlayRun<'a> {
    pub r: &'a Runner,
    pub play: &'a Play,
    /// Every host of the play (all batches).
    pub play_hosts: Vec<String>,
    pub batch: Vec<String>,
    pub vars_files: &'a Vars,
    pub mentions: Mentions,
    handlers: Mutex<Vec<Handler>>,
    /// Roles whose defaults and vars every later task sees (see [`Self::public_roles`]).
    public_roles: Mutex<Vec<Arc<Role>>>,
    aborted: AtomicBool,
    /// The variables the engine reads itself (connection, become), resolved for every task.
    pub always_resolved: HashSet<String>,
    /// Roles that ran tasks so far, in order (`ansible_play_role_names` adds included ones).
    pub roles_seen: Mutex<Vec<String>>,
}

impl PlayRun<'_> {
    /// Tells this play from the run's others (the play lives as long as the run).
    pub fn play_id(&self) -> usize {
        std::ptr::from_ref(self.play) as usize
    }
}

/// Splits the play's hosts by `serial` (the last size repeats; percentages of all hosts).
pub fn batches(hosts: &[String], serial: &[Batch]) -> Vec<Vec<String>> {
    if serial.is_empty() || hosts.is_empty() {
        return vec![hosts.to_vec()];
    }
    let total = hosts.len();
    let size_of = |b: &Batch| -> usize {
        match b {
            Batch::Count(0) => total,
            Batch::Count(n) => *n,
            Batch::Percent(p) => ((total as f64) * p / 100.0).floor().max(1.0) as usize,
        }
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while start < total {
        let size = size_of(&serial[i.min(serial.len() - 1)]).max(1);
        let end = (start + size).min(total);
        out.push(hosts[start..end].to_vec());
        start = end;
        i += 1;
    }
    out
}

/// The answers to a play's `vars_prompt`, asked before any host is contacted. A variable
/// given with `-e` is not asked (as in Ansible). Without a terminal (`interactive` false)
/// each prompt takes its `default`; one without a default is an error naming it.
pub fn prompt_answers(play: &Play, extra_vars: &Vars, interactive: bool) -> anyhow::Result<Vars> {
    let mut answers = Vars::new();
    for p in &play.vars_prompt {
        if extra_vars.contains_key(&p.name) {
            continue;
        }
        let answer = if interactive {
            ask(p).with_context(|| format!("{}: vars_prompt '{}'", p.loc, p.name))?
        } else {
            match &p.default {
                Some(d) => d.clone(),
                None => anyhow::bail!(
                    "{}: vars_prompt '{}' needs an answer but stdin is not a terminal; give it with -e {}=VALUE or set a 'default'",
                    p.loc,
                    p.name,
                    p.name
                ),
            }
        };
        answers.insert(p.name.clone(), Value::from(answer));
    }
    Ok(answers)
}

/// Asks one prompt on the terminal (twice with `confirm`); an empty answer is the default.
fn ask(p: &playbook::VarPrompt) -> anyhow::Result<String> {
    let term = console::Term::stderr();
    let read = |question: &str| -> anyhow::Result<String> {
        term.write_str(question)?;
        let line = if p.private {
            term.read_secure_line()?
        } else {
            term.read_line()?
        };
        Ok(line)
    };
    let question = match &p.default {
        Some(d) => format!("{} [{d}]: ", p.prompt),
        None => format!("{}: ", p.prompt),
    };
    loop {
        let first = read(&question)?;
        if p.confirm {
            let second = read(&format!("confirm {question}"))?;
            if first != second {
                term.write_line("***** VALUES ENTERED DO NOT MATCH ****")?;
                continue;
            }
        }
        return Ok(match (&p.default, first.is_empty()) {
            (Some(d), true) => d.clone(),
            _ => first,
        });
    }
}

/// The number of tasks a host runs in a play, counting what is known before it runs.
pub fn count_tasks(play: &Play) -> usize {
    fn count(tasks: &[Task]) -> usize {
        tasks
            .iter()
            .map(|t| match &t.kind {
                TaskKind::Module { .. } => 1,
                TaskKind::Block { block, always, .. } => count(block) + count(always),
                TaskKind::IncludeTasks {
                    loaded: Some(tasks),
                    ..
                } => count(tasks),
                TaskKind::IncludeRole {
                    loaded: Some(role), ..
                } => count(&role.tasks),
                TaskKind::IncludeTasks { .. } | TaskKind::IncludeRole { .. } => 1,
                TaskKind::Meta(_) => 0,
            })
            .sum()
    }
    let roles: usize = play.roles.iter().map(|r| count(&r.tasks)).sum();
    usize::from(play.gather_facts)
        + count(&play.pre_tasks)
        + roles
        + count(&play.tasks)
        + count(&play.post_tasks)
}

impl<'a> PlayRun<'a> {
    pub fn new(
        r: &'a Runner,
        play: &'a Play,
        play_hosts: Vec<String>,
        batch: Vec<String>,
        vars_files: &'a Vars,
        mentions: Mentions,
    ) -> Self {
        let mut handlers = Vec::new();
        for role in &play.roles {
            for h in &role.handlers {
                handlers.push(Handler {
                    task: Arc::new(h.clone()),
                    role: Some(role.clone()),
                });
            }
        }
        for h in &play.handlers {
            handlers.push(Handler {
                task: Arc::new(h.clone()),
                role: h.role.clone(),
            });
        }
        PlayRun {
            r,
            play,
            play_hosts,
            batch,
            vars_files,
            mentions,
            handlers: Mutex::new(handlers),
            public_roles: Mutex::new(Vec::new()),
            aborted: AtomicBool::new(false),
            always_resolved: super::task::always_resolved(),
            roles_seen: Mutex::new(Vec::new()),
        }
    }

    /// The play was stopped for every host (end_play, any_errors_fatal, max_fail_percentage).
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
        for h in &self.batch {
            self.r.with_host(h, |s| s.ended = true);
        }
    }

    fn handlers(&self) -> Vec<Handler> {
        match self.handlers.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The handlers a `notify` name reaches: by name, `role : name`, or `listen` topic.
    /// Like Ansible, a name reaches only the first handler of that name; a `listen` topic
    /// reaches every handler that listens to it.
    pub fn handler_indexes(&self, name: &str) -> Vec<usize> {
        let handlers = self.handlers();
        let by_name = handlers.iter().position(|h| {
            h.task.name.as_deref() == Some(name)
                || h.task.display_name() == name
                || h.role.as_ref().is_some_and(|r| {
                    h.task
                        .name
                        .as_ref()
                        .is_some_and(|n| format!("{} : {}", r.name, n) == name)
                })
        });
        let mut out: Vec<usize> = by_name.into_iter().collect();
        for (i, h) in handlers.iter().enumerate() {
            if h.task.listen.iter().any(|l| l == name) && !out.contains(&i) {
                out.push(i);
            }
        }
        out
    }

    fn add_role_handlers(&self, role: &Arc<Role>) {
        let mut handlers = match self.handlers.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        if handlers
            .iter()
            .any(|h| h.role.as_ref().is_some_and(|r| r.path == role.path))
        {
            return;
        }
        for h in &role.handlers {
            handlers.push(Handler {
                task: Arc::new(h.clone()),
                role: Some(role.clone()),
            });
        }
    }

    fn root_frame(&self) -> Frame {
        Frame {
            tags: self.play.tags.clone(),
            ..Default::default()
        }
    }

    /// Runs the batch with the play's strategy.
    pub async fn run(&self) {
        match self.play.strategy {
            Strategy::Linear => self.sequence(&self.batch).await,
            Strategy::Free => {
                join_all(
                    self.batch
                        .iter()
                        .map(|h| async move { self.sequence(std::slice::from_ref(h)).await }),
                )
                .await;
            }
        }
    }

    async fn sequence(&self, hosts: &[String]) {
        if self.play.gather_facts {
            self.gather_facts(hosts).await;
        }
        let root = self.root_frame();
        self.run_tasks(&self.play.pre_tasks, &root, hosts).await;
        self.flush_handlers(hosts).await;
        for role in &self.play.roles {
            let frame = root.for_role(role);
            self.run_tasks(&role.tasks, &frame, hosts).await;
        }
        self.run_tasks(&self.play.tasks, &root, hosts).await;
        self.flush_handlers(hosts).await;
        self.run_tasks(&self.play.post_tasks, &root, hosts).await;
        self.flush_handlers(hosts).await;
    }

    fn active(&self, hosts: &[String]) -> Vec<String> {
        if self.aborted() {
            return Vec::new();
        }
        hosts
            .iter()
            .filter(|h| self.r.is_active(h))
            .cloned()
            .collect()
    }

    /// Runs a list of tasks on the hosts still active, one task after the other.
    pub fn run_tasks<'s>(
        &'s self,
        tasks: &'s [Task],
        frame: &'s Frame,
        hosts: &'s [String],
    ) -> BoxFuture<'s, ()> {
        Box::pin(async move {
            for task in tasks {
                let active = self.active(hosts);
                if active.is_empty() {
                    break;
                }
                match &task.kind {
                    TaskKind::Module { .. } => self.run_step(task, frame, &active).await,
                    TaskKind::Block {
                        block,
                        rescue,
                        always,
                    } => {
                        self.run_block(task, frame, &active, block, rescue, always)
                            .await
                    }
                    TaskKind::IncludeTasks { .. } | TaskKind::IncludeRole { .. } => {
                        self.run_include(task, frame, &active).await
                    }
                    TaskKind::Meta(m) => self.run_meta(task, frame, &active, m).await,
                }
            }
        })
    }

    fn task_info(&self, task: &Task, frame: &Frame) -> TaskInfo {
        let mut name = task.display_name();
        if name.contains("{{") {
            let mut vars = self.play.vars.clone();
            for (k, v) in &self.r.opts.extra_vars {
                vars.insert(k.clone(), v.clone());
            }
            if let Ok(rendered) = self.r.templar.render_str(&name, &vars) {
                name = rendered;
            }
        }
        TaskInfo {
            id: self.r.next_task_id(),
            name,
            handler: frame.handler,
        }
    }

    /// One module task on every active host, in parallel up to `--forks`.
    async fn run_step(&self, task: &Task, frame: &Frame, active: &[String]) {
        if !frame.handler
            && !should_run(
                &frame.tags_of(task),
                &self.r.opts.tags,
                &self.r.opts.skip_tags,
            )
        {
            return;
        }
        let prep = self.prepare(task, frame);
        // A templated `run_once` is judged on the first host, as Ansible does; when it
        // cannot be evaluated every host runs the task and fails with the error.
        // The first host's variables are only needed for templated keywords.
        let templated = [
            task.run_once.as_ref().or(frame.run_once.as_ref()),
            task.any_errors_fatal
                .as_ref()
                .or(frame.any_errors_fatal.as_ref())
                .or(self.play.any_errors_fatal.as_ref()),
        ]
        .iter()
        .any(|f| matches!(f, Some(playbook::Flag::Template(_))));
        let first_vars = if templated {
            self.task_vars(task, frame, &active[0], &prep)
        } else {
            Arc::default()
        };
        let run_once = self
            .eval_flag(
                task,
                "run_once",
                task.run_once.as_ref().or(frame.run_once.as_ref()),
                &first_vars,
            )
            .unwrap_or(None)
            .unwrap_or(false);
        let targets: &[String] = if run_once { &active[..1] } else { active };
        let info = self.task_info(task, frame);
        self.r.reporter.task_start(&info, targets);
        let statuses = join_all(targets.iter().map(|h| {
            let (info, prep) = (&info, &prep);
            async move {
                let _permit = self.r.forks.acquire().await.ok();
                self.exec_task(task, frame, h, info, prep, active).await
            }
        }))
        .await;
        let fatal = self.errors_fatal(Some(task), frame, &first_vars);
        self.check_fatal(frame, fatal, &statuses);
    }

    /// `any_errors_fatal` of a task (its own, its blocks', the play's), evaluated with
    /// `vars` when it is a template; an error is reported and counts as fatal.
    fn errors_fatal(&self, task: Option<&Task>, frame: &Frame, vars: &Arc<Vars>) -> bool {
        let flag = task
            .and_then(|t| t.any_errors_fatal.as_ref())
            .or(frame.any_errors_fatal.as_ref())
            .or(self.play.any_errors_fatal.as_ref());
        let Some(flag) = flag else { return false };
        if let Some(b) = flag.fixed() {
            return b;
        }
        let placeholder;
        let task = match task {
            Some(t) => t,
            None => {
                placeholder = Task::named(&self.play.name, self.play.loc.clone());
                &placeholder
            }
        };
        match self.eval_flag(task, "any_errors_fatal", Some(flag), vars) {
            Ok(b) => b.unwrap_or(false),
            Err(msg) => {
                self.r.reporter.warning(&msg);
                true
            }
        }
    }

    /// any_errors_fatal and max_fail_percentage, after a task.
    fn check_fatal(&self, frame: &Frame, fatal: bool, statuses: &[Status]) {
        if frame.rescuable {
            return;
        }
        let failed_now = statuses
            .iter()
            .any(|s| matches!(s, Status::Failed | Status::Unreachable));
        if fatal && failed_now {
            self.r
                .reporter
                .warning("any_errors_fatal: a host failed, so the play stops for every host");
            self.abort();
            return;
        }
        if let Some(pct) = self.play.max_fail_percentage {
            let failed = self
                .batch
                .iter()
                .filter(|h| self.r.with_host(h, |s| s.failed || s.unreachable))
                .count();
            if !self.batch.is_empty() && (failed as f64) * 100.0 / (self.batch.len() as f64) > pct {
                self.r.reporter.warning(&format!(
                    "max_fail_percentage {pct}% exceeded ({failed} of {} hosts failed); the play stops",
                    self.batch.len()
                ));
                self.abort();
            }
        }
    }

    /// block, then rescue for the hosts that failed in it, then always for all of them.
    async fn run_block(
        &self,
        task: &Task,
        frame: &Frame,
        entered: &[String],
        block: &[Task],
        rescue: &[Task],
        always: &[Task],
    ) {
        let base = frame.child(task);
        let mut block_frame = base.clone();
        block_frame.rescuable = frame.rescuable || !rescue.is_empty();
        self.run_tasks(block, &block_frame, entered).await;

        let failed_in_block: Vec<String> = entered
            .iter()
            .filter(|h| self.r.with_host(h, |s| s.failed && !s.unreachable))
            .cloned()
            .collect();
        if !rescue.is_empty() && !failed_in_block.is_empty() && !self.aborted() {
            for h in &failed_in_block {
                let failure = self.r.with_host(h, |s| {
                    s.failed = false;
                    s.last_failure.take()
                });
                self.r.with_stats(h, |s| {
                    s.failed = s.failed.saturating_sub(1);
                    s.rescued += 1;
                });
                let mut facts = Vars::new();
                if let Some((name, result)) = failure {
                    facts.insert("ansible_failed_task".into(), json!({"name": name}));
                    facts.insert("ansible_failed_result".into(), result);
                }
                self.r.set_host_facts(h, facts);
            }
            self.run_tasks(rescue, &base, &failed_in_block).await;
        }
        if !always.is_empty() && !self.aborted() {
            let targets: Vec<String> = entered
                .iter()
                .filter(|h| self.r.with_host(h, |s| !s.unreachable && !s.ended))
                .cloned()
                .collect();
            let revived: Vec<String> = targets
                .iter()
                .filter(|h| {
                    self.r.with_host(h, |s| {
                        let was = s.failed;
                        s.failed = false;
                        was
                    })
                })
                .cloned()
                .collect();
            self.run_tasks(always, &base, &targets).await;
            for h in &revived {
                self.r.with_host(h, |s| s.failed = true);
            }
        }
    }

    /// Whether all `when` conditions (inherited and own) hold on a host; errors are failures.
    fn when_holds(&self, task: &Task, frame: &Frame, vars: &Arc<Vars>) -> Result<bool, String> {
        for cond in frame.when.iter().chain(task.when.iter()) {
            match self.r.templar.eval_bool_shared(cond, vars) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    return Err(format!(
                        "The conditional check '{cond}' failed. The error was: {e:#}"
                    ))
                }
            }
        }
        Ok(true)
    }

    /// `meta:` actions. As in Ansible, `when` selects the hosts for the per-host actions;
    /// noop, refresh_inventory and reset_connection do not support it (a warning, then
    /// they run anyway).
    async fn run_meta(&self, task: &Task, frame: &Frame, hosts: &[String], action: &str) {
        let no_when = matches!(action, "noop" | "refresh_inventory" | "reset_connection");
        let holds: Vec<String> = if no_when {
            if !task.when.is_empty() {
                self.r.reporter.warning(&format!(
                    "{}: meta: {action} does not support a when conditional; it runs anyway",
                    task.loc
                ));
            }
            hosts.to_vec()
        } else {
            let prep = self.prepare(task, frame);
            hosts
                .iter()
                .filter(|h| {
                    let vars = self.task_vars(task, frame, h, &prep);
                    self.when_holds(task, frame, &vars).unwrap_or(false)
                })
                .cloned()
                .collect()
        };
        if holds.is_empty() {
            return;
        }
        match action {
            "flush_handlers" => self.flush_handlers(&holds).await,
            "end_play" => self.abort(),
            // The hosts of this batch are done; the play goes on with the next batch.
            "end_batch" => {
                for h in &self.batch {
                    self.r.with_host(h, |s| s.ended = true);
                }
            }
            "end_host" => {
                for h in &holds {
                    self.r.with_host(h, |s| s.ended = true);
                }
            }
            "clear_host_errors" => {
                for h in &self.batch {
                    self.r.with_host(h, |s| s.failed = false);
                }
            }
            // Gathered facts and cacheable set_fact facts go; other set_fact values and
            // registered results stay, as with Ansible's fact cache.
            "clear_facts" => {
                for h in &holds {
                    self.r.clear_gathered_facts(h);
                }
            }
            "reset_connection" => {
                for h in &holds {
                    self.r.pool.reset(h).await;
                }
            }
            "refresh_inventory" => {
                if self.r.opts.verbosity >= 1 {
                    self.r.reporter.warning(
                        "meta: refresh_inventory: the inventory is a file read once per run; nothing to refresh",
                    );
                }
            }
            "noop" => {}
            other => self.r.reporter.warning(&format!(
                "{}: meta: {other} is not supported; ignored",
                task.loc
            )),
        }
    }

    /// Runs notified handlers, in definition order, on the hosts that notified them.
    async fn flush_handlers(&self, hosts: &[String]) {
        for _pass in 0..10 {
            let mut ran = false;
            for (i, handler) in self.handlers().iter().enumerate() {
                let targets: Vec<String> = self
                    .active(hosts)
                    .into_iter()
                    .filter(|h| self.r.with_host(h, |s| s.notified.remove(&i)))
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                ran = true;
                let mut frame = match &handler.role {
                    Some(role) => self.root_frame().for_role(role),
                    None => self.root_frame(),
                };
                frame.handler = true;
                self.run_tasks(
                    std::slice::from_ref(handler.task.as_ref()),
                    &frame,
                    &targets,
                )
                .await;
            }
            if !ran {
                break;
            }
        }
    }

    /// Records and reports a result that belongs to no module task (facts, includes).
    fn record(&self, info: &TaskInfo, host: &str, action: &str, outcome: Outcome, count: bool) {
        let status = outcome.status;
        if count {
            self.r.with_stats(host, |s| match status {
                Status::Ok => s.ok += 1,
                Status::Skipped => s.skipped += 1,
                Status::Failed => s.failed += 1,
                Status::Unreachable => s.unreachable += 1,
                _ => {}
            });
        }
        match status {
            Status::Failed => self.r.with_host(host, |s| {
                s.failed = true;
                s.last_failure = Some((info.name.clone(), Value::Object(outcome.result.clone())));
            }),
            Status::Unreachable => self.r.with_host(host, |s| s.unreachable = true),
            _ => {}
        }
        self.r.reporter.host_result(
            info,
            &HostEvent {
                host: host.to_string(),
                delegated: None,
                status,
                item: None,
                loop_summary: false,
                action: action.to_string(),
                result: Value::Object(outcome.result),
                changes: vec![],
                diffs: vec![],
            },
        );
    }

    /// The variables that say how to reach a host, before any task ran.
    fn connection_vars(&self, host: &str) -> Arc<Vars> {
        let inv = self.r.inventory_vars(host);
        let layers = Layers {
            inventory: Some(&inv),
            play_vars: Some(&self.play.vars),
            vars_files: Some(self.vars_files),
            extra_vars: Some(&self.r.opts.extra_vars),
            ..Default::default()
        };
        let mut vars = layers.merge();
        vars.insert("inventory_hostname".into(), Value::from(host));
        let roots = super::task::always_resolved();
        resolve_lazy(&mut vars, Some(&roots), &self.r.templar);
        Arc::new(vars)
    }

    /// Facts are gathered with the play's privilege escalation, as Ansible does.
    fn facts_exec_options(&self, vars: &Arc<Vars>) -> Result<ExecOptions, String> {
        let task = Task::named("Gathering Facts", self.play.loc.clone());
        let on = self.eval_flag(&task, "become", self.play.become_.as_ref(), vars)?;
        Ok(ExecOptions {
            become_: self.resolve_become(on, self.play.become_user.clone(), vars),
            ..Default::default()
        })
    }

    /// Connects (once per run) and gathers facts in one round trip per host.
    async fn gather_facts(&self, hosts: &[String]) {
        let active = self.active(hosts);
        if active.is_empty() {
            return;
        }
        let info = TaskInfo {
            id: self.r.next_task_id(),
            name: "Gathering Facts".into(),
            handler: false,
        };
        self.r.reporter.task_start(&info, &active);
        let gather = &facts::GatherOptions {
            subset: if self.play.gather_subset.is_empty() {
                vec!["all".into()]
            } else {
                self.play.gather_subset.clone()
            },
            filter: vec![],
            fact_path: self
                .play
                .fact_path
                .clone()
                .unwrap_or_else(|| facts::DEFAULT_FACT_PATH.into()),
            timeout: self
                .play
                .gather_timeout
                .unwrap_or(facts::DEFAULT_GATHER_TIMEOUT),
        };
        let statuses = join_all(active.iter().map(|h| {
            let info = &info;
            async move {
                let _permit = self.r.forks.acquire().await.ok();
                let vars = self.connection_vars(h);
                let opts = self.facts_exec_options(&vars);
                // The play's units ride along in the same exec (see `ReadAhead`).
                let ahead = ReadAhead::new(super::units::play_unit_names(
                    self.play,
                    &self.r.templar,
                    &vars,
                ));
                let outcome = match (self.r.pool.get(h, &vars).await, opts) {
                    (_, Err(msg)) => Outcome::failed(msg),
                    (Err(e), _) => {
                        Outcome::unreachable(format!("Failed to connect to the host: {e}"))
                    }
                    (Ok(t), Ok(opts)) => match facts::gather(
                        &*t,
                        gather,
                        &opts,
                        ahead
                            .command()
                            .as_ref()
                            .map(|(marker, command)| facts::Beside { marker, command }),
                    )
                    .instrument(tracing::debug_span!("task", task = %info.name))
                    .await
                    {
                        Err(e) if super::connect::is_unreachable(&e) => {
                            Outcome::unreachable(format!("{e:#}"))
                        }
                        Err(e) => Outcome::failed(format!("gathering facts: {e:#}")),
                        Ok(out) => match facts::collect(
                            ahead
                                .take(&out.stdout, &self.r.host_reads(t.host()).units)
                                .await,
                            gather,
                        ) {
                            Ok(gathered) => {
                                self.r.merge_gathered_facts(h, &gathered);
                                Outcome::new(Status::Ok, Vars::new())
                            }
                            Err(e) => Outcome::failed(format!(
                                "gathering facts failed (rc {}): {e:#}: {}",
                                out.rc,
                                out.stderr.trim()
                            )),
                        },
                    },
                };
                let status = outcome.status;
                self.record(info, h, "gather_facts", outcome, true);
                status
            }
        }))
        .await;
        let fatal = self.errors_fatal(None, &self.root_frame(), &self.connection_vars(&active[0]));
        self.check_fatal(&self.root_frame(), fatal, &statuses);
    }

    /// include_tasks / include_role (and static imports): static ones run their loaded
    /// tasks with the include's keywords inherited; dynamic ones are resolved per host and
    /// loop item, then run per group of hosts that include the same thing.
    async fn run_include(&self, task: &Task, frame: &Frame, hosts: &[String]) {
        let static_tasks: Option<(Vec<Task>, Option<Arc<Role>>)> = match &task.kind {
            TaskKind::IncludeTasks {
                loaded: Some(t),
                import: true,
                ..
            } if task.loop_.is_none() => Some((t.clone(), None)),
            TaskKind::IncludeRole {
                loaded: Some(role),
                import: true,
                ..
            } if task.loop_.is_none() => Some((role.tasks.clone(), Some(role.clone()))),
            _ => None,
        };
        if let Some((tasks, role)) = static_tasks {
            let mut child = frame.child(task);
            if let Some(role) = &role {
                self.add_role_handlers(role);
                self.make_public(role);
                child = child.for_role(role);
            }
            self.run_tasks(&tasks, &child, hosts).await;
            return;
        }
        let (target_raw, action) = match &task.kind {
            TaskKind::IncludeTasks { file, .. } => (file.clone(), "include_tasks"),
            TaskKind::IncludeRole { name, .. } => (name.clone(), "include_role"),
            _ => return,
        };
        let info = self.task_info(task, frame);
        self.r.reporter.task_start(&info, hosts);
        let prep = self.prepare(task, frame);
        // (target, role files, item vars) -> hosts, in order of first appearance.
        let mut groups: Vec<(String, RoleFiles, Vars, Vec<String>)> = Vec::new();
        for host in hosts {
            let vars = self.task_vars(task, frame, host, &prep);
            match self.when_holds(task, frame, &vars) {
                Ok(true) => {}
                Ok(false) => {
                    let cond = frame.when.iter().chain(task.when.iter()).next();
                    let o = Outcome::skipped_condition(cond.map(String::as_str).unwrap_or(""));
                    self.record(&info, host, action, o, true);
                    continue;
                }
                Err(msg) => {
                    self.record(&info, host, action, Outcome::failed(msg), true);
                    continue;
                }
            }
            let items: Vec<Option<Value>> = match &task.loop_ {
                None => vec![None],
                Some(spec) => {
                    let expanded = loops::items(&self.r.templar, spec, &vars, action)
                        .map_err(|e| format!("{e:#}"));
                    match expanded {
                        Ok(items) => items.into_iter().map(Some).collect(),
                        Err(msg) => {
                            self.record(&info, host, action, Outcome::failed(msg), true);
                            continue;
                        }
                    }
                }
            };
            let loop_var = task
                .loop_control
                .loop_var
                .clone()
                .unwrap_or_else(|| "item".into());
            for (i, item) in items.into_iter().enumerate() {
                let mut item_vars = Vars::new();
                if let Some(item) = &item {
                    item_vars.insert(loop_var.clone(), item.clone());
                    item_vars.insert("ansible_loop_var".into(), Value::from(loop_var.clone()));
                    if let Some(index_var) = &task.loop_control.index_var {
                        item_vars.insert(index_var.clone(), Value::from(i));
                    }
                }
                let mut render_vars = vars.clone();
                if !item_vars.is_empty() {
                    let render_vars = Arc::make_mut(&mut render_vars);
                    for (k, v) in &item_vars {
                        render_vars.insert(k.clone(), v.clone());
                    }
                }
                let rendered = self
                    .r
                    .templar
                    .render_str_shared(&target_raw, &render_vars)
                    .and_then(|t| Ok((t, self.role_files(task, &render_vars)?)));
                let (target, files) = match rendered {
                    Ok(t) => t,
                    Err(e) => {
                        self.record(&info, host, action, Outcome::failed(format!("{e:#}")), true);
                        break;
                    }
                };
                let mut result = Vars::new();
                result.insert("include".into(), Value::from(target.clone()));
                if let Some(item) = &item {
                    result.insert("item".into(), item.clone());
                }
                // Ansible counts each dynamic include (a task file or a role, per host
                // and loop item) as one `ok`; a static import is not a task of its own.
                let counted = match &task.kind {
                    TaskKind::IncludeTasks { import, .. }
                    | TaskKind::IncludeRole { import, .. } => !import,
                    _ => false,
                };
                self.record(
                    &info,
                    host,
                    action,
                    Outcome::new(Status::Ok, result),
                    counted,
                );
                match groups
                    .iter_mut()
                    .find(|(t, f, v, _)| *t == target && *f == files && *v == item_vars)
                {
                    Some((_, _, _, members)) => members.push(host.clone()),
                    None => groups.push((target, files, item_vars, vec![host.clone()])),
                }
            }
        }
        for (target, files, item_vars, members) in groups {
            let members = self.active(&members);
            if members.is_empty() {
                continue;
            }
            let role = task.role.clone().or_else(|| frame.role.clone());
            let loaded = match &task.kind {
                _ if frame.includes.len() >= super::state::MAX_INCLUDE_DEPTH => Err(format!(
                    "{action} {target}: includes nested more than {} deep (an include \
                     cycle?): {} -> {target}",
                    super::state::MAX_INCLUDE_DEPTH,
                    include_chain(&frame.includes),
                )),
                TaskKind::IncludeTasks { loaded, .. } => match loaded {
                    Some(tasks) => match playbook::fallback::unresolved_modules(tasks)[..] {
                        [] => Ok((Arc::new(tasks.clone()), role.clone())),
                        ref errors => Err(format!("include_tasks {target}: {}", errors.join("; "))),
                    },
                    None => self
                        .load_include(&target, task, role.as_deref())
                        .map(|t| (t, role.clone())),
                },
                TaskKind::IncludeRole { loaded, .. } => match loaded {
                    Some(r) => match playbook::fallback::unresolved_modules(&r.tasks)[..] {
                        [] => Ok((Arc::new(r.tasks.clone()), Some(r.clone()))),
                        ref errors => Err(format!("include_role {target}: {}", errors.join("; "))),
                    },
                    None => self
                        .load_role(&target, &files)
                        .map(|r| (Arc::new(r.tasks.clone()), Some(r))),
                },
                _ => continue,
            };
            match loaded {
                Err(msg) => {
                    for h in &members {
                        self.record(&info, h, action, Outcome::failed(msg.clone()), true);
                    }
                }
                Ok((tasks, role)) => {
                    let mut child = frame.child(task);
                    child.includes.push(target.clone());
                    child.when = frame.when.clone();
                    if let TaskKind::IncludeTasks {
                        apply: Some(apply), ..
                    }
                    | TaskKind::IncludeRole {
                        apply: Some(apply), ..
                    } = &task.kind
                    {
                        child = child.child(apply);
                    }
                    if !item_vars.is_empty() {
                        child.vars.push(Arc::new(item_vars));
                    }
                    if let (TaskKind::IncludeRole { public, .. }, Some(role)) = (&task.kind, &role)
                    {
                        self.add_role_handlers(role);
                        if *public {
                            self.make_public(role);
                        }
                        child = child.for_role(role);
                    }
                    self.run_tasks(&tasks, &child, &members).await;
                }
            }
        }
    }

    fn include_path(&self, file: &str, task: &Task, role: Option<&Role>) -> PathBuf {
        let path = Path::new(file);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let mut candidates = Vec::new();
        if let Some(role) = role {
            candidates.push(role.path.join("tasks").join(file));
        }
        if let Some(dir) = task.loc.file.parent() {
            candidates.push(dir.join(file));
        }
        candidates.push(self.r.playbook_dir.join(file));
        candidates
            .iter()
            .find(|p| p.exists())
            .cloned()
            .unwrap_or_else(|| candidates[0].clone())
    }

    fn load_include(
        &self,
        file: &str,
        task: &Task,
        role: Option<&Role>,
    ) -> Result<Arc<Vec<Task>>, String> {
        let path = self.include_path(file, task, role);
        if let Ok(cache) = self.r.include_cache.lock() {
            if let Some(tasks) = cache.get(&path) {
                return Ok(tasks.clone());
            }
        }
        let role_arc = task.role.clone();
        let tasks = playbook::load_tasks_file(&path, role_arc)
            .map(Arc::new)
            .map_err(|e| format!("{}: include_tasks {file}: {e:#}", task.loc))?;
        if let Ok(mut cache) = self.r.include_cache.lock() {
            cache.insert(path, tasks.clone());
        }
        Ok(tasks)
    }

    /// The `*_from` names of an include_role, rendered with `vars`.
    fn role_files(&self, task: &Task, vars: &Arc<Vars>) -> anyhow::Result<RoleFiles> {
        let TaskKind::IncludeRole { from, .. } = &task.kind else {
            return Ok(RoleFiles::default());
        };
        let render = |name: &Option<String>| -> anyhow::Result<Option<String>> {
            name.as_ref()
                .map(|n| self.r.templar.render_str_shared(n, vars))
                .transpose()
        };
        Ok(RoleFiles {
            tasks: render(&from.tasks)?,
            vars: render(&from.vars)?,
            defaults: render(&from.defaults)?,
            handlers: render(&from.handlers)?,
        })
    }

    /// The defaults and vars of a public role stay visible to the play's later tasks.
    fn make_public(&self, role: &Arc<Role>) {
        let mut public = match self.public_roles.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        if !public.iter().any(|r| Arc::ptr_eq(r, role)) {
            public.push(role.clone());
        }
    }

    /// The roles made public so far (import_role, include_role with `public: true`).
    pub fn public_roles(&self) -> Vec<Arc<Role>> {
        match self.public_roles.lock() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn load_role(&self, name: &str, files: &RoleFiles) -> Result<Arc<Role>, String> {
        let mut search = vec![self.r.playbook_dir.join("roles")];
        search.extend(self.r.opts.roles_path.iter().cloned());
        search.push(self.r.playbook_dir.clone());
        playbook::load_role(name, files, &search).map_err(|e| format!("include_role {name}: {e:#}"))
    }
}

/// An include chain for an error message: the first two and the last three, so a cycle's
/// repetition shows without 64 names.
fn include_chain(includes: &[String]) -> String {
    if includes.len() <= 5 {
        return includes.join(" -> ");
    }
    let tail = &includes[includes.len() - 3..];
    format!(
        "{} -> ... -> {}",
        includes[..2].join(" -> "),
        tail.join(" -> ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn no_serial_is_one_batch() {
        assert_eq!(batches(&hosts(3), &[]), vec![hosts(3)]);
    }

    #[test]
    fn serial_counts_repeat_the_last() {
        let b = batches(&hosts(6), &[Batch::Count(1), Batch::Count(2)]);
        let sizes: Vec<usize> = b.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 2, 2, 1]);
        assert_eq!(b[0], vec!["h1".to_string()]);
    }

    #[test]
    fn serial_percent_is_at_least_one() {
        let sizes: Vec<usize> = batches(&hosts(5), &[Batch::Percent(30.0)])
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![1, 1, 1, 1, 1]);
        let sizes: Vec<usize> = batches(&hosts(4), &[Batch::Percent(50.0)])
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![2, 2]);
    }
}
