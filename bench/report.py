#!/usr/bin/env python3
"""Turns bench/results/<N>.json (and bench/results/workload2/<N>.json, the second
workload) into tables (printed) and bench/RESULTS.md.

Run by bench/bench.py after a run; can be re-run alone to rebuild RESULTS.md from the
stored results.
"""

import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = Path(os.environ.get("BENCH_VENV", "/opt/infra-bench-venv"))
INFRA = os.environ.get("INFRA_BIN", str(ROOT / "target/release/infra"))


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError as e:
        return f"({e})"


def med(values):
    return statistics.median(values) if values else None


def fmt(secs):
    return "-" if secs is None else f"{secs:.2f} s"


def ratio(a, b):
    return "-" if not a or not b else f"{b / a:.1f}x"


def table(results):
    lines = [
        "| N | run | infra | ansible-playbook | pyinfra | ansible / infra | pyinfra / infra |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for mode, label in (("first", "first run"), ("converged", "converged"),
                            ("check", "--check --diff / --dry")):
            i = med(r[mode].get("infra", []))
            a = med(r[mode].get("ansible", []))
            p = med(r[mode].get("pyinfra", []))
            runs = max((len(v) for v in r[mode].values()), default=0)
            lines.append(
                f"| {r['n']} | {label} (median of {runs}) | {fmt(i)} | {fmt(a)} | {fmt(p)} "
                f"| {ratio(i, a)} | {ratio(i, p)} |"
            )
    return "\n".join(lines)


