//! Module arguments: reads them from a mapping, a `key=value` string or free-form text
//! (`_raw_params`), merges the task's `args:` keyword, and checks them against the
//! module's [`ArgSpec`]: unknown names (with suggestions), aliases given twice, missing
//! required arguments, and `one_of` groups. Aliases are then renamed to their argument's
//! name, so modules read one name.

use std::path::Path;

use super::keywords::did_you_mean;
use super::kv::parse_kv;
use super::loader::{is_template, Loader};
use super::yaml::{Kind, Node, Pos};
use crate::modules::ArgSpec;
use crate::Vars;

/// The argument that holds free-form text.
pub const RAW_PARAMS: &str = "_raw_params";

/// Modules whose arguments are free names (any key is a variable), or that take `k=v`
/// options beside free text (`include_vars`, whose keys the loader checks itself).
const OPEN_MODULES: &[&str] = &["set_fact", "include_vars"];

/// Names that stand for the free-form text in a spec's groups and required arguments.
const FREE_FORM_NAMES: &[&str] = &[RAW_PARAMS, "free_form", "cmd"];

impl Loader<'_> {
    /// Reads and validates a module's arguments.
    pub(super) fn module_args(
        &mut self,
        module: &str,
        spec: &ArgSpec,
        value: &Node,
        args_kw: Option<&Node>,
        file: &Path,
        key_pos: Pos,
    ) -> Vars {
        let mut args = Vars::new();
        let mut given: Vec<(String, Pos)> = Vec::new();
        let mut put = |args: &mut Vars, key: String, value: serde_json::Value, pos: Pos| {
            given.retain(|(k, _)| *k != key);
            given.push((key.clone(), pos));
            args.insert(key, value);
        };
        if let Some(extra) = args_kw {
            match &extra.kind {
                Kind::Null => {}
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        put(&mut args, k.key_text(), v.to_json(), k.pos);
                    }
                }
                Kind::Str(s) if is_template(s) => self.error(
                    file,
                    extra.pos,
                    "'args' as a template is not supported; write the mapping out",
                ),
                _ => self.error(file, extra.pos, "'args' must be a mapping"),
            }
        }
        match &value.kind {
            Kind::Null => {}
            Kind::Map(entries) => {
                for (k, v) in entries {
                    put(&mut args, k.key_text(), v.to_json(), k.pos);
                }
            }
            Kind::Seq(_) => {
                self.error(
                    file,
                    value.pos,
                    format!("the arguments of '{module}' must be a mapping or a key=value string"),
                );
                return args;
            }
            _ => {
                let kv = parse_kv(
                    &value.key_text(),
                    spec.free_form && !OPEN_MODULES.contains(&module),
                );
                // Name the word itself when the text is on one line as written.
                let at = |offset: Option<usize>| match (value.text_col, offset) {
                    (Some(col), Some(offset)) => Pos {
                        line: value.pos.line,
                        col: col + offset,
                    },
                    _ => value.pos,
                };
                // `command: !unsafe "echo {{ x }}"`: every word stays text.
                let text = |v: String| match value.untrusted {
                    true => crate::template::untrusted::unsafe_text(v),
                    false => serde_json::Value::String(v),
                };
                for ((k, v), offset) in kv.options.into_iter().zip(kv.option_offsets) {
                    put(&mut args, k, text(v), at(Some(offset)));
                }
                if let Some(raw) = kv.raw {
                    put(
                        &mut args,
                        RAW_PARAMS.to_string(),
                        text(raw),
                        at(kv.raw_offset),
                    );
                }
            }
        }
        self.validate_args(module, spec, &args, &given, file, key_pos);
        spec.resolve_aliases(&mut args);
        args
    }

    fn validate_args(
        &mut self,
        module: &str,
        spec: &ArgSpec,
        args: &Vars,
        given: &[(String, Pos)],
        file: &Path,
        key_pos: Pos,
    ) {
        let open = OPEN_MODULES.contains(&module) || spec.args.iter().any(|a| a.name == "*");
        let mut present: Vec<(&'static str, &str)> = Vec::new();
        let mut raw_given = false;
        for (key, pos) in given {
            if key == RAW_PARAMS {
                if spec.free_form {
                    raw_given = true;
                } else {
                    let text = args
                        .get(RAW_PARAMS)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default();
                    self.error(
                        file,
                        *pos,
                        format!("module '{module}' takes key=value arguments, not free-form text ('{text}')"),
                    );
                }
                continue;
            }
            let def = spec
                .args
                .iter()
                .find(|a| a.name == key || a.aliases.contains(&key.as_str()));
            match def {
                Some(def) => {
                    if let Some((_, first)) = present.iter().find(|(name, _)| *name == def.name) {
                        self.error(
                            file,
                            *pos,
                            format!("module '{module}': argument '{}' is given twice (as '{first}' and '{key}')", def.name),
                        );
                    } else {
                        present.push((def.name, key.as_str()));
                    }
                }
                None if open => {}
                None => {
                    let names = spec
                        .args
                        .iter()
                        .flat_map(|a| std::iter::once(a.name).chain(a.aliases.iter().copied()));
                    self.error(
                        file,
                        *pos,
                        format!(
                            "module '{module}' has no argument '{key}'{}",
                            did_you_mean(key, names)
                        ),
                    );
                }
            }
        }
        let is_present = |name: &str| {
            present.iter().any(|(n, _)| *n == name)
                || (raw_given && FREE_FORM_NAMES.contains(&name))
        };
        // A free-form module with a `cmd` argument (command, shell) needs a command.
        let takes_cmd = spec.free_form
            && !open
            && spec.args.iter().any(|a| a.name == "cmd")
            && !spec.one_of.iter().any(|g| g.contains(&"cmd"));
        if takes_cmd && !raw_given && !is_present("cmd") && !is_present("argv") {
            self.error(
                file,
                key_pos,
                format!("module '{module}' needs a command (free-form text, 'cmd' or 'argv')"),
            );
        }
        for def in spec.args.iter().filter(|a| a.required) {
            if !is_present(def.name) {
                self.error(
                    file,
                    key_pos,
                    format!(
                        "module '{module}' is missing the required argument '{}'",
                        def.name
                    ),
                );
            }
        }
        for group in spec.one_of {
            let mut count = group
                .iter()
                .filter(|n| present.iter().any(|(p, _)| p == *n))
                .count();
            if raw_given && group.iter().any(|n| FREE_FORM_NAMES.contains(n)) {
                count += 1;
            }
            if count == 0 {
                self.error(
                    file,
                    key_pos,
                    format!("module '{module}' needs one of: {}", group.join(", ")),
                );
            } else if count > 1 {
                self.error(
                    file,
                    key_pos,
                    format!(
                        "module '{module}': only one of {} may be given",
                        group.join(", ")
                    ),
                );
            }
        }
    }
}
