//! `infra up`: create the inventory's provider hosts (containers, for `infra_provider:
//! docker`), wait for their sshd, then converge every host with `playbooks/site.yaml`
//! through the engine. `--check` creates nothing: it says what it would create and dry-runs
//! the hosts that already exist.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::platform;
use super::play::RunArgs;
use crate::engine;
use crate::inventory::Inventory;
use crate::provider::{self, cluster, docker, image, HostPlan, Progress, StateDir};

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The inventory to create and converge.
    /// Defaults to the local Docker cluster, `inventories/local.yaml`.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "INVENTORY",
        default_value = "inventories/local.yaml"
    )]
    pub inventory: PathBuf,
    /// The playbook to run (default: playbooks/site.yaml of the project).
    #[arg(long, value_name = "PATH")]
    pub playbook: Option<PathBuf>,
    /// Seconds a new host may take until its sshd answers.
    #[arg(long, value_name = "SECONDS", default_value_t = provider::DEFAULT_SSH_TIMEOUT.as_secs())]
    pub ssh_timeout: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: UpArgs) -> anyhow::Result<i32> {
    if args.run.forks == Some(0) {
        bail!("--forks must be at least 1");
    }
    args.run.vault.install()?;
    let mut inventory = Inventory::load(&args.inventory)
        .with_context(|| format!("inventory {}", args.inventory.display()))?;
    let playbook = find_playbook(&args.inventory, args.playbook.as_deref())?;
    let check = args.run.check;
    let mut known_hosts = Vec::new();
    let mut unreachable = false;
    // Where the cluster's CA lives: the provider's state folder, else one named after the
    // inventory file (an inventory of real machines has a CA too).
    let mut state_path = cluster::state_dir_from_env(
        &args.inventory,
        &cluster::default_cluster_name(&args.inventory),
    )?;

    if let Some(spec) = provider::inventory::cluster_spec(&inventory)? {
        let state = StateDir::new(cluster::state_dir_from_env(&args.inventory, &spec.name)?);
        state_path = state.path().to_path_buf();
        let docker = docker::connect().await?;
        if check {
            for (host, plan) in
                provider::attach_running(&docker, &spec, &state, &mut inventory).await?
            {
                let container = spec.container_name(&host);
                match plan {
                    HostPlan::Create => {
                        println!("would create host {host} (container {container})")
                    }
                    _ => println!("would start host {host} (container {container})"),
                }
            }
        } else {
            // With --limit, only the chosen hosts are created or started; the others that
            // already run are attached so the play still sees their addresses.
            let (spec, others) = match &args.run.limit {
                Some(pattern) => spec.split(&inventory.select(pattern)?),
                None => spec.split(&inventory.hosts.keys().cloned().collect::<Vec<_>>()),
            };
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
            if !others.hosts.is_empty() {
                provider::attach_running(&docker, &others, &state, &mut inventory).await?;
            }
        }
        known_hosts.push(state.known_hosts_path());
    }

    if inventory.hosts.is_empty() {
        println!("no host to converge yet");
        return Ok(if unreachable { 4 } else { 0 });
    }
    let platform_vars = platform::prepare(&inventory, &state_path)?;
    let schedulers = platform::scheduler_urls(&inventory);
    let mut run = args.run;
    run.known_hosts.extend(known_hosts);
    let mut options = run.into_options(inventory, playbook)?;
    platform::merge_under(&mut options.extra_vars, platform_vars);
    let recap = engine::run(options).await?;
    let code = recap.exit_code();
    if !check && code == 0 && !schedulers.is_empty() {
        let ca = state_path.join("pki").join("ca.crt");
        let admin = platform::ensure_admin_token(&state_path)?;
        let file = platform::write_context(schedulers.clone(), ca, Some(admin.token))?;
        eprintln!(
            "schedulers: {} (`infra deploy` reads them, the cluster CA and the admin token \
             from {}; the token is also in {})",
            schedulers.join(", "),
            file.display(),
            state_path.join("auth").join("admin.token").display()
        );
    }
    Ok(if code == 0 && unreachable { 4 } else { code })
}

/// `--playbook`, else `playbooks/site.yaml` beside the inventory's folder, else in the
/// current folder.
fn find_playbook(inventory: &Path, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return std::fs::canonicalize(path).with_context(|| format!("playbook {}", path.display()));
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
            // Absolute, so `playbook_dir` is too (as in Ansible).
            return std::fs::canonicalize(candidate)
                .with_context(|| format!("playbook {}", candidate.display()));
        }
    }
    bail!(
        "cannot find playbooks/site.yaml (looked in {} and {}); pass --playbook PATH",
        candidates[0].display(),
        candidates[1].display()
    )
}
