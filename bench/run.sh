#!/bin/sh
# The provisioning benchmark: infra vs ansible-playbook vs pyinfra on N fresh docker hosts.
#
#   bench/run.sh            N = 1, 10, 50
#   bench/run.sh 1 10       a subset
#   REPEAT=3                runs per measurement (median); REPEAT_FIRST for first runs
#                           (each one recreates the cluster), default REPEAT
#   INFRA_BIN=path          the infra binary (default: target/release/infra, built here)
#   BENCH_VENV=path         the Python virtual environment (default /opt/infra-bench-venv),
#                           created with pinned ansible-core and pyinfra from PyPI if missing
#   KEEP=1                  keep the last cluster (default: removed with `infra down --purge`)
#   WORKLOAD=2              the second workload (bench/workload2/site.yml,
#                           bench/pyinfra/deploy2.py) on clusters web<N>; results in
#                           bench/results/workload2/
#   TOOLS=infra             a subset of the tools (infra,ansible,pyinfra)
#   BENCH_RESULTS=dir       where the JSON goes (default bench/results[/workload2])
#   BENCH_CLUSTER_PREFIX=p  clusters named p<N> (default bench<N>, web<N> for WORKLOAD=2)
#   BENCH_WORK=dir          where inventories and cluster state go (default /tmp/infra-bench)
#
# Needs Docker (dockerd running), python3 with venv, the OpenSSH client. Writes
# bench/RESULTS.md (both workloads) and bench/results/[workload2/]<N>.json.
set -eu
cd "$(dirname "$0")/.."

ANSIBLE_CORE_VERSION=2.19.14
PYINFRA_VERSION=3.10.0
BENCH_VENV=${BENCH_VENV:-/opt/infra-bench-venv}
export BENCH_VENV

if ! "$BENCH_VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q "core $ANSIBLE_CORE_VERSION" ||
   ! "$BENCH_VENV/bin/pyinfra" --version 2>/dev/null | grep -q "$PYINFRA_VERSION"; then
    echo "bench: creating $BENCH_VENV (ansible-core $ANSIBLE_CORE_VERSION, pyinfra $PYINFRA_VERSION)" >&2
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install -q "ansible-core==$ANSIBLE_CORE_VERSION" "pyinfra==$PYINFRA_VERSION"
fi

if [ -z "${INFRA_BIN:-}" ]; then
    cargo build --release --quiet
    INFRA_BIN="${CARGO_TARGET_DIR:-target}/release/infra"
fi
INFRA_BIN=$(realpath "$INFRA_BIN")
export INFRA_BIN

docker info >/dev/null 2>&1 || { echo "bench: Docker is not running (start dockerd)" >&2; exit 1; }
command -v ssh >/dev/null || { echo "bench: the OpenSSH client (ssh) is needed" >&2; exit 1; }

exec "$BENCH_VENV/bin/python" bench/bench.py "$@"
