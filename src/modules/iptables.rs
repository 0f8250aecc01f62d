//! `iptables`: one rule (or a chain's policy, or a flush) in a table, with the rule model
//! of Ansible's `iptables` module: the rule's arguments are built in Ansible's order (so
//! `iptables -S` shows the same rule either tool made), presence is asked with
//! `iptables -C` (one exec), and only a missing (or, with `state: absent`, a present) rule
//! is appended, inserted or deleted. Result: Ansible's keys (`rule`, `chain`, `table`,
//! `state`, `ip_version`, `flush`, `chain_management`, `wait`).
//!
//! Not supported natively (a load error names them): tcp_flags, DSCP marks, ipset
//! matches, owner matches, iprange, gateway, fragment, set_counters, ip_version `both`.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, choice, list, sh_quote, str_opt};
use super::{fileops, ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct Iptables;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("table"),
    ArgDef::opt("state"),
    ArgDef::opt("action"),
    ArgDef::opt("rule_num"),
    ArgDef::opt("ip_version"),
    ArgDef::opt("chain"),
    ArgDef::opt("protocol"),
    ArgDef::opt("source"),
    ArgDef::opt("destination"),
    ArgDef::opt("match"),
    ArgDef::opt("jump"),
    ArgDef::opt("goto"),
    ArgDef::opt("in_interface"),
    ArgDef::opt("out_interface"),
    ArgDef::opt("source_port"),
    ArgDef::opt("destination_port"),
    ArgDef::opt("destination_ports"),
    ArgDef::opt("to_ports"),
    ArgDef::opt("to_destination"),
    ArgDef::opt("to_source"),
    ArgDef::opt("syn"),
    ArgDef::opt("ctstate"),
    ArgDef::opt("limit"),
    ArgDef::opt("limit_burst"),
    ArgDef::opt("log_prefix"),
    ArgDef::opt("log_level"),
    ArgDef::opt("reject_with"),
    ArgDef::opt("icmp_type"),
    ArgDef::opt("comment"),
    ArgDef::opt("policy"),
    ArgDef::opt("flush"),
    ArgDef::opt("chain_management"),
    ArgDef::opt("wait"),
    ArgDef::opt("numeric"),
];

/// `flag value`, or `! flag value` for a value written `!value`.
fn param(rule: &mut Vec<String>, value: Option<&str>, flag: &str) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        match v.strip_prefix('!') {
            Some(neg) => rule.extend(["!".into(), flag.into(), neg.trim().to_string()]),
            None => rule.extend([flag.to_string(), v.to_string()]),
        }
    }
}

fn matcher(rule: &mut Vec<String>, when: bool, name: &str) {
    if when {
        rule.extend(["-m".to_string(), name.to_string()]);
    }
}

fn csv(rule: &mut Vec<String>, values: &[String], flag: &str) {
    if !values.is_empty() {
        rule.extend([flag.to_string(), values.join(",")]);
    }
}

