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
}
