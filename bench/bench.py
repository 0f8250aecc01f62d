#!/usr/bin/env python3
"""The provisioning benchmark: infra vs ansible-playbook vs pyinfra on the same hosts.

For each N (hosts), on a docker cluster made by `infra up` (bare hosts: an empty playbook):
  first run      every tool starts from freshly created hosts (the cluster is recreated
                 before each tool's run), plus the baseline: the same apt-get install and
                 service start run directly over ssh on fresh hosts;
  converged run  the hosts are already converged (all tools produce the same end state,
                 checked by a fingerprint of every managed resource), runs interleaved;
  check run      `--check --diff` (pyinfra: `--dry`) on converged hosts, interleaved.
Each is the median of REPEAT runs. Writes bench/RESULTS.md and bench/results/<N>.json.

Started by bench/run.sh, which prepares the Python virtual environment and the binary.
Only the standard library is used here.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/infra-bench"))
INFRA = os.environ.get("INFRA_BIN", str(ROOT / "target/release/infra"))
VENV = Path(os.environ.get("BENCH_VENV", "/opt/infra-bench-venv"))
REPEAT = int(os.environ.get("REPEAT", "3"))
# First runs recreate the cluster each time; they may be repeated fewer times for large N.
REPEAT_FIRST = int(os.environ.get("REPEAT_FIRST", str(REPEAT)))
TOOLS = os.environ.get("TOOLS", "infra,infra-warm,ansible,pyinfra").split(",")
# WORKLOAD=2 runs the second workload (bench/workload2, bench/pyinfra/deploy2.py), written
# differently from the first, on clusters of its own; its results go to
# bench/results/workload2/. BENCH_RESULTS puts a run's JSON elsewhere (a follow-up run).
WORKLOAD = os.environ.get("WORKLOAD", "1")
if WORKLOAD not in ("1", "2"):
    sys.exit(f"WORKLOAD must be 1 or 2, not {WORKLOAD!r}")
PLAYBOOK = BENCH / ("workload/site.yml" if WORKLOAD == "1" else "workload2/site.yml")
DEPLOY = BENCH / ("pyinfra/deploy.py" if WORKLOAD == "1" else "pyinfra/deploy2.py")
RESULTS = Path(os.environ.get(
    "BENCH_RESULTS", BENCH / ("results" if WORKLOAD == "1" else "results/workload2")))
# BENCH_CLUSTER_PREFIX names the clusters otherwise (several people benchmarking on one
# docker host must not share clusters).
CLUSTER_PREFIX = os.environ.get("BENCH_CLUSTER_PREFIX", "bench" if WORKLOAD == "1" else "web")
# The unit the ssh floor asks systemd about (one `systemctl show` per host).
FLOOR_UNIT = "app" if WORKLOAD == "1" else "web-api"
EMPTY_PLAYBOOK = BENCH / "empty.yml"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Cluster:
    """One docker cluster of N bare hosts, made and removed with the infra binary."""

    def __init__(self, n):
        self.n = n
        self.name = f"{CLUSTER_PREFIX}{n}"
        self.dir = WORK / self.name
        self.home = WORK / "home"
        self.hosts = [f"node{i:02d}" for i in range(1, n + 1)]
        self.inventory = self.dir / "inventory.yaml"
        self.ips = {}

    @property
    def state(self):
        return self.home / self.name

    @property
    def key(self):
        return self.state / "id_ed25519"

    @property
    def known_hosts(self):
        return self.state / "known_hosts"

    def env(self):
        return dict(os.environ, INFRA_HOME=str(self.home))

    def write_inventory(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [
            "all:",
            "  vars:",
            "    infra_provider: docker",
            f"    infra_cluster: {self.name}",
            "  children:",
            "    nodes:",
            "      hosts:",
        ] + [f"        {h}:" for h in self.hosts]
        self.inventory.write_text("\n".join(lines) + "\n")

    def infra(self, *args, check=True):
        cmd = [INFRA, *args]
        out = subprocess.run(cmd, cwd=ROOT, env=self.env(), capture_output=True, text=True)
        if check and out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def reset(self):
        """Removes the cluster's containers and creates them again, bare."""
        started = time.monotonic()
        self.infra("down", "-i", str(self.inventory), check=False)
        self.infra(
            "up", "-i", str(self.inventory), "--playbook", str(EMPTY_PLAYBOOK),
            "--output", "json",
        )
        self.ips = {}
        for h in self.hosts:
            fmt = "{{(index .NetworkSettings.Networks \"infra-%s\").IPAddress}}" % self.name
            ip = subprocess.run(
                ["docker", "inspect", "-f", fmt, f"{self.name}-{h}"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            self.ips[h] = ip
        self.write_tool_inventories()
        log(f"{self.name}: {self.n} fresh hosts in {time.monotonic() - started:.1f}s")

    def down(self):
        self.infra("down", "-i", str(self.inventory), "--purge", check=False)

    def write_tool_inventories(self):
        # ansible: static inventory with the same names and addresses infra uses.
        lines = ["all:", "  hosts:"]
        for h in self.hosts:
            lines.append(f"    {h}:")
            lines.append(f"      ansible_host: {self.ips[h]}")
        lines += [
            "  vars:",
            "    ansible_user: root",
            f"    ansible_ssh_private_key_file: {self.key}",
            "    ansible_python_interpreter: /usr/bin/python3",
        ]
        (self.dir / "ansible-inventory.yaml").write_text("\n".join(lines) + "\n")
        (self.dir / "ansible.cfg").write_text(
            "\n".join([
                "[defaults]",
                f"forks = {self.n}",
                "gathering = explicit",
                "host_key_checking = True",
                "retry_files_enabled = False",
                "interpreter_python = /usr/bin/python3",
                "[ssh_connection]",
                "pipelining = True",
                # ControlPath is set per run (ANSIBLE_SSH_CONTROL_PATH_DIR) so every run
                # starts with cold connections, as infra and pyinfra do.
                "ssh_args = -o ControlMaster=auto -o ControlPersist=60s"
                f" -o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes",
                "",
            ])
        )
        # pyinfra: same names, ssh_hostname as the address.
        hosts = ",\n".join(
            f"    ({h!r}, {{'ssh_hostname': {self.ips[h]!r}}})" for h in self.hosts
        )
        (self.dir / "pyinfra_inventory.py").write_text(
            "nodes = ([\n" + hosts + ",\n], {\n"
            "    'ssh_user': 'root',\n"
            f"    'ssh_key': {str(self.key)!r},\n"
            f"    'ssh_known_hosts_file': {str(self.known_hosts)!r},\n"
            "    'ssh_strict_host_key_checking': 'yes',\n"
            "})\n"
        )

    def ssh(self, host, script, timeout=900, warm=False):
        cmd = [
            "ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        ]
        if warm:
            # OpenSSH's own kept connections, as Ansible's default ssh_args ask for them.
            cmd += ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                    "-o", f"ControlPath={self.dir}/cm-%C"]
        cmd += [f"root@{self.ips[host]}", script]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def ssh_all(self, script, warm=False):
        """Runs `script` on every host in parallel; returns {host: CompletedProcess}."""
        results = {}

        def one(h):
            results[h] = self.ssh(h, script, warm=warm)

        threads = [threading.Thread(target=one, args=(h,)) for h in self.hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results


# What every tool must leave on a host: one line per managed resource.
FINGERPRINT = r"""
set -u
dpkg-query -W -f='${Package} ${Status}\n' jq rsync less 2>&1
getent group app; getent passwd app
for p in /opt/app /opt/app/bin /opt/app/releases /etc/app /var/log/app /etc/app/app.conf \
  /etc/app/app.env /etc/app/peers /opt/app/bin/healthcheck.sh /etc/motd /etc/app/limits.conf \
  /etc/app/sysctl.conf /opt/app/current /etc/systemd/system/app.service /opt/app/.initialized \
  /etc/logrotate.d/app; do
  stat -c '%n %F %a %U %G %N' "$p" 2>&1
  if [ "$p" = /etc/app/peers ]; then cat "$p"; elif [ -f "$p" ] && [ ! -L "$p" ]; then sha256sum "$p"; fi
done
systemctl is-active app; systemctl is-enabled app
"""

FINGERPRINT_2 = r"""
set -u
dpkg-query -W -f='${Package} ${Status}\n' cron tree bc 2>&1
getent group web; getent passwd webapi webworker
for p in /srv/web /srv/web/data /etc/web /etc/web/web.ini /etc/web/metrics.yml \
  /etc/systemd/system/web-api.service /etc/systemd/system/web-worker.service \
  /etc/systemd/system/web-metrics.service /srv/web/data/.seeded /etc/cron.d/web-cleanup; do
  stat -c '%n %F %a %U %G %N' "$p" 2>&1
  # .seeded holds the date it was made: its presence and owner are the state.
  if [ -f "$p" ] && [ "$p" != /srv/web/data/.seeded ]; then sha256sum "$p"; fi
done
for u in cron web-api web-worker web-metrics apt-daily.timer apt-daily-upgrade.timer; do
  echo "$u $(systemctl is-active $u) $(systemctl is-enabled $u)"
done
"""

# The baseline: what the hosts themselves must spend (apt, user, starting the service),
# run directly over ssh, with nothing of any tool in between.
BASELINE = r"""
set -e
export DEBIAN_FRONTEND=noninteractive
# The package lists are refreshed only when older than a day, as cache_valid_time: 86400
# makes every tool do.
stamp=/var/lib/apt/periodic/update-success-stamp; [ -e "$stamp" ] || stamp=/var/lib/apt/lists
if [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -gt 86400 ]; then apt-get update -q >/dev/null; fi
apt-get install -y -q jq rsync less >/dev/null
groupadd -g 3001 app && useradd -u 3001 -g app -s /bin/bash -d /home/app -m app
mkdir -p /etc/app && printf 'APP_MODE=production\n' > /etc/app/app.env
cat > /etc/systemd/system/app.service <<'EOF'
[Unit]
Description=benchmark app
[Service]
User=app
EnvironmentFile=/etc/app/app.env
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now app >/dev/null 2>&1
systemctl is-active app
"""


# The second workload's baseline: packages, accounts, the three units started and
# enabled, the apt timers stopped and disabled.
BASELINE_2 = r"""
set -e
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/update-success-stamp; [ -e "$stamp" ] || stamp=/var/lib/apt/lists
if [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -gt 86400 ]; then apt-get update -q >/dev/null; fi
apt-get install -y -q cron tree bc >/dev/null
groupadd -r -g 3100 web
useradd -r -u 3101 -g web -s /usr/sbin/nologin -d /srv/web -M webapi
useradd -r -u 3102 -g web -s /usr/sbin/nologin -d /srv/web -M webworker
for s in web-api web-worker web-metrics; do
  printf '[Service]\nUser=nobody\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' \
    > /etc/systemd/system/$s.service
done
systemctl daemon-reload
systemctl enable --now cron web-api web-worker web-metrics >/dev/null 2>&1
systemctl disable --now apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1
systemctl is-active web-api
"""


def timed(cmd, cwd, env):
    """Runs cmd; returns (seconds, peak RSS in KiB of the child, CompletedProcess-like)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        proc.stdout_text = out.read().decode(errors="replace")
        proc.stderr_text = err.read().decode(errors="replace")
    return elapsed, usage.ru_maxrss, proc


class Tool:
    name = ""

    def __init__(self, cluster):
        self.c = cluster

    def run(self, mode):
        """mode: first | converged | check. Returns (seconds, rss_kib, changed)."""
        cmd, env = self.command(mode)
        secs, rss, proc = timed(cmd, ROOT, env)
        if proc.returncode != 0:
            raise SystemExit(
                f"{self.name} {mode} failed ({proc.returncode}): {' '.join(cmd)}\n"
                f"{proc.stdout_text[-4000:]}\n{proc.stderr_text[-4000:]}"
            )
        if mode == "check" and self.name == "pyinfra":
            return secs, rss, None  # --dry prints no results table
        return secs, rss, self.changed(proc)


class Infra(Tool):
    name = "infra"

    # Cold: every run logs in on every host, as the ssh floor does.
    persist = "no"

    def command(self, mode):
        cmd = [INFRA, "play", str(PLAYBOOK), "-i", str(self.c.inventory), "--output", "json"]
        if mode == "check":
            cmd += ["--check", "--diff"]
        return cmd, dict(self.c.env(), INFRA_SSH_PERSIST=self.persist)

    def changed(self, proc):
        recap = json.loads(proc.stdout_text)
        return sum(s["changed"] for s in recap["stats"].values())


class InfraWarm(Infra):
    """infra with its connections kept between runs (its default, like Ansible's
    ControlPersist=60s): a run that follows another within 60 s logs in nowhere. Compared
    with the warm ssh floor (OpenSSH's own ControlPersist), not with the cold one."""

    name = "infra-warm"
    persist = "60s"


class Ansible(Tool):
    name = "ansible"

    def command(self, mode):
        cmd = [str(VENV / "bin/ansible-playbook"), "-i", str(self.c.dir / "ansible-inventory.yaml"),
               str(PLAYBOOK)]
        if mode == "check":
            cmd += ["--check", "--diff"]
        control = tempfile.mkdtemp(prefix="cp", dir="/tmp")
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(self.c.dir / "ansible.cfg"),
            ANSIBLE_SSH_CONTROL_PATH_DIR=control,
            ANSIBLE_NOCOLOR="1",
            PATH=f"{VENV / 'bin'}:{os.environ['PATH']}",
        )
        return cmd, env

    def changed(self, proc):
        # PLAY RECAP lines: "node01 : ok=24 changed=0 unreachable=0 failed=0 ..."
        counts = re.findall(r"^\S+\s+:\s+ok=\d+\s+changed=(\d+)", proc.stdout_text, re.M)
        if not counts:
            raise SystemExit(f"no PLAY RECAP in ansible's output:\n{proc.stdout_text[-2000:]}")
        return sum(int(c) for c in counts)


class Pyinfra(Tool):
    name = "pyinfra"

    def command(self, mode):
        cmd = [str(VENV / "bin/pyinfra"), "-y", "--parallel", str(self.c.n), "--no-wait",
               str(self.c.dir / "pyinfra_inventory.py"), str(DEPLOY)]
        if mode == "check":
            cmd.insert(1, "--dry")
        return cmd, dict(os.environ, PATH=f"{VENV / 'bin'}:{os.environ['PATH']}",
                         PYTHONDONTWRITEBYTECODE="1")

    def changed(self, proc):
        # The results table ends with "Grand total  <hosts> <success> <error> <no change>";
        # "Success" counts operations that ran commands (changes).
        text = proc.stdout_text + proc.stderr_text
        m = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
        if not m:
            raise SystemExit(f"no results table in pyinfra's output:\n{text[-2000:]}")
        return 0 if m.group(2) == "-" else int(m.group(2))


TOOL_CLASSES = {"infra": Infra, "infra-warm": InfraWarm, "ansible": Ansible, "pyinfra": Pyinfra}


def rotate(seq, k):
    k %= len(seq)
    return seq[k:] + seq[:k]


def fingerprint(cluster):
    res = cluster.ssh_all(FINGERPRINT if WORKLOAD == "1" else FINGERPRINT_2)
    # The peers file lists every host's address, which Docker may hand out differently
    # each time the cluster is recreated: a line "<host> <that host's address now>" is
    # compared as "<host> <address of host>".
    def normalize(text):
        out = []
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 2 and cluster.ips.get(parts[0]) == parts[1]:
                line = f"{parts[0]} <address of {parts[0]}>"
            out.append(line)
        return "\n".join(out)

    return {h: normalize(r.stdout) for h, r in res.items()}


FLOOR_PROBE = f"systemctl show -p ActiveState {FLOOR_UNIT}"


def ssh_floor(c, n, warm):
    """REPEAT timings of FLOOR_PROBE on every host at once over OpenSSH (kept connections
    when warm)."""
    what = "warm ssh floor" if warm else "ssh floor"
    times = []
    for _ in range(REPEAT):
        started = time.monotonic()
        res = c.ssh_all(FLOOR_PROBE, warm=warm)
        secs = time.monotonic() - started
        bad = {h: r.stderr for h, r in res.items() if r.returncode != 0}
        if bad:
            raise SystemExit(f"{what} failed: {bad}")
        times.append(secs)
        log(f"N={n} {what}: {secs:.2f}s")
    return times


def bench_n(n):
    c = Cluster(n)
    c.write_inventory()
    EMPTY_PLAYBOOK.exists() or sys.exit(f"missing {EMPTY_PLAYBOOK}")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    log(f"N={n} (workload {WORKLOAD}): {load}")
    result = {"n": n, "uptime": load, "first": {}, "converged": {}, "check": {},
              "changed": {}, "rss_kib": [], "baseline": []}
    tools = [t for t in TOOLS if t in TOOL_CLASSES]
    # A first run on fresh hosts has no connection to reuse: infra-warm's would be infra's.
    first_tools = [t for t in tools if t != "infra-warm"]
    reference = None
    for rep in range(REPEAT_FIRST):
        # The baseline first, so the last run of a round leaves converged hosts.
        for name in ["baseline"] + rotate(first_tools, rep):
            c.reset()
            if name == "baseline":
                started = time.monotonic()
                res = c.ssh_all(BASELINE if WORKLOAD == "1" else BASELINE_2)
                secs = time.monotonic() - started
                bad = {h: r.stderr for h, r in res.items() if r.returncode != 0}
                if bad:
                    raise SystemExit(f"baseline failed: {bad}")
                result["baseline"].append(secs)
                log(f"N={n} baseline: {secs:.2f}s")
                continue
            tool = TOOL_CLASSES[name](c)
            secs, rss, changed = tool.run("first")
            result["first"].setdefault(name, []).append(secs)
            if name == "infra":
                result["rss_kib"].append(rss)
            log(f"N={n} {name} first: {secs:.2f}s changed={changed}")
            fp = fingerprint(c)
            if reference is None:
                reference = (name, fp)
            elif fp != reference[1]:
                diff = [h for h in fp if fp[h] != reference[1].get(h)]
                first = diff[0]
                raise SystemExit(
                    f"{name} left a different end state than {reference[0]} on {first}:\n"
                    f"--- {reference[0]}\n{reference[1][first]}\n--- {name}\n{fp[first]}"
                )
    if REPEAT_FIRST == 0:
        # No first runs measured: converge fresh hosts (untimed) for the runs below.
        c.reset()
        Infra(c).run("first")
    result["fingerprint"] = reference[1][c.hosts[0]] if reference else ""
    if "infra-warm" in tools:
        # Untimed: opens the connections the warm runs below reuse.
        InfraWarm(c).run("converged")
    # The hosts are converged now (by the last tool of the last round).
    for mode in ("converged", "check"):
        for rep in range(REPEAT):
            for name in rotate(tools, rep):
                tool = TOOL_CLASSES[name](c)
                secs, rss, changed = tool.run(mode)
                result[mode].setdefault(name, []).append(secs)
                result["changed"].setdefault(f"{name} {mode}", []).append(changed)
                if name == "infra":
                    result["rss_kib"].append(rss)
                log(f"N={n} {name} {mode}: {secs:.2f}s changed={changed}")
                if mode == "converged" and name != "pyinfra" and changed != 0:
                    raise SystemExit(f"{name} changed {changed} on converged hosts")
    # The floor of a converged run: every host reached over plain OpenSSH at once, one
    # `systemctl show` each, nothing else. On one machine the hosts' sshd shares the
    # controller's cores, so this grows with N whatever the tool does; infra's converged
    # time over this floor shows what the tool adds.
    result["floor"] = ssh_floor(c, n, warm=False)
    if "infra-warm" in tools:
        # The warm floor: the same, over OpenSSH's kept connections (opened untimed first).
        c.ssh_all(FLOOR_PROBE, warm=True)
        result["floor_warm"] = ssh_floor(c, n, warm=True)
        for h in c.hosts:
            subprocess.run(["ssh", "-o", f"ControlPath={c.dir}/cm-%C", "-O", "exit",
                            f"root@{c.ips[h]}"], capture_output=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["workload"] = WORKLOAD
    (RESULTS / f"{n}.json").write_text(json.dumps(result, indent=1) + "\n")
    if os.environ.get("KEEP") != "1":
        c.down()
    return result


def main():
    ns = [int(a) for a in sys.argv[1:]] or [1, 10, 50]
    if not Path(INFRA).exists():
        sys.exit(f"no infra binary at {INFRA} (set INFRA_BIN)")
    for n in ns:
        bench_n(n)
    subprocess.run([sys.executable, str(BENCH / "report.py")], check=True)


if __name__ == "__main__":
    main()
