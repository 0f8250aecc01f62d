"""infra's controller-side bridge to an installed Ansible (see src/modules/ansible/mod.rs).

One process per run. Requests and answers are JSON, one per line, on stdin/stdout:

  {"op": "resolve", "items": [{"name": "timezone", "collections": []}, ...]}
    -> {"ok": true, "items": [{"fqcn": ..., "path": ..., "action": ..., "error": ...}, ...]}
  {"op": "build", "fqcn": ..., "path": ..., "args": {...}, "interpreter": "/usr/bin/python3",
   "task": {"check_mode": false, "diff": false, "no_log": false, "verbosity": 0}}
    -> {"ok": true, "payload": "<base64 of the AnsiballZ script>"}

Names are resolved by Ansible's own plugin loader (ANSIBLE_COLLECTIONS_PATH, routing and
redirects, the `collections:` keyword), and payloads are built by Ansible's own
module_common, so a module runs on the host exactly as ansible-playbook would send it.
Anything Ansible prints goes to stderr: stdout carries only answers.
"""

import base64
import json
import sys

PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr

from ansible import constants as C  # noqa: E402
from ansible.executor.module_common import modify_module  # noqa: E402
from ansible.module_utils._internal import _traceback  # noqa: E402
from ansible.release import __version__  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.plugins.loader import action_loader, init_plugin_loader, module_loader  # noqa: E402
from ansible.template import Templar  # noqa: E402

init_plugin_loader()

# Action plugins that only run the module (what Ansible uses for any module without its own).
GENERIC_ACTIONS = {"ansible.builtin.normal", "ansible.legacy.normal"}


def resolve_one(name, collections):
    colls = list(collections or [])
    if colls and "ansible.builtin" not in colls and "ansible.legacy" not in colls:
        colls.append("ansible.legacy")
    found = module_loader.find_plugin_with_context(name, collection_list=colls or None)
    if not found.resolved or not found.plugin_resolved_path:
        redirects = list(found.redirect_list or [])
        if len(redirects) > 1:
            error = "the module %s was redirected to %s, which could not be loaded" % (
                name,
                redirects[-1],
            )
        else:
            error = None
        return {"fqcn": None, "path": None, "action": None, "error": error}
    fqcn = found.resolved_fqcn or name
    action = None
    for candidate in (fqcn, name):
        act = action_loader.find_plugin_with_context(candidate, collection_list=colls or None)
        if act.resolved and (act.resolved_fqcn or candidate) not in GENERIC_ACTIONS:
            action = act.resolved_fqcn or candidate
            break
    return {
        "fqcn": fqcn,
        "path": found.plugin_resolved_path,
        "action": action,
        "error": None,
        "deprecated": bool(getattr(found, "deprecated", False)),
    }


def internal_args(req):
    """The `_ansible_*` arguments Ansible's action base adds to every module call
    (ActionBase._update_module_args), for a pipelined run without a remote temp dir."""
    task = req.get("task") or {}
    no_target_syslog = C.config.get_config_value("DEFAULT_NO_TARGET_SYSLOG")
    return {
        "_ansible_check_mode": bool(task.get("check_mode")),
        "_ansible_no_log": bool(task.get("no_log")) or bool(no_target_syslog),
        "_ansible_debug": C.DEFAULT_DEBUG,
        "_ansible_diff": bool(task.get("diff")),
        "_ansible_verbosity": int(task.get("verbosity") or 0),
        "_ansible_version": __version__,
        "_ansible_module_name": req["fqcn"],
        "_ansible_syslog_facility": C.DEFAULT_SYSLOG_FACILITY,
        "_ansible_selinux_special_fs": C.DEFAULT_SELINUX_SPECIAL_FS,
        "_ansible_socket": None,
        "_ansible_shell_executable": "/bin/sh",
        "_ansible_keep_remote_files": C.DEFAULT_KEEP_REMOTE_FILES,
        "_ansible_tmpdir": None,
        "_ansible_remote_tmp": "~/.ansible/tmp",
        "_ansible_ignore_unknown_opts": False,
        "_ansible_target_log_info": C.config.get_config_value("TARGET_LOG_INFO"),
        "_ansible_tracebacks_for": _traceback.traceback_for(),
    }


def build(req):
    args = dict(req["args"])
    args.update(internal_args(req))
    task_vars = {"ansible_python_interpreter": req.get("interpreter") or "/usr/bin/python3"}
    templar = Templar(loader=DataLoader(), variables=task_vars)
    compression = C.config.get_config_value("DEFAULT_MODULE_COMPRESSION")
    built = modify_module(
        module_name=req["fqcn"],
        module_path=req["path"],
        module_args=args,
        templar=templar,
        task_vars=task_vars,
        module_compression=compression,
        environment=req.get("environment") or {},
    )
    if built.module_style != "new":
        # Old-style and non-Python modules need their arguments in a file on the host;
        # Ansible itself does not pipeline them.
        raise ValueError(
            "%s is a %r module, not an AnsiballZ one: infra cannot run it" % (req["fqcn"], built.module_style)
        )
    return {"payload": base64.b64encode(built.b_module_data).decode("ascii"), "style": built.module_style}


def handle(req):
    op = req.get("op")
    if op == "resolve":
        return {"items": [resolve_one(i["name"], i.get("collections")) for i in req["items"]]}
    if op == "build":
        return build(req)
    if op == "ping":
        return {}
    raise ValueError("unknown request %r" % op)


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
            answer["ok"] = True
        except Exception as e:  # every failure is an answer, the bridge keeps running
            answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        PROTOCOL_OUT.write(json.dumps(answer) + "\n")
        PROTOCOL_OUT.flush()


main()
