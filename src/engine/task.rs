//! Runs one task on one host: its variables, its keywords (templated ones evaluated per
//! host), `when`, loops, the module (observe, plan, then apply unless in check mode; the
//! action modules debug, set_fact, assert, fail, pause run from `modules/actions.rs` like
//! any other, on the controller), `until` retries, `changed_when`/`failed_when`,
//! `register`, facts from results (`delegate_facts`, `cacheable`), `notify`, and the recap
//! counters and output of the result.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::loops;
use super::play::PlayRun;
use super::result::{aggregate_loop, censor, Outcome};
use super::state::{short_name, Frame};
use super::units;
use super::vars::{drop_omitted, identifiers, resolve_lazy, Layers, OMIT};
use crate::modules::{self, HostCtx};
use crate::playbook::{Flag, Role, Task, TaskKind};
use crate::report::diff::{hide_vaulted, hide_vaulted_changes};
use crate::report::label::compact_label;
use crate::report::{HostEvent, Status, TaskInfo};
use crate::template::untrusted;
use crate::transport::local::LocalTransport;
use crate::transport::{Become, Transport};
use crate::Vars;
use tracing::Instrument;

/// Variables every task needs resolved (connection, privilege escalation).
const ALWAYS_RESOLVED: &[&str] = &[
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_connection",
    "ansible_ssh_private_key_file",
    "ansible_ssh_common_args",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_password",
    "ansible_become_pass",
    crate::playbook::keywords::REMOTE_USER_VAR,
    crate::playbook::keywords::CONNECTION_VAR,
    crate::playbook::keywords::PORT_VAR,
];

/// [`ALWAYS_RESOLVED`] as a set.
pub fn always_resolved() -> HashSet<String> {
    ALWAYS_RESOLVED.iter().map(|s| s.to_string()).collect()
}

/// The yes/no keywords of a task as they hold on one host: literals, or templates
/// rendered with the task's variables on that host (Ansible evaluates them per host).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostKeywords {
    pub ignore_errors: bool,
    pub no_log: bool,
    pub run_once: bool,
    pub delegate_facts: bool,
    pub check: bool,
    pub diff: bool,
    /// `become` as the keywords say (the `ansible_become` variable still wins).
    pub become_: Option<bool>,
}

/// Ansible's strict boolean conversion of a keyword's rendered value.
pub fn keyword_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => {
            let f = n.as_f64()?;
            if f == 1.0 {
                Some(true)
            } else if f == 0.0 {
                Some(false)
            } else {
                None
            }
        }
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "t" | "on" | "1" => Some(true),
            "no" | "n" | "false" | "f" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// What is worked out once per task, not per host.
pub struct Prep {
    /// The task needs `hostvars` (it names it, a variable does, or it renders a file).
    pub hostvars: bool,
    pub groups: bool,
}

