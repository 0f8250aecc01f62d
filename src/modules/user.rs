//! `user`: a local account (useradd/usermod/userdel): uid, primary group, supplementary
//! groups (`append`), shell, home, create_home, system, password hash, comment. Observed by
//! reading `/etc/passwd` and `/etc/group` (and `/etc/shadow` when a password is managed)
//! over the transport, no process on the host; when those files cannot answer (under
//! `become`, or a user or group only NSS knows: LDAP, sssd), one exec: `getent passwd`,
//! `id -Gn`, the shadow hash, and which named groups exist.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, bool_opt, choice, int_opt, list, sh_quote, str_opt, str_req};
use super::fileops::{db_entry, exec, read_if};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct User;

const ARGS: &[ArgDef] = &[
    ArgDef::alias("name", &["user"]),
    ArgDef::opt("state"),
    ArgDef::opt("uid"),
    ArgDef::opt("group"),
    ArgDef::opt("groups"),
    ArgDef::opt("append"),
    ArgDef::opt("shell"),
    ArgDef::opt("home"),
    ArgDef::alias("create_home", &["createhome"]),
    ArgDef::opt("move_home"),
    ArgDef::opt("system"),
    ArgDef::opt("password"),
    ArgDef::opt("update_password"),
    ArgDef::opt("comment"),
    ArgDef::opt("remove"),
    ArgDef::opt("force"),
    ArgDef::opt("non_unique"),
    ArgDef::opt("password_lock"),
];

/// An account as the host has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
    /// All groups (`id -Gn`), the primary one included.
    pub groups: Vec<String>,
    pub primary_group: String,
    pub password: String,
}

/// The observation's parts.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub account: Option<Account>,
    /// group name -> gid for every group the task names.
    pub groups: Vec<(String, u32)>,
}

/// Parses the observation exec's output.
pub fn parse(out: &str) -> Observed {
    let mut obs = Observed::default();
    let mut acct: Option<Account> = None;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("P ") {
            let f: Vec<&str> = p.split(':').collect();
            if f.len() >= 7 {
                acct = Some(Account {
                    uid: f[2].parse().unwrap_or(0),
                    gid: f[3].parse().unwrap_or(0),
                    comment: f[4].to_string(),
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                    ..Default::default()
                });
            }
        } else if let Some(g) = line.strip_prefix("I ") {
            if let Some(a) = acct.as_mut() {
                a.groups = g.split_whitespace().map(String::from).collect();
            }
        } else if let Some(s) = line.strip_prefix("S ") {
            if let Some(a) = acct.as_mut() {
                a.password = s.trim().to_string();
            }
        } else if let Some(g) = line.strip_prefix("G ") {
            let f: Vec<&str> = g.split(':').collect();
            if f.len() >= 3 {
                if let Ok(gid) = f[2].parse() {
                    obs.groups.push((f[0].to_string(), gid));
                }
            }
        }
    }
    if let Some(a) = acct.as_mut() {
        a.primary_group = obs
            .groups
            .iter()
            .find(|(_, gid)| *gid == a.gid)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
    }
    obs.account = acct;
    obs
}

/// Observes with one exec (NSS-aware: `getent`, `id -Gn`).
async fn observe_exec(ctx: &HostCtx, name: &str, named: &[String]) -> anyhow::Result<Observed> {
    let q = sh_quote(name);
    let mut script = format!(
        "e=$(getent passwd {q}) && {{ echo \"P $e\"; echo \"I $(id -Gn {q})\"; \
         echo \"S $(getent shadow {q} | cut -d: -f2)\"; \
         getent group \"$(echo \"$e\" | cut -d: -f4)\" | sed 's/^/G /'; }}; "
    );
    for g in named {
        script.push_str(&format!("getent group {} | sed 's/^/G /'; ", sh_quote(g)));
    }
    script.push_str("true");
    let out = ctx.run(&script).await?;
    Ok(parse(&out.stdout))
}

