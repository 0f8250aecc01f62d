//! `infra up`: create the provider's hosts, then converge them with site.yaml.

use clap::Args;

#[derive(Args, Debug)]
pub struct UpArgs {}

pub async fn run(_args: UpArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra up` is not implemented yet")
}