def first_run_table(results):
    lines = [
        "| N | baseline: apt + user + service start over plain ssh | infra first run "
        "| infra overhead over baseline | infra peak RSS |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        b = med(r["baseline"])
        i = med(r["first"].get("infra", []))
        over = "-" if not b or not i else f"{(i - b) / b * 100:+.0f}%"
        rss = max(r["rss_kib"]) / 1024 if r["rss_kib"] else None
        lines.append(
            f"| {r['n']} | {fmt(b)} (median of {len(r['baseline'])}) | {fmt(i)} | {over} "
            f"| {'-' if rss is None else f'{rss:.1f} MiB'} |"
        )
    return "\n".join(lines)


def scaling(results):
    by_n = {r["n"]: r for r in results}
    if not by_n:
        return ""
    out = [
        "| N | infra converged | ssh floor | infra / floor | infra converged N / 1 "
        "| floor N / 1 | infra first run N / 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    one = by_n.get(1, {})

    def per_one(r, key):
        v = med(r.get(key, {}).get("infra", [])) if key != "floor" else med(r.get("floor", []))
        v1 = (med(one.get(key, {}).get("infra", [])) if key != "floor"
              else med(one.get("floor", [])))
        return "-" if not (v and v1) else f"{v / v1:.2f}"

    for n, r in sorted(by_n.items()):
        c = med(r["converged"].get("infra", []))
        floor = med(r.get("floor", []))
        over = "-" if not (c and floor) else f"{c / floor:.2f}"
        out.append(
            f"| {n} | {fmt(c)} | {fmt(floor)} | {over} | {per_one(r, 'converged')} "
            f"| {per_one(r, 'floor')} | {per_one(r, 'first')} |"
        )
    warm = [r for _, r in sorted(by_n.items()) if r.get("floor_warm")]
    if warm:
        out += [
            "",
            "Kept connections (infra's default, `--ssh-persist 60s`; OpenSSH with "
            "`ControlPersist=60s` for the warm floor), converged runs that follow another:",
            "",
            "| N | infra warm | warm ssh floor | infra warm / warm floor "
            "| infra warm / cold floor |",
            "|---|---|---|---|---|",
        ]
        for r in warm:
            w = med(r["converged"].get("infra-warm", []))
            wf = med(r["floor_warm"])
            cf = med(r.get("floor", []))
            ratio = lambda a, b: "-" if not (a and b) else f"{a / b:.2f}"
            out.append(f"| {r['n']} | {fmt(w)} | {fmt(wf)} | {ratio(w, wf)} | {ratio(w, cf)} |")
    return "\n".join(out)


def raw(results):
    out = []
    for r in results:
        out.append(f"- N={r['n']}, load before: `{r['uptime']}`")
        for mode in ("first", "converged", "check"):
            for tool, values in r[mode].items():
                out.append(f"  - {mode} {tool}: " + ", ".join(f"{v:.2f}" for v in values))
        if r["baseline"]:
            out.append("  - baseline: " + ", ".join(f"{v:.2f}" for v in r["baseline"]))
        if r.get("floor"):
            out.append("  - ssh floor: " + ", ".join(f"{v:.2f}" for v in r["floor"]))
        if r.get("floor_warm"):
            out.append("  - warm ssh floor: " + ", ".join(f"{v:.2f}" for v in r["floor_warm"]))
        for key, values in r["changed"].items():
            out.append(f"  - changed reported, {key}: {values}")
    return "\n".join(out)


def load(folder):
    """The results of one workload, by N."""
    return [json.loads(p.read_text())
            for p in sorted(folder.glob("*.json"), key=lambda p: int(p.stem))]


def workload2_section(results):
    """The second workload's tables, or a note that it was not run."""
    if not results:
        return "## Second workload\n\nNot run yet: `WORKLOAD=2 bench/run.sh`.\n"
    return f"""## Second workload (bench/workload2/site.yml)

Written differently from the first on purpose, as another team would write a web node
(28 tasks): facts gathered and used by a template, fully qualified module names, `apt` for
the lists then `package` for the install, two system accounts and three unit files from
loops, six `service`/`systemd_service` tasks with different options (started, enabled,
masked: false, daemon_reload, two loops, two timers stopped and disabled), handlers that
listen on one topic and loop over the services, a command with `creates`.
bench/pyinfra/deploy2.py is the same end state for pyinfra, and the end states are
compared as for the first workload (packages, accounts, every file, every unit's state).
Clusters are named web<N>; raw numbers in bench/results/workload2/<N>.json. Made with
`WORKLOAD=2 bench/run.sh <N>`; the tools run as for the first workload, with
bench/workload2/site.yml (`infra play`, `ansible-playbook`: the play itself asks for facts)
and bench/pyinfra/deploy2.py (`pyinfra`).

### Times

{table(results)}

### First run against the hosts' own work

{first_run_table(results)}

### Scaling

{scaling(results)}

The ssh floor here is `ssh host systemctl show -p ActiveState web-api` on every host at
once.

### Raw numbers (seconds)

{raw(results)}
"""


def main():
    results = load(BENCH / "results")
    results2 = load(BENCH / "results/workload2")
    if not results:
        raise SystemExit("no results in bench/results/")
    main_table = table(results)
    print(main_table)
    print()
    print(first_run_table(results))
    if results2:
        print()
        print(table(results2))
    cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
    mem = sh("free -h | awk '/Mem:/ {print $2}'")
    infra_version = sh(f"{INFRA} --version")
    commit = sh(f"git -C {ROOT} rev-parse --short HEAD")
    ansible_version = sh(f"{VENV / 'bin/ansible-playbook'} --version | head -1")
    pyinfra_version = sh(f"{VENV / 'bin/pyinfra'} --version")
    machine = "\n".join([
        f"- CPUs: {os.cpu_count()} ({cpu})",
        f"- memory: {mem}",
        f"- kernel: {platform.release()}",
        f"- load when the report was written: `{sh('uptime')}` (the machine is shared with"
        " other jobs; the load before each N is in the raw numbers)",
        f"- infra: `{infra_version}` (release build), commit {commit}",
        f"- ansible-core: `{ansible_version}`",
        f"- pyinfra: `{pyinfra_version}`",
        "- hosts: docker containers (systemd + OpenSSH 9.2, Debian 12) made by `infra up`,"
        " on a private Docker network of this machine",
    ])
    text = f"""# Benchmark results

Written by `bench/run.sh` (bench/bench.py, bench/report.py); raw numbers in
bench/results/<N>.json. The workload is bench/workload/site.yml (24 tasks, a compute node:
apt with cache_valid_time, a group and user, directories, 3 templates with loops and
conditionals, copied files, lineinfile edits, a symlink, a systemd unit with a handler, a
command with `creates`), run unmodified by `infra play` and `ansible-playbook`, and
bench/pyinfra/deploy.py for pyinfra. After every first run the end state of each host
(packages, user, every file's type/mode/owner/sha256, the service's state) is compared with
the first tool's: the three tools leave identical hosts.

## Times

{main_table}

## First run against the hosts' own work

{first_run_table(results)}

The baseline is what the hosts spend without any tool: `apt-get update` when the package
lists are older than a day (what `cache_valid_time: 86400` makes every tool do), `apt-get
install jq rsync less`, creating the user, writing the unit and `systemctl enable --now
app`, sent as one script over plain `ssh` to every host in parallel on freshly created
hosts.

## Scaling

{scaling(results)}

The ssh floor is the least a converged run can cost: every host reached at once over plain
OpenSSH (`ssh host systemctl show -p ActiveState app`), nothing else. The hosts are
containers on the controller's own cores, so their sshd work grows with N whatever the tool
does; infra / floor is what the tool adds on top.

## Machine

{machine}

## Commands

Each tool's run, from the project root (N hosts; the cluster is bench<N>):

- infra: `infra play bench/workload/site.yml -i <work>/bench<N>/inventory.yaml --output json`
  (`--check --diff` for the check run); the inventory only says `infra_provider: docker`,
  `infra_cluster: bench<N>`, the host names; infra fills in addresses and the key.
- ansible-playbook: `ansible-playbook -i ansible-inventory.yaml bench/workload/site.yml`
  (`--check --diff`), with ansible.cfg: `forks = N`, `gathering = explicit` (the play has
  `gather_facts: false`: nothing uses facts), `pipelining = True`, `ssh_args = -o
  ControlMaster=auto -o ControlPersist=60s`, a fresh ControlPath directory per run (so
  every tool starts with cold connections).
- pyinfra: `pyinfra -y --parallel N --no-wait pyinfra_inventory.py bench/pyinfra/deploy.py`
  (`--dry` for the check run).
- hosts are recreated before every first run: `infra down -i inventory.yaml` then
  `infra up -i inventory.yaml --playbook bench/empty.yml` (bare hosts).

## Raw numbers (seconds)

{raw(results)}

{workload2_section(results2)}"""
    notes = BENCH / "NOTES.md"
    if notes.exists():
        text += "\n" + notes.read_text()
    (BENCH / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    main()
