#!/usr/bin/env bash
# Web UI benchmark (issue 15): the Apps page in headless Chromium with 1,000 apps and
# 10,000 tasks (agents speaking the real protocol) against one `infra scheduler`; prints the
# time to first render (from navigation start) and to apply one event (median of 5 task
# kills, from the event's arrival in the page to the end of the redraw). Figures only, no
# thresholds. Builds in release mode unless --debug is given.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

profile=(--release)
[[ "${1:-}" == "--debug" ]] && profile=()

command -v chromedriver >/dev/null || { echo "chromedriver is missing: apt-get install chromium chromium-driver" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB, $(chromium --version 2>/dev/null | head -1)"
cargo test "${profile[@]}" --test ui_browser --no-run
exec cargo test "${profile[@]}" --test ui_browser apps_page_with_1000_apps_and_10000_tasks -- --ignored --nocapture --test-threads 1
