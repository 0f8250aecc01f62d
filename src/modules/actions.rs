//! The action modules that change nothing on a host: `debug`, `set_fact`, `assert`,
//! `fail`, `pause`, `ping`. What the engine must do with each is in the doc of
//! `modules/mod.rs`. Expressions (`debug: var=`, `assert: that=`) are evaluated through
//! [`HostCtx::render`], so they follow the same Jinja rules as templates.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, float_opt, get, str_opt};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct Debug;
pub struct SetFact;
pub struct Assert;
pub struct Fail;
pub struct Pause;
pub struct Ping;

/// Strips `{{ }}` around a whole expression (Ansible accepts both spellings).
fn bare_expr(expr: &str) -> &str {
    let t = expr.trim();
    match t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("{{") => inner.trim(),
        _ => t,
    }
}

/// Evaluates a condition with Jinja truthiness through the host's renderer.
pub fn eval_condition(ctx: &HostCtx, cond: &Value) -> anyhow::Result<bool> {
    match cond {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Value::String(s) => {
            let src = format!(
                "{{% if {} %}}True{{% else %}}False{{% endif %}}",
                bare_expr(s)
            );
            let out = (ctx.render)(&src, &ctx.vars, &Vars::new(), true, false)
                .map_err(|e| anyhow::anyhow!("evaluating {s:?}: {e:#}"))?;
            Ok(out.trim() == "True")
        }
        other => anyhow::bail!("condition {other} is not an expression"),
    }
}

#[async_trait]
impl Module for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }

    fn spec(&self) -> ArgSpec {
        const ARGS: &[ArgDef] = &[
            ArgDef::opt("msg"),
            ArgDef::opt("var"),
            ArgDef::opt("verbosity"),
        ];
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        if get(args, &["msg"]).is_some() && get(args, &["var"]).is_some() {
            anyhow::bail!("arguments msg and var are mutually exclusive");
        }
        // Below the run's verbosity the task is skipped (the engine reports a plan whose
        // result says `skipped` as skipped), as Ansible's debug does.
        let wanted = super::args::int_opt(args, &["verbosity"])?.unwrap_or(0);
        let verbosity = ctx
            .vars
            .get("ansible_verbosity")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if verbosity < wanted {
            return Ok(Plan {
                result: super::args::vars([
                    ("skipped", Value::Bool(true)),
                    (
                        "skipped_reason",
                        Value::String("Verbosity threshold not met.".into()),
                    ),
                ]),
                ..Default::default()
            });
        }
        let result = if let Some(var) = str_opt(args, &["var"])? {
            const UNDEFINED: &str = "VARIABLE IS NOT DEFINED!";
            let e = bare_expr(&var);
            let src = format!(
                "{{% if ({e}) is defined %}}{{{{ ({e}) | tojson }}}}{{% else %}}{UNDEFINED}{{% endif %}}"
            );
            let value = match (ctx.render)(&src, &ctx.vars, &Vars::new(), true, false) {
                Ok(json) if json == UNDEFINED => Value::String(UNDEFINED.into()),
                Ok(json) => serde_json::from_str(&json).unwrap_or(Value::String(json)),
                Err(_) => Value::String(UNDEFINED.into()),
            };
            super::args::vars([(var.as_str(), value)])
        } else {
            let msg = get(args, &["msg"])
                .cloned()
                .unwrap_or_else(|| Value::String("Hello world!".into()));
            super::args::vars([("msg", msg)])
        };
        Ok(Plan {
            result,
            ..Default::default()
        })
    }
}

#[async_trait]
impl Module for SetFact {
    fn name(&self) -> &'static str {
        "set_fact"
    }

    fn spec(&self) -> ArgSpec {
        // Any key is a fact: the engine must not reject unknown keys for set_fact.
        ArgSpec {
            args: &[],
            free_form: true,
            one_of: &[],
        }
    }

    async fn plan(&self, _ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let mut facts = args.clone();
        let cacheable = bool_arg(args, &["cacheable"], false)?;
        facts.remove("cacheable");
        if let Some(raw) = facts.remove("_raw_params") {
            // `set_fact: a=1 b=2` given as free form.
            let text = super::args::scalar_text("set_fact", &raw)?;
            for word in shlex::split(&text).unwrap_or_default() {
                let (k, v) = word
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("set_fact: {word:?} is not key=value"))?;
                facts.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
        if facts.is_empty() {
            anyhow::bail!(
                "No key/value pairs provided, at least one is required for this action to succeed"
            );
        }
        if let Some(bad) = facts.keys().find(|k| !is_variable_name(k)) {
            anyhow::bail!("Invalid variable name in 'set_fact' specified: '{bad}'");
        }
        // `_ansible_facts_cacheable` tells the engine to keep the facts as gathered facts
        // too; it is not part of the registered result (Ansible strips `_ansible_` keys).
        Ok(Plan {
            result: super::args::vars([
                ("ansible_facts", Value::Object(facts)),
                ("_ansible_facts_cacheable", Value::Bool(cacheable)),
            ]),
            ..Default::default()
        })
    }
}