impl PlayRun<'_> {
    /// Works out which variables a task needs.
    pub fn prepare(&self, task: &Task, frame: &Frame) -> Prep {
        let module = match &task.kind {
            TaskKind::Module { module, .. } => module.as_str(),
            _ => "",
        };
        let mut text = Vec::new();
        if let TaskKind::Module { args, .. } = &task.kind {
            text.push(Value::Object(args.clone()));
        }
        if let TaskKind::IncludeTasks { file, .. } = &task.kind {
            text.push(Value::from(file.clone()));
        }
        for w in task.when.iter().chain(frame.when.iter()) {
            text.push(Value::from(w.clone()));
        }
        for list in [&task.changed_when, &task.failed_when]
            .into_iter()
            .flatten()
        {
            text.extend(list.iter().map(|s| Value::from(s.clone())));
        }
        if let Some(spec) = &task.loop_ {
            text.push(loops::raw_value(spec).clone());
        }
        if let Some(label) = &task.loop_control.label {
            text.push(Value::from(label.clone()));
        }
        for s in [&task.until, &task.become_user, &task.delegate_to]
            .into_iter()
            .flatten()
        {
            text.push(Value::from(s.clone()));
        }
        text.extend(task.environment.0.iter().cloned());
        text.extend(frame.environment.0.iter().cloned());
        // Variables the task reads through its own, its blocks' and includes' `vars:` and
        // its role's (an `include_role` is not among the play's roles, which the play
        // scans): `x: "{{ groups.web }}"` in a task's vars needs `groups`.
        text.extend(task.vars.values().cloned());
        for vars in &frame.vars {
            text.extend(vars.values().cloned());
        }
        if let Some(role) = task.role.as_ref().or(frame.role.as_ref()) {
            for vars in [&role.defaults, &role.vars, &role.params] {
                text.extend(vars.values().cloned());
            }
        }
        text.extend(task.notify.iter().map(|s| Value::from(s.clone())));
        // A template file may name anything: its text is scanned too when it can be found
        // now, else everything is made available (`hostvars` is every host's facts: a
        // copy per host and template task made a converged run on 50 hosts quadratic).
        let mut all = false;
        if module == "template" || module.ends_with(".template") {
            match self.template_text(task, frame) {
                Some(source) => text.push(Value::String(source)),
                None => all = true,
            }
        }
        let roots = if all {
            None
        } else {
            let mut ids = HashSet::new();
            for v in &text {
                identifiers(v, &mut ids);
            }
            // Names that reach variables without naming them: include/import/extends
            // pull in other files, lookups and `vars[...]` take names as strings.
            const INDIRECT: &[&str] = &[
                "include", "import", "extends", "lookup", "query", "q", "vars",
            ];
            if INDIRECT.iter().any(|w| ids.contains(*w)) {
                None
            } else {
                ids.extend(ALWAYS_RESOLVED.iter().map(|s| s.to_string()));
                Some(ids)
            }
        };
        let mentions = |word: &str| roots.as_ref().is_none_or(|r| r.contains(word));
        Prep {
            hostvars: mentions("hostvars") || self.mentions.hostvars,
            groups: mentions("groups") || self.mentions.groups,
        }
    }

    /// The variables of `task` on `host`, by precedence, with the magic variables.
    pub fn task_vars(&self, task: &Task, frame: &Frame, host: &str, prep: &Prep) -> Arc<Vars> {
        let r = self.r;
        let role = task.role.clone().or_else(|| frame.role.clone());
        let inv = r.inventory_vars(host);
        let (facts, included, host_facts) = r.with_host(host, |h| {
            (
                h.facts.clone(),
                h.included_vars.clone(),
                h.host_facts.clone(),
            )
        });
        let mut layers = Layers::default();
        for play_role in &self.play.roles {
            layers.role_defaults.push(&play_role.defaults);
        }
        let public = self.public_roles();
        for public_role in &public {
            layers.role_defaults.push(&public_role.defaults);
            layers.role_vars.push(&public_role.vars);
        }
        if let Some(role) = &role {
            layers.role_defaults.push(&role.defaults);
            layers.role_vars.push(&role.vars);
            layers.role_vars.push(&role.params);
        }
        layers.inventory = Some(&inv);
        layers.facts = Some(facts.as_ref());
        layers.play_vars = Some(&self.play.vars);
        layers.vars_files = Some(self.vars_files);
        layers.block_vars = frame.vars.iter().map(|v| v.as_ref()).collect();
        layers.task_vars = Some(&task.vars);
        layers.include_vars = Some(included.as_ref());
        layers.host_facts = Some(host_facts.as_ref());
        layers.extra_vars = Some(&r.opts.extra_vars);
        let mut vars = layers.merge();
        self.add_magic(&mut vars, host, task, frame, role.as_deref(), prep);
        // The Templar renders templated variables lazily when a template reads them; only
        // the connection variables are read by the engine itself, so resolve those here.
        resolve_lazy(&mut vars, Some(&self.always_resolved), &r.templar);
        Arc::new(vars)
    }

    fn add_magic(
        &self,
        vars: &mut Vars,
        host: &str,
        task: &Task,
        frame: &Frame,
        role: Option<&Role>,
        prep: &Prep,
    ) {
        let r = self.r;
        let active = |hosts: &[String]| -> Value {
            Value::from(
                hosts
                    .iter()
                    .filter(|h| r.is_active(h))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        };
        let mut put = |k: &str, v: Value| {
            vars.insert(k.to_string(), v);
        };
        put("inventory_hostname", Value::from(host));
        put("inventory_hostname_short", Value::from(short_name(host)));
        put(
            "group_names",
            serde_json::to_value(r.inventory.group_names(host)).unwrap_or_default(),
        );
        if prep.groups {
            put("groups", r.groups.clone());
        }
        if prep.hostvars {
            put("hostvars", (*r.hostvars()).clone());
        }
        let batch = active(&self.batch);
        put("ansible_play_batch", batch.clone());
        put("play_hosts", batch);
        put("ansible_play_hosts", active(&self.play_hosts));
        put(
            "ansible_play_hosts_all",
            Value::from(self.play_hosts.clone()),
        );
        put("ansible_check_mode", Value::Bool(r.opts.check));
        put("ansible_diff_mode", Value::Bool(r.opts.diff));
        put("ansible_verbosity", Value::from(r.opts.verbosity));
        put(
            "ansible_run_tags",
            json!(if r.opts.tags.is_empty() {
                vec!["all".to_string()]
            } else {
                r.opts.tags.clone()
            }),
        );
        put("ansible_skip_tags", json!(r.opts.skip_tags));
        put(
            "ansible_version",
            json!({"full": "2.19.0", "major": 2, "minor": 19, "revision": 0, "string": "2.19.0"}),
        );
        put(
            "playbook_dir",
            Value::from(r.playbook_dir.display().to_string()),
        );
        put(
            "inventory_dir",
            Value::from(r.inventory.dir().display().to_string()),
        );
        put(
            "inventory_file",
            Value::from(r.inventory.path.display().to_string()),
        );
        put("ansible_play_name", Value::from(self.play.name.clone()));
        put("omit", Value::from(OMIT));
        // The play's roles, then roles included so far (this one included).
        let mut play_roles: Vec<String> = self.play.roles.iter().map(|r| r.name.clone()).collect();
        if let Ok(mut seen) = self.roles_seen.lock() {
            if let Some(role) = role {
                if !seen.contains(&role.name) {
                    seen.push(role.name.clone());
                }
            }
            for name in seen.iter() {
                if !play_roles.contains(name) {
                    play_roles.push(name.clone());
                }
            }
        }
        let mut role_names = play_roles.clone();
        role_names.sort();
        put("ansible_role_names", json!(role_names));
        put("ansible_play_role_names", json!(play_roles));
        if !frame.parent_roles.is_empty() {
            // Undefined outside an included role, as in Ansible.
            let names: Vec<&str> = frame.parent_roles.iter().map(|r| r.name.as_str()).collect();
            put("ansible_parent_role_names", json!(names));
        }
        put(
            "ansible_search_path",
            json!(search_path(role, frame, task, &r.playbook_dir)),
        );
        if let Some(role) = role {
            put("role_path", Value::from(role.path.display().to_string()));
            put("role_name", Value::from(role.name.clone()));
        }
    }

    /// A yes/no keyword's value on a host: the literal, or its template rendered with
    /// `vars`; an error names the keyword, the task and what the template gave.
    pub fn eval_flag(
        &self,
        task: &Task,
        keyword: &str,
        flag: Option<&Flag>,
        vars: &Arc<Vars>,
    ) -> Result<Option<bool>, String> {
        let template = match flag {
            None => return Ok(None),
            Some(Flag::Fixed(b)) => return Ok(Some(*b)),
            Some(Flag::Template(t)) => t,
        };
        let where_ = || format!("{}: task '{}'", task.loc, task.display_name());
        let value = self
            .r
            .templar
            .render_value_shared(&Value::from(template.clone()), vars)
            .map_err(|e| format!("{}: keyword '{keyword}': {e:#}", where_()))?;
        keyword_bool(&value).map(Some).ok_or_else(|| {
            format!(
                "{}: keyword '{keyword}' must be a boolean (yes/no, true/false, on/off, 1/0), but '{template}' gave {}",
                where_(),
                match &value {
                    Value::String(s) => format!("'{s}'"),
                    other => other.to_string(),
                }
            )
        })
    }

    /// The task's yes/no keywords on one host (the task's own, else its blocks', else the
    /// play's), templates evaluated with `vars`.
    pub fn host_keywords(
        &self,
        task: &Task,
        frame: &Frame,
        vars: &Arc<Vars>,
    ) -> Result<HostKeywords, String> {
        let eval = |kw: &str, own: &Option<Flag>, inherited: &Option<Flag>| {
            self.eval_flag(task, kw, own.as_ref().or(inherited.as_ref()), vars)
        };
        let play = self.play;
        Ok(HostKeywords {
            ignore_errors: eval("ignore_errors", &task.ignore_errors, &frame.ignore_errors)?
                .unwrap_or(false),
            no_log: eval("no_log", &task.no_log, &frame.no_log)?.unwrap_or(false),
            run_once: eval("run_once", &task.run_once, &frame.run_once)?.unwrap_or(false),
            delegate_facts: eval(
                "delegate_facts",
                &task.delegate_facts,
                &frame.delegate_facts,
            )?
            .unwrap_or(false),
            check: match eval("check_mode", &task.check_mode, &frame.check_mode)? {
                Some(b) => b,
                None => self
                    .eval_flag(task, "check_mode", play.check_mode.as_ref(), vars)?
                    .unwrap_or(self.r.opts.check),
            },
            diff: match eval("diff", &task.diff, &frame.diff)? {
                Some(b) => b,
                None => self
                    .eval_flag(task, "diff", play.diff.as_ref(), vars)?
                    .unwrap_or(self.r.opts.diff),
            },
            become_: match eval("become", &task.become_, &frame.become_)? {
                Some(b) => Some(b),
                None => self.eval_flag(task, "become", play.become_.as_ref(), vars)?,
            },
        })
    }

    /// Runs a module task on one host and records the result. Returns the final status.
    pub async fn exec_task(
        &self,
        task: &Task,
        frame: &Frame,
        host: &str,
        info: &TaskInfo,
        prep: &Prep,
        batch: &[String],
    ) -> Status {
        let TaskKind::Module { module, args } = &task.kind else {
            return Status::Skipped;
        };
        let vars = self.task_vars(task, frame, host, prep);
        let delegated = self.delegate_name(task, frame, &vars);
        let kw = match self.host_keywords(task, frame, &vars) {
            Ok(kw) => kw,
            Err(msg) => {
                let kw = HostKeywords::default();
                let o = Outcome::failed(msg);
                return self.finish(task, host, info, module, o, kw, delegated, batch);
            }
        };
        let no_log = kw.no_log;
        let outcome = match &task.loop_ {
            None => {
                let run = self.run_one(task, frame, host, module, args, vars, info, &kw);
                crate::transport::with_no_log(no_log, run).await
            }
            Some(spec) => {
                let items = loops::items(&self.r.templar, spec, &vars, module)
                    .map_err(|e| format!("{e:#}"));
                match items {
                    Err(msg) => Outcome::failed(msg),
                    Ok(items) if items.is_empty() => {
                        let mut o = Outcome::skipped_msg("No items in the list");
                        o.result.insert("results".into(), json!([]));
                        o
                    }
                    Ok(items) => {
                        let loop_var = task
                            .loop_control
                            .loop_var
                            .clone()
                            .unwrap_or_else(|| "item".into());
                        let pause = match self.loop_pause(task, &vars) {
                            Ok(p) => p,
                            Err(msg) => {
                                let o = Outcome::failed(msg);
                                return self
                                    .finish(task, host, info, module, o, kw, delegated, batch);
                            }
                        };
                        let mut outcomes = Vec::with_capacity(items.len());
                        let all_items = if task.loop_control.extended {
                            items.clone()
                        } else {
                            Vec::new()
                        };
                        // The items share one copy of the task's vars, each item writing
                        // its own names into it in turn: nothing holds on to them once an
                        // item is done, so `make_mut` writes in place.
                        let mut shared_item_vars = vars.clone();
                        for (i, item) in items.into_iter().enumerate() {
                            if i > 0 && pause > 0.0 {
                                tokio::time::sleep(Duration::from_secs_f64(pause)).await;
                            }
                            // set_fact in a loop sees the previous items' facts.
                            if i > 0 && module_is(module, "set_fact") {
                                shared_item_vars = self.task_vars(task, frame, host, prep);
                            }
                            let item_vars = Arc::make_mut(&mut shared_item_vars);
                            // An item is data, never a template (`template::untrusted`).
                            item_vars.insert(loop_var.clone(), untrusted::mark(item.clone()));
                            item_vars
                                .insert("ansible_loop_var".into(), Value::from(loop_var.clone()));
                            if let Some(index_var) = &task.loop_control.index_var {
                                item_vars.insert(index_var.clone(), Value::from(i));
                                item_vars.insert(
                                    "ansible_index_var".into(),
                                    Value::from(index_var.clone()),
                                );
                            }
                            if task.loop_control.extended {
                                item_vars.insert(
                                    "ansible_loop".into(),
                                    loops::extended(&task.loop_control, &all_items, i),
                                );
                            }
                            let item_vars = &shared_item_vars;
                            let label = match &task.loop_control.label {
                                Some(l) => self
                                    .r
                                    .templar
                                    .render_str_shared(l, item_vars)
                                    .unwrap_or_else(|_| l.clone()),
                                None => compact_label(&item),
                            };
                            let extended = item_vars.get("ansible_loop").cloned();
                            let run = self.run_one(
                                task,
                                frame,
                                host,
                                module,
                                args,
                                item_vars.clone(),
                                info,
                                &kw,
                            );
                            let mut o = crate::transport::with_no_log(no_log, run).await;
                            if let Some(ext) = extended {
                                o.result.insert("ansible_loop".into(), ext);
                            }
                            o.result.insert(loop_var.clone(), item.clone());
                            o.result
                                .insert("ansible_loop_var".into(), Value::from(loop_var.clone()));
                            if let Some(index_var) = &task.loop_control.index_var {
                                o.result.insert(index_var.clone(), Value::from(i));
                                o.result.insert(
                                    "ansible_index_var".into(),
                                    Value::from(index_var.clone()),
                                );
                            }
                            if matches!(o.status, Status::Ok | Status::Changed) {
                                let fact_host = self.fact_target(host, &delegated, &kw);
                                self.merge_result_facts(&[fact_host], module, &o.result);
                            }
                            self.report_item(info, host, &delegated, module, &o, &label, no_log);
                            let unreachable = o.status == Status::Unreachable;
                            outcomes.push(o);
                            if unreachable {
                                break;
                            }
                        }
                        aggregate_loop(outcomes)
                    }
                }
            }
        };
        self.finish(task, host, info, module, outcome, kw, delegated, batch)
    }

    /// `loop_control.pause` in seconds (a number, or a template rendered with `vars`).
    fn loop_pause(&self, task: &Task, vars: &Arc<Vars>) -> Result<f64, String> {
        let Some(raw) = &task.loop_control.pause else {
            return Ok(0.0);
        };
        let value = self
            .r
            .templar
            .render_value_shared(raw, vars)
            .map_err(|e| format!("{}: loop_control.pause: {e:#}", task.loc))?;
        as_f64(&value).ok_or_else(|| {
            format!(
                "{}: loop_control.pause must be a number of seconds, not {value}",
                task.loc
            )
        })
    }

    /// `delegate_to` (the task's, else its block's), rendered.
    fn delegate_name(&self, task: &Task, frame: &Frame, vars: &Arc<Vars>) -> Option<String> {
        task.delegate_to
            .as_ref()
            .or(frame.delegate_to.as_ref())
            .map(|d| {
                self.r
                    .templar
                    .render_str_shared(d, vars)
                    .unwrap_or_else(|_| d.clone())
            })
    }

    /// The host that receives the facts a task sets: the delegated host with
    /// `delegate_facts`, else the host the task runs for.
    fn fact_target(&self, host: &str, delegated: &Option<String>, kw: &HostKeywords) -> String {
        match delegated {
            Some(d) if kw.delegate_facts => d.clone(),
            _ => host.to_string(),
        }
    }

    /// Stores `result["ansible_facts"]` on the hosts where Ansible puts them (see
    /// `RunState::store_result_facts`: set_fact as variables, include_vars at its own
    /// level, any other module's facts, and cacheable set_facts, in the fact cache).
    fn merge_result_facts(&self, hosts: &[String], module: &str, result: &Vars) {
        for h in hosts {
            self.r.store_result_facts(h, module, result);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report_item(
        &self,
        info: &TaskInfo,
        host: &str,
        delegated: &Option<String>,
        module: &str,
        o: &Outcome,
        label: &str,
        no_log: bool,
    ) {
        let event = HostEvent {
            host: host.to_string(),
            delegated: delegated.clone(),
            status: o.status,
            item: Some(if no_log {
                "None".into()
            } else {
                label.to_string()
            }),
            loop_summary: false,
            action: short_module(module).to_string(),
            result: if no_log {
                censor(&o.result)
            } else {
                Value::Object(o.result.clone())
            },
            changes: if no_log {
                vec![]
            } else {
                hide_vaulted_changes(o.changes.clone())
            },
            diffs: if no_log {
                vec![]
            } else {
                hide_vaulted(o.diffs.clone())
            },
        };
        self.r.reporter.host_result(info, &event);
    }

    /// Registers, notifies, counts and reports a task's final outcome.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        task: &Task,
        host: &str,
        info: &TaskInfo,
        module: &str,
        mut outcome: Outcome,
        kw: HostKeywords,
        delegated: Option<String>,
        batch: &[String],
    ) -> Status {
        let r = self.r;
        let no_log = kw.no_log;
        let is_loop = outcome.result.contains_key("results") && task.loop_.is_some();
        let targets: Vec<String> = if kw.run_once {
            batch.to_vec()
        } else {
            vec![host.to_string()]
        };
        let cacheable = outcome.result.remove("_ansible_facts_cacheable");
        if let Some(name) = &task.register {
            for t in &targets {
                let mut f = Vars::new();
                f.insert(name.clone(), Value::Object(outcome.result.clone()));
                r.set_host_facts(t, f);
            }
        }
        if outcome.status != Status::Failed && outcome.status != Status::Skipped {
            let fact_hosts: Vec<String> = match &delegated {
                Some(d) if kw.delegate_facts => vec![d.clone()],
                _ => targets.clone(),
            };
            let mut with_flag = outcome.result.clone();
            if let Some(c) = cacheable {
                with_flag.insert("_ansible_facts_cacheable".into(), c);
            }
            self.merge_result_facts(&fact_hosts, module, &with_flag);
        }
        let ignore = kw.ignore_errors;
        let status = match outcome.status {
            Status::Failed if ignore => Status::Ignored,
            s => s,
        };
        if outcome.is_changed() && matches!(status, Status::Changed | Status::Ok | Status::Ignored)
        {
            self.notify(task, host);
        }
        r.with_stats(host, |s| match status {
            Status::Ok | Status::Rescued => s.ok += 1,
            Status::Changed => {
                s.ok += 1;
                s.changed += 1;
            }
            Status::Skipped => s.skipped += 1,
            Status::Failed => s.failed += 1,
            Status::Unreachable => s.unreachable += 1,
            Status::Ignored => {
                s.ok += 1;
                s.ignored += 1;
                if outcome.is_changed() {
                    s.changed += 1;
                }
            }
        });
        match status {
            Status::Failed => r.with_host(host, |h| {
                h.failed = true;
                h.last_failure = Some((task.display_name(), Value::Object(outcome.result.clone())));
            }),
            Status::Unreachable => r.with_host(host, |h| h.unreachable = true),
            _ => {}
        }
        let event = HostEvent {
            host: host.to_string(),
            delegated,
            status,
            item: None,
            loop_summary: is_loop,
            action: short_module(module).to_string(),
            result: if no_log {
                censor(&outcome.result)
            } else {
                Value::Object(outcome.result.clone())
            },
            changes: if no_log {
                vec![]
            } else {
                hide_vaulted_changes(outcome.changes.clone())
            },
            diffs: if no_log || is_loop {
                vec![]
            } else {
                hide_vaulted(outcome.diffs)
            },
        };
        r.reporter.host_result(info, &event);
        status
    }

    /// `include_vars` on the controller (see [`super::include_vars`]).
    fn include_vars(&self, task: &Task, frame: &Frame, args: &Vars) -> Outcome {
        let role = task.role.clone().or_else(|| frame.role.clone());
        let origin = super::include_vars::Origin {
            search_path: search_path(role.as_deref(), frame, task, &self.r.playbook_dir)
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            playbook_dir: &self.r.playbook_dir,
            role_path: role.as_deref().map(|r| r.path.as_path()),
            task_file: &task.loc.file,
        };
        match super::include_vars::run(args, &origin) {
            Ok(included) => Outcome::new(Status::Ok, included.result()),
            Err(e) => {
                // Ansible reports this failure under `message`; `msg` is what we print.
                let mut o = Outcome::failed(format!("{e:#}"));
                o.result
                    .insert("message".into(), Value::from(format!("{e:#}")));
                o
            }
        }
    }

    fn notify(&self, task: &Task, host: &str) {
        if task.notify.is_empty() {
            return;
        }
        let mut indexes = Vec::new();
        for name in &task.notify {
            let found = self.handler_indexes(name);
            if found.is_empty() {
                self.r.reporter.warning(&format!(
                    "The requested handler '{name}' was not found in the play's handlers"
                ));
            }
            indexes.extend(found);
        }
        self.r.with_host(host, |h| h.notified.extend(indexes));
    }

    /// One run of the task (one loop item, or the task without a loop), `until` included.
    #[allow(clippy::too_many_arguments)]
    async fn run_one(
        &self,
        task: &Task,
        frame: &Frame,
        host: &str,
        module: &str,
        raw_args: &Vars,
        mut vars: Arc<Vars>,
        info: &TaskInfo,
        kw: &HostKeywords,
    ) -> Outcome {
        let templar = &self.r.templar;
        for cond in frame.when.iter().chain(task.when.iter()) {
            match templar.eval_bool_shared(cond, &vars) {
                Ok(true) => {}
                Ok(false) => return Outcome::skipped_condition(cond),
                Err(e) => {
                    return Outcome::failed(format!(
                        "The conditional check '{cond}' failed. The error was: {e:#}"
                    ))
                }
            }
        }
        let args = match templar.render_value_shared(&Value::Object(raw_args.clone()), &vars) {
            Ok(Value::Object(map)) => drop_omitted(map),
            Ok(other) => {
                return Outcome::failed(format!("arguments rendered to {other}, not a mapping"))
            }
            Err(e) => return Outcome::failed(format!("{e:#}")),
        };
        let attempts = if task.until.is_some() {
            if task.retries == 0 {
                4
            } else {
                task.retries + 1
            }
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The span names the task in every debug line its commands log (the SSH
            // transport logs each exec it runs, without knowing which task asked).
            let mut o = self
                .run_module(task, frame, host, module, &args, &vars, kw)
                .instrument(tracing::debug_span!("task", task = %info.name))
                .await;
            if o.status == Status::Unreachable {
                return o;
            }
            self.apply_conditions(task, &mut o, &mut vars);
            let Some(until) = &task.until else { return o };
            // A result check mode skipped (a command it cannot predict) has nothing to wait
            // for: retrying it would only fail the dry run after every delay.
            if o.status == Status::Skipped {
                return o;
            }
            if attempts > 1 {
                o.result.insert("attempts".into(), Value::from(attempt));
            }
            let done = templar.eval_bool_shared(until, &vars).unwrap_or(false);
            if done {
                return o;
            }
            if attempt >= attempts {
                if o.status != Status::Failed {
                    o.status = Status::Failed;
                    o.result.insert("failed".into(), Value::Bool(true));
                }
                return o;
            }
            self.r.reporter.retry(info, host, attempts - attempt);
            if task.delay > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(task.delay)).await;
            }
        }
    }

    /// `changed_when` and `failed_when`, evaluated with the result registered.
    fn apply_conditions(&self, task: &Task, o: &mut Outcome, vars: &mut Arc<Vars>) {
        if o.status == Status::Skipped {
            return;
        }
        if let Some(name) = &task.register {
            Arc::make_mut(vars).insert(
                name.clone(),
                untrusted::mark(Value::Object(o.result.clone())),
            );
        }
        let templar = &self.r.templar;
        let all_hold = |conds: &[String], vars: &Arc<Vars>| -> Result<bool, String> {
            for c in conds {
                match templar.eval_bool_shared(c, vars) {
                    Ok(true) => {}
                    Ok(false) => return Ok(false),
                    Err(e) => {
                        return Err(format!(
                            "The conditional check '{c}' failed. The error was: {e:#}"
                        ))
                    }
                }
            }
            Ok(true)
        };
        if let Some(conds) = &task.changed_when {
            match all_hold(conds, vars) {
                Ok(changed) => {
                    o.result.insert("changed".into(), Value::Bool(changed));
                    if o.status != Status::Failed {
                        o.status = if changed { Status::Changed } else { Status::Ok };
                    }
                }
                Err(msg) => {
                    o.status = Status::Failed;
                    o.result.insert("failed".into(), Value::Bool(true));
                    o.result.insert("msg".into(), Value::from(msg));
                }
            }
        }
        if let Some(conds) = &task.failed_when {
            match all_hold(conds, vars) {
                Ok(failed) => {
                    o.result
                        .insert("failed_when_result".into(), Value::Bool(failed));
                    o.result.insert("failed".into(), Value::Bool(failed));
                    if failed {
                        o.status = Status::Failed;
                    } else if o.status == Status::Failed {
                        o.status = if o.is_changed() {
                            Status::Changed
                        } else {
                            Status::Ok
                        };
                    }
                }
                Err(msg) => {
                    o.status = Status::Failed;
                    o.result.insert("failed".into(), Value::Bool(true));
                    o.result.insert("msg".into(), Value::from(msg));
                }
            }
        }
        if let Some(name) = &task.register {
            Arc::make_mut(vars).insert(
                name.clone(),
                untrusted::mark(Value::Object(o.result.clone())),
            );
        }
    }

    /// The transport a task uses: its host's, or the `delegate_to` target's.
    pub(super) async fn transport_for(
        &self,
        task: &Task,
        frame: &Frame,
        host: &str,
        vars: &Arc<Vars>,
    ) -> Result<Arc<dyn Transport>, Box<Outcome>> {
        let (name, conn_vars) = match self.delegate_name(task, frame, vars) {
            Some(target) if target != host => {
                let v = if self.r.inventory.hosts.contains_key(&target) {
                    let mut v = (*self.r.inventory_vars(&target)).clone();
                    resolve_lazy(&mut v, None, &self.r.templar);
                    Cow::Owned(v)
                } else {
                    Cow::Owned(Vars::new())
                };
                (target, v)
            }
            _ => (host.to_string(), Cow::Borrowed(&**vars)),
        };
        self.r.pool.get(&name, &conn_vars).await.map_err(|e| {
            Box::new(Outcome::unreachable(format!(
                "Failed to connect to the host: {e}"
            )))
        })
    }

    /// Plans (and, unless in check mode, applies) a module on one host. The action modules
    /// that only work on the controller (debug, set_fact, assert, fail, pause) get a local
    /// transport: like Ansible's action plugins they never connect to the host.
    #[allow(clippy::too_many_arguments)]
    async fn run_module(
        &self,
        task: &Task,
        frame: &Frame,
        host: &str,
        module: &str,
        args: &Vars,
        vars: &Arc<Vars>,
        kw: &HostKeywords,
    ) -> Outcome {
        if module_is(module, "include_vars") {
            return self.include_vars(task, frame, args);
        }
        let Some(m) = modules::lookup(module) else {
            return self
                .run_fallback(task, frame, host, module, args, vars, kw)
                .await;
        };
        let transport: Arc<dyn Transport> = if CONTROLLER_ACTIONS.contains(&m.name()) {
            Arc::new(LocalTransport::new("localhost"))
        } else {
            match self.transport_for(task, frame, host, vars).await {
                Ok(t) => t,
                Err(o) => return *o,
            }
        };
        let env = match self.environment(task, frame, vars) {
            Ok(env) => env,
            Err(msg) => return Outcome::failed(msg),
        };
        let (check, diff) = (kw.check, kw.diff);
        let role = task.role.clone().or_else(|| frame.role.clone());
        let templar = self.r.templar.clone();
        let reads = self.r.host_reads(transport.host());
        if units::observes_units(m.name()) && reads.units.plan_for(self.play_id()).await {
            reads
                .units
                .want(units::play_unit_names(self.play, &self.r.templar, vars))
                .await;
        }
        let ctx = HostCtx {
            host: host.to_string(),
            transport: modules::HostView::new(transport),
            become_: self.become_for(task, frame, vars, kw),
            env,
            check_mode: check,
            diff,
            vars: vars.clone(),
            file_search: self.search_path(task, role.as_deref(), "files"),
            template_search: self.search_path(task, role.as_deref(), "templates"),
            reads,
            render: Arc::new(
                move |src: &str, v: &Arc<Vars>, over: &Vars, trim: bool, lstrip: bool| {
                    templar.render_file_over(src, v, over, trim, lstrip)
                },
            ),
        };
        let plan = match m.plan(&ctx, args).await {
            Ok(p) => p,
            Err(e) => return error_outcome(&e),
        };
        let changes: Vec<String> = plan.changes.iter().map(|c| c.summary.clone()).collect();
        let diffs: Vec<_> = if diff {
            plan.changes.iter().filter_map(|c| c.diff.clone()).collect()
        } else {
            Vec::new()
        };
        let mut result = plan.result.clone();
        if result.get("skipped") == Some(&Value::Bool(true)) {
            return Outcome::new(Status::Skipped, result);
        }
        if let Some(msg) = &plan.failed {
            result.insert("msg".into(), Value::from(msg.clone()));
            let mut o = Outcome::new(Status::Failed, result);
            o.changes = changes;
            return o;
        }
        if check {
            if plan.unpredictable {
                result.insert("msg".into(), json!("skipped, running in check mode"));
                return Outcome::new(Status::Skipped, result);
            }
            let status = if plan.is_changed() {
                Status::Changed
            } else {
                Status::Ok
            };
            result.insert("changed".into(), Value::Bool(plan.is_changed()));
            let mut o = Outcome::new(status, result);
            o.changes = changes;
            o.diffs = diffs;
            return o;
        }
        let changed = plan.is_changed();
        if !plan.ops.is_empty() {
            match modules::apply(&ctx, &plan).await {
                Ok(applied) => result = applied.result,
                Err(e) => {
                    if let Some(failed) = e.downcast_ref::<modules::OpFailed>() {
                        let mut r = failed.result.clone();
                        r.insert("changed".into(), Value::Bool(changed));
                        r.entry("msg")
                            .or_insert_with(|| Value::from(failed.message.clone()));
                        let mut o = Outcome::new(Status::Failed, r);
                        o.changes = changes;
                        return o;
                    }
                    let mut o = error_outcome(&e);
                    o.changes = changes;
                    return o;
                }
            }
        }
        result.insert("changed".into(), Value::Bool(changed));
        let status = if changed { Status::Changed } else { Status::Ok };
        let mut o = Outcome::new(status, result);
        o.changes = changes;
        o.diffs = diffs;
        o
    }

    pub(super) fn environment(
        &self,
        task: &Task,
        frame: &Frame,
        vars: &Arc<Vars>,
    ) -> Result<Vec<(String, String)>, String> {
        if frame.environment.is_empty() && task.environment.is_empty() {
            return Ok(Vec::new());
        }
        let mut env = Vars::new();
        for layer in frame.environment.0.iter().chain(task.environment.0.iter()) {
            match self.r.templar.render_value_shared(layer, vars) {
                Ok(Value::Object(map)) => env.extend(map),
                Ok(other) => {
                    return Err(format!(
                        "{}: environment: {layer} gave {other}, not a mapping",
                        task.loc
                    ))
                }
                Err(e) => return Err(format!("{}: environment: {e:#}", task.loc)),
            }
        }
        Ok(env.into_iter().map(|(k, v)| (k, value_text(&v))).collect())
    }

    /// Privilege escalation. As in Ansible, the `ansible_become*` variables win over the
    /// `become`/`become_user` keywords (task, then blocks, then play).
    pub(super) fn become_for(
        &self,
        task: &Task,
        frame: &Frame,
        vars: &Arc<Vars>,
        kw: &HostKeywords,
    ) -> Option<Become> {
        let on = kw.become_;
        let user = task
            .become_user
            .clone()
            .or_else(|| frame.become_user.clone())
            .or_else(|| self.play.become_user.clone());
        self.resolve_become(on, user, vars)
    }

    /// The privilege escalation given the keywords in force and the host's variables.
    pub fn resolve_become(
        &self,
        keyword: Option<bool>,
        keyword_user: Option<String>,
        vars: &Arc<Vars>,
    ) -> Option<Become> {
        let on = vars
            .get("ansible_become")
            .map(truthy)
            .or(keyword)
            .unwrap_or(false);
        if !on {
            return None;
        }
        let user = vars
            .get("ansible_become_user")
            .map(value_text)
            .or(keyword_user)
            .unwrap_or_else(|| "root".into());
        let user = self
            .r
            .templar
            .render_str_shared(&user, vars)
            .unwrap_or(user);
        let password = [
            "ansible_become_password",
            "ansible_become_pass",
            "ansible_sudo_pass",
        ]
        .iter()
        .find_map(|k| vars.get(*k))
        .map(value_text);
        Some(Become { user, password })
    }

    /// Where `src:` is looked for: the role's `sub/` and folder, the task file's, the
    /// playbook's.
    /// The text of a template task's source file, when its `src` is a plain name found
    /// in the template search path (the module's own search); `None` otherwise.
    fn template_text(&self, task: &Task, frame: &Frame) -> Option<String> {
        let TaskKind::Module { args, .. } = &task.kind else {
            return None;
        };
        let src = args.get("src")?.as_str()?;
        if crate::template::is_template(src) {
            return None;
        }
        let role = task.role.clone().or_else(|| frame.role.clone());
        self.search_path(task, role.as_deref(), "templates")
            .iter()
            .map(|dir| dir.join(src))
            .find(|p| p.is_file())
            .and_then(|p| std::fs::read_to_string(p).ok())
            // A vaulted file's names are known only once it is decrypted.
            .filter(|text| !text.starts_with("$ANSIBLE_VAULT"))
    }

    fn search_path(&self, task: &Task, role: Option<&Role>, sub: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(role) = role {
            out.push(role.path.join(sub));
            out.push(role.path.clone());
        }
        if let Some(dir) = task.loc.file.parent() {
            if !dir.as_os_str().is_empty() {
                out.push(dir.join(sub));
                out.push(dir.to_path_buf());
            }
        }
        out.push(self.r.playbook_dir.join(sub));
        out.push(self.r.playbook_dir.clone());
        out.dedup();
        out
    }
}

