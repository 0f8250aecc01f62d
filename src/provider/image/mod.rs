//! The host image `infra-host:<recipe-hash>` (also tagged `infra-host:latest`): reused when
//! an image with the recipe's hash exists, else built from a debootstrap root filesystem
//! imported into Docker. (Where a registry is reachable a `FROM debian:bookworm` Dockerfile
//! would be quicker; not done yet: no registry is reachable on the machines this runs on.)

pub mod import;
pub mod recipe;
pub mod rootfs;

use anyhow::Context;
use bollard::query_parameters::TagImageOptions;
use bollard::Docker;

use super::docker::is_not_found;
use super::progress::Progress;

/// Whether `ensure` built the image or found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageOutcome {
    Reused(String),
    Built(String),
}

impl ImageOutcome {
    pub fn tag(&self) -> &str {
        match self {
            ImageOutcome::Reused(t) | ImageOutcome::Built(t) => t,
        }
    }
}

/// True when Docker has an image of that name.
pub async fn exists(docker: &Docker, name: &str) -> anyhow::Result<bool> {
    match docker.inspect_image(name).await {
        Ok(_) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot inspect image {name}")),
    }
}

/// Returns the host image's tag, building it when missing (or when `force`).
pub async fn ensure(
    docker: &Docker,
    force: bool,
    progress: &Progress,
) -> anyhow::Result<ImageOutcome> {
    let hash = recipe::recipe_hash();
    let tag = recipe::image_tag();
    if !force && exists(docker, &tag).await? {
        return Ok(ImageOutcome::Reused(tag));
    }
    rootfs::check_prerequisites()?;
    let dir = tempfile::Builder::new()
        .prefix("infra-rootfs-")
        .tempdir_in("/var/tmp")
        .context("cannot make a build folder in /var/tmp")?;
    let root = dir.path().join("rootfs");
    progress.step(format!(
        "building {tag}: debootstrap {} (about a minute)",
        recipe::SUITE
    ));
    rootfs::debootstrap(&root, progress).await?;
    progress.step(format!("building {tag}: applying the recipe"));
    rootfs::customize(&root).await?;
    progress.step(format!("building {tag}: importing into Docker"));
    import::import_rootfs(
        docker,
        &root,
        recipe::IMAGE_REPO,
        &hash,
        recipe::image_changes(&hash),
        progress,
    )
    .await?;
    docker
        .tag_image(
            &tag,
            Some(TagImageOptions {
                repo: Some(recipe::IMAGE_REPO.to_string()),
                tag: Some("latest".to_string()),
            }),
        )
        .await
        .with_context(|| format!("cannot tag {tag} as {}:latest", recipe::IMAGE_REPO))?;
    progress.step(format!("building {tag}: cleaning up"));
    dir.close().context("cannot remove the build folder")?;
    Ok(ImageOutcome::Built(tag))
}
