//! `infra play`: run a playbook against an inventory.

use clap::Args;

#[derive(Args, Debug)]
pub struct PlayArgs {}

pub async fn run(_args: PlayArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra play` is not implemented yet")
}
