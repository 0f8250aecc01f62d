//! `infra up`: create the inventory's provider hosts (containers, for `infra_provider:
//! docker`), wait for their sshd, then converge every host with `playbooks/site.yaml`
//! through the engine. `--check` creates nothing: it says what it would create and dry-runs
//! the hosts that already exist.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use crate::engine::{self, OutputMode, Recap, RunOptions};
use crate::inventory::Inventory;
use crate::provider::{self, cluster, docker, image, HostPlan, Progress, StateDir};
use crate::Vars;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The inventory to create and converge.
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: PathBuf,
    /// The playbook to run (default: playbooks/site.yaml of the project).
    #[arg(long, value_name = "PATH")]
    pub playbook: Option<PathBuf>,
    /// Only these hosts (an Ansible host pattern).
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Dry run: create nothing, change nothing, report what would change.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show file changes as unified diffs.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Hosts in parallel.
    #[arg(short = 'f', long, default_value_t = 256)]
    pub forks: usize,
    /// Extra variables: `key=value` or JSON/YAML text (repeatable).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Only tasks with these tags.
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// How results are shown.
    #[arg(long, value_enum, default_value_t = OutputMode::Auto)]
    pub output: OutputMode,
    /// More detail (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Seconds a new host may take until its sshd answers.
    #[arg(long, default_value_t = provider::DEFAULT_SSH_TIMEOUT.as_secs())]
    pub ssh_timeout: u64,
}

pub async fn run(args: UpArgs) -> anyhow::Result<i32> {
    let mut inventory = Inventory::load(&args.inventory)?;
    let playbook = find_playbook(&args.inventory, args.playbook.as_deref())?;
    let extra_vars = parse_extra_vars(&args.extra_vars)?;
    let mut known_hosts = Vec::new();
    let mut unreachable = false;

    if let Some(spec) = provider::inventory::cluster_spec(&inventory)? {
        let home = std::env::var_os("INFRA_HOME").map(PathBuf::from);
        let state = StateDir::new(cluster::state_dir(
            &args.inventory,
            &spec.name,
            home.as_deref(),
        ));
        let docker = docker::connect().await?;
        if args.check {
            let skipped = report_check_plan(&docker, &spec).await?;
            for (host, ip) in provider::running_hosts(&docker, &spec).await? {
                provider::inventory::fill_host(
                    &mut inventory,
                    &host,
                    &ip.to_string(),
                    &state.private_key_path(),
                );
            }
            provider::inventory::drop_hosts(&mut inventory, &skipped);
        } else {
            let progress = Progress::new("up");
            let image = image::ensure(&docker, false, &progress).await?;
            let up = provider::up(
                &docker,
                &spec,
                &state,
                image.tag(),
                std::time::Duration::from_secs(args.ssh_timeout),
                &progress,
            )
            .await?;
            progress.finish(format!(
                "cluster `{}`: {} hosts ready ({} created), state in {}",
                spec.name,
                up.ready.len(),
                up.ready.iter().filter(|h| h.created).count(),
                state.path().display()
            ));
            for host in &up.ready {
                provider::inventory::fill_host(
                    &mut inventory,
                    &host.host,
                    &host.ip.to_string(),
                    &state.private_key_path(),
                );
            }
            for host in &up.unreachable {
                eprint!("{host}");
            }
            unreachable = !up.unreachable.is_empty();
            let gone: Vec<String> = up.unreachable.iter().map(|h| h.host.clone()).collect();
            provider::inventory::drop_hosts(&mut inventory, &gone);
        }
        known_hosts.push(state.known_hosts_path());
    }

    if inventory.hosts.is_empty() {
        println!("no host to converge yet");
        return Ok(if unreachable { 4 } else { 0 });
    }
    let recap = engine::run(RunOptions {
        playbook,
        inventory,
        limit: args.limit,
        check: args.check,
        diff: args.diff,
        forks: args.forks,
        extra_vars,
        tags: args.tags,
        skip_tags: args.skip_tags,
        output: args.output,
        accept_new_host_keys: false,
        known_hosts,
        roles_path: Vec::new(),
        verbosity: args.verbose,
    })
    .await?;
    print_recap(&recap);
    let code = recap.exit_code();
    Ok(if code == 0 && unreachable { 4 } else { code })
}

/// Prints which hosts `infra up` would create or start; returns those it cannot dry-run.
async fn report_check_plan(
    docker: &bollard::Docker,
    spec: &provider::ClusterSpec,
) -> anyhow::Result<Vec<String>> {
    let mut not_running = Vec::new();
    for (host, plan) in provider::plan(docker, spec).await? {
        let container = spec.container_name(&host);
        match plan {
            HostPlan::Create => println!("would create host {host} (container {container})"),
            HostPlan::Start => println!("would start host {host} (container {container})"),
            HostPlan::Running => continue,
        }
        not_running.push(host);
    }
    Ok(not_running)
}

/// `--playbook`, else `playbooks/site.yaml` beside the inventory's folder, else in the
/// current folder.
fn find_playbook(inventory: &Path, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let inventory_dir = inventory
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let candidates = [
        inventory_dir.join("..").join("playbooks/site.yaml"),
        PathBuf::from("playbooks/site.yaml"),
    ];
    for candidate in &candidates {
        if candidate.is_file() {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "cannot find playbooks/site.yaml (looked in {} and {}); pass --playbook PATH",
        candidates[0].display(),
        candidates[1].display()
    )
}

/// `-e key=value` or `-e '{"json": 1}'` / YAML mappings; later ones win.
fn parse_extra_vars(items: &[String]) -> anyhow::Result<Vars> {
    let mut vars = Vars::new();
    for item in items {
        let text = item.trim();
        if let Some(path) = text.strip_prefix('@') {
            let loaded = crate::inventory::load_vars_file(Path::new(path))?;
            vars.extend(loaded);
        } else if text.starts_with('{') {
            let value: serde_yaml::Value =
                serde_yaml::from_str(text).with_context(|| format!("-e {text}: not a mapping"))?;
            let json = serde_json::to_value(value).with_context(|| format!("-e {text}"))?;
            match json {
                serde_json::Value::Object(map) => vars.extend(map),
                _ => bail!("-e {text}: not a mapping"),
            }
        } else {
            for pair in shlex::split(text).with_context(|| format!("-e {text}: bad quoting"))? {
                let (key, value) = pair
                    .split_once('=')
                    .with_context(|| format!("-e {pair}: expected key=value"))?;
                vars.insert(
                    key.to_string(),
                    serde_json::Value::String(value.to_string()),
                );
            }
        }
    }
    Ok(vars)
}

fn print_recap(recap: &Recap) {
    let _ = recap;
}
