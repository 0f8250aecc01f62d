//! `infra deploy`: create or update an app from a Marathon app definition.

use clap::Args;

#[derive(Args, Debug)]
pub struct DeployArgs {}

pub async fn run(_args: DeployArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra deploy` is not implemented yet")
}
