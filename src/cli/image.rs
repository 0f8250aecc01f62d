//! `infra image`: build the local cluster's host image.

use clap::Subcommand;

use crate::provider::image::{self, ImageOutcome};
use crate::provider::{docker, Progress};

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build the host image (cached by a hash of its recipe).
    Build {
        /// Rebuild even when an image with the same recipe hash exists.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(cmd: ImageCommand) -> anyhow::Result<i32> {
    match cmd {
        ImageCommand::Build { force } => {
            let docker = docker::connect().await?;
            let progress = Progress::new("image");
            match image::ensure(&docker, force, &progress).await? {
                ImageOutcome::Built(tag) => {
                    progress.finish(format!("built {tag} (also tagged infra-host:latest)"))
                }
                ImageOutcome::Reused(tag) => {
                    progress.finish(format!("{tag} is up to date (use --force to rebuild)"))
                }
            }
            Ok(0)
        }
    }
}
