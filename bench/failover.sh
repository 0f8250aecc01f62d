#!/usr/bin/env bash
# HA scheduler benchmark on loopback (issue 11): 3 etcd members (Debian's etcd-server) and
# 3 `infra scheduler --etcd` processes.
#  - failover: kill -9 the leader 20 times (restarting it after each), time from the kill to
#    the first write answered 201 through a surviving node: p50/p95/max;
#  - write throughput: POST /v2/apps of 200 apps, sequential and 8 concurrent clients, etcd
#    (to the leader and round-robin over all nodes) against one scheduler on redb.
# Figures only, no thresholds. Builds in release mode unless --debug is given.
# Environment: FAILOVER_ROUNDS (20), THROUGHPUT_APPS (200), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

profile=(--release)
[[ "${1:-}" == "--debug" ]] && profile=()

command -v etcd >/dev/null || { echo "etcd is missing: apt-get install etcd-server" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB, $(etcd --version | head -1)"
cargo test "${profile[@]}" --test ha_bench --no-run
exec cargo test "${profile[@]}" --test ha_bench -- --ignored --nocapture --test-threads 1