/// Ansible's `ansible_search_path` for a task: its role's folder, the folders of the roles
/// that included it, the folder of the task's file, the playbook's folder (lookups look in
/// each, under `files/` and friends first).
fn search_path(
    role: Option<&Role>,
    frame: &Frame,
    task: &Task,
    playbook_dir: &std::path::Path,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &std::path::Path| {
        let s = p.display().to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    if let Some(role) = role {
        add(&role.path);
        for parent in &frame.parent_roles {
            add(&parent.path);
        }
    }
    if let Some(dir) = task.loc.file.parent() {
        add(dir);
    }
    add(playbook_dir);
    out
}

fn error_outcome(e: &anyhow::Error) -> Outcome {
    if super::connect::is_unreachable(e) {
        Outcome::unreachable(format!("{e:#}"))
    } else {
        Outcome::failed(format!("{e:#}"))
    }
}

/// Action modules that run on the controller only: no connection to the host is made.
const CONTROLLER_ACTIONS: &[&str] = &["debug", "set_fact", "assert", "fail", "pause"];

/// `ansible.builtin.copy` -> `copy`.
pub fn short_module(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}

fn module_is(name: &str, short: &str) -> bool {
    short_module(name) == short
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value as text: strings as they are, the rest as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Ansible's truthiness of a variable given as a bool or a string.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "true" | "1" | "on" | "y" | "t"
        ),
        _ => false,
    }
}
