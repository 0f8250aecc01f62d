//! The host image's recipe as data: the debootstrap call, the files written into the root
//! filesystem, the commands run in it, and the image config. Its content hash names the image
//! (`infra-host:<hash>`), so a changed recipe means a new image and an unchanged one is reused.

use sha2::{Digest, Sha256};

pub const IMAGE_REPO: &str = "infra-host";
pub const SUITE: &str = "bookworm";
pub const MIRROR: &str = "http://deb.debian.org/debian";
pub const VARIANT: &str = "minbase";
pub const INCLUDE: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "procps",
    "sudo",
    "ca-certificates",
];

/// Bumped when the build steps change in a way the data below does not show.
const RECIPE_VERSION: &str = "infra-host recipe 1";

/// Files written into the root filesystem (path, mode, content).
pub const FILES: &[(&str, u32, &str)] = &[
    // sshd makes its host keys at first boot: no two hosts share a key.
    (
        "etc/systemd/system/ssh.service.d/infra-hostkeys.conf",
        0o644,
        "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n",
    ),
    // No locales package: C.UTF-8 is built into glibc.
    ("etc/default/locale", 0o644, "LANG=C.UTF-8\n"),
    // Empty: systemd generates the machine id at first boot.
    ("etc/machine-id", 0o444, ""),
    // Docker bind-mounts these three files; on a machine they are plain files that tools
    // (and infra's atomic writes) replace by rename, so make them plain at boot.
    ("usr/local/sbin/infra-unbind-etc", 0o755, UNBIND_SCRIPT),
    ("etc/systemd/system/infra-unbind-etc.service", 0o644, UNBIND_UNIT),
];

const UNBIND_SCRIPT: &str = r#"#!/bin/sh
# Makes Docker's bind-mounted /etc/hosts, /etc/hostname and /etc/resolv.conf plain files, as
# on a machine: Docker's content at first boot, the host's own (converged) content later.
set -u
mkdir -p /var/lib/infra
for f in /etc/hosts /etc/hostname /etc/resolv.conf; do
  grep -q " $f " /proc/self/mountinfo || continue
  name=$(basename "$f")
  copy="/run/infra-unbind-$name"
  cp "$f" "$copy" || continue
  umount "$f" || { rm -f "$copy"; continue; }
  stamp="/var/lib/infra/unbound-$name"
  if [ ! -e "$stamp" ]; then
    cat "$copy" > "$f" && touch "$stamp"
  fi
  rm -f "$copy"
done
exit 0
"#;

const UNBIND_UNIT: &str = "[Unit]
Description=Make Docker's /etc/hosts, /etc/hostname, /etc/resolv.conf plain files
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target network-pre.target
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/infra-unbind-etc

[Install]
WantedBy=sysinit.target
";

/// Paths removed from the root filesystem (globs relative to it).
pub const REMOVE: &[&str] = &[
    "etc/ssh/ssh_host_*",
    "var/lib/dbus/machine-id",
    "etc/hostname",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/*.bin",
];

/// Symlinks created (link, target): ssh.service and infra-unbind-etc.service enabled.
pub const LINKS: &[(&str, &str)] = &[
    (
        "etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    ),
    (
        "etc/systemd/system/sysinit.target.wants/infra-unbind-etc.service",
        "/etc/systemd/system/infra-unbind-etc.service",
    ),
];

/// Commands run inside the root filesystem (with chroot).
pub const CHROOT_COMMANDS: &[&[&str]] = &[&["passwd", "--lock", "root"], &["apt-get", "clean"]];

/// Image config given to Docker's import (`changes`).
pub fn image_changes(hash: &str) -> Vec<String> {
    vec![
        "ENV container=docker".to_string(),
        "ENV LANG=C.UTF-8".to_string(),
        r#"CMD ["/lib/systemd/systemd"]"#.to_string(),
        format!("LABEL infra.recipe={hash}"),
    ]
}

/// The debootstrap arguments (without the target folder and mirror).
pub fn debootstrap_args() -> Vec<String> {
    vec![
        format!("--variant={VARIANT}"),
        format!("--include={}", INCLUDE.join(",")),
    ]
}

/// The recipe's content hash: 16 hex digits of SHA-256 over everything above.
pub fn recipe_hash() -> String {
    let mut hasher = Sha256::new();
    let mut feed = |part: &str| {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    };
    feed(RECIPE_VERSION);
    feed(SUITE);
    feed(MIRROR);
    for arg in debootstrap_args() {
        feed(&arg);
    }
    for (path, mode, content) in FILES {
        feed(path);
        feed(&format!("{mode:o}"));
        feed(content);
    }
    for path in REMOVE {
        feed(path);
    }
    for (link, target) in LINKS {
        feed(link);
        feed(target);
    }
    for command in CHROOT_COMMANDS {
        feed(&command.join(" "));
    }
    for change in image_changes("") {
        feed(&change);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// `infra-host:<hash>`.
pub fn image_tag() -> String {
    format!("{IMAGE_REPO}:{}", recipe_hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_short() {
        assert_eq!(recipe_hash(), recipe_hash());
        assert_eq!(recipe_hash().len(), 16);
        assert!(image_tag().starts_with("infra-host:"));
    }

    #[test]
    fn host_keys_are_removed_and_made_at_boot() {
        assert!(REMOVE.contains(&"etc/ssh/ssh_host_*"));
        assert!(FILES.iter().any(|(_, _, c)| c.contains("ssh-keygen -A")));
    }
}
