//! `infra play`: run a playbook against an inventory, like ansible-playbook.
//!
//! [`RunArgs`] holds the options every converging command shares (`infra up` flattens it);
//! it turns into the engine's `RunOptions` given an inventory and a playbook.
//! Exit status: 0 all ok, 2 a task failed, 4 a host unreachable (none failed), 1 bad input.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::engine::{self, OutputMode, RunOptions};
use crate::inventory::Inventory;
use crate::transport::mux::{self, Keep, Persist};

/// Options shared by `infra play` and `infra up`.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Further limit the hosts (an Ansible host pattern: `web1`, `web:&dc1`, `all:!db`).
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Change nothing; report what would change.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show changes to files as unified diffs.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Hosts worked on in parallel (default: all, up to 256).
    #[arg(short = 'f', long)]
    pub forks: Option<usize>,
    /// Extra variables: `k=v ...`, `@file.yaml`, or a JSON/YAML mapping (repeatable).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Run only tasks with these tags (comma separated, repeatable).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags (comma separated, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// How results are shown.
    #[arg(long, value_enum, default_value_t = OutputMode::Auto)]
    pub output: OutputMode,
    /// Record unknown SSH host keys instead of failing (a changed key always fails).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// A known_hosts file checked besides ~/.ssh/known_hosts (repeatable).
    #[arg(long = "known-hosts", value_name = "FILE")]
    pub known_hosts: Vec<PathBuf>,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Folders searched for roles besides `roles/` beside the playbook (colon separated,
    /// repeatable).
    #[arg(long = "roles-path", value_delimiter = ':')]
    pub roles_path: Vec<PathBuf>,
    /// Refuse a playbook that needs a module infra does not implement itself (one that
    /// would run as Ansible's own module), before any host is contacted.
    #[arg(long)]
    pub native_only: bool,
    /// Keep SSH connections open between runs, as Ansible's ControlPersist: `no`, `yes`
    /// (until `meta: reset_connection`) or an idle time (`60s`, `10m`). Default 60s. A
    /// host's `-o ControlPersist=`/`-o ControlMaster=no` in `ansible_ssh_common_args`
    /// overrides it.
    #[arg(long, env = "INFRA_SSH_PERSIST", value_name = "no|yes|TIME")]
    pub ssh_persist: Option<String>,
    #[command(flatten)]
    pub vault: super::vault::VaultArgs,
}

impl RunArgs {
    /// The engine's options for running `playbook` against `inventory`. `-e @file` paths
    /// are relative to the current directory.
    pub fn into_options(
        self,
        inventory: Inventory,
        playbook: PathBuf,
    ) -> anyhow::Result<RunOptions> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let extra_vars = engine::parse_extra_vars(&self.extra_vars, &cwd)?;
        // Absolute, so `playbook_dir` and paths relative to the playbook are too, whatever
        // the current folder (as in Ansible).
        let playbook = cwd.join(playbook);
        let keep = match self.ssh_persist.as_deref() {
            Some(text) => Keep::parse_setting(text).context("--ssh-persist")?,
            None => mux::DEFAULT_KEEP,
        };
        Ok(RunOptions {
            playbook,
            inventory,
            limit: self.limit,
            check: self.check,
            diff: self.diff,
            forks: self.forks.unwrap_or(0),
            extra_vars,
            tags: clean(self.tags),
            skip_tags: clean(self.skip_tags),
            output: self.output,
            accept_new_host_keys: self.accept_new_host_keys,
            known_hosts: self.known_hosts,
            roles_path: self.roles_path,
            verbosity: self.verbose,
            native_only: self.native_only,
            ssh_persist: Persist::for_this_binary(keep),
        })
    }
}

fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The playbook to run.
    pub playbook: PathBuf,
    /// The inventory file (Ansible YAML format).
    #[arg(short = 'i', long)]
    pub inventory: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: PlayArgs) -> anyhow::Result<i32> {
    if args.run.forks == Some(0) {
        anyhow::bail!("--forks must be at least 1");
    }
    // Passwords first: vaulted inventory vars, vars files and sources are decrypted while
    // loading, before any host is contacted.
    args.run.vault.install()?;
    let mut inventory = Inventory::load(&args.inventory)
        .with_context(|| format!("inventory {}", args.inventory.display()))?;
    let mut run = args.run;
    let state = attach_provider_hosts(&mut inventory, &args.inventory).await?;
    let platform_vars = match &state {
        Some(state) => Some(super::platform::prepare(&inventory, state.path())?),
        None => None,
    };
    run.known_hosts.extend(state.map(|s| s.known_hosts_path()));
    let mut opts = run.into_options(inventory, args.playbook)?;
    if let Some(vars) = platform_vars {
        super::platform::merge_under(&mut opts.extra_vars, vars);
    }
    let recap = engine::run(opts).await?;
    Ok(recap.exit_code())
}

/// For an inventory of `infra up`'s docker provider, fills in the addresses, user and key of
/// the hosts whose containers run, so `infra play -i inventories/local.yaml` reaches the
/// same hosts `infra up` made. Creates no host; returns the cluster's state folder (its
/// known_hosts and CA), `None` for an inventory of no provider.
async fn attach_provider_hosts(
    inventory: &mut Inventory,
    inventory_path: &std::path::Path,
) -> anyhow::Result<Option<crate::provider::StateDir>> {
    use crate::provider::{self, cluster, docker, StateDir};
    let Some(spec) = provider::inventory::cluster_spec(inventory)? else {
        return Ok(None);
    };
    let state = StateDir::new(cluster::state_dir_from_env(inventory_path, &spec.name)?);
    let docker = docker::connect().await?;
    let missing = provider::attach_running(&docker, &spec, &state, inventory).await?;
    if !missing.is_empty() {
        eprintln!(
            "not running yet (create them with `infra up -i {}`): {}",
            inventory_path.display(),
            missing
                .iter()
                .map(|(host, _)| host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        play: PlayArgs,
    }

    #[test]
    fn parses_every_option() {
        let cli = Cli::try_parse_from([
            "infra",
            "site.yaml",
            "-i",
            "inv.yaml",
            "-l",
            "web",
            "-C",
            "-D",
            "-f",
            "3",
            "-e",
            "a=1",
            "-e",
            "@x.yaml",
            "-t",
            "a,b",
            "-t",
            "c",
            "--skip-tags",
            "d",
            "--output",
            "json",
            "--accept-new-host-keys",
            "--known-hosts",
            "/k1",
            "--known-hosts",
            "/k2",
            "-vv",
            "--roles-path",
            "/r1:/r2",
        ])
        .unwrap();
        let a = cli.play;
        assert_eq!(a.playbook, PathBuf::from("site.yaml"));
        assert_eq!(a.inventory, PathBuf::from("inv.yaml"));
        let r = a.run;
        assert_eq!(r.limit.as_deref(), Some("web"));
        assert!(r.check && r.diff && r.accept_new_host_keys);
        assert_eq!(r.forks, Some(3));
        assert_eq!(r.extra_vars, vec!["a=1", "@x.yaml"]);
        assert_eq!(r.tags, vec!["a", "b", "c"]);
        assert_eq!(r.skip_tags, vec!["d"]);
        assert_eq!(r.output, OutputMode::Json);
        assert_eq!(r.known_hosts.len(), 2);
        assert_eq!(r.verbose, 2);
        assert_eq!(
            r.roles_path,
            vec![PathBuf::from("/r1"), PathBuf::from("/r2")]
        );
    }

    #[test]
    fn inventory_is_required() {
        assert!(Cli::try_parse_from(["infra", "site.yaml"]).is_err());
    }

    #[test]
    fn options_carry_parsed_extra_vars() {
        let args = RunArgs {
            extra_vars: vec!["x=1".into(), r#"{"y": [1]}"#.into()],
            tags: vec![" a ".into(), "".into()],
            ..Default::default()
        };
        let o = args
            .into_options(Inventory::default(), PathBuf::from("p.yaml"))
            .unwrap();
        assert_eq!(o.extra_vars["x"], "1");
        assert_eq!(o.extra_vars["y"][0], 1);
        assert_eq!(o.tags, vec!["a"]);
        assert_eq!(o.forks, 0);
    }
}
