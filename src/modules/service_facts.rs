//! `service_facts`: every service the host knows, as `ansible_facts.services`, with the
//! keys Ansible's module gives on a Debian host: the SysV scripts `service --status-all`
//! lists (`ssh`, source `sysv`, no status) and the systemd units (`ssh.service`, source
//! `systemd`, state `running`/`stopped`, status from `list-units` and `list-unit-files`).
//!
//! Ansible runs one process per listing and one `systemctl show` per unit file that
//! `list-units` does not know; here one shell script does all of that on the host, so the
//! whole module is one round trip. Read-only: never changed, runs in check mode.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct ServiceFacts;

/// Sections of the script's output start with these markers.
const SYSV: &str = "@@SYSV";
const UNITS: &str = "@@UNITS";
const FILES: &str = "@@FILES";
const SHOW: &str = "@@SHOW";

/// The probe: SysV listing (when `service` exists and neither chkconfig nor OpenRC does,
/// as Ansible decides), then, on a systemd-managed host, the two systemctl listings and the
/// ActiveState of unit files not among the loaded units ("NAME\tRC\tOUTPUT").
const SCRIPT: &str = r#"LANG=C; LC_ALL=C; export LANG LC_ALL
if command -v service >/dev/null 2>&1 && ! command -v chkconfig >/dev/null 2>&1 && ! command -v rc-status >/dev/null 2>&1; then
  echo @@SYSV; service --status-all 2>/dev/null
fi
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] || [ -d /run/systemd/system ] || [ -d /dev/.run/systemd ] || [ -d /dev/.systemd ]; then
  if command -v systemctl >/dev/null 2>&1; then
    units=$(systemctl list-units --no-pager --type service --all --plain 2>/dev/null)
    echo @@UNITS; printf '%s\n' "$units"
    files=$(systemctl list-unit-files --no-pager --type service --all 2>/dev/null)
    echo @@FILES; printf '%s\n' "$files"
    echo @@SHOW
    known=$(printf '%s\n' "$units" | awk '/\.service/ {print $1}')
    for n in $(printf '%s\n' "$files" | awk '/\.service/ {print $1}'); do
      if ! printf '%s\n' "$known" | grep -qxF -- "$n"; then
        out=$(systemctl show "$n" --property=ActiveState 2>/dev/null); rc=$?
        printf '%s\t%s\t%s\n' "$n" "$rc" "$out"
      fi
    done
  fi
fi
"#;

/// The states `list-units` may show in any column that Ansible reports as the status.
const BAD_STATES: &[&str] = &["not-found", "masked", "failed"];

fn entry(name: &str, state: &str, status: Option<&str>, source: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(name));
    m.insert("state".into(), Value::from(state));
    if let Some(s) = status {
        m.insert("status".into(), Value::from(s));
    }
    m.insert("source".into(), Value::from(source));
    Value::Object(m)
}

/// Parses the probe's output into Ansible's `services` dict.
pub fn parse(out: &str) -> Map<String, Value> {
    let mut services = Map::new();
    let mut section = "";
    for line in out.lines() {
        if [SYSV, UNITS, FILES, SHOW].contains(&line) {
            section = line;
            continue;
        }
        match section {
            SYSV => parse_sysv(line, &mut services),
            UNITS => parse_unit(line, &mut services),
            FILES => parse_unit_file(line, &mut services),
            SHOW => parse_show(line, &mut services),
            _ => {}
        }
    }
    services
}

/// ` [ + ]  ssh`: running; ` [ - ]  procps`: stopped.
fn parse_sysv(line: &str, services: &mut Map<String, Value>) {
    let t = line.trim_start();
    let state = if t.starts_with("[ + ]") {
        "running"
    } else if t.starts_with("[ - ]") {
        "stopped"
    } else {
        return;
    };
    let name = t[5..].trim_start();
    if !name.is_empty() {
        services.insert(name.into(), entry(name, state, None, "sysv"));
    }
}

