//! Reading a template's source the way Jinja's lexer splits it, for two jobs minijinja
//! cannot do for us: telling whether a string is one lone `{{ expression }}` (whose value
//! keeps its type) when the expression itself holds `}}` (`{{ {'a': {'b': 1}} }}`), and
//! Ansible's backslash rule for templates written in playbooks.
//!
//! The backslash rule (ansible-core's `AnsibleLexer`): a playbook string is unescaped by
//! YAML first, so a string literal inside `{{ }}` is taken as written, with no second
//! round of escapes. `"{{ x | regex_replace('(a)', '\\1') }}"` in double-quoted YAML
//! reaches the template as `'\1'` and means the backreference `\1`, not the byte 0x01.
//! `{% %}` statements, template files, the `template` lookup and conditionals keep Jinja's
//! escapes, as in Ansible.

use std::borrow::Cow;

/// The index just past the `}}` that closes the expression starting at `start` (just
/// after its `{{`): the first `}}` outside string literals and brackets.
pub fn expression_end(src: &str, start: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => i = string_end(bytes, i, q)?,
            b'{' | b'[' | b'(' => depth += 1,
            b'}' if depth == 0 && bytes.get(i + 1) == Some(&b'}') => return Some(i + 2),
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote closing the string literal that opens at `open` (a backslash
/// takes the next character with it, as in Jinja's string rule).
fn string_end(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The expression of a string that is exactly one `{{ ... }}` (whitespace control marks
/// removed), or `None`.
pub fn single_expression(s: &str) -> Option<&str> {
    if !s.starts_with("{{") || expression_end(s, 2)? != s.len() {
        return None;
    }
    let inner = &s[2..s.len() - 2];
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    Some(inner.trim())
}

/// `src` with Ansible's backslash rule applied to the string literals of its `{{ }}`
/// expressions (see the module's doc). Sources without a backslash come back as they are.
pub fn escape_backslashes(src: &str) -> Cow<'_, str> {
    if !src.contains('\\') {
        return Cow::Borrowed(src);
    }
    let bytes = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 8);
    let mut copied = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'{', b'{') => {
                let Some(end) = expression_end(src, i + 2) else {
                    break;
                };
                out.push_str(&src[copied..i + 2]);
                out.push_str(&literals_as_written(&src[i + 2..end - 2]));
                out.push_str("}}");
                copied = end;
                i = end;
            }
            (b'{', b'%') => {
                // A statement, and a raw block whole: nothing in them changes.
                let Some(close) = statement_end(src, i + 2) else {
                    break;
                };
                i = if is_raw_open(&src[i + 2..close - 2]) {
                    match src[close..].find("endraw") {
                        Some(at) => statement_end(src, close + at).unwrap_or(src.len()),
                        None => src.len(),
                    }
                } else {
                    close
                };
            }
            (b'{', b'#') => {
                i = src[i + 2..]
                    .find("#}")
                    .map_or(src.len(), |at| i + 2 + at + 2);
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(src);
    }
    out.push_str(&src[copied..]);
    Cow::Owned(out)
}

/// The index just past the `%}` closing a statement opened before `start`.
fn statement_end(src: &str, start: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = start;
    while i + 1 < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => i = string_end(bytes, i, q)? + 1,
            b'%' if bytes[i + 1] == b'}' => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

fn is_raw_open(statement: &str) -> bool {
    statement.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
}

/// An expression with each string literal rewritten so that Jinja reads it as written:
/// every backslash kept, the quote it escaped kept with it (Ansible's backslash rule for
/// a lone `{{ expression }}` of a playbook string).
pub fn literals_as_written(expr: &str) -> Cow<'_, str> {
    if !expr.contains('\\') {
        return Cow::Borrowed(expr);
    }
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 8);
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let q = bytes[i];
        if q != b'\'' && q != b'"' {
            i += 1;
            continue;
        }
        let Some(close) = string_end(bytes, i, q) else {
            break;
        };
        let raw = &expr[i + 1..close];
        if raw.contains('\\') {
            out.push_str(&expr[copied..=i]);
            for c in raw.chars() {
                if c == '\\' {
                    out.push_str("\\\\");
                } else if c == char::from(q) {
                    out.push('\\');
                    out.push(c);
                } else {
                    out.push(c);
                }
            }
            out.push(char::from(q));
            copied = close + 1;
        }
        i = close + 1;
    }
    if copied == 0 {
        return Cow::Borrowed(expr);
    }
    out.push_str(&expr[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_expression_may_hold_braces() {
        assert_eq!(
            single_expression("{{ {'a': {'b': 'c'}} | dict2items }}"),
            Some("{'a': {'b': 'c'}} | dict2items")
        );
        assert_eq!(single_expression("{{ '}}' }}"), Some("'}}'"));
        assert_eq!(single_expression("{{ a }} and {{ b }}"), None);
        assert_eq!(single_expression("{{- a -}}"), Some("a"));
        assert_eq!(single_expression("x {{ a }}"), None);
    }

    #[test]
    fn literals_in_expressions_keep_their_backslashes() {
        assert_eq!(
            escape_backslashes(r"{{ x | regex_replace('(a)', '\1') }}"),
            r"{{ x | regex_replace('(a)', '\\1') }}"
        );
        // An escaped quote stays as written too: the value is `it\'s`.
        assert_eq!(escape_backslashes(r"{{ 'it\'s' }}"), r"{{ 'it\\\'s' }}");
        // Outside expressions, in statements, raw blocks and comments: unchanged.
        for same in [
            r"a\1 {{ x }}",
            r"{% set y = '\1' %}{{ y }}",
            r"{% raw %}{{ '\1' }}{% endraw %}",
            r"{# '\1' #}",
        ] {
            assert_eq!(escape_backslashes(same), same);
        }
        assert_eq!(
            escape_backslashes(r"{% if a %}{{ '\d' }}{% endif %}"),
            r"{% if a %}{{ '\\d' }}{% endif %}"
        );
    }
}
