//! Runs plays: variable precedence, host selection and batches (`serial`), strategies
//! (linear, free), forks, loops, conditionals, handlers, check/diff, block/rescue/always,
//! and the recap. A failed or unreachable host leaves the play; the others go on.
//!
//! Owns: the run. May call: inventory, playbook, template, modules, transport, report.

use std::path::PathBuf;

use anyhow::Context;

use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook};
use crate::Vars;

mod connect;
pub mod facts;
mod fallback;
mod include_vars;
pub mod loops;
mod play;
pub mod result;
mod state;
pub mod tags;
mod task;
mod units;
pub mod vars;
mod vault_sources;

pub use crate::report::{HostStats, OutputMode, Recap};
pub use vars::{parse_extra_vars, OMIT};

/// Everything one run needs; `infra play` and `infra up` both build this.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub playbook: PathBuf,
    /// Already loaded (and, for `infra up`, filled in by the provider).
    pub inventory: Inventory,
    pub limit: Option<String>,
    pub check: bool,
    pub diff: bool,
    /// Hosts in parallel (default: all of them, up to 256).
    pub forks: usize,
    pub extra_vars: Vars,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub output: OutputMode,
    /// Record unknown host keys instead of failing (OpenSSH's accept-new).
    pub accept_new_host_keys: bool,
    /// known_hosts files to check host keys against, besides `~/.ssh/known_hosts`.
    pub known_hosts: Vec<PathBuf>,
    pub roles_path: Vec<PathBuf>,
    pub verbosity: u8,
    /// Refuse a playbook with tasks that need Ansible's modules (the fallback).
    pub native_only: bool,
    /// Keep SSH connections open between runs (`--ssh-persist`); `None` keeps none.
    pub ssh_persist: Option<crate::transport::mux::Persist>,
}

impl RunOptions {
    /// A plain run of `playbook` on every host of `inventory`, as `infra play` with no
    /// options: converge (no check, no diff), all hosts in parallel, line output.
    pub fn new(playbook: PathBuf, inventory: Inventory) -> RunOptions {
        RunOptions {
            playbook,
            inventory,
            limit: None,
            check: false,
            diff: false,
            forks: 0,
            extra_vars: Vars::new(),
            tags: Vec::new(),
            skip_tags: Vec::new(),
            output: OutputMode::Lines,
            accept_new_host_keys: false,
            known_hosts: Vec::new(),
            roles_path: Vec::new(),
            verbosity: 0,
            native_only: false,
            ssh_persist: None,
        }
    }
}

/// Loads, validates and runs a playbook. Errors mean invalid input: nothing ran.
pub async fn run(opts: RunOptions) -> anyhow::Result<Recap> {
    let reporter = crate::report::for_mode(opts.output, opts.verbosity);
    run_with(opts, reporter).await
}

/// [`run`] with the given reporter (tests capture output this way).
pub async fn run_with(
    opts: RunOptions,
    reporter: std::sync::Arc<dyn crate::report::Reporter>,
) -> anyhow::Result<Recap> {
    let prepared = prepare(&opts)?;
    let runner = state::Runner::new(opts, prepared.inventory, prepared.playbook.dir(), reporter);
    for (index, play) in prepared.playbook.plays.iter().enumerate() {
        run_play(
            &runner,
            play,
            &prepared.hosts[index],
            &prepared.vars_files[index],
        )
        .await;
    }
    runner.pool.close_all().await;
    let mut recap = Recap::default();
    {
        let stats = match runner.stats.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut names: Vec<&String> = stats.keys().collect();
        names.sort();
        for name in names {
            recap.hosts.insert(name.clone(), stats[name].clone());
        }
    }
    runner.reporter.recap(&recap);
    Ok(recap)
}

/// What is loaded and checked before the first connection.
struct Prepared {
    playbook: Playbook,
    inventory: Inventory,
    /// Each play's hosts (pattern and --limit applied).
    hosts: Vec<Vec<String>>,
    /// Each play's vars_files, merged in order (templated names are loaded at play start).
    vars_files: Vec<Vars>,
}

