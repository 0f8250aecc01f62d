//! Reading a template's source the way Jinja's lexer splits it, for three jobs minijinja
//! cannot do for us: telling whether a string is one lone `{{ expression }}` (whose value
//! keeps its type) when the expression itself holds `}}` (`{{ {'a': {'b': 1}} }}`),
//! Ansible's backslash rule for templates written in playbooks, and Python's `%` string
//! formatting (`'%s:%d' % (host, port)`), which Jinja inherits from Python and minijinja
//! has not: a string literal `%` an operand becomes `('...' | format(...))`.
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

/// `src` with every `'literal' % operand` of its expressions and statements rewritten to
/// the `format` filter (see the module's doc). Sources without one come back as they are.
pub fn python_percent(src: &str) -> Cow<'_, str> {
    if !src.contains('%') || !(src.contains("{{") || src.contains("{%")) {
        return Cow::Borrowed(src);
    }
    let bytes = src.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        let (open, body_end) = match (bytes[i], bytes[i + 1]) {
            (b'{', b'{') => match expression_end(src, i + 2) {
                Some(end) => (i + 2, end - 2),
                None => break,
            },
            (b'{', b'%') => match statement_end(src, i + 2) {
                Some(end) if is_raw_open(&src[i + 2..end - 2]) => {
                    i = match src[end..].find("endraw") {
                        Some(at) => statement_end(src, end + at).unwrap_or(src.len()),
                        None => src.len(),
                    };
                    continue;
                }
                Some(end) => (i + 2, end - 2),
                None => break,
            },
            (b'{', b'#') => {
                i = src[i + 2..]
                    .find("#}")
                    .map_or(src.len(), |at| i + 2 + at + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if let Cow::Owned(rewritten) = percent_in_expression(&src[open..body_end]) {
            out.push_str(&src[copied..open]);
            out.push_str(&rewritten);
            copied = body_end;
        }
        i = body_end + 2;
    }
    if copied == 0 {
        return Cow::Borrowed(src);
    }
    out.push_str(&src[copied..]);
    Cow::Owned(out)
}

/// One expression's `'literal' % operand` rewritten (see [`python_percent`]).
pub fn percent_in_expression(expr: &str) -> Cow<'_, str> {
    if !expr.contains('%') {
        return Cow::Borrowed(expr);
    }
    let bytes = expr.as_bytes();
    let mut out = String::new();
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
        let after = skip_spaces(bytes, close + 1);
        let is_percent = bytes.get(after) == Some(&b'%') && bytes.get(after + 1) != Some(&b'}');
        let operand_start = skip_spaces(bytes, after + 1);
        match is_percent
            .then(|| operand_end(bytes, operand_start))
            .flatten()
        {
            Some(end) => {
                let operand = &expr[operand_start..end];
                // A parenthesised operand is the argument list (a tuple, or one value).
                let args = match operand.strip_prefix('(') {
                    Some(inner) if group_end(bytes, operand_start) == Some(end) => {
                        &inner[..inner.len() - 1]
                    }
                    _ => operand,
                };
                out.push_str(&expr[copied..i]);
                out.push('(');
                out.push_str(&expr[i..=close]);
                out.push_str(" | format(");
                out.push_str(args);
                out.push_str("))");
                copied = end;
                i = end;
            }
            None => i = close + 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(expr);
    }
    out.push_str(&expr[copied..]);
    Cow::Owned(out)
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index just past the bracket group opening at `open` (`(`, `[` or `{`).
fn group_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => i = string_end(bytes, i, q)?,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the operand of `%` starting at `start`: a bracket group, a string
/// or number literal, or a name with its attributes, subscripts and calls.
fn operand_end(bytes: &[u8], start: usize) -> Option<usize> {
    let first = *bytes.get(start)?;
    let mut i = match first {
        b'(' | b'[' | b'{' => group_end(bytes, start)?,
        b'\'' | b'"' => string_end(bytes, start, first)? + 1,
        b'0'..=b'9' | b'-' => {
            let mut j = start + 1;
            while bytes
                .get(j)
                .is_some_and(|b| b.is_ascii_digit() || *b == b'.' || *b == b'_')
            {
                j += 1;
            }
            return Some(j);
        }
        b if b.is_ascii_alphabetic() || b == b'_' => ident_end(bytes, start),
        _ => return None,
    };
    // Attributes, subscripts and calls bind tighter than `%`.
    loop {
        match bytes.get(i) {
            Some(b'.')
                if bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') =>
            {
                i = ident_end(bytes, i + 1);
            }
            Some(b'[' | b'(') => i = group_end(bytes, i)?,
            _ => return Some(i),
        }
    }
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        i += 1;
    }
    i
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
    fn percent_formatting_becomes_the_format_filter() {
        assert_eq!(
            python_percent("{{ '%s:%d' % (host, port) }}/x"),
            "{{ ('%s:%d' | format(host, port)) }}/x"
        );
        assert_eq!(
            python_percent("{% set n = '%05d' % item.id %}{{ '%s' % names[0] | upper }}"),
            "{% set n = ('%05d' | format(item.id)) %}{{ ('%s' | format(names[0])) | upper }}"
        );
        assert_eq!(percent_in_expression("'%d%%' % 5"), "('%d%%' | format(5))");
        // Modulo of numbers, and percent signs in text, stay as they are.
        for same in [
            "{{ 7 % 3 }}",
            "100% {{ x }}",
            "{% raw %}{{ '%s' % x }}{% endraw %}",
            "{% if x %}y{% endif %}",
        ] {
            assert_eq!(python_percent(same), same);
        }
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
