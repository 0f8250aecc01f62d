//! `infra agent`: the compute nodes' agent daemon.

use clap::Args;

#[derive(Args, Debug)]
pub struct AgentArgs {}

pub async fn run(_args: AgentArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra agent` is not implemented yet")
}