/// The rule's arguments, in the order Ansible's module builds them.
pub fn build_rule(args: &Vars, ipv6: bool) -> anyhow::Result<Vec<String>> {
    let s = |n: &str| str_opt(args, &[n]);
    let matches = list(args, &["match"])?;
    let ctstate = list(args, &["ctstate"])?;
    let dports = list(args, &["destination_ports"])?;
    let mut jump = s("jump")?;
    if (s("log_prefix")?.is_some() || s("log_level")?.is_some()) && jump.is_none() {
        jump = Some("LOG".into());
    }
    if let (Some(j), true) = (
        &jump,
        s("log_prefix")?.is_some() || s("log_level")?.is_some(),
    ) {
        if j != "LOG" {
            anyhow::bail!(
                "argument jump: Logging options can only be used with the LOG jump target."
            );
        }
    }
    let mut r = Vec::new();
    param(&mut r, s("protocol")?.as_deref(), "-p");
    param(&mut r, s("source")?.as_deref(), "-s");
    param(&mut r, s("destination")?.as_deref(), "-d");
    for m in &matches {
        param(&mut r, Some(m), "-m");
    }
    param(&mut r, jump.as_deref(), "-j");
    param(&mut r, s("log_prefix")?.as_deref(), "--log-prefix");
    param(&mut r, s("log_level")?.as_deref(), "--log-level");
    param(&mut r, s("to_destination")?.as_deref(), "--to-destination");
    matcher(&mut r, !dports.is_empty(), "multiport");
    csv(&mut r, &dports, "--dports");
    param(&mut r, s("to_source")?.as_deref(), "--to-source");
    param(&mut r, s("goto")?.as_deref(), "-g");
    param(&mut r, s("in_interface")?.as_deref(), "-i");
    param(&mut r, s("out_interface")?.as_deref(), "-o");
    param(&mut r, s("source_port")?.as_deref(), "--source-port");
    param(
        &mut r,
        s("destination_port")?.as_deref(),
        "--destination-port",
    );
    param(&mut r, s("to_ports")?.as_deref(), "--to-ports");
    match choice(args, &["syn"], &["ignore", "match", "negate"], "ignore")?.as_str() {
        "match" => r.push("--syn".into()),
        "negate" => r.extend(["!".into(), "--syn".into()]),
        _ => {}
    }
    if matches.iter().any(|m| m.contains("conntrack")) {
        csv(&mut r, &ctstate, "--ctstate");
    } else if matches.iter().any(|m| m.contains("state")) {
        csv(&mut r, &ctstate, "--state");
    } else if !ctstate.is_empty() {
        matcher(&mut r, true, "conntrack");
        csv(&mut r, &ctstate, "--ctstate");
    }
    let (limit, burst) = (s("limit")?, s("limit_burst")?);
    matcher(&mut r, limit.is_some() || burst.is_some(), "limit");
    param(&mut r, limit.as_deref(), "--limit");
    param(&mut r, burst.as_deref(), "--limit-burst");
    let reject = s("reject_with")?;
    if jump.is_none() && reject.is_some() {
        r.extend(["-j".into(), "REJECT".into()]);
    }
    param(&mut r, reject.as_deref(), "--reject-with");
    let icmp_flag = if ipv6 { "--icmpv6-type" } else { "--icmp-type" };
    param(&mut r, s("icmp_type")?.as_deref(), icmp_flag);
    let comment = s("comment")?;
    matcher(&mut r, comment.is_some(), "comment");
    param(&mut r, comment.as_deref(), "--comment");
    Ok(r)
}

/// The chain's policy from `iptables -L <chain>`'s first line.
pub fn parse_policy(out: &str) -> Option<String> {
    let first = out.lines().next()?;
    let start = first.find("(policy ")? + "(policy ".len();
    let rest = &first[start..];
    Some(rest.split([' ', ')']).next()?.to_string())
}

