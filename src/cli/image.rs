//! `infra image`: build the local cluster's host image.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build the host image (cached by a hash of its recipe).
    Build {
        /// Rebuild even when an image with the same recipe hash exists.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(_cmd: ImageCommand) -> anyhow::Result<i32> {
    anyhow::bail!("`infra image` is not implemented yet")
}