fn prepare(opts: &RunOptions) -> anyhow::Result<Prepared> {
    let mut playbook = crate::playbook::load(&opts.playbook, &opts.roles_path)?;
    if opts.native_only {
        fallback::refuse_fallback(&playbook)?;
    }
    vault_sources::decrypt_sources(&playbook)?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    for play in &mut playbook.plays {
        let answers = play::prompt_answers(play, &opts.extra_vars, interactive)?;
        play.vars.extend(answers);
    }
    let mut inventory = opts.inventory.clone();
    let dir = playbook.dir();
    inventory
        .load_vars_dir(&dir)
        .with_context(|| format!("loading group_vars/host_vars in {}", dir.display()))?;
    let templar = crate::template::Templar::new();
    let limit = match &opts.limit {
        Some(l) => Some(
            inventory
                .select(l)
                .with_context(|| format!("--limit {l:?}"))?,
        ),
        None => None,
    };
    let mut hosts = Vec::new();
    let mut vars_files = Vec::new();
    for play in &playbook.plays {
        let mut static_vars = play.vars.clone();
        for (k, v) in &opts.extra_vars {
            static_vars.insert(k.clone(), v.clone());
        }
        let pattern = if play.hosts.contains("{{") {
            templar
                .render_str(&play.hosts, &static_vars)
                .with_context(|| format!("{}: hosts: {:?}", play.loc, play.hosts))?
        } else {
            play.hosts.clone()
        };
        // Ansible's order, not the inventory's: `hosts: db:web` runs db's hosts first, which
        // decides the output order, the `serial:` batches, the `run_once` host and
        // `ansible_play_hosts` (its `get_hosts`: union terms as written, then `&` and `!`).
        let mut selected = inventory
            .select_in_pattern_order(&pattern)
            .with_context(|| format!("{}: hosts: {pattern:?}", play.loc))?;
        if let Some(limit) = &limit {
            selected.retain(|h| limit.contains(h));
        }
        hosts.push(selected);
        let mut files = Vars::new();
        for name in &play.vars_files {
            let name = if name.contains("{{") {
                templar
                    .render_str(name, &static_vars)
                    .with_context(|| format!("{}: vars_files: {name:?}", play.loc))?
            } else {
                name.clone()
            };
            let path = dir.join(&name);
            let text = crate::vault::yaml::read_to_string(&path).with_context(|| {
                format!("{}: vars_files: cannot read {}", play.loc, path.display())
            })?;
            let vars = vars::parse_mapping(&text)
                .with_context(|| format!("{}: vars_files: {}", play.loc, path.display()))?;
            files.extend(vars);
        }
        vars_files.push(files);
    }
    Ok(Prepared {
        playbook,
        inventory,
        hosts,
        vars_files,
    })
}

/// Whether any variable value the play can see mentions `word`.
fn vars_mention(runner: &state::Runner, play: &Play, vars_files: &Vars, word: &str) -> bool {
    let in_vars = |v: &Vars| {
        v.values()
            .any(|x| vars::is_templated(x) && x.to_string().contains(word))
    };
    in_vars(&play.vars)
        || in_vars(vars_files)
        || in_vars(&runner.opts.extra_vars)
        || play
            .roles
            .iter()
            .any(|r| in_vars(&r.defaults) || in_vars(&r.vars) || in_vars(&r.params))
        || runner
            .inventory
            .hosts
            .keys()
            .any(|h| in_vars(&runner.inventory_vars(h)))
}

async fn run_play(runner: &state::Runner, play: &Play, selected: &[String], vars_files: &Vars) {
    let name = if play.name.is_empty() {
        play.hosts.clone()
    } else {
        play.name.clone()
    };
    let hosts: Vec<String> = selected
        .iter()
        .filter(|h| runner.with_host(h, |s| !s.failed && !s.unreachable))
        .cloned()
        .collect();
    runner
        .reporter
        .play_start(&name, &hosts, play::count_tasks(play));
    if hosts.is_empty() {
        runner.reporter.warning("skipping: no hosts matched");
        return;
    }
    for h in &hosts {
        runner.with_stats(h, |_| ());
        runner.with_host(h, |s| {
            s.ended = false;
            s.notified.clear();
        });
    }
    let mentions = play::Mentions {
        hostvars: vars_mention(runner, play, vars_files, "hostvars"),
        groups: vars_mention(runner, play, vars_files, "groups"),
    };
    for batch in play::batches(&hosts, &play.serial) {
        let run = play::PlayRun::new(
            runner,
            play,
            hosts.clone(),
            batch.clone(),
            vars_files,
            mentions,
        );
        run.run().await;
        if run.aborted() {
            break;
        }
        let all_failed = batch
            .iter()
            .all(|h| runner.with_host(h, |s| s.failed || s.unreachable));
        if all_failed {
            break;
        }
    }
}
