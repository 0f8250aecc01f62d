//! `wait_for`: waits on the host until a TCP port accepts (or stops accepting)
//! connections, a file appears (or disappears) or contains `search_regex`, or simply for
//! `timeout` seconds. Waiting is observation: the loop runs on the host in one bash exec
//! (`/dev/tcp` for ports) inside `plan`, changes nothing, and therefore also runs in check
//! mode, as Ansible's wait_for does. The plan is never changed; on timeout it is failed.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{choice, float_opt, int_opt, sh_quote, str_opt};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct WaitFor;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("host"),
    ArgDef::opt("port"),
    ArgDef::opt("path"),
    ArgDef::opt("search_regex"),
    ArgDef::opt("state"),
    ArgDef::opt("timeout"),
    ArgDef::opt("delay"),
    ArgDef::opt("sleep"),
    ArgDef::opt("connect_timeout"),
    ArgDef::opt("msg"),
    ArgDef::opt("exclude_hosts"),
    ArgDef::opt("active_connection_states"),
];

/// What to wait for, as one shell test that succeeds when the wait is over.
pub fn condition(
    host: &str,
    port: Option<i64>,
    path: Option<&str>,
    regex: Option<&str>,
    state: &str,
    connect_timeout: i64,
) -> anyhow::Result<Option<String>> {
    let open = |p: i64| {
        format!(
            "timeout {connect_timeout} bash -c {} 2>/dev/null",
            sh_quote(&format!("exec 3<>/dev/tcp/{host}/{p}"))
        )
    };
    Ok(match (port, path, state) {
        (Some(p), None, "started" | "present") => match regex {
            None => Some(open(p)),
            Some(re) => Some(format!(
                "timeout {connect_timeout} bash -c {} 2>/dev/null | grep -Pq -- {}",
                sh_quote(&format!("exec 3<>/dev/tcp/{host}/{p}; timeout 1 cat <&3")),
                sh_quote(re)
            )),
        },
        (Some(p), None, "stopped" | "absent") => Some(format!("! {}", open(p))),
        (None, Some(f), "started" | "present") => {
            let q = sh_quote(f);
            match regex {
                None => Some(format!("[ -e {q} ]")),
                Some(re) => Some(format!("grep -Pq -- {} {q} 2>/dev/null", sh_quote(re))),
            }
        }
        (None, Some(f), "stopped" | "absent") => Some(format!("[ ! -e {} ]", sh_quote(f))),
        (Some(_), Some(_), _) => anyhow::bail!("arguments port and path are mutually exclusive"),
        (_, _, "drained") => anyhow::bail!("argument state: drained is not supported"),
        (None, None, _) => None,
        _ => anyhow::bail!("argument state: {state:?} is not valid here"),
    })
}

/// The host-side loop: exits 0 when `cond` holds, 1 after `timeout` seconds.
pub fn wait_script(cond: Option<&str>, timeout: f64, delay: f64, sleep: f64) -> String {
    match cond {
        None => format!("sleep {}", timeout + delay),
        Some(c) => format!(
            "sleep {delay}; end=$(( $(date +%s) + {} )); \
             while :; do if {c}; then exit 0; fi; \
             if [ \"$(date +%s)\" -ge \"$end\" ]; then exit 1; fi; sleep {sleep}; done",
            timeout.ceil() as i64
        ),
    }
}

#[async_trait]
impl Module for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let host = str_opt(args, &["host"])?.unwrap_or_else(|| "127.0.0.1".into());
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
        {
            anyhow::bail!("argument host: {host:?} is not a host name or address");
        }
        let port = int_opt(args, &["port"])?;
        let path = str_opt(args, &["path"])?;
        let regex = str_opt(args, &["search_regex"])?;
        let state = choice(
            args,
            &["state"],
            &["started", "stopped", "present", "absent", "drained"],
            "started",
        )?;
        let timeout = float_opt(args, &["timeout"])?.unwrap_or(300.0);
        let delay = float_opt(args, &["delay"])?.unwrap_or(0.0);
        let sleep = float_opt(args, &["sleep"])?.unwrap_or(1.0);
        let connect_timeout = int_opt(args, &["connect_timeout"])?.unwrap_or(5).max(1);
        let cond = condition(
            &host,
            port,
            path.as_deref(),
            regex.as_deref(),
            &state,
            connect_timeout,
        )?;
        let script = wait_script(cond.as_deref(), timeout, delay, sleep);
        let started = std::time::Instant::now();
        let out = ctx.run(&format!("bash -c {}", sh_quote(&script))).await?;
        let elapsed = started.elapsed().as_secs();
        let mut plan = Plan::default();
        let mut result = super::args::vars([
            ("elapsed", Value::from(elapsed)),
            ("state", Value::String(state.clone())),
        ]);
        if let Some(p) = port {
            result.insert("port".into(), Value::from(p));
        }
        if let Some(p) = &path {
            result.insert("path".into(), Value::String(p.clone()));
        }
        if let Some(r) = &regex {
            result.insert("search_regex".into(), Value::String(r.clone()));
        }
        if out.rc != 0 {
            let what = match (&port, &path) {
                (Some(p), _) => format!("{host}:{p}"),
                (_, Some(f)) => f.clone(),
                _ => host.clone(),
            };
            let msg = str_opt(args, &["msg"])?
                .unwrap_or_else(|| format!("Timeout when waiting for {what}"));
            result.insert("msg".into(), Value::String(msg.clone()));
            plan.failed = Some(msg);
        }
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        let c = condition("127.0.0.1", Some(22), None, None, "started", 5)
            .unwrap()
            .unwrap();
        assert!(c.contains("/dev/tcp/127.0.0.1/22"), "{c}");
        let c = condition("h", Some(22), None, None, "stopped", 5)
            .unwrap()
            .unwrap();
        assert!(c.starts_with("! "));
        let c = condition("h", None, Some("/tmp/x"), Some("ready"), "present", 5)
            .unwrap()
            .unwrap();
        assert_eq!(c, "grep -Pq -- ready /tmp/x 2>/dev/null");
        assert!(condition("h", None, None, None, "started", 5)
            .unwrap()
            .is_none());
        assert!(condition("h", Some(1), Some("/x"), None, "started", 5).is_err());
        assert!(condition("h", Some(1), None, None, "drained", 5).is_err());
    }
}
