//! `timezone` (community.general): the system time zone (`name`) and whether the hardware
//! clock keeps local time or UTC (`hwclock`, alias `rtc`).
//!
//! As Ansible decides: when `timedatectl` runs (systemd, timedated reachable over D-Bus,
//! also in the test containers) it is read with `timedatectl status` and changed with
//! `timedatectl set-timezone` / `set-local-rtc`; this moves the `/etc/localtime` symlink and
//! leaves `/etc/timezone` alone, exactly like Ansible's run on Debian 12. Otherwise (no
//! systemd) the Debian files are the state: `/etc/timezone` plus the `/etc/localtime`
//! symlink, set by writing the file, `ln -sf` and `dpkg-reconfigure tzdata`; `hwclock`
//! there edits `/etc/default/rcS` and runs `hwclock --systohc` (which fails where there is
//! no RTC, e.g. in containers: as with Ansible, the task fails then).
//! Observing is one round trip; the result carries Ansible's `diff` and `msg`.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::args::{sh_quote, str_opt};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct Timezone;

const ARGS: &[ArgDef] = &[ArgDef::opt("name"), ArgDef::alias("hwclock", &["rtc"])];

/// What the host says about its time zone, read in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `timedatectl status` output when it ran successfully.
    pub timedatectl: Option<String>,
    /// Where timedatectl is (Ansible's messages name the full path).
    pub timedatectl_path: String,
    /// The zone file for the planned name exists.
    pub zone_exists: bool,
    /// `/etc/timezone`'s content (empty when missing).
    pub etc_timezone: String,
    /// Where the `/etc/localtime` symlink points (None: not a symlink or missing).
    pub localtime_link: Option<String>,
    /// `/etc/localtime` has the same bytes as the planned zone file.
    pub localtime_same: bool,
    /// `UTC=` in /etc/default/rcS.
    pub rcs_utc: Option<String>,
    /// The hardware clock mode line of /etc/adjtime (UTC or LOCAL).
    pub adjtime: Option<String>,
}

fn probe(name: Option<&str>) -> String {
    let zone = sh_quote(&format!("/usr/share/zoneinfo/{}", name.unwrap_or("")));
    format!(
        "LANG=C; LC_ALL=C; export LANG LC_ALL\n\
         if command -v timedatectl >/dev/null 2>&1 && out=$(timedatectl status 2>/dev/null); then echo \"@@TIMEDATECTL $(command -v timedatectl)\"; printf '%s\\n' \"$out\"; fi\n\
         echo @@ZONE; if [ -f {zone} ]; then echo yes; cmp -s {zone} /etc/localtime && echo same; fi\n\
         echo @@LINK; [ -L /etc/localtime ] && readlink /etc/localtime\n\
         echo @@ETC; cat /etc/timezone 2>/dev/null\n\
         echo @@RCS; grep -E '^UTC\\s*=' /etc/default/rcS 2>/dev/null\n\
         echo @@ADJTIME; grep -xE 'UTC|LOCAL' /etc/adjtime 2>/dev/null\n\
         exit 0\n"
    )
}

/// Parses the probe's output.
pub fn parse(out: &str) -> Observed {
    let mut o = Observed::default();
    let mut section = "";
    let mut timedatectl: Option<String> = None;
    for line in out.lines() {
        if let Some(s) = line.strip_prefix("@@") {
            section = s;
            if let Some(path) = s.strip_prefix("TIMEDATECTL") {
                section = "TIMEDATECTL";
                timedatectl = Some(String::new());
                o.timedatectl_path = path.trim().to_string();
            }
            continue;
        }
        match section {
            "TIMEDATECTL" => {
                if let Some(t) = timedatectl.as_mut() {
                    t.push_str(line);
                    t.push('\n');
                }
            }
            "ZONE" if line == "yes" => o.zone_exists = true,
            "ZONE" if line == "same" => o.localtime_same = true,
            "LINK" if !line.is_empty() => o.localtime_link = Some(line.to_string()),
            "ETC" => {
                o.etc_timezone.push_str(line);
                o.etc_timezone.push('\n');
            }
            "RCS" => {
                if let Some((_, v)) = line.split_once('=') {
                    o.rcs_utc = v.split_whitespace().next().map(String::from);
                }
            }
            "ADJTIME" if o.adjtime.is_none() => o.adjtime = Some(line.trim().to_string()),
            _ => {}
        }
    }
    o.timedatectl = timedatectl;
    if o.timedatectl_path.is_empty() {
        o.timedatectl_path = "timedatectl".into();
    }
    o
}

