//! `infra down`: remove what `infra up` created for an inventory's cluster: the containers
//! and network labelled as that cluster's, nothing else. The state folder (cluster key,
//! known_hosts) stays unless `--purge`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::inventory::Inventory;
use crate::provider::{self, cluster, docker};

#[derive(Args, Debug)]
pub struct DownArgs {
    /// The inventory whose cluster to remove.
    /// Defaults to the local Docker cluster, `inventories/local.yaml`.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "INVENTORY",
        default_value = "inventories/local.yaml"
    )]
    pub inventory: PathBuf,
    /// Also remove the cluster's state folder (its SSH key and known_hosts).
    #[arg(long)]
    pub purge: bool,
}

pub async fn run(args: DownArgs) -> anyhow::Result<i32> {
    let inventory = Inventory::load(&args.inventory)?;
    let Some(spec) = provider::inventory::cluster_spec(&inventory)? else {
        println!(
            "{}: no host asks for a provider (infra_provider: docker); nothing to remove",
            args.inventory.display()
        );
        return Ok(0);
    };
    let docker = docker::connect().await?;
    let removed = provider::down(&docker, &spec.name).await?;
    for name in &removed.containers {
        println!("removed container {name}");
    }
    if let Some(net) = &removed.network {
        println!("removed network {net}");
    }
    for note in &removed.kept {
        println!("left alone: {note}");
    }
    if removed.containers.is_empty() && removed.network.is_none() {
        println!("cluster `{}`: nothing to remove", spec.name);
    }
    if args.purge {
        let state = cluster::state_dir_from_env(&args.inventory, &spec.name)?;
        if state.exists() {
            std::fs::remove_dir_all(&state)
                .with_context(|| format!("cannot remove the state folder {}", state.display()))?;
            println!("removed state folder {}", state.display());
        }
    }
    Ok(0)
}
