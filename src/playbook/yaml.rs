//! YAML with positions: parses a file into a [`Node`] tree where every value and every
//! mapping key knows its line and column, so load errors can name file:line:col.
//!
//! Scalars are resolved the way Ansible sees them (PyYAML, YAML 1.1): `yes/no/on/off`
//! are booleans, `0644` is octal, `1.10` is a float, `1.2.3` stays a string; quoted and
//! block scalars are always strings. Anchors, aliases and `<<` merge keys are supported.
//! Map order is preserved.
//!
//! Hostile input is refused with its position: aliases may expand to at most
//! [`MAX_ALIAS_NODES`] nodes per file (a "billion laughs" file expands exponentially), an
//! alias inside the node it names is an error, and nesting stops at [`MAX_DEPTH`] (the
//! builder and every later walk of the tree recurse).

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::Value;

use super::error::LoadError;
use super::Location;

/// How many nodes all aliases of one file may expand to together. Real playbooks reuse a
/// few small mappings; a billion-laughs file reaches this within a few levels.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// How deep collections may nest (as serde_json's and serde_yaml's recursion limits).
pub const MAX_DEPTH: usize = 128;

/// A position inside the file being parsed (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }

    pub fn at(self, file: &Path) -> Location {
        Location {
            file: file.to_path_buf(),
            line: self.line,
            col: self.col,
        }
    }
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// For a string written on one line without escapes: the column of its first
    /// character, so a position inside it can be named (`key=value` arguments).
    pub text_col: Option<usize>,
    /// Tagged `!unsafe`: a string that is never rendered as a template (its JSON is the
    /// marker of `template::untrusted`).
    pub untrusted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys are nodes too, so their positions are kept.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(kind: Kind, pos: Pos) -> Node {
        Node {
            kind,
            pos,
            text_col: None,
            untrusted: false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_text() == key)
            .map(|(_, v)| v)
    }

    /// A scalar as the text Ansible would use as a mapping key or a string field.
    pub fn key_text(&self) -> String {
        match &self.kind {
            Kind::Null => String::new(),
            Kind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(s) => s.clone(),
            Kind::Seq(_) | Kind::Map(_) => {
                serde_json::to_string(&self.to_json()).unwrap_or_default()
            }
        }
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The value as JSON (what variables and module arguments hold).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            Kind::Str(s) if self.untrusted => crate::template::untrusted::unsafe_text(s.clone()),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses YAML text (the first document; an empty stream is `null`).
pub fn parse_str(text: &str, file: &Path) -> Result<Node, LoadError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        open_anchors: Vec::new(),
        nodes: 0,
        expanded: 0,
        depth: 0,
        file,
    };
    builder.document()
}

/// Reads and parses a YAML file.
pub fn parse_file(path: &Path) -> Result<Node, LoadError> {
    // A vaulted file (vars files, role vars, even a task file) is decrypted first.
    let text = crate::vault::yaml::read_to_string(path).map_err(|e| LoadError {
        loc: Location {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
        },
        message: format!("cannot read {}: {e:#}", path.display()),
    })?;
    parse_str(&text, path)
}

struct Builder<'a, 'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    /// Each anchor's node and how many nodes it stands for (aliases inside it included).
    anchors: HashMap<usize, (Node, usize)>,
    /// Anchors of the collections being built (an alias to one of them is recursive).
    open_anchors: Vec<usize>,
    /// Nodes made so far, counting an alias as the nodes it expands to.
    nodes: usize,
    /// Nodes made by expanding aliases, bounded by [`MAX_ALIAS_NODES`].
    expanded: usize,
    /// Collections open around the node being built.
    depth: usize,
    file: &'a Path,
}

