//! PyYAML's `yaml.dump` as Ansible's `to_yaml` (flow style for leaf collections) and
//! `to_nice_yaml` (block style, `indent=4`) call it: keys sorted, plain scalars when they
//! cannot be read back as another type, single quotes otherwise, double quotes for
//! control characters, long plain or single-quoted scalars folded after column 80.

use regex::Regex;
use serde_json::Value as Json;
use std::sync::OnceLock;

use super::pyfmt::py_float;

const WIDTH: usize = 80;

/// `flow_leaves`: `default_flow_style=None` (to_yaml) when true, `False` when not.
pub fn py_yaml(v: &Json, indent: usize, flow_leaves: bool) -> String {
    let mut e = Emitter {
        out: String::new(),
        indent: indent.max(2),
        flow_leaves,
    };
    match v {
        Json::Array(_) | Json::Object(_) if e.is_flow(v) => {
            let step = e.indent;
            e.write_flow(v, step);
            e.out.push('\n');
        }
        Json::Array(items) => e.block_seq(items, 0),
        Json::Object(map) => e.block_map(map, 0),
        scalar => {
            let (text, plain) = scalar_text(scalar, false, false, 0, 0);
            e.out.push_str(&text);
            e.out.push('\n');
            if plain {
                e.out.push_str("...\n");
            }
        }
    }
    e.out
}

struct Emitter {
    out: String,
    indent: usize,
    flow_leaves: bool,
}

fn is_collection(v: &Json) -> bool {
    matches!(v, Json::Array(_) | Json::Object(_))
}

fn is_empty_collection(v: &Json) -> bool {
    match v {
        Json::Array(a) => a.is_empty(),
        Json::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn sorted(map: &serde_json::Map<String, Json>) -> Vec<(&String, &Json)> {
    let mut entries: Vec<(&String, &Json)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

impl Emitter {
    fn is_flow(&self, v: &Json) -> bool {
        if is_empty_collection(v) {
            return true;
        }
        if !self.flow_leaves {
            return false;
        }
        match v {
            Json::Array(items) => items.iter().all(|i| !is_collection(i)),
            Json::Object(map) => map.values().all(|i| !is_collection(i)),
            _ => false,
        }
    }

    /// Writes a flow collection whose wrapped items are indented to `indent`; scalars
    /// inside fold to `indent` + the indent step.
    fn write_flow(&mut self, v: &Json, indent: usize) {
        let (open, close) = match v {
            Json::Array(_) => ('[', ']'),
            Json::Object(_) => ('{', '}'),
            other => {
                self.write_flow_scalar(other, indent, false);
                return;
            }
        };
        self.out.push(open);
        let entries: Vec<(Option<&String>, &Json)> = match v {
            Json::Array(items) => items.iter().map(|i| (None, i)).collect(),
            Json::Object(map) => sorted(map).into_iter().map(|(k, i)| (Some(k), i)).collect(),
            _ => Vec::new(),
        };
        for (i, (key, item)) in entries.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            if self.column() > WIDTH {
                self.out.push('\n');
                self.out.push_str(&" ".repeat(indent));
            } else if i > 0 {
                self.out.push(' ');
            }
            if let Some(k) = key {
                self.write_flow_scalar(&Json::String(k.clone()), indent, true);
                self.out.push_str(": ");
            }
            if is_collection(item) {
                self.write_flow(item, indent + self.indent);
            } else {
                self.write_flow_scalar(item, indent, false);
            }
        }
        self.out.push(close);
    }

    fn write_flow_scalar(&mut self, v: &Json, indent: usize, key: bool) {
        let col = self.column();
        let cont = if key { 0 } else { indent + self.indent };
        let text = scalar_text(v, true, key, col, cont).0;
        self.out.push_str(&text);
    }

    fn column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map(|i| i + 1).unwrap_or(0)
    }

    /// Writes a value that follows `key:` or `-` on the current line.
    fn inline_value(&mut self, v: &Json, cont_indent: usize) {
        self.out.push(' ');
        if is_collection(v) {
            self.write_flow(v, cont_indent);
        } else {
            let col = self.column();
            let s = scalar_text(v, false, false, col, cont_indent).0;
            self.out.push_str(&s);
        }
        self.out.push('\n');
    }

    /// A block mapping whose keys sit at column `col`; the first key is written where the
    /// cursor is if the line already has content (after `- `).
    fn block_map(&mut self, map: &serde_json::Map<String, Json>, col: usize) {
        for (k, v) in sorted(map) {
            let current = self.column();
            if current < col {
                self.out.push_str(&" ".repeat(col - current));
            }
            let key = scalar_text(&Json::String(k.clone()), false, true, 0, 0).0;
            self.out.push_str(&key);
            self.out.push(':');
            match v {
                Json::Object(m) if !self.is_flow(v) => {
                    self.out.push('\n');
                    self.block_map(m, col + self.indent);
                }
                Json::Array(items) if !self.is_flow(v) => {
                    self.out.push('\n');
                    self.block_seq(items, col);
                }
                _ => self.inline_value(v, col + self.indent),
            }
        }
    }

    /// A block sequence whose dashes sit at column `col`.
    fn block_seq(&mut self, items: &[Json], col: usize) {
        for item in items {
            let current = self.column();
            if current < col {
                self.out.push_str(&" ".repeat(col - current));
            }
            self.out.push('-');
            let inner = col + self.indent;
            match item {
                Json::Object(m) if !self.is_flow(item) => {
                    self.out.push_str(&" ".repeat(self.indent - 1));
                    self.block_map(m, inner);
                }
                Json::Array(a) if !self.is_flow(item) => {
                    self.out.push_str(&" ".repeat(self.indent - 1));
                    self.block_seq(a, inner);
                }
                _ => self.inline_value(item, inner),
            }
        }
    }
}

/// The scalar as PyYAML writes it, and whether it is plain. `col` is the column where it
/// starts and `cont_indent` the indent of folded continuation lines (0: never fold).
fn scalar_text(
    v: &Json,
    flow: bool,
    simple_key: bool,
    col: usize,
    cont_indent: usize,
) -> (String, bool) {
    match v {
        Json::Null => ("null".into(), true),
        Json::Bool(b) => ((if *b { "true" } else { "false" }).into(), true),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => (i.to_string(), true),
            (_, Some(u), _) => (u.to_string(), true),
            (_, _, Some(f)) => (yaml_float(f), true),
            _ => (n.to_string(), true),
        },
        Json::String(s) => string_scalar(s, flow, simple_key, col, cont_indent),
        other => (other.to_string(), false),
    }
}

fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    let s = py_float(f).to_lowercase();
    if !s.contains('.') && s.contains('e') {
        s.replacen('e', ".0e", 1)
    } else {
        s
    }
}

fn implicit_resolvers() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^(?:",
            // bool
            r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            // null
            r"|~|null|Null|NULL",
            // int
            r"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            // float
            r"|[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?",
            r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            // timestamp
            r"|[0-9]{4}-[0-9]{2}-[0-9]{2}",
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}",
            r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?",
            // merge, value
            r"|<<|=",
            r")$"
        ))
        .expect("the resolver regex is a valid constant")
    })
}

fn string_scalar(
    s: &str,
    flow: bool,
    simple_key: bool,
    col: usize,
    cont_indent: usize,
) -> (String, bool) {
    if s.is_empty() {
        return ("''".into(), false);
    }
    let special = s
        .chars()
        .any(|c| (c < ' ' && c != '\n') || c == '\u{7f}' || c == '\u{feff}');
    let multiline = s.contains('\n');
    if special || (multiline && simple_key) {
        return (double_quoted(s), false);
    }
    if !multiline && plain_allowed(s, flow) && !implicit_resolvers().is_match(s) {
        return (fold(s, col, cont_indent, false), true);
    }
    (single_quoted(s, col, cont_indent), false)
}

fn plain_allowed(s: &str, flow: bool) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    let second = s.chars().nth(1);
    let followed_by_space = matches!(second, None | Some(' ') | Some('\t'));
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    if "?:-".contains(first) && (followed_by_space || flow && first != '-') {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") {
        return false;
    }
    if flow && s.contains([',', '?', '[', ']', '{', '}']) {
        return false;
    }
    if flow && s.contains(':') {
        return false;
    }
    true
}

