#!/usr/bin/env bash
# Runs every test: unit tests, integration tests against real local processes (sshd, etcd,
# nginx), and the end-to-end tests on local Docker clusters (needs root and a running
# Docker engine: scripts/install.sh --deps-only sets that up). Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo test --no-fail-fast "$@"