impl<'input> Builder<'_, 'input> {
    fn scan_error(&self, e: ScanError) -> LoadError {
        LoadError {
            loc: Location {
                file: self.file.to_path_buf(),
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: format!("YAML syntax error: {}", e.info()),
        }
    }

    fn error(&self, pos: Pos, message: String) -> LoadError {
        LoadError {
            loc: pos.at(self.file),
            message,
        }
    }

    fn next(&mut self) -> Result<(Event<'input>, Span), LoadError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.scan_error(e)),
            None => Err(LoadError {
                loc: Location {
                    file: self.file.to_path_buf(),
                    line: 0,
                    col: 0,
                },
                message: "YAML syntax error: unexpected end of input".into(),
            }),
        }
    }

    fn document(&mut self) -> Result<Node, LoadError> {
        let mut root = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    let pos = Pos::from_span(&span);
                    let (first, first_span) = self.next()?;
                    let node = self.node(first, first_span)?;
                    if root.is_some() {
                        return Err(self.error(
                            pos,
                            "several YAML documents in one file; only one is allowed".into(),
                        ));
                    }
                    root = Some(node);
                }
                Event::StreamEnd => break,
                other => {
                    return Err(self.error(
                        Pos::from_span(&span),
                        format!("YAML syntax error: unexpected {other:?}"),
                    ))
                }
            }
        }
        Ok(root.unwrap_or(Node::new(Kind::Null, Pos { line: 1, col: 1 })))
    }

    fn node(&mut self, ev: Event<'input>, span: Span) -> Result<Node, LoadError> {
        let pos = Pos::from_span(&span);
        let before = self.nodes;
        self.nodes += 1;
        let (node, anchor) = match ev {
            Event::Alias(id) => return self.alias(id, pos),
            Event::Scalar(text, style, anchor, tag) => {
                let kind = self.scalar(&text, style, tag.as_deref(), pos)?;
                let quotes = match style {
                    ScalarStyle::Plain => 0,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => 2,
                    _ => usize::MAX,
                };
                let verbatim = span.start.line() == span.end.line()
                    && quotes != usize::MAX
                    && span.end.index() - span.start.index() == text.chars().count() + quotes;
                let mut node = Node::new(kind, pos);
                if verbatim {
                    node.text_col = Some(pos.col + quotes / 2);
                }
                node.untrusted = tag.as_deref().is_some_and(|t| {
                    !t.is_yaml_core_schema()
                        && t.suffix == "unsafe"
                        && matches!(node.kind, Kind::Str(_))
                });
                (node, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), pos)?;
                self.open(anchor, pos)?;
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(ev, span)?);
                }
                self.close(anchor);
                (Node::new(Kind::Seq(items), pos), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), pos)?;
                self.open(anchor, pos)?;
                let node = self.mapping(pos)?;
                self.close(anchor);
                (node, anchor)
            }
            other => {
                return Err(self.error(pos, format!("YAML syntax error: unexpected {other:?}")))
            }
        };
        if anchor > 0 {
            self.anchors
                .insert(anchor, (node.clone(), self.nodes - before));
        }
        Ok(node)
    }

    /// The node an alias names, counted against [`MAX_ALIAS_NODES`] before it is copied.
    fn alias(&mut self, id: usize, pos: Pos) -> Result<Node, LoadError> {
        if self.open_anchors.contains(&id) {
            return Err(self.error(
                pos,
                "recursive YAML alias: it refers to a node that contains it".into(),
            ));
        }
        let Some((node, size)) = self.anchors.get(&id) else {
            return Err(self.error(pos, "YAML alias to an unknown anchor".into()));
        };
        let (node, size) = (node.clone(), *size);
        self.expanded += size;
        self.nodes += size;
        if self.expanded > MAX_ALIAS_NODES {
            return Err(self.error(
                pos,
                format!(
                    "YAML aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias \
                     bomb, \"billion laughs\"?); refusing the file"
                ),
            ));
        }
        Ok(node)
    }

    /// Enters a collection: checks the depth and notes its anchor as open.
    fn open(&mut self, anchor: usize, pos: Pos) -> Result<(), LoadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                pos,
                format!("YAML nested more than {MAX_DEPTH} levels deep; refusing the file"),
            ));
        }
        if anchor > 0 {
            self.open_anchors.push(anchor);
        }
        Ok(())
    }

    fn close(&mut self, anchor: usize) {
        self.depth -= 1;
        if anchor > 0 {
            self.open_anchors.pop();
        }
    }

    fn mapping(&mut self, pos: Pos) -> Result<Node, LoadError> {
        let mut explicit: Vec<(Node, Node)> = Vec::new();
        let mut merged: Vec<(Node, Node)> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            if ev == Event::MappingEnd {
                break;
            }
            let is_merge =
                matches!(&ev, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
            let key = self.node(ev, span)?;
            let (vev, vspan) = self.next()?;
            let value = self.node(vev, vspan)?;
            if is_merge {
                let sources: Vec<Node> = match value.kind {
                    Kind::Map(_) => vec![value],
                    Kind::Seq(items) => items,
                    _ => {
                        return Err(self.error(
                            value.pos,
                            "YAML merge key `<<` needs a mapping or a list of mappings".into(),
                        ))
                    }
                };
                for source in sources {
                    let Kind::Map(entries) = source.kind else {
                        return Err(self.error(
                            source.pos,
                            "YAML merge key `<<` needs a mapping or a list of mappings".into(),
                        ));
                    };
                    for (k, v) in entries {
                        insert_entry(&mut merged, k, v, false);
                    }
                }
            } else {
                insert_entry(&mut explicit, key, value, true);
            }
        }
        let mut entries: Vec<(Node, Node)> = merged
            .into_iter()
            .filter(|(k, _)| !explicit.iter().any(|(e, _)| e.key_text() == k.key_text()))
            .collect();
        entries.extend(explicit);
        Ok(Node::new(Kind::Map(entries), pos))
    }

    fn check_collection_tag(&self, tag: Option<&Tag>, pos: Pos) -> Result<(), LoadError> {
        match tag {
            Some(t) if t.handle == "!" && t.suffix == "vault" => Err(self.error(
                pos,
                "!vault must tag a string (the output of `infra vault encrypt_string`)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// An inline `!vault |` value: decrypted now, while loading, so a wrong or missing
    /// password is an error naming this line before any host is contacted.
    fn vault_scalar(&self, text: &str, pos: Pos) -> Result<Kind, LoadError> {
        let plain = crate::vault::decrypt_to_string(text)
            .map_err(|e| self.error(pos, format!("cannot decrypt the !vault value: {e:#}")))?;
        crate::vault::remember(&plain);
        Ok(Kind::Str(plain))
    }

    fn scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Kind, LoadError> {
        if let Some(tag) = tag {
            let core = tag.is_yaml_core_schema();
            return match (core, tag.suffix.as_str()) {
                (false, "unsafe") => Ok(Kind::Str(text.to_string())),
                (false, "vault") => self.vault_scalar(text, pos),
                (true, "str") => Ok(Kind::Str(text.to_string())),
                (true, "null") => Ok(Kind::Null),
                (true, "bool") => resolve_bool(text)
                    .map(Kind::Bool)
                    .ok_or_else(|| self.error(pos, format!("{text:?} is not a boolean (!!bool)"))),
                (true, "int") => resolve_int(text)
                    .ok_or_else(|| self.error(pos, format!("{text:?} is not an integer (!!int)"))),
                (true, "float") => resolve_float(text)
                    .or_else(|| text.trim().parse::<f64>().ok())
                    .map(Kind::Float)
                    .ok_or_else(|| self.error(pos, format!("{text:?} is not a number (!!float)"))),
                _ => Ok(Kind::Str(text.to_string())),
            };
        }
        if style != ScalarStyle::Plain {
            return Ok(Kind::Str(text.to_string()));
        }
        Ok(resolve_plain(text))
    }
}

/// Inserts a mapping entry; a repeated key replaces the earlier one (PyYAML keeps the last).
fn insert_entry(entries: &mut Vec<(Node, Node)>, key: Node, value: Node, last_wins: bool) {
    let text = key.key_text();
    match entries.iter().position(|(k, _)| k.key_text() == text) {
        Some(i) if last_wins => entries[i] = (key, value),
        Some(_) => {}
        None => entries.push((key, value)),
    }
}

/// Resolves an untagged plain scalar like PyYAML's YAML 1.1 resolver.
pub fn resolve_plain(text: &str) -> Kind {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Kind::Null;
    }
    if let Some(b) = resolve_bool(text) {
        return Kind::Bool(b);
    }
    if let Some(kind) = resolve_int(text) {
        return kind;
    }
    if let Some(f) = resolve_float(text) {
        return Kind::Float(f);
    }
    Kind::Str(text.to_string())
}

fn resolve_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// YAML 1.1 integers: decimal, `0b`, `0x`, leading-zero octal, `_` separators and
/// base-60 (`1:30`). Values that overflow i64 stay strings (returns `Kind::Str`).
fn resolve_int(text: &str) -> Option<Kind> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return None;
    }
    let digits_ok = |s: &str, radix: u32| {
        !s.is_empty()
            && s.chars().all(|c| c == '_' || c.is_digit(radix))
            && s.chars().any(|c| c != '_')
    };
    let clean = |s: &str| s.replace('_', "");
    let magnitude: Option<i128> = if let Some(bin) = body.strip_prefix("0b") {
        if !digits_ok(bin, 2) {
            return None;
        }
        i128::from_str_radix(&clean(bin), 2).ok()
    } else if let Some(hex) = body.strip_prefix("0x") {
        if !digits_ok(hex, 16) {
            return None;
        }
        i128::from_str_radix(&clean(hex), 16).ok()
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let head = parts.next()?;
        if !head.starts_with(|c: char| ('1'..='9').contains(&c)) || !digits_ok(head, 10) {
            return None;
        }
        let mut value: i128 = clean(head).parse().ok()?;
        for part in parts {
            let ok = (1..=2).contains(&part.len())
                && part.chars().all(|c| c.is_ascii_digit())
                && (part.len() == 1 || part.as_bytes()[0] <= b'5');
            if !ok {
                return None;
            }
            value = value.checked_mul(60)? + part.parse::<i128>().ok()?;
        }
        Some(value)
    } else if body == "0" {
        Some(0)
    } else if let Some(oct) = body.strip_prefix('0') {
        if !digits_ok(oct, 8) {
            return None;
        }
        i128::from_str_radix(&clean(oct), 8).ok()
    } else {
        if !body.starts_with(|c: char| ('1'..='9').contains(&c)) || !digits_ok(body, 10) {
            return None;
        }
        clean(body).parse().ok()
    };
    let value = if negative { -magnitude? } else { magnitude? };
    Some(match i64::try_from(value) {
        Ok(v) => Kind::Int(v),
        Err(_) => Kind::Str(text.to_string()),
    })
}

