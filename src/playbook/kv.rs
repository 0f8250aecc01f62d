//! Ansible's `key=value` argument strings: `copy: src=a dest="/b c"` and free-form text
//! (`command: ls -l chdir=/tmp`), split the way Ansible's `split_args`/`parse_kv` do:
//! whitespace separates words except inside quotes and Jinja2 `{{ }}`/`{% %}`/`{# #}`.

/// Options that free-form modules (command, shell, raw, script) take out of their text.
pub const FREE_FORM_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// One whitespace-separated word of an argument string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word<'a> {
    text: &'a str,
    /// A newline was in the whitespace before this word.
    after_newline: bool,
}

/// Splits an argument string into words, keeping quotes and Jinja2 blocks intact.
fn split_words(input: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut quote: Option<char> = None;
    let mut jinja_depth = 0usize;
    let mut start: Option<usize> = None;
    let mut newline = false;
    let mut escaped = false;
    let bytes = input.as_bytes();
    for (i, c) in input.char_indices() {
        if start.is_none() {
            if c.is_whitespace() {
                newline |= c == '\n';
                continue;
            }
            start = Some(i);
        }
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' | '\'' if jinja_depth == 0 => match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            },
            '{' if matches!(bytes.get(i + 1), Some(b'{' | b'%' | b'#')) => jinja_depth += 1,
            '}' | '%' | '#'
                if jinja_depth > 0 && bytes.get(i + 1) == Some(&b'}') && {
                    // `}}` closes `{{`, `%}` closes `{%`, `#}` closes `{#`
                    c != '}' || i == 0 || bytes[i - 1] != b'{'
                } =>
            {
                jinja_depth -= 1;
            }
            c if c.is_whitespace() && quote.is_none() && jinja_depth == 0 => {
                if let Some(s) = start.take() {
                    words.push(Word {
                        text: &input[s..i],
                        after_newline: newline,
                    });
                }
                newline = c == '\n';
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(Word {
            text: &input[s..],
            after_newline: newline,
        });
    }
    words
}

/// Removes one pair of matching outer quotes, like Ansible's `unquote`.
pub fn unquote(value: &str) -> &str {
    let b = value.as_bytes();
    if b.len() > 1
        && (b[0] == b'"' || b[0] == b'\'')
        && b[0] == b[b.len() - 1]
        && b[b.len() - 2] != b'\\'
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// The parsed argument string: `key=value` options in order and the free text left over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValues {
    pub options: Vec<(String, String)>,
    /// Where each option starts in the input, in characters.
    pub option_offsets: Vec<usize>,
    /// Where the first word of the raw text starts in the input, in characters.
    pub raw_offset: Option<usize>,
    /// Words that are not options, joined (`_raw_params`), if any.
    pub raw: Option<String>,
}

/// Parses `key=value key2="quoted value"`. With `free_form`, only [`FREE_FORM_OPTIONS`]
/// are taken out as options and every other word stays in the raw text.
pub fn parse_kv(input: &str, free_form: bool) -> KeyValues {
    let words = split_words(input);
    let mut result = KeyValues::default();
    let mut raw_words: Vec<(String, bool)> = Vec::new();
    let offset_of = |word: &Word| {
        let byte = word.text.as_ptr() as usize - input.as_ptr() as usize;
        input[..byte].chars().count()
    };
    for word in &words {
        if find_unescaped_equals(word.text).is_none()
            || (free_form && !is_free_form_option(word.text))
        {
            result.raw_offset.get_or_insert_with(|| offset_of(word));
        }
        let Some(pos) = find_unescaped_equals(word.text) else {
            raw_words.push((word.text.replace("\\=", "="), word.after_newline));
            continue;
        };
        let key = word.text[..pos].trim();
        if free_form && !FREE_FORM_OPTIONS.contains(&key) {
            raw_words.push((word.text.to_string(), word.after_newline));
            continue;
        }
        let value = unquote(word.text[pos + 1..].trim());
        result.options.push((key.to_string(), value.to_string()));
        result.option_offsets.push(offset_of(word));
    }
    if raw_words.is_empty() {
        return result;
    }
    if raw_words.len() == words.len() {
        // Nothing was taken out: keep the text exactly as written.
        result.raw = Some(input.trim().to_string());
        return result;
    }
    let mut raw = String::new();
    for (i, (text, after_newline)) in raw_words.iter().enumerate() {
        if i > 0 {
            raw.push(if *after_newline { '\n' } else { ' ' });
        }
        raw.push_str(text);
    }
    result.raw = Some(raw);
    result
}

/// Whether a `key=value` word is one of [`FREE_FORM_OPTIONS`].
fn is_free_form_option(word: &str) -> bool {
    find_unescaped_equals(word).is_some_and(|pos| FREE_FORM_OPTIONS.contains(&word[..pos].trim()))
}

/// The first `=` after position 0 that is not escaped with a backslash.
fn find_unescaped_equals(word: &str) -> Option<usize> {
    let bytes = word.as_bytes();
    (1..bytes.len()).find(|&i| bytes[i] == b'=' && bytes[i - 1] != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &KeyValues) -> Vec<(&str, &str)> {
        kv.options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn key_values_with_quotes() {
        let kv = parse_kv(
            r#"src=a.txt dest="/tmp/b c" mode='0644' msg="say \"hi\"""#,
            false,
        );
        assert_eq!(
            opts(&kv),
            vec![
                ("src", "a.txt"),
                ("dest", "/tmp/b c"),
                ("mode", "0644"),
                ("msg", r#"say \"hi\""#)
            ]
        );
        assert_eq!(kv.raw, None);
    }

    #[test]
    fn jinja_blocks_stay_whole() {
        let kv = parse_kv("msg={{ a | default('x y') }} dest={{ b }}/c", false);
        assert_eq!(
            opts(&kv),
            vec![("msg", "{{ a | default('x y') }}"), ("dest", "{{ b }}/c")]
        );
    }

    #[test]
    fn free_form_keeps_text_and_takes_out_known_options() {
        let kv = parse_kv("ls -l /tmp creates=/x chdir=/srv FOO=bar", true);
        assert_eq!(opts(&kv), vec![("creates", "/x"), ("chdir", "/srv")]);
        assert_eq!(kv.raw.as_deref(), Some("ls -l /tmp FOO=bar"));
        assert_eq!(kv.option_offsets, vec![11, 22]);
        assert_eq!(kv.raw_offset, Some(0));
    }

    #[test]
    fn free_form_without_options_is_verbatim() {
        let text = "echo 'a  b' | grep   a\necho done\n";
        let kv = parse_kv(text, true);
        assert!(kv.options.is_empty());
        assert_eq!(kv.raw.as_deref(), Some(text.trim()));
    }

    #[test]
    fn newlines_between_words_are_kept_when_joining() {
        let kv = parse_kv("echo a\necho b chdir=/x", true);
        assert_eq!(kv.raw.as_deref(), Some("echo a\necho b"));
    }

    #[test]
    fn non_kv_words_of_plain_modules_are_raw() {
        let kv = parse_kv("name=nginx started", false);
        assert_eq!(opts(&kv), vec![("name", "nginx")]);
        assert_eq!(kv.raw.as_deref(), Some("started"));
        assert_eq!(kv.raw_offset, Some(11));
    }

    #[test]
    fn unquote_only_matching_pairs() {
        assert_eq!(unquote("'a'"), "a");
        assert_eq!(unquote("\"a'"), "\"a'");
        assert_eq!(unquote("'"), "'");
    }
}
