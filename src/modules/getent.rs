//! `getent`: a name-service database (passwd, group, hosts, services, ...) read with the
//! host's `getent`, returned as the fact `getent_<database>`: each record's first field is
//! the key, the other fields its value (several records with one key: a list of lists).
//! Read-only: never changed, runs in check mode.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::args::{bool_arg, sh_quote, str_opt, str_req};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct Getent;

const ARGS: &[ArgDef] = &[
    ArgDef::req("database"),
    ArgDef::opt("key"),
    ArgDef::opt("service"),
    ArgDef::opt("split"),
    ArgDef::opt("fail_key"),
];

/// Databases whose fields are `:`-separated when `split` is not given (else whitespace).
const COLON: &[&str] = &["passwd", "shadow", "group", "gshadow"];

/// The records of `getent`'s output as Ansible's dict.
pub fn parse(out: &str, split: Option<&str>) -> Map<String, Value> {
    let mut tree = Map::new();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for line in out.lines() {
        let fields: Vec<&str> = match split {
            Some(sep) if !sep.is_empty() => line.split(sep).collect(),
            _ => line.split_whitespace().collect(),
        };
        let Some((key, rest)) = fields.split_first() else {
            continue;
        };
        let rest = Value::Array(rest.iter().map(|f| Value::String(f.to_string())).collect());
        let count = seen.entry(key.to_string()).or_insert(0);
        *count += 1;
        match (*count, tree.get_mut(*key)) {
            (1, _) | (_, None) => {
                tree.insert(key.to_string(), rest);
            }
            (2, Some(first)) => {
                let first = first.take();
                tree.insert(key.to_string(), Value::Array(vec![first, rest]));
            }
            (_, Some(Value::Array(all))) => all.push(rest),
            (_, Some(_)) => {}
        }
    }
    tree
}

#[async_trait]
impl Module for Getent {
    fn name(&self) -> &'static str {
        "getent"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let database = str_req(args, &["database"])?;
        let key = str_opt(args, &["key"])?;
        let service = str_opt(args, &["service"])?;
        let fail_key = bool_arg(args, &["fail_key"], true)?;
        let split = str_opt(args, &["split"])?
            .or_else(|| COLON.contains(&database.as_str()).then(|| ":".to_string()));
        let mut cmd = format!("getent {}", sh_quote(&database));
        if let Some(k) = &key {
            cmd.push_str(&format!(" {}", sh_quote(k)));
        }
        if let Some(s) = &service {
            cmd.push_str(&format!(" -s {}", sh_quote(s)));
        }
        let out = ctx.run(&cmd).await?;
        let fact = format!("getent_{database}");
        let mut plan = Plan::default();
        let facts = |tree: Map<String, Value>| {
            let mut f = Map::new();
            f.insert(fact.clone(), Value::Object(tree));
            Value::Object(f)
        };
        match out.rc {
            0 => {
                let tree = parse(&out.stdout, split.as_deref());
                plan.result.insert("ansible_facts".into(), facts(tree));
            }
            2 if !fail_key => {
                let msg = "One or more supplied key could not be found in the database.";
                let mut tree = Map::new();
                tree.insert(key.unwrap_or_default(), Value::Null);
                plan.result.insert("ansible_facts".into(), facts(tree));
                plan.result.insert("msg".into(), Value::String(msg.into()));
            }
            rc => {
                let msg = match rc {
                    1 => "Missing arguments, or database unknown.",
                    2 => "One or more supplied key could not be found in the database.",
                    3 => "Enumeration not supported on this database.",
                    127 => "getent is not installed on the host",
                    _ => "Unexpected failure!",
                };
                plan.failed = Some(msg.to_string());
                plan.result.insert("msg".into(), Value::String(msg.into()));
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_by_key_and_repeated_keys_as_lists() {
        let out = "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n";
        let t = parse(out, Some(":"));
        assert_eq!(
            t["root"],
            json!(["x", "0", "0", "root", "/root", "/bin/bash"])
        );
        let hosts = "127.0.0.1       localhost\n::1  localhost ip6-localhost\n127.0.0.1 other\n";
        let t = parse(hosts, None);
        assert_eq!(t["127.0.0.1"], json!([["localhost"], ["other"]]));
        assert_eq!(t["::1"], json!(["localhost", "ip6-localhost"]));
    }
}