/// Replaces a single space by a line break + indent once the column passed the width.
fn fold(s: &str, col: usize, cont_indent: usize, _quoted: bool) -> String {
    if cont_indent == 0 {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut column = col;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let single_space =
            c == ' ' && i > 0 && chars[i - 1] != ' ' && chars.get(i + 1).is_some_and(|n| *n != ' ');
        if single_space && column > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(cont_indent));
            column = cont_indent;
            continue;
        }
        out.push(c);
        column += 1;
    }
    out
}

fn single_quoted(s: &str, col: usize, cont_indent: usize) -> String {
    let indent = " ".repeat(cont_indent);
    let mut out = String::from("'");
    let mut column = col + 1;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            let mut n = 0;
            while i < chars.len() && chars[i] == '\n' {
                n += 1;
                i += 1;
            }
            for _ in 0..=n {
                out.push('\n');
            }
            out.push_str(&indent);
            column = cont_indent;
            continue;
        }
        let single_space = c == ' '
            && i > 0
            && chars[i - 1] != ' '
            && chars.get(i + 1).is_some_and(|n| *n != ' ')
            && i + 1 < chars.len();
        if single_space && cont_indent > 0 && column > WIDTH {
            out.push('\n');
            out.push_str(&indent);
            column = cont_indent;
            i += 1;
            continue;
        }
        if c == '\'' {
            out.push('\'');
            column += 1;
        }
        out.push(c);
        column += 1;
        i += 1;
    }
    out.push('\'');
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02X}", c as u32)),
            '\u{feff}' => out.push_str("\\uFEFF"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected strings are PyYAML 6.0.3's output for the same data.
    #[test]
    fn nice_yaml_matches_pyyaml() {
        let d = json!({"a": [1, 2], "b": {"c": [{"d": 1, "e": "x y"}, [3, 4]]}, "n": null,
            "s": "yes", "t": "a: b", "u": "", "m": "l1\nl2", "f": 1.5, "g": true,
            "el": [], "ed": {}});
        assert_eq!(
            py_yaml(&d, 4, false),
            "a:\n- 1\n- 2\nb:\n    c:\n    -   d: 1\n        e: x y\n    -   - 3\n        - 4\ned: {}\nel: []\nf: 1.5\ng: true\nm: 'l1\n\n    l2'\nn: null\ns: 'yes'\nt: 'a: b'\nu: ''\n"
        );
    }

    #[test]
    fn to_yaml_uses_flow_for_leaves() {
        let d = json!({"a": [1, 2], "b": {"c": [{"d": 1, "e": "x y"}, [3, 4]]}, "s": "yes"});
        assert_eq!(
            py_yaml(&d, 2, true),
            "a: [1, 2]\nb:\n  c:\n  - {d: 1, e: x y}\n  - [3, 4]\ns: 'yes'\n"
        );
        assert_eq!(py_yaml(&json!({"a": 1}), 2, true), "{a: 1}\n");
        assert_eq!(py_yaml(&json!("foo"), 2, true), "foo\n...\n");
        assert_eq!(py_yaml(&json!(["x: y", "a"]), 2, true), "['x: y', a]\n");
        assert_eq!(py_yaml(&json!([1, "two"]), 4, false), "- 1\n- two\n");
        assert_eq!(py_yaml(&json!([[1, 2]]), 4, false), "-   - 1\n    - 2\n");
    }

    #[test]
    fn long_scalars_fold_after_column_80() {
        let long = format!("{} {} z", "x".repeat(50), "y".repeat(40));
        assert_eq!(
            py_yaml(&json!({ "a": long }), 4, false),
            format!("a: {} {}\n    z\n", "x".repeat(50), "y".repeat(40))
        );
        let bc = "b c ".repeat(30);
        let expected = "a: 'b c b c b c b c b c b c b c b c b c b c b c b c b c b c b c b c b c b c b c b\n    c b c b c b c b c b c b c b c b c b c b c '\n";
        assert_eq!(py_yaml(&json!({ "a": bc }), 4, false), expected);
    }
}