/// Observes from the account files read over the transport (no process on the host):
/// `/etc/passwd`, `/etc/group` and, when `shadow`, `/etc/shadow`, all three at once. `None`
/// when they cannot answer and the exec must: under `become` (reads would go through sudo
/// anyway), a file that cannot be read, or a user or named group the files do not list
/// (it may come from NSS).
async fn observe_files(
    ctx: &HostCtx,
    name: &str,
    named: &[String],
    shadow: bool,
) -> Option<Observed> {
    if ctx.become_.is_some() {
        return None;
    }
    let (passwd, group, shadow_text) = futures::join!(
        read_if(ctx, "/etc/passwd", true),
        read_if(ctx, "/etc/group", true),
        read_if(ctx, "/etc/shadow", shadow)
    );
    // A file that cannot be read (an unreadable shadow, say) leaves it to the exec.
    let shadow_text = match shadow {
        true => shadow_text.ok()??,
        false => Vec::new(),
    };
    from_files(
        &String::from_utf8_lossy(&passwd.ok()??),
        &String::from_utf8_lossy(&group.ok()??),
        &String::from_utf8_lossy(&shadow_text),
        name,
        named,
    )
}

/// The observation `observe_exec` would make, from the texts of the account files; `None`
/// when the user or a named group is not in them. Groups are what `id -Gn` lists: the
/// primary group, then every group whose member list names the user.
pub fn from_files(
    passwd: &str,
    group: &str,
    shadow: &str,
    name: &str,
    named: &[String],
) -> Option<Observed> {
    let p = db_entry(passwd, name).filter(|f| f.len() >= 7)?;
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4 && f[2].trim().parse::<u32>().is_ok())
        .collect();
    let gid_of = |f: &Vec<&str>| f[2].trim().parse::<u32>().ok();
    let mut account = Account {
        uid: p[2].parse().ok()?,
        gid: p[3].parse().ok()?,
        comment: p[4].to_string(),
        home: p[5].to_string(),
        shell: p[6].to_string(),
        password: db_entry(shadow, name)
            .and_then(|f| f.get(1).map(|s| s.to_string()))
            .unwrap_or_default(),
        ..Default::default()
    };
    let primary = groups.iter().find(|f| gid_of(f) == Some(account.gid))?;
    account.primary_group = primary[0].to_string();
    account.groups.push(account.primary_group.clone());
    for f in &groups {
        let member = f[3].split(',').any(|m| m.trim() == name);
        if member && !account.groups.iter().any(|g| g == f[0]) {
            account.groups.push(f[0].to_string());
        }
    }
    let mut obs = Observed {
        account: Some(account),
        groups: vec![(primary[0].to_string(), gid_of(primary)?)],
    };
    for wanted in named {
        let found = groups
            .iter()
            .find(|f| f[0] == wanted || wanted.parse::<u32>().ok() == gid_of(f))?;
        obs.groups.push((found[0].to_string(), gid_of(found)?));
    }
    Some(obs)
}

#[async_trait]
impl Module for User {
    fn name(&self) -> &'static str {
        "user"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_req(args, &["name", "user"])?;
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let uid = int_opt(args, &["uid"])?;
        let group = str_opt(args, &["group"])?;
        let groups = match args.get("groups") {
            None | Some(Value::Null) => None,
            Some(_) => Some(list(args, &["groups"])?),
        };
        let append = bool_arg(args, &["append"], false)?;
        let shell = str_opt(args, &["shell"])?;
        let home = str_opt(args, &["home"])?;
        let create_home = bool_arg(args, &["create_home", "createhome"], true)?;
        let move_home = bool_arg(args, &["move_home"], false)?;
        let system = bool_arg(args, &["system"], false)?;
        let password = str_opt(args, &["password"])?;
        let update_always = choice(
            args,
            &["update_password"],
            &["always", "on_create"],
            "always",
        )? == "always";
        let comment = str_opt(args, &["comment"])?;
        let remove = bool_arg(args, &["remove"], false)?;
        let force = bool_arg(args, &["force"], false)?;
        let non_unique = bool_arg(args, &["non_unique"], false)?;
        let lock = bool_opt(args, &["password_lock"])?;
        if name.is_empty() || name.contains([':', ' ', '/']) {
            anyhow::bail!("argument name: {name:?} is not a valid user name");
        }

        let q = sh_quote(&name);
        let mut named: Vec<String> = groups.clone().unwrap_or_default();
        named.push(group.clone().unwrap_or_else(|| name.clone()));
        let wants_shadow = password.is_some() || lock.is_some();
        let obs = match observe_files(ctx, &name, &named, wants_shadow).await {
            Some(obs) => obs,
            None => observe_exec(ctx, &name, &named).await?,
        };

