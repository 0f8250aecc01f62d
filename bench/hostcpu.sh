#!/usr/bin/env bash
# The hosts' CPU a command costs: runs CMD RUNS times and prints, per run, the wall time and
# the CPU the cluster's containers used meanwhile (their cgroups' counters, read before and
# after; cgroup v1 `cpuacct.usage` or v2 `cpu.stat`). A converged run's cost on the hosts,
# which `time` on the controller does not see. Used for bench/RESULTS.md "Follow-up 3":
#
#   bench/hostcpu.sh lc210 10 infra play bench/workload2/site.yml -i <inventory> -l node01
#   bench/hostcpu.sh lc210 10 ssh -i <key> root@<ip> systemctl show -p ActiveState web-api
#
# CLUSTER is the name prefix of the containers (`<cluster>-<host>`).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CLUSTER RUNS CMD..." >&2; exit 2; }
cluster=$1 runs=$2
shift 2

# Microseconds of CPU used so far by every container of the cluster.
usage() {
  local total=0 id f v
  for id in $(docker ps -q --no-trunc --filter "name=^${cluster}-"); do
    if f=/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage && [ -r "$f" ]; then
      v=$(( $(cat "$f") / 1000 ))
    elif f=/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat && [ -r "$f" ]; then
      v=$(awk '$1 == "usage_usec" {print $2}' "$f")
    else
      echo "no cgroup CPU counter for container $id" >&2; exit 1
    fi
    total=$(( total + v ))
  done
  echo "$total"
}

[ -n "$(docker ps -q --filter "name=^${cluster}-")" ] \
  || { echo "no running container named ${cluster}-*" >&2; exit 1; }
before=$(usage)
start=$(date +%s%N)
for _ in $(seq "$runs"); do "$@" >/dev/null; done
end=$(date +%s%N)
after=$(usage)
echo "runs: $runs; per run: wall $(( (end - start) / runs / 1000000 )) ms," \
  "hosts' CPU $(( (after - before) / runs / 1000 )) ms; load: $(cut -d' ' -f1-3 /proc/loadavg)"
