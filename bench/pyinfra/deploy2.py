"""The second benchmark workload for pyinfra: the same end state as bench/workload2/site.yml.

Run as: pyinfra <inventory.py> bench/pyinfra/deploy2.py
Templates and files are shared with the Ansible playbook; templates render with
trim_blocks like Ansible's template module. Ansible's handlers (reload systemd, restart the
web services, restart metrics) are the `_if=any_changed(...)` operations at the end.
"""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Hostname
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

WORKLOAD = Path(__file__).resolve().parent.parent / "workload2"
SERVICES = ["web-api", "web-worker", "web-metrics"]
TEMPLATE_VARS = dict(
    web_port=9400,
    web_services=SERVICES,
    web_settings={"cache_mb": 256, "timeout_s": 30, "log_format": "json"},
    ansible_hostname=host.get_fact(Hostname).split(".")[0],
    jinja_env_kwargs={"trim_blocks": True},
)

apt.update(name="package lists", cache_time=86400)
apt.packages(name="packages", packages=["cron", "tree", "bc"])
server.group(name="service group", group="web", gid=3100, system=True)
for name, uid in [("webapi", 3101), ("webworker", 3102)]:
    server.user(
        name=f"service account {name}",
        user=name,
        uid=uid,
        group="web",
        shell="/usr/sbin/nologin",
        home="/srv/web",
        ensure_home=False,
        system=True,
    )
for path, owner, mode in [
    ("/srv/web", "root", "750"),
    ("/srv/web/data", "webworker", "770"),
    ("/etc/web", "root", "755"),
]:
    files.directory(name=f"directory {path}", path=path, user=owner, group="web", mode=mode)

settings = files.template(
    name="settings",
    src=str(WORKLOAD / "templates/web.ini.j2"),
    dest="/etc/web/web.ini",
    user="root",
    group="web",
    mode="640",
    **TEMPLATE_VARS,
)
units = [
    files.template(
        name=f"unit file {service}",
        src=str(WORKLOAD / "templates/unit.service.j2"),
        dest=f"/etc/systemd/system/{service}.service",
        mode="644",
        item=service,
        **TEMPLATE_VARS,
    )
    for service in SERVICES
]
metrics = files.put(
    name="metrics exporter config",
    src=str(WORKLOAD / "files/metrics.yml"),
    dest="/etc/web/metrics.yml",
    mode="644",
)
if not host.get_fact(File, path="/srv/web/data/.seeded"):
    server.shell(
        name="seed the data directory",
        commands=["date > /srv/web/data/.seeded && chown webworker:web /srv/web/data/.seeded"],
    )
systemd.service(name="cron running", service="cron", running=True, enabled=True)
systemd.service(
    name="api service", service="web-api", running=True, enabled=True, daemon_reload=True
)
systemd.service(name="worker service", service="web-worker", running=True, enabled=True)
systemd.service(name="metrics service", service="web-metrics", running=True, enabled=True)
for timer in ["apt-daily.timer", "apt-daily-upgrade.timer"]:
    systemd.service(name=f"no {timer}", service=timer, running=False, enabled=False)
files.put(
    name="cleanup job",
    src=StringIO("17 3 * * * root find /srv/web/data -name '*.tmp' -mtime +7 -delete\n"),
    dest="/etc/cron.d/web-cleanup",
    mode="644",
)
changed_units = any_changed(settings, *units)
systemd.daemon_reload(name="reload systemd", _if=changed_units)
for service in SERVICES:
    systemd.service(
        name=f"restart {service}", service=service, restarted=True, _if=changed_units
    )
systemd.service(
    name="restart metrics", service="web-metrics", restarted=True, _if=any_changed(metrics)
)
