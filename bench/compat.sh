#!/usr/bin/env bash
# The compatibility suite as a benchmark: every playbook under tests/compat/ (the Galaxy-style
# roles included) run by ansible-playbook on one fresh host and by `infra play` on its twin,
# first run, then the converged run (median of REPEAT), per suite and for the whole suite.
# Figures only, no thresholds: the test (tests/compat_ansible.rs) checks the end states.
#
#   bench/compat.sh                 all suites
#   bench/compat.sh 11-galaxy-*     some
#   REPEAT=3                        converged runs per suite and tool (median)
#   INFRA_BIN=path                  the infra binary (default: a release build made here)
#   ANSIBLE_PLAYBOOK=path           default /opt/infra-venv/bin/ansible-playbook
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
REPEAT=${REPEAT:-3}
ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-/opt/infra-venv/bin/ansible-playbook}
[[ -x $ANSIBLE_PLAYBOOK ]] || { echo "bench: $ANSIBLE_PLAYBOOK is missing (scripts/install.sh --deps-only)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "bench: Docker is not running (start dockerd)" >&2; exit 1; }
if [[ -z ${INFRA_BIN:-} ]]; then
  cargo build --release --quiet
  INFRA_BIN="${CARGO_TARGET_DIR:-target}/release/infra"
fi
INFRA_BIN=$(realpath "$INFRA_BIN")

suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  for d in tests/compat/*/; do [[ -f $d/site.yml ]] && suites+=("$(basename "$d")"); done
fi

work=$(mktemp -d)
cluster="compatbench$$"
cleanup() {
  INFRA_HOME="$work/home" "$INFRA_BIN" down --purge -i "$work/twins.yaml" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Two fresh twins from the test image, made by `infra up` with a no-op playbook.
printf 'all:\n  vars:\n    infra_provider: docker\n    infra_cluster: %s\n  hosts:\n    twin-ansible:\n    twin-infra:\n' \
  "$cluster" >"$work/twins.yaml"
printf -- '- hosts: all\n  gather_facts: false\n  tasks: []\n' >"$work/noop.yml"
INFRA_HOME="$work/home" "$INFRA_BIN" up -i "$work/twins.yaml" --playbook "$work/noop.yml" >"$work/up.log" 2>&1 \
  || { cat "$work/up.log" >&2; exit 1; }
state="$work/home/$cluster"
# known_hosts holds `<address> <type> <key>` and `<name> <type> <key>` for each twin.
address() {
  local key
  key=$(awk -v h="$1" '$1 == h {print $2 " " $3; exit}' "$state/known_hosts")
  awk -v k="$key" '$2 " " $3 == k && $1 ~ /^[0-9.]+$/ {print $1; exit}' "$state/known_hosts"
}
for tool in ansible infra; do
  printf 'all:\n  children:\n    compat:\n      children:\n        web:\n          hosts:\n            twin:\n              ansible_host: %s\n              ansible_user: root\n              ansible_ssh_private_key_file: %s\n' \
    "$(address "twin-$tool")" "$state/id_ed25519" >"$work/inventory-$tool.yml"
done
printf '[defaults]\nhost_key_checking = True\ninterpreter_python = /usr/bin/python3\nretry_files_enabled = False\n[ssh_connection]\npipelining = True\nssh_args = -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes\n' \
  "$state/known_hosts" >"$work/ansible.cfg"

run_tool() { # tool suite -> exit status; output in $work/last.log
  local tool=$1 suite=$2
  if [[ $tool == ansible ]]; then
    ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_HOME="$work/ansible-home" \
      "$ANSIBLE_PLAYBOOK" -i "$work/inventory-ansible.yml" "$root/tests/compat/$suite/site.yml" >"$work/last.log" 2>&1
  else
    INFRA_HOME="$work/home" "$INFRA_BIN" play "$root/tests/compat/$suite/site.yml" \
      -i "$work/inventory-infra.yml" --known-hosts "$state/known_hosts" --output lines >"$work/last.log" 2>&1
  fi
}
seconds() { # tool suite -> wall seconds of one run
  local start end
  start=$(date +%s.%N)
  run_tool "$1" "$2" || { echo "bench: $1 failed on $2:" >&2; tail -20 "$work/last.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $("$ANSIBLE_PLAYBOOK" --version 2>/dev/null | head -1)"
printf '| suite | first: ansible | first: infra | converged: ansible | converged: infra | converged ratio |\n|---|---|---|---|---|---|\n'
total_a=0 total_i=0
for suite in "${suites[@]}"; do
  first_a=$(seconds ansible "$suite")
  first_i=$(seconds infra "$suite")
  runs_a=() runs_i=()
  for _ in $(seq "$REPEAT"); do
    runs_a+=("$(seconds ansible "$suite")")
    runs_i+=("$(seconds infra "$suite")")
  done
  conv_a=$(median "${runs_a[@]}")
  conv_i=$(median "${runs_i[@]}")
  total_a=$(echo "$total_a + $conv_a" | bc)
  total_i=$(echo "$total_i + $conv_i" | bc)
  printf '| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.1fx |\n' "$suite" "$first_a" "$first_i" "$conv_a" "$conv_i" \
    "$(echo "$conv_a / $conv_i" | bc -l)"
done
printf '| all (converged, sum of medians) | | | %.2f s | %.2f s | %.1fx |\n' "$total_a" "$total_i" \
  "$(echo "$total_a / $total_i" | bc -l)"
