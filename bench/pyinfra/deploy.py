"""The benchmark workload for pyinfra: the same end state as bench/workload/site.yml.

Run as: pyinfra <inventory.py> bench/pyinfra/deploy.py
Templates and files are shared with the Ansible playbook; templates render with
trim_blocks like Ansible's template module.
"""

from io import StringIO
from pathlib import Path

from pyinfra import host, inventory
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

WORKLOAD = Path(__file__).resolve().parent.parent / "workload"
APP_USER = "app"
TEMPLATE_VARS = dict(
    app_port=8500,
    app_workers=4,
    app_features=["metrics", "tracing", "compression"],
    app_env={"APP_MODE": "production", "APP_REGION": "dc1", "APP_LOG_LEVEL": "info"},
    groups={"all": [h.name for h in inventory]},
    hostvars={h.name: {"ansible_host": h.data.get("ssh_hostname", h.name)} for h in inventory},
    jinja_env_kwargs={"trim_blocks": True},
)

apt.packages(
    name="base packages",
    packages=["jq", "rsync", "less"],
    update=True,
    cache_time=86400,
)
server.group(name="app group", group=APP_USER, gid=3001)
server.user(
    name="app user",
    user=APP_USER,
    uid=3001,
    group=APP_USER,
    shell="/bin/bash",
    home="/home/app",
)
for path in ["/opt/app", "/opt/app/bin", "/opt/app/releases", "/etc/app", "/var/log/app"]:
    files.directory(name=f"directory {path}", path=path, user=APP_USER, group=APP_USER, mode="755")

config = files.template(
    name="main config",
    src=str(WORKLOAD / "templates/app.conf.j2"),
    dest="/etc/app/app.conf",
    user="root",
    group=APP_USER,
    mode="640",
    **TEMPLATE_VARS,
)
env = files.template(
    name="environment file",
    src=str(WORKLOAD / "templates/app.env.j2"),
    dest="/etc/app/app.env",
    mode="640",
    **TEMPLATE_VARS,
)
files.template(
    name="peers file",
    src=str(WORKLOAD / "templates/peers.j2"),
    dest="/etc/app/peers",
    mode="644",
    **TEMPLATE_VARS,
)
files.put(
    name="health check script",
    src=str(WORKLOAD / "files/healthcheck.sh"),
    dest="/opt/app/bin/healthcheck.sh",
    mode="755",
)
files.put(
    name="message of the day",
    src=StringIO("This host runs the app on port 8500.\n"),
    dest="/etc/motd",
    mode="644",
)
files.file(name="limits file exists", path="/etc/app/limits.conf", mode="644")
files.line(name="limits file", path="/etc/app/limits.conf", line="^nofile 65536$", replace="nofile 65536")
files.line(name="limits nproc", path="/etc/app/limits.conf", line="^nproc.*$", replace="nproc 4096")
files.file(name="sysctl file exists", path="/etc/app/sysctl.conf", mode="644")
files.line(
    name="swappiness setting",
    path="/etc/app/sysctl.conf",
    line="^vm.swappiness.*$",
    replace="vm.swappiness = 10",
)
files.link(name="current release link", path="/opt/app/current", target="/opt/app/releases")
unit = files.put(
    name="unit file",
    src=str(WORKLOAD / "files/app.service"),
    dest="/etc/systemd/system/app.service",
    mode="644",
)
systemd.service(
    name="app service",
    service="app",
    running=True,
    enabled=True,
    daemon_reload=True,
)
systemd.service(
    name="restart app",
    service="app",
    restarted=True,
    _if=any_changed(config, env, unit),
)
if not host.get_fact(File, path="/opt/app/.initialized"):
    server.shell(name="one-time initialization", commands=["/opt/app/bin/healthcheck.sh --init"])
files.put(
    name="log rotation",
    src=StringIO("/var/log/app/*.log {\n  daily\n  rotate 7\n  compress\n}\n"),
    dest="/etc/logrotate.d/app",
    mode="644",
)