#[async_trait]
impl Module for Assert {
    fn name(&self) -> &'static str {
        "assert"
    }

    fn spec(&self) -> ArgSpec {
        const ARGS: &[ArgDef] = &[
            ArgDef::req("that"),
            ArgDef::alias("fail_msg", &["msg"]),
            ArgDef::opt("success_msg"),
            ArgDef::opt("quiet"),
        ];
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let conditions: Vec<Value> = match get(args, &["that"]) {
            Some(Value::Array(items)) => items.clone(),
            Some(v) => vec![v.clone()],
            None => anyhow::bail!("missing required argument: that"),
        };
        let quiet = bool_arg(args, &["quiet"], false)?;
        let mut plan = Plan::default();
        for cond in &conditions {
            if !eval_condition(ctx, cond)? {
                let msg = get(args, &["fail_msg"])
                    .cloned()
                    .unwrap_or_else(|| Value::String("Assertion failed".into()));
                plan.failed = Some(match &msg {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                plan.result = super::args::vars([
                    ("msg", msg),
                    ("assertion", cond.clone()),
                    ("evaluated_to", Value::Bool(false)),
                ]);
                return Ok(plan);
            }
        }
        let msg = get(args, &["success_msg"])
            .cloned()
            .unwrap_or_else(|| Value::String("All assertions passed".into()));
        if !quiet {
            plan.result = super::args::vars([("msg", msg)]);
        }
        Ok(plan)
    }
}

#[async_trait]
impl Module for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }

    fn spec(&self) -> ArgSpec {
        const ARGS: &[ArgDef] = &[ArgDef::opt("msg")];
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, _ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let msg =
            str_opt(args, &["msg"])?.unwrap_or_else(|| "Failed as requested from task".to_string());
        Ok(Plan {
            failed: Some(msg.clone()),
            result: super::args::vars([("msg", Value::String(msg))]),
            ..Default::default()
        })
    }
}

#[async_trait]
impl Module for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }

    fn spec(&self) -> ArgSpec {
        const ARGS: &[ArgDef] = &[
            ArgDef::opt("seconds"),
            ArgDef::opt("minutes"),
            ArgDef::opt("prompt"),
            ArgDef::opt("echo"),
        ];
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, _ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let (seconds, unit) = match (
            float_opt(args, &["seconds"])?,
            float_opt(args, &["minutes"])?,
        ) {
            (_, Some(m)) => (Some(m * 60.0), "minutes"),
            (Some(s), None) => (Some(s), "seconds"),
            (None, None) => (None, "seconds"),
        };
        if let Some(s) = seconds {
            if !(0.0..=86_400.0).contains(&s) {
                anyhow::bail!("pause: {s} seconds is out of range");
            }
        }
        let echo = bool_arg(args, &["echo"], true)?;
        let prompt = str_opt(args, &["prompt"])?;
        let start_clock = std::time::Instant::now();
        let start = chrono::Local::now();
        let mut warnings = Vec::new();
        let mut user_input = String::new();
        match seconds {
            // Ansible waits at least one second and ignores input during a timed pause.
            Some(s) => tokio::time::sleep(std::time::Duration::from_secs_f64(s.max(1.0))).await,
            None => {
                let text = prompt
                    .clone()
                    .unwrap_or_else(|| "Press enter to continue, Ctrl+C to interrupt".into());
                match read_answer(&text, echo).await? {
                    Some(answer) => user_input = answer,
                    None => warnings.push(Value::String(
                        "Not waiting for response to prompt as stdin is not interactive".into(),
                    )),
                }
            }
        }
        let stop = chrono::Local::now();
        let elapsed = start_clock.elapsed().as_secs_f64();
        let shown = if unit == "minutes" {
            elapsed / 60.0
        } else {
            elapsed
        };
        let mut result = super::args::vars([
            ("changed", Value::Bool(false)),
            ("rc", Value::from(0)),
            ("stderr", Value::String(String::new())),
            (
                "stdout",
                Value::String(format!(
                    "Paused for {} {unit}",
                    (shown * 100.0).round() / 100.0
                )),
            ),
            ("start", Value::String(start.to_rfc3339())),
            ("stop", Value::String(stop.to_rfc3339())),
            ("delta", Value::from(elapsed as i64)),
            ("user_input", Value::String(user_input)),
            ("echo", Value::Bool(echo)),
        ]);
        if !warnings.is_empty() {
            result.insert("warnings".into(), Value::Array(warnings));
        }
        Ok(Plan {
            result,
            ..Default::default()
        })
    }
}

/// Asks `prompt` on the terminal and reads one line; `None` when stdin is not a terminal
/// (Ansible then does not wait).
async fn read_answer(prompt: &str, echo: bool) -> anyhow::Result<Option<String>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let prompt = prompt.to_string();
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let term = console::Term::stderr();
        term.write_str(&format!("{prompt}: "))?;
        let line = if echo {
            term.read_line()?
        } else {
            term.read_secure_line()?
        };
        Ok(line)
    })
    .await??;
    Ok(Some(answer))
}

/// A valid Ansible variable name (letters, digits, `_`, not starting with a digit).
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[async_trait]
impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn spec(&self) -> ArgSpec {
        const ARGS: &[ArgDef] = &[ArgDef::opt("data")];
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let data = str_opt(args, &["data"])?.unwrap_or_else(|| "pong".into());
        if data == "crash" {
            anyhow::bail!("boom");
        }
        let out = ctx.run("true").await?;
        if out.rc != 0 {
            anyhow::bail!("ping: `true` failed on the host: {}", out.stderr.trim());
        }
        Ok(Plan {
            result: super::args::vars([("ping", Value::String(data))]),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_lose_their_braces() {
        assert_eq!(bare_expr("{{ a == 1 }}"), "a == 1");
        assert_eq!(bare_expr(" a is defined "), "a is defined");
        assert_eq!(bare_expr("{{ a }} == {{ b }}"), "{{ a }} == {{ b }}");
    }
}
