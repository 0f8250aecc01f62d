//! Tag selection (`--tags`, `--skip-tags`) with Ansible's special tags: `always` runs unless
//! skipped by name, `never` runs only when asked for by one of its other tags or `never`,
//! `tagged` and `untagged` select by having tags at all, `all` is the default selection.

/// Whether a task with these (inherited and own) tags runs.
pub fn should_run(task_tags: &[String], only: &[String], skip: &[String]) -> bool {
    let has = |t: &str| task_tags.iter().any(|x| x == t);
    let asked = |list: &[String], t: &str| list.iter().any(|x| x == t);
    let intersects = |list: &[String]| task_tags.iter().any(|t| asked(list, t));

    let only_default = ["all".to_string()];
    let only = if only.is_empty() {
        &only_default[..]
    } else {
        only
    };
    let run = has("always")
        || intersects(only)
        || (asked(only, "all") && !has("never"))
        || (asked(only, "tagged") && !task_tags.is_empty() && !has("never"))
        || (asked(only, "untagged") && task_tags.is_empty());
    if !run {
        return false;
    }
    if skip.is_empty() {
        return true;
    }
    if asked(skip, "all") {
        return has("always") && !asked(skip, "always");
    }
    if intersects(skip) {
        return false;
    }
    if asked(skip, "tagged") && !task_tags.is_empty() {
        return false;
    }
    !(asked(skip, "untagged") && task_tags.is_empty())
}

#[cfg(test)]
mod tests {
    use super::should_run;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_selection_runs_everything_but_never() {
        assert!(should_run(&v(&[]), &[], &[]));
        assert!(should_run(&v(&["a"]), &[], &[]));
        assert!(should_run(&v(&["always"]), &[], &[]));
        assert!(!should_run(&v(&["never"]), &[], &[]));
        assert!(!should_run(&v(&["never", "debug"]), &[], &[]));
    }

    #[test]
    fn tags_select_by_intersection_and_always() {
        let only = v(&["web"]);
        assert!(should_run(&v(&["web", "x"]), &only, &[]));
        assert!(!should_run(&v(&["db"]), &only, &[]));
        assert!(!should_run(&v(&[]), &only, &[]));
        assert!(should_run(&v(&["always"]), &only, &[]));
        assert!(should_run(&v(&["never", "web"]), &only, &[]));
    }

    #[test]
    fn tagged_and_untagged() {
        assert!(should_run(&v(&["a"]), &v(&["tagged"]), &[]));
        assert!(!should_run(&v(&[]), &v(&["tagged"]), &[]));
        assert!(should_run(&v(&[]), &v(&["untagged"]), &[]));
        assert!(!should_run(&v(&["a"]), &v(&["untagged"]), &[]));
        assert!(!should_run(&v(&["a"]), &[], &v(&["tagged"])));
        assert!(should_run(&v(&[]), &[], &v(&["tagged"])));
        assert!(!should_run(&v(&[]), &[], &v(&["untagged"])));
    }

    #[test]
    fn skip_tags_win_except_always() {
        assert!(!should_run(&v(&["a"]), &[], &v(&["a"])));
        assert!(should_run(&v(&["b"]), &[], &v(&["a"])));
        assert!(!should_run(&v(&["a"]), &v(&["a"]), &v(&["a"])));
        assert!(should_run(&v(&["always"]), &[], &v(&["all"])));
        assert!(!should_run(&v(&["always"]), &[], &v(&["always"])));
        assert!(!should_run(&v(&["x"]), &[], &v(&["all"])));
    }
}