        let group_known = |g: &str| {
            obs.groups
                .iter()
                .any(|(n, gid)| n == g || g.parse::<u32>().ok() == Some(*gid))
        };

        let mut plan = Plan::default();
        let mut result = super::args::vars([
            ("name", Value::String(name.clone())),
            (
                "state",
                Value::String(if present { "present" } else { "absent" }.into()),
            ),
        ]);
        if !present {
            if obs.account.is_some() {
                plan.changes.push(Change {
                    summary: format!("remove user {name}"),
                    diff: None,
                });
                let mut cmd = String::from("userdel");
                if remove {
                    cmd.push_str(" -r");
                }
                if force {
                    cmd.push_str(" -f");
                }
                plan.ops.push(exec(format!("{cmd} {q}")));
            }
            plan.result = result;
            return Ok(plan);
        }
        if let Some(g) = &group {
            if !group_known(g) {
                plan.failed = Some(format!("Group {g} does not exist"));
                return Ok(plan);
            }
        }
        if let Some(gs) = &groups {
            if let Some(missing) = gs.iter().find(|g| !group_known(g)) {
                plan.failed = Some(format!("Group {missing} does not exist"));
                return Ok(plan);
            }
        }

        match &obs.account {
            None => {
                let mut cmd = String::from("useradd");
                if let Some(u) = uid {
                    cmd.push_str(&format!(" -u {u}"));
                    if non_unique {
                        cmd.push_str(" -o");
                    }
                }
                match &group {
                    Some(g) => cmd.push_str(&format!(" -g {}", sh_quote(g))),
                    // A group named like the user exists: join it rather than fail.
                    None if group_known(&name) => cmd.push_str(&format!(" -g {q}")),
                    None => {}
                }
                if let Some(gs) = groups.as_ref().filter(|g| !g.is_empty()) {
                    cmd.push_str(&format!(" -G {}", sh_quote(&gs.join(","))));
                }
                if let Some(c) = &comment {
                    cmd.push_str(&format!(" -c {}", sh_quote(c)));
                }
                if let Some(h) = &home {
                    cmd.push_str(&format!(" -d {}", sh_quote(h)));
                }
                if let Some(s) = &shell {
                    cmd.push_str(&format!(" -s {}", sh_quote(s)));
                }
                if let Some(p) = &password {
                    cmd.push_str(&format!(" -p {}", sh_quote(p)));
                }
                if system {
                    cmd.push_str(" -r");
                }
                cmd.push_str(if create_home { " -m" } else { " -M" });
                plan.changes.push(Change {
                    summary: format!("create user {name}"),
                    diff: None,
                });
                plan.ops.push(exec(format!("{cmd} {q}")));
                if lock == Some(true) {
                    plan.ops.push(exec(format!("usermod -L {q}")));
                }
            }
            Some(a) => {
                let mut flags: Vec<(String, String)> = Vec::new();
                if let Some(u) = uid {
                    if i64::from(a.uid) != u {
                        flags.push((
                            format!("uid {} -> {u}", a.uid),
                            format!("-u {u}{}", if non_unique { " -o" } else { "" }),
                        ));
                    }
                }
                if let Some(g) = &group {
                    let same = *g == a.primary_group || g.parse::<u32>().ok() == Some(a.gid);
                    if !same {
                        flags.push((
                            format!("group {} -> {g}", a.primary_group),
                            format!("-g {}", sh_quote(g)),
                        ));
                    }
                }
                if let Some(gs) = &groups {
                    let current: Vec<&String> =
                        a.groups.iter().filter(|g| **g != a.primary_group).collect();
                    let wanted: Vec<&String> =
                        gs.iter().filter(|g| **g != a.primary_group).collect();
                    let missing: Vec<&String> = wanted
                        .iter()
                        .copied()
                        .filter(|g| !current.contains(g))
                        .collect();
                    let extra = current.iter().any(|g| !wanted.contains(g));
                    if append && !missing.is_empty() {
                        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                        flags.push((
                            format!("add to groups {}", names.join(",")),
                            format!("-a -G {}", sh_quote(&names.join(","))),
                        ));
                    } else if !append && (!missing.is_empty() || extra) {
                        let names: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
                        flags.push((
                            format!("groups -> {}", names.join(",")),
                            format!("-G {}", sh_quote(&names.join(","))),
                        ));
                    }
                }
                if let Some(c) = comment.as_ref().filter(|c| **c != a.comment) {
                    flags.push((format!("comment -> {c}"), format!("-c {}", sh_quote(c))));
                }
                if let Some(h) = home.as_ref().filter(|h| **h != a.home) {
                    let m = if move_home { " -m" } else { "" };
                    flags.push((
                        format!("home {} -> {h}", a.home),
                        format!("-d {}{m}", sh_quote(h)),
                    ));
                }
                if let Some(s) = shell.as_ref().filter(|s| **s != a.shell) {
                    flags.push((
                        format!("shell {} -> {s}", a.shell),
                        format!("-s {}", sh_quote(s)),
                    ));
                }
                if let Some(p) = password
                    .as_ref()
                    .filter(|p| update_always && **p != a.password)
                {
                    flags.push(("password".to_string(), format!("-p {}", sh_quote(p))));
                }
                match lock {
                    Some(true) if !a.password.starts_with('!') => {
                        flags.push(("lock password".into(), "-L".into()))
                    }
                    Some(false) if a.password.starts_with('!') => {
                        flags.push(("unlock password".into(), "-U".into()))
                    }
                    _ => {}
                }
                if !flags.is_empty() {
                    for (summary, _) in &flags {
                        plan.changes.push(Change {
                            summary: format!("user {name}: {summary}"),
                            diff: None,
                        });
                    }
                    let args: Vec<String> = flags.into_iter().map(|(_, f)| f).collect();
                    plan.ops
                        .push(exec(format!("usermod {} {q}", args.join(" "))));
                }
                result.insert("uid".into(), Value::from(uid.unwrap_or(i64::from(a.uid))));
                result.insert(
                    "home".into(),
                    Value::String(home.clone().unwrap_or_else(|| a.home.clone())),
                );
                result.insert(
                    "shell".into(),
                    Value::String(shell.clone().unwrap_or_else(|| a.shell.clone())),
                );
                result.insert("group".into(), Value::from(a.gid));
            }
        }
        if let Some(gs) = &groups {
            result.insert("groups".into(), Value::String(gs.join(",")));
        }
        result.insert("append".into(), Value::Bool(append));
        result.insert("system".into(), Value::Bool(system));
        result.insert("create_home".into(), Value::Bool(create_home));
        if let Some(c) = comment {
            result.insert("comment".into(), Value::String(c));
        }
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The account both observations describe in these tests.
    fn assert_is_the_app_account(a: &Account) {
        assert_eq!((a.uid, a.gid), (1001, 1001));
        assert_eq!(a.comment, "App user");
        assert_eq!(a.primary_group, "app");
        assert_eq!(a.groups, vec!["app", "sudo", "docker"]);
        assert_eq!(a.password, "$6$salt$hash");
    }

