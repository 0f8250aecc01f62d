#!/usr/bin/env bash
# The scheduler's load harness (issue 17): builds the release `infra` and the harness
# (benches/scheduler_load), then runs a real `infra scheduler` on redb against simulated
# agents. Every argument goes to the harness; the defaults are the full size (1,000
# agents, 10,000 apps x 10 instances). A small run takes seconds:
#
#   bench/scheduler/run.sh --agents 100 --apps 500
#
# The Markdown table goes to stdout and to bench/scheduler/results/<date>.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --bin infra
cargo bench --bench scheduler_load --no-run
target_dir="${CARGO_TARGET_DIR:-target}"
harness=$(ls -t "$target_dir"/release/deps/scheduler_load-* | grep -v '\.d$' | head -1)
mkdir -p bench/scheduler/results
out="bench/scheduler/results/$(date -u +%Y%m%dT%H%M%SZ).md"
"$harness" --infra "$target_dir/release/infra" "$@" | tee "$out"
echo "written to $out" >&2
