//! YAML 1.1 booleans for serde_yaml (a YAML 1.2 parser). Ansible reads YAML with PyYAML,
//! where a plain `yes`, `no`, `on`, `off` (and their `Yes`/`YES` forms) are booleans;
//! serde_yaml reads them as strings. This rewrites such plain scalars at the end of a
//! `key: value` or `- value` line to `true`/`false` before parsing, leaving quoted
//! scalars, block scalars (`|`, `>`) and comments alone. Line numbers do not change.

use std::borrow::Cow;

const TRUE_WORDS: [&str; 6] = ["yes", "Yes", "YES", "on", "On", "ON"];
const FALSE_WORDS: [&str; 6] = ["no", "No", "NO", "off", "Off", "OFF"];

/// `text` with YAML 1.1 boolean words in value position replaced by `true`/`false`.
pub fn yaml11_bools(text: &str) -> Cow<'_, str> {
    if !has_candidate(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    // Indentation of the line that opened a block scalar; deeper lines are its content.
    let mut block_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent = body.len() - body.trim_start().len();
        if let Some(bi) = block_indent {
            if body.trim().is_empty() || indent > bi {
                out.push_str(line);
                continue;
            }
            block_indent = None;
        }
        if opens_block_scalar(body) {
            block_indent = Some(indent);
            out.push_str(line);
            continue;
        }
        out.push_str(&rewrite_line(body));
        out.push_str(ending);
    }
    Cow::Owned(out)
}

fn has_candidate(text: &str) -> bool {
    TRUE_WORDS
        .iter()
        .chain(FALSE_WORDS.iter())
        .any(|w| text.contains(w))
}

/// The value part of a line: after `key: ` or `- `; `None` for other lines.
fn value_start(body: &str) -> Option<usize> {
    let trimmed_start = body.len() - body.trim_start().len();
    let rest = &body[trimmed_start..];
    if rest.starts_with('#') {
        return None;
    }
    if let Some(after_dash) = rest.strip_prefix("- ") {
        let offset = trimmed_start + 2;
        // `- key: value` inside a list item
        return Some(match key_value_split(after_dash) {
            Some(i) => offset + i,
            None => offset,
        });
    }
    key_value_split(rest).map(|i| trimmed_start + i)
}

/// For `key: value`, the index where `value` starts. Keys in quotes are skipped over.
fn key_value_split(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'"') | Some(b'\'')) {
        let q = bytes[0];
        i = 1 + s[1..].find(q as char)? + 1;
    }
    let pos = i + s[i..].find(": ")?;
    let key = &s[..pos];
    if key.contains(['{', '[', '#']) {
        return None;
    }
    let value_offset = pos + 2 + (s[pos + 2..].len() - s[pos + 2..].trim_start().len());
    Some(value_offset)
}

fn split_comment(value: &str) -> (&str, &str) {
    match value.find(" #") {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    }
}

fn rewrite_line(body: &str) -> Cow<'_, str> {
    let Some(start) = value_start(body) else {
        return Cow::Borrowed(body);
    };
    let (value, comment) = split_comment(&body[start..]);
    let word = value.trim_end();
    let replacement = if TRUE_WORDS.contains(&word) {
        "true"
    } else if FALSE_WORDS.contains(&word) {
        "false"
    } else {
        return Cow::Borrowed(body);
    };
    let trailing = &value[word.len()..];
    Cow::Owned(format!(
        "{}{replacement}{trailing}{comment}",
        &body[..start]
    ))
}

fn opens_block_scalar(body: &str) -> bool {
    let Some(start) = value_start(body) else {
        return false;
    };
    let (value, _) = split_comment(&body[start..]);
    let v = value.trim();
    v.starts_with('|') || v.starts_with('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_become_booleans() {
        let src =
            "a: yes\nb: 'yes'\nc: \"no\"\nd: Off # comment\nlist:\n  - on\n  - no way\n  - k: NO\n";
        assert_eq!(
            yaml11_bools(src),
            "a: true\nb: 'yes'\nc: \"no\"\nd: false # comment\nlist:\n  - true\n  - no way\n  - k: false\n"
        );
    }

    #[test]
    fn block_scalars_are_untouched() {
        let src = "script: |\n  enabled: yes\n  - no\nafter: yes\n";
        assert_eq!(
            yaml11_bools(src),
            "script: |\n  enabled: yes\n  - no\nafter: true\n"
        );
    }
}