/// `ssh.service loaded active running OpenBSD Secure Shell server`.
fn parse_unit(line: &str, services: &mut Map<String, Value>) {
    if !line.contains(".service") {
        return;
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 4 {
        return;
    }
    // Ansible looks for a bad state in every field but the last (the description's tail).
    let head = &fields[..fields.len() - 1];
    let status = BAD_STATES
        .iter()
        .find(|b| head.contains(b))
        .copied()
        .unwrap_or(fields[2]);
    let state = if fields[3] == "running" {
        "running"
    } else {
        "stopped"
    };
    services.insert(
        fields[0].into(),
        entry(fields[0], state, Some(status), "systemd"),
    );
}

/// `ssh.service enabled enabled`: completes the status of known units; unknown units get
/// their state from the `@@SHOW` section.
fn parse_unit_file(line: &str, services: &mut Map<String, Value>) {
    if !line.contains(".service") {
        return;
    }
    let mut fields = line.split_whitespace();
    let (Some(name), Some(status)) = (fields.next(), fields.next()) else {
        return;
    };
    match services.get_mut(name).and_then(Value::as_object_mut) {
        Some(known) => {
            let bad = known
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| BAD_STATES.contains(&s));
            if !bad {
                known.insert("status".into(), Value::from(status));
            }
        }
        None => {
            services.insert(name.into(), entry(name, "unknown", Some(status), "systemd"));
        }
    }
}

/// `NAME\tRC\tActiveState=inactive`: Ansible's `systemctl show` of a unit file that is not
/// loaded; a failure leaves the state `unknown`.
fn parse_show(line: &str, services: &mut Map<String, Value>) {
    let mut parts = line.splitn(3, '\t');
    let (Some(name), Some(rc), out) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let out = out.unwrap_or("");
    if rc != "0" || out.is_empty() {
        return;
    }
    let state = out.replace("ActiveState=", "");
    if let Some(Value::Object(s)) = services.get_mut(name) {
        s.insert("state".into(), Value::from(state.trim_end()));
    }
}

#[async_trait]
impl Module for ServiceFacts {
    fn name(&self) -> &'static str {
        "service_facts"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: &[],
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, _args: &Vars) -> anyhow::Result<Plan> {
        let out = ctx.run(SCRIPT).await?;
        let services = parse(&out.stdout);
        let mut plan = Plan::default();
        if services.is_empty() {
            plan.result.insert("skipped".into(), Value::Bool(true));
            plan.result.insert(
                "msg".into(),
                Value::from(
                    "Failed to find any services. This can be due to privileges or some \
                     other configuration issue.",
                ),
            );
        } else {
            let mut facts = Map::new();
            facts.insert("services".into(), Value::Object(services));
            plan.result
                .insert("ansible_facts".into(), Value::Object(facts));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_sysv_units_and_unit_files_as_ansible() {
        let out = "@@SYSV\n [ + ]  dbus\n [ - ]  procps\n\
            @@UNITS\nUNIT LOAD ACTIVE SUB DESCRIPTION\n\
            ssh.service loaded active running OpenBSD Secure Shell server\n\
            auditd.service not-found inactive dead auditd.service\n\
            cron.service loaded failed failed Regular background program\n\
            @@FILES\nUNIT FILE STATE VENDOR PRESET\n\
            ssh.service enabled enabled\n\
            cron.service enabled enabled\n\
            getty@.service enabled enabled\n\
            rescue.service static -\n\
            @@SHOW\n\
            getty@.service\t1\t\n\
            rescue.service\t0\tActiveState=inactive\n";
        let s = parse(out);
        assert_eq!(
            s["dbus"],
            json!({"name": "dbus", "state": "running", "source": "sysv"})
        );
        assert_eq!(s["procps"]["state"], "stopped");
        assert_eq!(
            s["ssh.service"],
            json!({"name": "ssh.service", "state": "running", "status": "enabled", "source": "systemd"})
        );
        assert_eq!(s["auditd.service"]["status"], "not-found");
        assert_eq!(s["cron.service"]["status"], "failed");
        assert_eq!(s["cron.service"]["state"], "stopped");
        assert_eq!(s["getty@.service"]["state"], "unknown");
        assert_eq!(s["rescue.service"]["state"], "inactive");
        assert_eq!(s["rescue.service"]["status"], "static");
        assert!(!s.contains_key("UNIT"));
    }
}