#[async_trait]
impl Module for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let table = choice(
            args,
            &["table"],
            &["filter", "nat", "mangle", "raw", "security"],
            "filter",
        )?;
        let state = choice(args, &["state"], &["present", "absent"], "present")?;
        let action = choice(args, &["action"], &["append", "insert"], "append")?;
        let ip_version = choice(args, &["ip_version"], &["ipv4", "ipv6"], "ipv4")?;
        let chain = str_opt(args, &["chain"])?;
        let flush = bool_arg(args, &["flush"], false)?;
        let policy = str_opt(args, &["policy"])?;
        let chain_management = bool_arg(args, &["chain_management"], false)?;
        let wait = str_opt(args, &["wait"])?;
        if let Some(p) = &policy {
            if !["ACCEPT", "DROP", "QUEUE", "RETURN"].contains(&p.as_str()) {
                anyhow::bail!("argument policy: {p:?} is not one of ACCEPT, DROP, QUEUE, RETURN");
            }
        }
        if !flush && chain.is_none() {
            anyhow::bail!("argument chain: required unless flush is true");
        }
        let rule = build_rule(args, ip_version == "ipv6")?;
        let bin = if ip_version == "ipv6" {
            "ip6tables"
        } else {
            "iptables"
        };
        let wait_arg = wait
            .as_ref()
            .map(|w| format!(" -w {}", sh_quote(w)))
            .unwrap_or_default();
        let base = format!("{bin}{wait_arg} -t {}", sh_quote(&table));
        let chain_q = chain.as_deref().map(sh_quote).unwrap_or_default();
        let rule_q: String = rule.iter().map(|a| format!(" {}", sh_quote(a))).collect();
        let mut plan = Plan {
            result: super::args::vars([
                ("ip_version", Value::String(ip_version.clone())),
                ("table", Value::String(table.clone())),
                ("chain", chain.clone().map_or(Value::Null, Value::String)),
                ("flush", Value::Bool(flush)),
                ("rule", Value::String(rule.join(" "))),
                ("state", Value::String(state.clone())),
                ("chain_management", Value::Bool(chain_management)),
                ("wait", wait.clone().map_or(Value::Null, Value::String)),
            ]),
            ..Default::default()
        };
        let change = |plan: &mut Plan, summary: String, cmd: String| {
            plan.changes.push(Change {
                summary,
                diff: None,
            });
            plan.ops.push(fileops::exec(cmd));
        };
        if flush {
            change(
                &mut plan,
                format!("flush {table} {}", chain.clone().unwrap_or_default()),
                format!("{base} -F {chain_q}"),
            );
            return Ok(plan);
        }
        let chain = chain.unwrap_or_default();
        if let Some(p) = policy {
            let out = ctx.run(&format!("{base} -L {chain_q}")).await?;
            let Some(current) = parse_policy(&out.stdout) else {
                plan.failed = Some("Can't detect current policy".into());
                return Ok(plan);
            };
            if current != p {
                change(
                    &mut plan,
                    format!("{table} {chain} policy {current} -> {p}"),
                    format!("{base} -P {chain_q} {}", sh_quote(&p)),
                );
            }
            return Ok(plan);
        }
        if rule.is_empty() {
            let out = ctx
                .run(&format!("{base} -L {chain_q} >/dev/null 2>&1; echo $?"))
                .await?;
            let present = out.stdout.trim() == "0";
            match (state.as_str(), present) {
                ("present", false) => {
                    plan.force_changed = true;
                    if chain_management {
                        change(
                            &mut plan,
                            format!("create chain {chain} in {table}"),
                            format!("{base} -N {chain_q}"),
                        );
                    }
                }
                ("absent", true) => {
                    plan.force_changed = true;
                    if chain_management {
                        change(
                            &mut plan,
                            format!("delete chain {chain} in {table}"),
                            format!("{base} -X {chain_q}"),
                        );
                    }
                }
                _ => {}
            }
            return Ok(plan);
        }
        let check = ctx.run(&format!("{base} -C {chain_q}{rule_q}")).await?;
        if check.rc == 127 {
            plan.failed = Some(format!("Failed to find required executable \"{bin}\""));
            return Ok(plan);
        }
        let present = check.rc == 0;
        let shown = rule.join(" ");
        match (state.as_str(), present) {
            ("present", false) => {
                let verb = if action == "insert" {
                    let num = str_opt(args, &["rule_num"])?
                        .map(|n| format!(" {}", sh_quote(&n)))
                        .unwrap_or_default();
                    format!("-I {chain_q}{num}")
                } else {
                    format!("-A {chain_q}")
                };
                change(
                    &mut plan,
                    format!("{table} {chain}: add {shown}"),
                    format!("{base} {verb}{rule_q}"),
                );
            }
            ("absent", true) => {
                change(
                    &mut plan,
                    format!("{table} {chain}: delete {shown}"),
                    format!("{base} -D {chain_q}{rule_q}"),
                );
            }
            _ => {}
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> String {
        build_rule(v.as_object().unwrap(), false).unwrap().join(" ")
    }

    #[test]
    fn rules_are_built_in_ansibles_order() {
        assert_eq!(
            rule(json!({"chain": "INPUT", "protocol": "tcp", "destination_port": "22",
                        "ctstate": ["NEW"], "jump": "ACCEPT", "comment": "ssh"})),
            "-p tcp -j ACCEPT --destination-port 22 -m conntrack --ctstate NEW -m comment --comment ssh"
        );
        assert_eq!(
            rule(json!({"source": "!10.0.0.0/8", "reject_with": "tcp-reset", "protocol": "tcp"})),
            "-p tcp ! -s 10.0.0.0/8 -j REJECT --reject-with tcp-reset"
        );
        assert_eq!(
            rule(json!({"destination_ports": ["80", "443"], "protocol": "tcp", "jump": "ACCEPT"})),
            "-p tcp -j ACCEPT -m multiport --dports 80,443"
        );
        assert!(build_rule(
            json!({"log_prefix": "x", "jump": "DROP"})
                .as_object()
                .unwrap(),
            false
        )
        .is_err());
    }

    #[test]
    fn policy_from_the_listing() {
        assert_eq!(
            parse_policy("Chain INPUT (policy DROP 0 packets, 0 bytes)\n").as_deref(),
            Some("DROP")
        );
        assert_eq!(
            parse_policy("Chain FORWARD (policy ACCEPT)\n").as_deref(),
            Some("ACCEPT")
        );
        assert_eq!(parse_policy("Chain mine (0 references)\n"), None);
    }
}
