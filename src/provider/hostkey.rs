//! Reading a host's own SSH key (generated at its first boot) through Docker's archive API,
//! so known_hosts records the real key and not one we assumed.

use std::io::Read;

use anyhow::{bail, Context};
use bollard::query_parameters::DownloadFromContainerOptions;
use bollard::Docker;
use futures::TryStreamExt;

const HOST_KEY: &str = "/etc/ssh/ssh_host_ed25519_key.pub";

/// `ssh-ed25519 AAAA...` from the container (without the comment).
pub async fn read_host_key(docker: &Docker, container: &str) -> anyhow::Result<String> {
    let archive: Vec<u8> = docker
        .download_from_container(
            container,
            Some(DownloadFromContainerOptions {
                path: HOST_KEY.to_string(),
            }),
        )
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
        .with_context(|| format!("cannot read {HOST_KEY} from container `{container}`"))?;
    let mut tar = tar::Archive::new(archive.as_slice());
    let mut entries = tar
        .entries()
        .with_context(|| format!("container `{container}`: bad archive for {HOST_KEY}"))?;
    let mut entry = entries
        .next()
        .with_context(|| format!("container `{container}`: empty archive for {HOST_KEY}"))?
        .with_context(|| format!("container `{container}`: bad archive for {HOST_KEY}"))?;
    let mut text = String::new();
    entry
        .read_to_string(&mut text)
        .with_context(|| format!("container `{container}`: {HOST_KEY} is not text"))?;
    parse_public_key(&text).with_context(|| format!("container `{container}`: {HOST_KEY}"))
}

/// The algorithm and base64 fields of an OpenSSH public key line.
pub fn parse_public_key(text: &str) -> anyhow::Result<String> {
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(algorithm), Some(key))
            if algorithm.starts_with("ssh-") || algorithm.starts_with("ecdsa-") =>
        {
            Ok(format!("{algorithm} {key}"))
        }
        _ => bail!("not an OpenSSH public key: {:?}", text.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_algorithm_and_key_drops_comment() {
        assert_eq!(
            parse_public_key("ssh-ed25519 AAAAC3Nz root@web1\n").unwrap(),
            "ssh-ed25519 AAAAC3Nz"
        );
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key("garbage").is_err());
    }
}