    #[test]
    fn parses_the_observation() {
        let obs = parse(
            "P app:x:1001:1001:App user:/home/app:/bin/bash\nI app sudo docker\nS $6$salt$hash\nG app:x:1001:\nG sudo:x:27:app\nG docker:x:999:app\n",
        );
        assert_is_the_app_account(obs.account.as_ref().unwrap());
        assert_eq!(obs.groups.len(), 3);
    }

    #[test]
    fn a_missing_user_parses_to_none() {
        let obs = parse("G users:x:100:\n");
        assert!(obs.account.is_none());
        assert_eq!(obs.groups, vec![("users".to_string(), 100)]);
    }

    #[test]
    fn the_account_files_answer_as_the_exec_would() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001:App user:/home/app:/bin/bash\n";
        let group = "root:x:0:\nsudo:x:27:ops,app\napp:x:1001:\ndocker:x:999:app\nusers:x:100:\n";
        let shadow = "app:$6$salt$hash:19000:0:99999:7:::\n";
        let named = ["docker".to_string(), "100".to_string()];
        let obs = from_files(passwd, group, shadow, "app", &named).unwrap();
        assert_is_the_app_account(obs.account.as_ref().unwrap());
        assert!(obs.groups.contains(&("users".to_string(), 100)));
        assert!(obs.groups.contains(&("docker".to_string(), 999)));
        // What the files do not list is left to the exec (NSS may know it).
        assert!(from_files(passwd, group, shadow, "ldapuser", &[]).is_none());
        let ldap_group = ["ldapgroup".to_string()];
        assert!(from_files(passwd, group, shadow, "app", &ldap_group).is_none());
    }
}
