//! `infra scheduler`: the control nodes' scheduler daemon.

use clap::Args;

#[derive(Args, Debug)]
pub struct SchedulerArgs {}

pub async fn run(_args: SchedulerArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra scheduler` is not implemented yet")
}
