//! Text diffs for `--diff`: before/after content with Ansible's headers
//! (`before: /etc/motd`, `after: /path/to/motd.j2`). Binary or huge content gets no diff,
//! only the change's summary. [`crate::report::diff`] renders them.

use super::TextDiff;

/// Ansible's `max_diff_size`: larger files are summarised, not diffed.
pub const MAX_DIFF_BYTES: usize = 104_448;

/// Is this content text we can show (UTF-8, no NUL, not huge)?
pub fn showable(content: &[u8]) -> bool {
    content.len() <= MAX_DIFF_BYTES && !content.contains(&0) && std::str::from_utf8(content).is_ok()
}

/// A diff of a file's content, or `None` when either side is binary or huge.
pub fn file_diff(path: &str, after_header: &str, before: &[u8], after: &[u8]) -> Option<TextDiff> {
    if !showable(before) || !showable(after) {
        return None;
    }
    Some(TextDiff {
        before_header: format!("before: {path}"),
        after_header: format!("after: {after_header}"),
        before: String::from_utf8_lossy(before).into_owned(),
        after: String::from_utf8_lossy(after).into_owned(),
    })
}

/// A diff of a small piece of state (a line in a state file, a unit's state).
pub fn state_diff(path: &str, before: String, after: String) -> TextDiff {
    TextDiff {
        before_header: format!("before: {path}"),
        after_header: format!("after: {path}"),
        before,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_get_a_unified_diff_with_ansible_headers() {
        let d = file_diff("/etc/motd", "dynamically generated", b"a\nb\n", b"a\nc\n").unwrap();
        // Rendered by crate::report::diff::unified.
        assert_eq!(
            d,
            TextDiff {
                before_header: "before: /etc/motd".into(),
                after_header: "after: dynamically generated".into(),
                before: "a\nb\n".into(),
                after: "a\nc\n".into(),
            }
        );
    }

    #[test]
    fn binary_and_huge_content_is_summarised() {
        assert!(file_diff("/x", "/y", b"\0\x01", b"a").is_none());
        assert!(file_diff("/x", "/y", b"", &[0xff, 0xfe]).is_none());
        let big = vec![b'a'; MAX_DIFF_BYTES + 1];
        assert!(file_diff("/x", "/y", b"", &big).is_none());
    }
}
