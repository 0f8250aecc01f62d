//! Unified diffs for `--diff`, rendered with `similar`, colored like Ansible's
//! (red removals, green additions, cyan hunk headers) when colors are on.

use similar::TextDiff as SimilarDiff;

use super::{paint, Color};

/// A text diff for `--diff`: what a file (or other text state) was and will be. Modules
/// put them in their plans; the report renders them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TextDiff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

/// What `--diff` and `-v` show instead of text that contains a value from a vault.
pub const VAULT_HIDDEN: &str = "(content hidden: it contains vaulted values)";

/// Diffs as they may be shown: one whose before or after contains a value that came out
/// of a vault keeps its headers (so the user sees that the file changes) but both sides
/// are replaced, so `--diff` says a secret changed without printing it.
pub fn hide_vaulted(diffs: Vec<TextDiff>) -> Vec<TextDiff> {
    diffs
        .into_iter()
        .map(|d| {
            if d.before != d.after
                && (crate::vault::contains_secret(&d.before)
                    || crate::vault::contains_secret(&d.after))
            {
                // An empty side (a file created or removed) stays empty: it says nothing.
                let hide = |side: &str, text: &str| match text.is_empty() {
                    true => String::new(),
                    false => format!("{side}: {VAULT_HIDDEN}\n"),
                };
                TextDiff {
                    before: hide("before", &d.before),
                    after: hide("after", &d.after),
                    ..d
                }
            } else {
                d
            }
        })
        .collect()
}

/// Change summaries (`-v`) as they may be shown: one naming a vaulted value is replaced.
pub fn hide_vaulted_changes(changes: Vec<String>) -> Vec<String> {
    changes
        .into_iter()
        .map(|c| {
            if crate::vault::contains_secret(&c) {
                format!("a change {VAULT_HIDDEN}")
            } else {
                c
            }
        })
        .collect()
}

/// A unified diff with three lines of context; empty when before and after are equal.
pub fn unified(diff: &TextDiff, color: bool) -> String {
    if diff.before == diff.after {
        return String::new();
    }
    let text = SimilarDiff::from_lines(&diff.before, &diff.after);
    let rendered = text
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .header(&diff.before_header, &diff.after_header)
        .to_string();
    if !color {
        return rendered;
    }
    let mut out = String::with_capacity(rendered.len() + 64);
    for line in rendered.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let painted = if body.starts_with("+++") || body.starts_with("---") {
            body.to_string()
        } else if body.starts_with('+') {
            paint(body, Color::Green, true)
        } else if body.starts_with('-') {
            paint(body, Color::Red, true)
        } else if body.starts_with("@@") {
            paint(body, Color::Cyan, true)
        } else {
            body.to_string()
        };
        out.push_str(&painted);
        out.push_str(nl);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(before: &str, after: &str) -> TextDiff {
        TextDiff {
            before_header: "before: /etc/x".into(),
            after_header: "after: /etc/x".into(),
            before: before.into(),
            after: after.into(),
        }
    }

    #[test]
    fn plain_unified_diff() {
        let out = unified(&d("a\nb\n", "a\nc\n"), false);
        assert_eq!(
            out,
            "--- before: /etc/x\n+++ after: /etc/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
        );
    }

    #[test]
    fn equal_texts_give_nothing() {
        assert_eq!(unified(&d("a\n", "a\n"), true), "");
    }

    #[test]
    fn colored_lines() {
        let out = unified(&d("a\n", "b\n"), true);
        assert!(out.contains("\x1b[0;31m-a\x1b[0m\n"));
        assert!(out.contains("\x1b[0;32m+b\x1b[0m\n"));
        assert!(out.contains("\x1b[0;36m@@ -1 +1 @@\x1b[0m\n"));
    }

    #[test]
    fn diffs_with_vaulted_values_show_that_they_change_not_what() {
        crate::vault::remember("diff-vaulted-secret");
        let shown = hide_vaulted(vec![d("a\n", "pw=diff-vaulted-secret\n"), d("x\n", "y\n")]);
        let text = unified(&shown[0], false);
        assert!(!text.contains("diff-vaulted-secret"), "{text}");
        assert!(text.contains(VAULT_HIDDEN), "{text}");
        assert_eq!(shown[1], d("x\n", "y\n"));
        let changes = hide_vaulted_changes(vec!["set diff-vaulted-secret".into(), "ok".into()]);
        assert!(!changes[0].contains("diff-vaulted-secret"));
        assert_eq!(changes[1], "ok");
    }
}