/// A `Key : value` line of `timedatectl status` (first word of the value).
fn status_value(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.split_whitespace().next().unwrap_or("").to_string())
    })
}

/// Ansible's boolean reading of `RTC in local TZ: yes`.
fn rtc_local(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "on" | "1" | "true" | "y" | "t"
    )
}

/// The current time zone as Ansible's non-systemd code reads it: `/etc/timezone`, unless it
/// already names the planned zone but `/etc/localtime` says otherwise.
pub fn files_name(o: &Observed, planned: &str) -> String {
    let value = o
        .etc_timezone
        .lines()
        .find_map(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    if value != planned {
        return value;
    }
    match &o.localtime_link {
        Some(link) => {
            let tz = ["/usr/share/zoneinfo/", "/etc/zoneinfo/"]
                .iter()
                .find_map(|p| link.find(p).map(|i| link[i + p.len()..].to_string()));
            match tz {
                Some(tz) if !o.localtime_same => {
                    if tz == planned {
                        "n/a".into()
                    } else {
                        tz
                    }
                }
                Some(tz) => tz,
                None => "n/a".into(),
            }
        }
        None if o.localtime_same => value,
        None => "n/a".into(),
    }
}

/// The current hardware clock mode (`local` or `UTC`) from the Debian files.
fn files_hwclock(o: &Observed, planned: &str) -> String {
    let from_rcs = match o.rcs_utc.as_deref() {
        Some(v) if rtc_local(v) => "UTC".to_string(),
        Some(_) => "local".to_string(),
        None => "n/a".to_string(),
    };
    if from_rcs != planned {
        return from_rcs;
    }
    match o.adjtime.as_deref() {
        Some("UTC") => "UTC".into(),
        Some(v) => v.to_lowercase(),
        None => "n/a".into(),
    }
}

fn text(values: &Map<String, Value>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.as_str().unwrap_or("")))
        .collect()
}

