#!/usr/bin/env bash
# Installs what infra needs on a Debian 12 machine (run as root): the Debian packages, a
# Rust toolchain when none is present, a running Docker engine, and ansible-core + pyinfra
# in /opt/infra-venv (only for the side-by-side tests and benchmarks). With --deps-only it stops
# there; otherwise it also builds and installs the `infra` binary (into ~/.cargo/bin).
set -euo pipefail
cd "$(dirname "$0")/.."

deps_only=false
[[ "${1:-}" == "--deps-only" ]] && deps_only=true

if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/install.sh must run as root (it installs packages and starts dockerd)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# chromium, chromium-driver and a font: the web UI's browser tests (tests/ui_browser.rs).
# protobuf-compiler and libprotobuf-dev: etcd-client's build compiles etcd's .proto files,
# which import protobuf's own (google/protobuf/descriptor.proto, from libprotobuf-dev).
# redis-tools: Debian's redis server binary, copied into the three-tier demo's image
# (examples/three-tier/build-image.sh, tests/platform/three_tier.rs).
apt-get update
apt-get install -y --no-install-recommends \
  docker.io debootstrap openssh-server openssh-client sudo etcd-server nginx-light rsyslog \
  vagrant python3-venv curl ca-certificates tar git build-essential pkg-config \
  busybox-static unzip dnsutils iproute2 openssl protobuf-compiler libprotobuf-dev \
  chromium chromium-driver fonts-dejavu-core redis-tools

# Ansible (ansible-core plus the community collections, such as community.general) and
# pyinfra, for the compatibility suite, the Ansible-module fallback's tests and the
# benchmark (side by side). ansible 12 is the package that ships ansible-core 2.19.
# passlib: Ansible's password_hash filter needs it (the compatibility suite compares it).
venv_complete() {
  [[ -x /opt/infra-venv/bin/ansible-playbook && -x /opt/infra-venv/bin/pyinfra ]] \
    && /opt/infra-venv/bin/python3 -c 'import ansible_collections.community.general, passlib' 2>/dev/null
}
if ! venv_complete; then
  python3 -m venv /opt/infra-venv
  /opt/infra-venv/bin/pip install --quiet 'ansible>=12,<13' pyinfra passlib
fi

# Rust: Debian 12's rustc is too old for the dependencies; use rustup's stable toolchain.
if ! command -v cargo >/dev/null 2>&1; then
  if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    :
  else
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
fi
export PATH="$HOME/.cargo/bin:$PATH"

# Every host of a local cluster runs systemd, which takes inotify instances of the machine's
# shared budget (128 by default): past a dozen hosts new ones fail to boot ("Failed to create
# inotify object: Too many open files"). Raise it, never lower it.
raise_sysctl() {
  local key=$1 want=$2 have
  have=$(sysctl -n "$key" 2>/dev/null || echo 0)
  if (( have < want )); then
    sysctl -qw "$key=$want" || echo "warning: could not raise $key to $want" >&2
  fi
}
raise_sysctl fs.inotify.max_user_instances 8192
raise_sysctl fs.inotify.max_user_watches 1048576

# Docker: start the engine when it is not answering, and wait until it does.
if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then
    :
  else
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

if ! $deps_only; then
  cargo install --locked --path .
  # Linked onto the PATH every root shell already has: on a fresh machine rustup's
  # ~/.cargo/bin reaches PATH only in new login shells, so the README's
  # `scripts/install.sh && infra up` would not find `infra` otherwise.
  ln -sf "$HOME/.cargo/bin/infra" /usr/local/bin/infra
  echo "installed: $HOME/.cargo/bin/infra (linked from /usr/local/bin/infra)"
fi
