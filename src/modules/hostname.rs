//! `hostname`: the host's name in `/etc/hostname` (written atomically) and in the kernel
//! (`hostname NAME`; `hostnamectl` is avoided because it fails in containers). Observed in
//! one exec. `/etc/hostname` is replaced atomically, or written in place when it is a bind
//! mount that cannot be renamed over (containers), as Ansible's atomic_move falls back to.

use async_trait::async_trait;
use serde_json::json;

use super::args::{sh_quote, str_opt, str_req};
use super::fileops::exec;
use super::{diff, ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct Hostname;

const ARGS: &[ArgDef] = &[ArgDef::req("name"), ArgDef::opt("use")];

/// Plans from the file's content and the kernel's name. Pure.
pub fn plan_hostname(name: &str, file: &str, kernel: &str) -> Plan {
    let mut plan = Plan::default();
    let file_name = file
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if file_name != name || kernel.trim() != name {
        plan.changes.push(Change {
            summary: format!("hostname {} -> {name}", kernel.trim()),
            diff: Some(diff::state_diff(
                "hostname",
                format!("hostname = {}\n", kernel.trim()),
                format!("hostname = {name}\n"),
            )),
        });
    }
    if file_name != name {
        // Atomic (temp + rename); in a container /etc/hostname is a bind mount that cannot
        // be replaced (EBUSY), so fall back to writing it in place, as Ansible does.
        plan.ops.push(exec(format!(
            "t=/etc/.hostname.infra-tmp-$$; printf '%s\\n' {n} > \"$t\" && chmod 0644 \"$t\" && sync \"$t\" && \
             {{ mv -f \"$t\" /etc/hostname 2>/dev/null || {{ cat \"$t\" > /etc/hostname; rm -f \"$t\"; }}; }}",
            n = sh_quote(name)
        )));
    }
    if kernel.trim() != name {
        plan.ops.push(exec(format!("hostname {}", sh_quote(name))));
    }
    plan
}

#[async_trait]
impl Module for Hostname {
    fn name(&self) -> &'static str {
        "hostname"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_req(args, &["name"])?;
        let _ = str_opt(args, &["use"])?;
        if name.is_empty()
            || name.len() > 253
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            anyhow::bail!("argument name: {name:?} is not a valid host name");
        }
        let out = ctx
            .run("cat /etc/hostname 2>/dev/null; echo @@KERNEL; hostname")
            .await?;
        let (file, kernel) = out
            .stdout
            .split_once("@@KERNEL\n")
            .unwrap_or((&out.stdout, ""));
        let mut plan = plan_hostname(&name, file, kernel);
        let short = name.split('.').next().unwrap_or(&name).to_string();
        let domain = name
            .split_once('.')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        plan.result = super::args::vars([
            ("name", json!(name)),
            (
                "ansible_facts",
                json!({
                    "ansible_hostname": short,
                    "ansible_nodename": name,
                    "ansible_fqdn": name,
                    "ansible_domain": domain,
                }),
            ),
        ]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_plans() {
        assert!(plan_hostname("web1", "web1\n", "web1\n").ops.is_empty());
        assert_eq!(plan_hostname("web1", "old\n", "web1\n").ops.len(), 1);
        let p = plan_hostname("web1", "old\n", "old\n");
        assert_eq!(p.ops.len(), 2);
        assert_eq!(p.changes.len(), 1);
    }
}
