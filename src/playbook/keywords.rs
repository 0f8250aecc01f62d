//! The keywords plays, tasks, blocks and role entries accept, the ones we accept but do not
//! act on, the ones we refuse, and "did you mean" suggestions for misspellings.

/// Play keywords we act on.
pub const PLAY: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "roles",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "become",
    "become_user",
    "become_method",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "serial",
    "strategy",
    "any_errors_fatal",
    "max_fail_percentage",
    "tags",
    "check_mode",
    "diff",
    "remote_user",
    "connection",
    "port",
    "environment",
    "ignore_errors",
    "no_log",
    "run_once",
    "vars_prompt",
];

/// Play keywords Ansible accepts that change nothing for us.
pub const PLAY_IGNORED: &[&str] = &[
    "collections",
    "order",
    "force_handlers",
    "debugger",
    "throttle",
    "timeout",
    "become_flags",
    "become_exe",
    "ignore_unreachable",
];

/// Play keywords Ansible accepts that we refuse, with the reason.
pub const PLAY_UNSUPPORTED: &[&str] = &["module_defaults", "async", "poll"];

/// Keywords of any task (module call, include, block member).
pub const TASK: &[&str] = &[
    "name",
    "args",
    "action",
    "local_action",
    "when",
    "loop",
    "with_items",
    "with_list",
    "with_dict",
    "loop_control",
    "register",
    "notify",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "tags",
    "become",
    "become_user",
    "become_method",
    "no_log",
    "check_mode",
    "diff",
    "run_once",
    "any_errors_fatal",
    "delegate_to",
    "delegate_facts",
    "environment",
    "until",
    "retries",
    "delay",
    "vars",
    "remote_user",
    "connection",
    "port",
];

/// Task keywords Ansible accepts that change nothing for us.
pub const TASK_IGNORED: &[&str] = &[
    "collections",
    "debugger",
    "throttle",
    "timeout",
    "ignore_unreachable",
    "become_flags",
    "become_exe",
];

/// Task keywords Ansible accepts that we refuse.
pub const TASK_UNSUPPORTED: &[&str] = &["module_defaults", "async", "poll"];

/// Only handlers take these.
pub const HANDLER_ONLY: &[&str] = &["listen"];

/// Keywords that make a task a block.
pub const BLOCK_PARTS: &[&str] = &["block", "rescue", "always"];

/// Task keywords a block does not take (they only make sense on one action).
pub const NOT_ON_BLOCK: &[&str] = &[
    "args",
    "action",
    "local_action",
    "loop",
    "with_items",
    "with_list",
    "with_dict",
    "with_lookup",
    "loop_control",
    "register",
    "notify",
    "changed_when",
    "failed_when",
    "until",
    "retries",
    "delay",
    "listen",
];

/// Actions the engine carries out itself; they are not modules.
pub const ENGINE_ACTIONS: &[&str] = &[
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "meta",
    "include_vars",
];

/// `meta:` actions Ansible knows.
pub const META_ACTIONS: &[&str] = &[
    "flush_handlers",
    "noop",
    "end_play",
    "end_host",
    "end_batch",
    "end_role",
    "clear_facts",
    "clear_host_errors",
    "refresh_inventory",
    "reset_connection",
    "role_complete",
];

/// Collection prefixes removed from module names (`ansible.builtin.copy` -> `copy`).
pub const MODULE_PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// Removes a known collection prefix from an action name.
pub fn short_name(name: &str) -> &str {
    MODULE_PREFIXES
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name)
}

/// How alike two names are (0..1): Jaro-Winkler, raised for one-edit typos (`mgs`/`msg`)
/// that it scores low on short words.
pub fn similarity(a: &str, b: &str) -> f64 {
    let jw = strsim::jaro_winkler(a, b);
    let short = a.chars().count().min(b.chars().count());
    if short >= 3 && strsim::damerau_levenshtein(a, b) <= 1 {
        jw.max(0.9)
    } else {
        jw
    }
}

/// The most similar candidate and its similarity, if it is similar enough to be a typo.
pub fn best_match<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a str, f64)> {
    let mut best: Option<(&str, f64)> = None;
    for candidate in candidates {
        let score = similarity(word, candidate);
        if score >= 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best
}

/// The most similar candidate, if it is similar enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    best_match(word, candidates).map(|(c, _)| c)
}

/// `", did you mean 'x'?"` or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match suggest(word, candidates) {
        Some(s) => format!(", did you mean '{s}'?"),
        None => String::new(),
    }
}

/// Where the `remote_user`, `connection` and `port` keywords of a play, block or task go:
/// variables of the scope (so a task's keyword beats its play's), under names of their own,
/// because Ansible's connection variables (`ansible_user`, `ansible_connection`,
/// `ansible_port`, from the inventory say) beat these keywords at any level. The engine
/// reads each as the fallback of its variable.
pub const REMOTE_USER_VAR: &str = "infra_keyword_remote_user";
pub const CONNECTION_VAR: &str = "infra_keyword_connection";
pub const PORT_VAR: &str = "infra_keyword_port";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_name("ansible.builtin.copy"), "copy");
        assert_eq!(short_name("ansible.legacy.shell"), "shell");
        assert_eq!(short_name("copy"), "copy");
        assert_eq!(short_name("other.ns.copy"), "other.ns.copy");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("whne", TASK.iter().copied()), Some("when"));
        assert_eq!(suggest("notfy", TASK.iter().copied()), Some("notify"));
        assert_eq!(suggest("zzzzzz", TASK.iter().copied()), None);
        assert_eq!(suggest("mgs", ["msg", "var"]), Some("msg"));
        assert_eq!(
            did_you_mean("hots", PLAY.iter().copied()),
            ", did you mean 'hosts'?"
        );
    }
}
