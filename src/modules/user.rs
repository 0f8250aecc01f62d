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
    /// The groups whose member list names the user. As in Ansible, this is what
    /// `groups` is compared with: the primary group counts only when it lists the user.
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

/// Observes with one exec (NSS-aware: `getent`).
async fn observe_exec(ctx: &HostCtx, name: &str, named: &[String]) -> anyhow::Result<Observed> {
    let q = sh_quote(name);
    let mut script = format!(
        "e=$(getent passwd {q}) && {{ echo \"P $e\"; printf 'I '; getent group | awk -F: -v u={q} \
         '{{n = split($4, m, \",\"); for (i = 1; i <= n; i++) if (m[i] == u) printf \"%s \", $1}}'; echo; \
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
/// when they cannot answer and the exec must: under a `become` that escalates (reads
/// would go through sudo anyway), a file that cannot be read, or a user or named group the files do not list
/// (it may come from NSS).
async fn observe_files(
    ctx: &HostCtx,
    name: &str,
    named: &[String],
    shadow: bool,
) -> Option<Observed> {
    if ctx.escalates() {
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
/// when the user or a named group is not in them. Groups are those whose member list
/// names the user.
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

/// The task's arguments, checked.
#[derive(Debug, Clone, Default)]
pub struct UserArgs {
    pub name: String,
    pub present: bool,
    pub uid: Option<i64>,
    pub group: Option<String>,
    /// `None`: the task does not manage supplementary groups.
    pub groups: Option<Vec<String>>,
    pub append: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub create_home: bool,
    pub move_home: bool,
    pub system: bool,
    pub password: Option<String>,
    /// `update_password: always` (the default) rather than `on_create`.
    pub update_always: bool,
    pub comment: Option<String>,
    pub remove: bool,
    pub force: bool,
    pub non_unique: bool,
    pub lock: Option<bool>,
}

impl UserArgs {
    pub fn parse(args: &Vars) -> anyhow::Result<UserArgs> {
        let name = str_req(args, &["name"])?;
        if name.is_empty() || name.contains([':', ' ', '/']) {
            anyhow::bail!("argument name: {name:?} is not a valid user name");
        }
        Ok(UserArgs {
            name,
            present: choice(args, &["state"], &["present", "absent"], "present")? == "present",
            uid: int_opt(args, &["uid"])?,
            group: str_opt(args, &["group"])?,
            groups: match args.get("groups") {
                None | Some(Value::Null) => None,
                Some(_) => Some(list(args, &["groups"])?),
            },
            append: bool_arg(args, &["append"], false)?,
            shell: str_opt(args, &["shell"])?,
            home: str_opt(args, &["home"])?,
            create_home: bool_arg(args, &["create_home"], true)?,
            move_home: bool_arg(args, &["move_home"], false)?,
            system: bool_arg(args, &["system"], false)?,
            password: str_opt(args, &["password"])?,
            update_always: choice(
                args,
                &["update_password"],
                &["always", "on_create"],
                "always",
            )? == "always",
            comment: str_opt(args, &["comment"])?,
            remove: bool_arg(args, &["remove"], false)?,
            force: bool_arg(args, &["force"], false)?,
            non_unique: bool_arg(args, &["non_unique"], false)?,
            lock: bool_opt(args, &["password_lock"])?,
        })
    }

    /// Every group the task names (the primary one defaults to the user's name), so one
    /// observation answers whether they exist.
    fn named_groups(&self) -> Vec<String> {
        let mut named = self.groups.clone().unwrap_or_default();
        named.push(self.group.clone().unwrap_or_else(|| self.name.clone()));
        named
    }
}

/// Observes the account and the named groups: from the account files when they can
/// answer, else with one exec.
async fn observe(ctx: &HostCtx, a: &UserArgs) -> anyhow::Result<Observed> {
    let named = a.named_groups();
    let wants_shadow = a.password.is_some() || a.lock.is_some();
    match observe_files(ctx, &a.name, &named, wants_shadow).await {
        Some(obs) => Ok(obs),
        None => observe_exec(ctx, &a.name, &named).await,
    }
}

impl Observed {
    /// Whether a group exists, by name or gid.
    fn knows_group(&self, g: &str) -> bool {
        self.groups
            .iter()
            .any(|(n, gid)| n == g || g.parse::<u32>().ok() == Some(*gid))
    }
}

/// The plan: pure, from the arguments and what the host has.
pub fn plan_user(a: &UserArgs, obs: &Observed) -> Plan {
    let mut plan = Plan::default();
    let state = if a.present { "present" } else { "absent" };
    let mut result = super::args::vars([
        ("name", Value::String(a.name.clone())),
        ("state", Value::String(state.into())),
    ]);
    if !a.present {
        if obs.account.is_some() {
            plan.changes.push(change(format!("remove user {}", a.name)));
            plan.ops.push(exec(userdel_command(a)));
        }
        plan.result = result;
        return plan;
    }
    let wanted_groups = a.group.iter().chain(a.groups.iter().flatten());
    if let Some(missing) = wanted_groups.into_iter().find(|g| !obs.knows_group(g)) {
        plan.failed = Some(format!("Group {missing} does not exist"));
        return plan;
    }
    match &obs.account {
        None => {
            plan.changes.push(change(format!("create user {}", a.name)));
            plan.ops.push(exec(useradd_command(a, obs)));
            if a.lock == Some(true) {
                plan.ops
                    .push(exec(format!("usermod -L {}", sh_quote(&a.name))));
            }
        }
        Some(account) => {
            let flags = usermod_flags(a, account);
            if !flags.is_empty() {
                for (summary, _) in &flags {
                    plan.changes
                        .push(change(format!("user {}: {summary}", a.name)));
                }
                let args: Vec<String> = flags.into_iter().map(|(_, f)| f).collect();
                plan.ops.push(exec(format!(
                    "usermod {} {}",
                    args.join(" "),
                    sh_quote(&a.name)
                )));
            }
            let uid = a.uid.unwrap_or(i64::from(account.uid));
            result.insert("uid".into(), Value::from(uid));
            let home = a.home.clone().unwrap_or_else(|| account.home.clone());
            result.insert("home".into(), Value::String(home));
            let shell = a.shell.clone().unwrap_or_else(|| account.shell.clone());
            result.insert("shell".into(), Value::String(shell));
            result.insert("group".into(), Value::from(account.gid));
        }
    }
    if let Some(gs) = &a.groups {
        result.insert("groups".into(), Value::String(gs.join(",")));
    }
    result.insert("append".into(), Value::Bool(a.append));
    result.insert("system".into(), Value::Bool(a.system));
    result.insert("create_home".into(), Value::Bool(a.create_home));
    if let Some(c) = &a.comment {
        result.insert("comment".into(), Value::String(c.clone()));
    }
    plan.result = result;
    plan
}

fn change(summary: String) -> Change {
    Change {
        summary,
        diff: None,
    }
}

fn userdel_command(a: &UserArgs) -> String {
    let mut cmd = String::from("userdel");
    if a.remove {
        cmd.push_str(" -r");
    }
    if a.force {
        cmd.push_str(" -f");
    }
    format!("{cmd} {}", sh_quote(&a.name))
}

fn useradd_command(a: &UserArgs, obs: &Observed) -> String {
    let mut cmd = String::from("useradd");
    if let Some(u) = a.uid {
        cmd.push_str(&format!(" -u {u}"));
        if a.non_unique {
            cmd.push_str(" -o");
        }
    }
    match &a.group {
        Some(g) => cmd.push_str(&format!(" -g {}", sh_quote(g))),
        // A group named like the user exists: join it rather than fail.
        None if obs.knows_group(&a.name) => cmd.push_str(&format!(" -g {}", sh_quote(&a.name))),
        None => {}
    }
    if let Some(gs) = a.groups.as_ref().filter(|g| !g.is_empty()) {
        cmd.push_str(&format!(" -G {}", sh_quote(&gs.join(","))));
    }
    if let Some(c) = &a.comment {
        cmd.push_str(&format!(" -c {}", sh_quote(c)));
    }
    if let Some(h) = &a.home {
        cmd.push_str(&format!(" -d {}", sh_quote(h)));
    }
    if let Some(s) = &a.shell {
        cmd.push_str(&format!(" -s {}", sh_quote(s)));
    }
    if let Some(p) = &a.password {
        cmd.push_str(&format!(" -p {}", sh_quote(p)));
    }
    if a.system {
        cmd.push_str(" -r");
    }
    cmd.push_str(if a.create_home { " -m" } else { " -M" });
    format!("{cmd} {}", sh_quote(&a.name))
}

/// What differs on an existing account: (summary, usermod flag) pairs.
fn usermod_flags(a: &UserArgs, account: &Account) -> Vec<(String, String)> {
    let mut flags: Vec<(String, String)> = Vec::new();
    if let Some(u) = a.uid.filter(|u| *u != i64::from(account.uid)) {
        let o = if a.non_unique { " -o" } else { "" };
        flags.push((format!("uid {} -> {u}", account.uid), format!("-u {u}{o}")));
    }
    if let Some(g) = &a.group {
        let same = *g == account.primary_group || g.parse::<u32>().ok() == Some(account.gid);
        if !same {
            flags.push((
                format!("group {} -> {g}", account.primary_group),
                format!("-g {}", sh_quote(g)),
            ));
        }
    }
    if let Some(gs) = &a.groups {
        flags.extend(groups_flag(a.append, gs, account));
    }
    if let Some(c) = a.comment.as_ref().filter(|c| **c != account.comment) {
        flags.push((format!("comment -> {c}"), format!("-c {}", sh_quote(c))));
    }
    if let Some(h) = a.home.as_ref().filter(|h| **h != account.home) {
        let m = if a.move_home { " -m" } else { "" };
        flags.push((
            format!("home {} -> {h}", account.home),
            format!("-d {}{m}", sh_quote(h)),
        ));
    }
    if let Some(s) = a.shell.as_ref().filter(|s| **s != account.shell) {
        flags.push((
            format!("shell {} -> {s}", account.shell),
            format!("-s {}", sh_quote(s)),
        ));
    }
    let new_password = a
        .password
        .as_ref()
        .filter(|p| a.update_always && **p != account.password);
    if let Some(p) = new_password {
        flags.push(("password".to_string(), format!("-p {}", sh_quote(p))));
    }
    let locked = account.password.starts_with('!');
    match a.lock {
        Some(true) if !locked => flags.push(("lock password".into(), "-L".into())),
        Some(false) if locked => flags.push(("unlock password".into(), "-U".into())),
        _ => {}
    }
    flags
}

/// Supplementary groups, compared with the groups that list the user as a member (as
/// Ansible does, so a primary group named in `groups` is added to its member list too):
/// with `append`, only the missing ones are added; without, the list must be exactly the
/// wanted one.
fn groups_flag(append: bool, wanted: &[String], account: &Account) -> Option<(String, String)> {
    let current: Vec<&String> = account.groups.iter().collect();
    let wanted: Vec<&String> = wanted.iter().collect();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|g| !current.contains(g))
        .map(|g| g.as_str())
        .collect();
    let extra = current.iter().any(|g| !wanted.contains(g));
    if append && !missing.is_empty() {
        let names = missing.join(",");
        Some((
            format!("add to groups {names}"),
            format!("-a -G {}", sh_quote(&names)),
        ))
    } else if !append && (!missing.is_empty() || extra) {
        let names: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
        let names = names.join(",");
        Some((
            format!("groups -> {names}"),
            format!("-G {}", sh_quote(&names)),
        ))
    } else {
        None
    }
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
        let args = UserArgs::parse(args)?;
        let observed = observe(ctx, &args).await?;
        Ok(plan_user(&args, &observed))
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
        assert_eq!(a.groups, vec!["sudo", "docker"]);
        assert_eq!(a.password, "$6$salt$hash");
    }

    #[test]
    fn parses_the_observation() {
        let obs = parse(
            "P app:x:1001:1001:App user:/home/app:/bin/bash\nI sudo docker \nS $6$salt$hash\nG app:x:1001:\nG sudo:x:27:app\nG docker:x:999:app\n",
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

    fn app_account() -> Observed {
        parse(
            "P app:x:1001:1001:App user:/home/app:/bin/bash\nI sudo docker \nS $6$salt$hash\nG app:x:1001:\nG sudo:x:27:app\nG docker:x:999:app\n",
        )
    }

    fn args(name: &str) -> UserArgs {
        UserArgs {
            name: name.into(),
            present: true,
            create_home: true,
            update_always: true,
            ..Default::default()
        }
    }

    fn commands(plan: &Plan) -> Vec<String> {
        plan.ops
            .iter()
            .map(|op| match op {
                super::super::Op::Exec { cmd, .. } => cmd.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_new_user_is_created_with_every_given_field() {
        let mut a = args("web");
        a.uid = Some(2000);
        a.groups = Some(vec!["sudo".into()]);
        a.shell = Some("/bin/sh".into());
        a.system = true;
        let obs = parse("G sudo:x:27:\nG web:x:2000:\n");
        let plan = plan_user(&a, &obs);
        assert!(plan.failed.is_none());
        assert_eq!(plan.changes[0].summary, "create user web");
        assert_eq!(
            commands(&plan),
            vec!["useradd -u 2000 -g web -G sudo -s /bin/sh -r -m web"]
        );
    }

    #[test]
    fn an_unchanged_account_plans_nothing() {
        let mut a = args("app");
        a.groups = Some(vec!["sudo".into(), "docker".into()]);
        a.shell = Some("/bin/bash".into());
        a.comment = Some("App user".into());
        let plan = plan_user(&a, &app_account());
        assert!(plan.changes.is_empty() && plan.ops.is_empty(), "{plan:?}");
        assert_eq!(plan.result["uid"], 1001);
    }

    #[test]
    fn groups_are_appended_or_replaced() {
        let obs = parse(
            "P app:x:1001:1001::/home/app:/bin/bash\nI sudo\nG app:x:1001:\nG sudo:x:27:app\nG docker:x:999:\n",
        );
        let mut a = args("app");
        a.groups = Some(vec!["docker".into()]);
        a.append = true;
        assert_eq!(
            commands(&plan_user(&a, &obs)),
            vec!["usermod -a -G docker app"]
        );
        a.append = false;
        let plan = plan_user(&a, &obs);
        assert_eq!(commands(&plan), vec!["usermod -G docker app"]);
        assert_eq!(plan.changes[0].summary, "user app: groups -> docker");
    }

    /// Ansible compares `groups` with member lists only: the primary group named there is
    /// added to its member list, then nothing changes.
    #[test]
    fn a_primary_group_in_groups_joins_its_member_list() {
        let obs = parse("P app:x:1001:1001::/home/app:/bin/bash\nI \nG app:x:1001:\n");
        let mut a = args("app");
        a.groups = Some(vec!["app".into()]);
        assert_eq!(commands(&plan_user(&a, &obs)), vec!["usermod -G app app"]);
        let member = parse("P app:x:1001:1001::/home/app:/bin/bash\nI app \nG app:x:1001:app\n");
        assert!(plan_user(&a, &member).ops.is_empty());
    }

    #[test]
    fn a_missing_group_fails_without_changes() {
        let mut a = args("app");
        a.groups = Some(vec!["nosuch".into()]);
        let plan = plan_user(&a, &app_account());
        assert_eq!(plan.failed.as_deref(), Some("Group nosuch does not exist"));
        assert!(plan.ops.is_empty());
    }

    #[test]
    fn absent_removes_only_an_existing_account() {
        let mut a = args("app");
        a.present = false;
        a.remove = true;
        assert_eq!(
            commands(&plan_user(&a, &app_account())),
            vec!["userdel -r app"]
        );
        assert!(plan_user(&a, &Observed::default()).ops.is_empty());
    }

    #[test]
    fn password_lock_and_on_create() {
        let mut a = args("app");
        a.password = Some("$6$other$hash".into());
        a.update_always = false;
        a.lock = Some(true);
        let plan = plan_user(&a, &app_account());
        assert_eq!(commands(&plan), vec!["usermod -L app"]);
    }
}