/// YAML 1.1 floats: a dot is required (`1e3` is a string), `.inf`, `.nan`, base 60.
fn resolve_float(text: &str) -> Option<f64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(sign * f64::INFINITY);
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    if body.contains(':') {
        let (head, frac) = body.rsplit_once('.')?;
        let mut parts = head.split(':');
        let first = parts.next()?;
        if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return None;
        }
        let mut value: f64 = first.replace('_', "").parse().ok()?;
        for part in parts {
            let ok = (1..=2).contains(&part.len())
                && part.chars().all(|c| c.is_ascii_digit())
                && (part.len() == 1 || part.as_bytes()[0] <= b'5');
            if !ok {
                return None;
            }
            value = value * 60.0 + part.parse::<f64>().ok()?;
        }
        if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return None;
        }
        let frac: f64 = format!("0.{}", frac.replace('_', "")).parse().ok()?;
        return Some(sign * (value + frac));
    }
    // [0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?  or  \.[0-9][0-9_]*([eE][-+][0-9]+)?
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let int_ok = if int_part.is_empty() {
        frac_part.starts_with(|c: char| c.is_ascii_digit()) && !negative && !text.starts_with('+')
    } else {
        int_part.starts_with(|c: char| c.is_ascii_digit())
            && int_part.chars().all(|c| c.is_ascii_digit() || c == '_')
    };
    if !int_ok || !frac_part.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['+', '-'])?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let cleaned = format!("{}0", body.replace('_', ""));
    // "1." and "1.e+3" need a digit after the dot for Rust's parser.
    let cleaned = match exponent {
        Some(exp) => format!(
            "{}.{}0e{}",
            int_part.replace('_', ""),
            frac_part.replace('_', ""),
            exp
        ),
        None => cleaned,
    };
    let value: f64 = cleaned.parse().ok()?;
    Some(sign * value.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Node {
        parse_str(text, Path::new("t.yml")).unwrap()
    }

    #[test]
    fn scalars_resolve_like_pyyaml() {
        let node = parse(
            "a: yes\nb: No\nc: on\nd: 0644\ne: 1.10\nf: 1.2.3\ng: ~\nh: \"yes\"\ni: 1e3\n\
             j: 0x1F\nk: 1_000\nl: -7\nm: 1:30\nn: .5\no: 3.\np: 'true'\nq:\nr: 08\ns: 1.5e+2\n",
        );
        assert_eq!(
            node.to_json(),
            json!({"a": true, "b": false, "c": true, "d": 420, "e": 1.1, "f": "1.2.3",
                   "g": null, "h": "yes", "i": "1e3", "j": 31, "k": 1000, "l": -7, "m": 90,
                   "n": 0.5, "o": 3.0, "p": "true", "q": null, "r": "08", "s": 150.0})
        );
    }

    #[test]
    fn tags_override_resolution() {
        let node = parse("a: !!str yes\nb: !unsafe '{{ x }}'\nc: !!int '12'\n");
        assert_eq!(
            node.to_json(),
            json!({"a": "yes", "b": {"__ansible_unsafe": "{{ x }}"}, "c": 12})
        );
        let plain = parse("a: !unsafe 'no template here'\n");
        assert_eq!(plain.to_json(), json!({"a": "no template here"}));
    }

    #[test]
    fn positions_of_keys_and_items() {
        let node = parse("- name: one\n  copy:\n    dest: /x\n- name: two\n");
        let items = node.as_seq().unwrap();
        assert_eq!(items[0].pos, Pos { line: 1, col: 3 });
        let (key, _) = &items[0].as_map().unwrap()[1];
        assert_eq!(key.pos, Pos { line: 2, col: 3 });
        assert_eq!(items[1].pos, Pos { line: 4, col: 3 });
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let node = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n");
        assert_eq!(
            node.to_json(),
            json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "list": [{"x": 1, "y": 2}]})
        );
    }

    #[test]
    fn order_is_preserved_and_last_duplicate_wins() {
        let node = parse("z: 1\na: 2\nz: 3\n");
        let keys: Vec<String> = node
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.key_text())
            .collect();
        assert_eq!(keys, vec!["z", "a"]);
        assert_eq!(node.get("z").unwrap().to_json(), json!(3));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_str("a: 1\nb: [1, 2\nc: 3\n", Path::new("bad.yml")).unwrap_err();
        assert_eq!(err.loc.file, Path::new("bad.yml"));
        assert!(err.loc.line >= 2, "{err:?}");
        assert!(err.message.starts_with("YAML syntax error"), "{err:?}");
    }

    #[test]
    fn empty_file_is_null() {
        assert!(parse("").is_null());
        assert!(parse("# only a comment\n").is_null());
    }

    #[test]
    fn text_columns_of_verbatim_strings() {
        let node = parse("a: b=1 c=2\nq: 'x=1'\nd: \"e\\tf\"\nm: |\n  x\n");
        let cols: Vec<Option<usize>> = node
            .as_map()
            .unwrap()
            .iter()
            .map(|(_, v)| v.text_col)
            .collect();
        assert_eq!(cols, [Some(4), Some(5), None, None]);
    }

    fn refused(text: &str) -> LoadError {
        parse_str(text, Path::new("bomb.yml")).unwrap_err()
    }

    #[test]
    fn billion_laughs_is_refused_at_the_alias_that_crosses_the_limit() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let err = refused(&text);
        assert!(
            err.message.contains("expand to more than 100000 nodes"),
            "{err:?}"
        );
        assert_eq!(err.loc.file, Path::new("bomb.yml"));
        // Level 5 holds 9^5 + ... nodes: the first alias past the budget is on line 6.
        assert_eq!(err.loc.line, 6, "{err:?}");
    }

    #[test]
    fn aliases_within_the_limit_still_expand() {
        let node = parse("a: &a [1, 2]\nb: [*a, *a]\n");
        assert_eq!(node.to_json(), json!({"a": [1, 2], "b": [[1, 2], [1, 2]]}));
    }

    #[test]
    fn recursive_alias_is_an_error() {
        let err = refused("a: &a\n  b: *a\n");
        assert!(err.message.starts_with("recursive YAML alias"), "{err:?}");
        assert_eq!((err.loc.line, err.loc.col), (2, 6), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let text = format!("{}x", "- ".repeat(10_000));
        let err = refused(&text);
        assert!(
            err.message.contains("nested more than 128 levels"),
            "{err:?}"
        );
        // 128 levels are fine.
        parse(&format!("{}x", "- ".repeat(MAX_DEPTH)));
    }

    #[test]
    fn block_scalars_are_strings() {
        let node = parse("a: |\n  yes\n  no\nb: >\n  1.5\n");
        assert_eq!(node.to_json(), json!({"a": "yes\nno\n", "b": "1.5\n"}));
    }

    #[test]
    fn vault_values_are_decrypted_and_a_wrong_password_names_the_line() {
        let ring = crate::vault::test_keyring();
        let v = ring.encrypt(b"playbook-secret", None).unwrap();
        let block: String = v.lines().map(|l| format!("    {l}\n")).collect();
        let text = format!("a: 1\nb: !vault |\n{block}");
        let node = parse_str(&text, Path::new("p.yml")).unwrap();
        assert_eq!(
            node.get("b").and_then(Node::as_str),
            Some("playbook-secret")
        );
        let other = crate::vault::Keyring::new(vec![crate::vault::Secret::new("default", "x")]);
        let bad = other.encrypt(b"nope", None).unwrap();
        let block: String = bad.lines().map(|l| format!("    {l}\n")).collect();
        let err = parse_str(&format!("a: 1\nb: !vault |\n{block}"), Path::new("p.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yml:2:"), "{err}");
        assert!(err.contains("vault password is wrong"), "{err}");
    }

    #[test]
    fn a_vaulted_file_is_read_as_its_plaintext() {
        let ring = crate::vault::test_keyring();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.yml");
        let text = ring
            .encrypt(b"db_password: file-level-secret\n", None)
            .unwrap();
        std::fs::write(&file, text).unwrap();
        let node = parse_file(&file).unwrap();
        assert_eq!(
            node.get("db_password").and_then(Node::as_str),
            Some("file-level-secret")
        );
        assert!(crate::vault::contains_secret("pw=file-level-secret"));
    }
}
