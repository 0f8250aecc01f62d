//! `infra down`: remove what `infra up` created.

use clap::Args;

#[derive(Args, Debug)]
pub struct DownArgs {}

pub async fn run(_args: DownArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra down` is not implemented yet")
}
