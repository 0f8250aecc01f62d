//! `infra proxy`: the proxy nodes' nginx syncer.

use clap::Args;

#[derive(Args, Debug)]
pub struct ProxyArgs {}

pub async fn run(_args: ProxyArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra proxy` is not implemented yet")
}