#[async_trait]
impl Module for Timezone {
    fn name(&self) -> &'static str {
        "timezone"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_opt(args, &["name"])?;
        let hwclock = str_opt(args, &["hwclock"])?;
        if let Some(h) = &hwclock {
            if h != "local" && h != "UTC" {
                anyhow::bail!("argument hwclock: {h:?} is not one of local, UTC");
            }
        }
        if name.is_none() && hwclock.is_none() {
            anyhow::bail!("one of the following is required: hwclock, name");
        }
        let out = ctx.run(&probe(name.as_deref())).await?;
        let o = parse(&out.stdout);
        let mut plan = Plan::default();
        if let Some(n) = &name {
            if !o.zone_exists {
                plan.failed = Some(format!(
                    "Error message:\ngiven timezone \"{n}\" is not available"
                ));
                return Ok(plan);
            }
        }
        let (mut before, mut after) = (Map::new(), Map::new());
        let mut msgs = Vec::new();
        // Ansible reports the arguments in its spec order: hwclock, then name.
        if let Some(h) = &hwclock {
            let cur = match &o.timedatectl {
                Some(s) => match status_value(s, "RTC in local TZ") {
                    Some(v) if rtc_local(&v) => "local".to_string(),
                    _ => "UTC".to_string(),
                },
                None => files_hwclock(&o, h),
            };
            if &cur != h {
                let utc = if h == "local" { "no" } else { "yes" };
                if o.timedatectl.is_some() {
                    let rtc = if h == "local" { "yes" } else { "no" };
                    let cmd = format!("{} set-local-rtc {rtc}", o.timedatectl_path);
                    msgs.push(format!("executed `{cmd}`"));
                    plan.ops.push(exec(cmd));
                } else {
                    plan.ops.push(exec(format!(
                        "f=/etc/default/rcS; if grep -qE '^UTC\\s*=' $f 2>/dev/null; then sed -i -E 's/^UTC\\s*=.*/UTC={utc}/' $f; else echo UTC={utc} >> $f; fi"
                    )));
                    let opt = if h == "local" { "--localtime" } else { "--utc" };
                    let cmd = format!("hwclock --systohc {opt}");
                    msgs.push(format!("executed `{cmd}`"));
                    plan.ops.push(exec(cmd));
                }
                plan.changes.push(Change {
                    summary: format!("hardware clock {cur} -> {h}"),
                    diff: None,
                });
            }
            before.insert("hwclock".into(), Value::from(cur));
            after.insert("hwclock".into(), Value::from(h.clone()));
        }
        if let Some(n) = &name {
            let cur = match &o.timedatectl {
                Some(s) => status_value(s, "Time zone")
                    .or_else(|| status_value(s, "Timezone"))
                    .unwrap_or_default(),
                None => files_name(&o, n),
            };
            if &cur != n {
                let zone = format!("/usr/share/zoneinfo/{n}");
                if o.timedatectl.is_some() {
                    let cmd = format!("{} set-timezone {}", o.timedatectl_path, sh_quote(n));
                    msgs.push(format!("executed `{cmd}`"));
                    plan.ops.push(exec(cmd));
                } else {
                    plan.ops.push(Op::Write {
                        path: "/etc/timezone".into(),
                        content: format!("{n}\n").into_bytes(),
                        attrs: FileAttrs::default(),
                        backup: false,
                        validate: None,
                    });
                    plan.ops.push(exec(format!(
                        "ln -sf {} /etc/localtime && if command -v dpkg-reconfigure >/dev/null 2>&1; then dpkg-reconfigure --frontend noninteractive tzdata; fi",
                        sh_quote(&zone)
                    )));
                }
                plan.changes.push(Change {
                    summary: format!("time zone {cur} -> {n}"),
                    diff: None,
                });
            }
            before.insert("name".into(), Value::from(cur));
            after.insert("name".into(), Value::from(n.clone()));
        }
        if let Some(first) = plan.changes.first_mut() {
            first.diff = Some(TextDiff {
                before_header: "before".into(),
                after_header: "after".into(),
                before: text(&before),
                after: text(&after),
            });
        }
        plan.result.insert(
            "diff".into(),
            json!({"before": Value::Object(before), "after": Value::Object(after)}),
        );
        if !msgs.is_empty() {
            plan.result
                .insert("msg".into(), Value::from(msgs.join("\n")));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "               Local time: Sun 2026-12-06 06:40:43 UTC\n\
                Time zone: Etc/UTC (UTC, +0000)\n\
          RTC in local TZ: no\n";

    #[test]
    fn reads_timedatectl_status() {
        assert_eq!(
            status_value(STATUS, "Time zone").as_deref(),
            Some("Etc/UTC")
        );
        assert_eq!(
            status_value(STATUS, "RTC in local TZ").as_deref(),
            Some("no")
        );
        let o = parse(&format!(
            "@@TIMEDATECTL /usr/bin/timedatectl\n{STATUS}@@ZONE\nyes\n@@LINK\n/usr/share/zoneinfo/Etc/UTC\n@@ETC\nEtc/UTC\n@@RCS\n@@ADJTIME\nUTC\n"
        ));
        assert!(o.timedatectl.is_some() && o.zone_exists && !o.localtime_same);
        assert_eq!(o.timedatectl_path, "/usr/bin/timedatectl");
        assert_eq!(o.adjtime.as_deref(), Some("UTC"));
    }

    #[test]
    fn files_state_checks_the_symlink_as_ansible() {
        let mut o = Observed {
            etc_timezone: "Europe/Paris\n".into(),
            localtime_link: Some("../usr/share/zoneinfo/Etc/UTC".into()),
            ..Default::default()
        };
        // /etc/timezone says Paris but the link says UTC: not converged.
        assert_eq!(files_name(&o, "Europe/Paris"), "Etc/UTC");
        assert_eq!(files_name(&o, "Asia/Tokyo"), "Europe/Paris");
        o.localtime_link = Some("/usr/share/zoneinfo/Europe/Paris".into());
        o.localtime_same = true;
        assert_eq!(files_name(&o, "Europe/Paris"), "Europe/Paris");
        o.localtime_link = Some("/somewhere/else".into());
        assert_eq!(files_name(&o, "Europe/Paris"), "n/a");
    }
}
