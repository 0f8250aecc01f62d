//! The minijinja environment with Ansible's common filters and tests.
//!
//! Undefined variables are errors (as in Ansible), except where `default`, `is defined`
//! and friends look at them. Values print as Python prints them (`True`, `None` as empty,
//! `['a']`), because rendered files must match ansible-playbook's byte for byte. Owns:
//! rendering strings, whole data structures, templates and `when` expressions. May call:
//! nothing else.
//!
//! Vars are read lazily (`lazy.rs`): a var whose value is itself a template is rendered
//! when read, as Ansible does. Callers that render many strings with the same vars use the
//! `*_shared` methods with an `Arc<Vars>` so the vars are not copied per call.

mod checks;
mod errors;
mod filters;
mod filters_lists;
mod filters_text;
mod lazy;
pub mod lookups;
mod pyfmt;
mod pyrandom;
mod pyyaml;
mod scan;
pub mod untrusted;

use std::sync::Arc;

use minijinja::value::Value as JValue;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Value;

use crate::Vars;
use errors::explain;
use scan::single_expression;

pub use lookups::{find_in_search_path, NAMES as LOOKUP_NAMES};
pub use pyfmt::{py_json, JsonStyle};
pub use pyyaml::py_yaml;

/// The value of the `omit` variable; the engine drops module args equal to it.
pub const OMIT: &str = "__omit_place_holder__";

/// How many instructions one render may run: a template that never ends (nested loops over
/// huge ranges, macros that call themselves twice per level) fails with an error instead
/// of hanging the run. Rendering a real role's templates takes a few thousand; ten million
/// is about a second. Recursion (a macro calling itself forever) is bounded by minijinja's
/// own recursion limit (500 levels, a macro call counting 4).
pub const TEMPLATE_FUEL: u64 = 10_000_000;

/// The variable the cached `{% set %}` wrapper stores an evaluated expression in.
pub(crate) const RESULT_VAR: &str = "__infra_eval_result";

/// Renders Ansible-style templates. Cheap to share (`Arc`) between hosts.
///
/// Each environment comes as a strict one and a lax (chainable) twin: a render that fails
/// on an undefined value which the template itself guards (`a.b.c | default(x)`,
/// `a.b is defined`) is retried in the twin, where, as in Ansible, a lookup on an
/// undefined value is undefined rather than an error.
pub struct Templar {
    /// For strings in playbooks and expressions: the template name *is* its source, so
    /// minijinja's loader cache compiles each distinct string once.
    strings: Arc<Environment<'static>>,
    strings_lax: Environment<'static>,
    /// For template files, indexed by `trim_blocks * 2 + lstrip_blocks`.
    files: [Environment<'static>; 4],
    files_lax: [Environment<'static>; 4],
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

fn string_env(behavior: UndefinedBehavior) -> Environment<'static> {
    let mut env = build_env(true, false, behavior);
    // The name is the source; a playbook string follows Ansible's backslash rule.
    env.set_loader(|source| {
        Ok(Some(
            scan::python_percent(&scan::escape_backslashes(source)).into_owned(),
        ))
    });
    env
}

fn file_envs(behavior: UndefinedBehavior) -> [Environment<'static>; 4] {
    [
        build_env(false, false, behavior),
        build_env(false, true, behavior),
        build_env(true, false, behavior),
        build_env(true, true, behavior),
    ]
}

impl Templar {
    pub fn new() -> Self {
        Templar {
            strings: Arc::new(string_env(UndefinedBehavior::Strict)),
            strings_lax: string_env(UndefinedBehavior::Chainable),
            files: file_envs(UndefinedBehavior::Strict),
            files_lax: file_envs(UndefinedBehavior::Chainable),
        }
    }

    /// The render context for `vars`: a lazy view that renders templated var values
    /// when they are read (see `lazy.rs`).
    fn context(&self, vars: &Arc<Vars>) -> JValue {
        lazy::LazyCtx::root(self.strings.clone(), vars.clone())
    }

    /// Runs `f` in the strict environment, retrying in the lax twin when the failure is
    /// an undefined value the template guards with `default` or `is defined`.
    fn run<T>(
        &self,
        strict: &Environment<'static>,
        lax: &Environment<'static>,
        source: &str,
        shown: Option<&str>,
        vars: &Vars,
        f: impl Fn(&Environment<'static>) -> Result<T, Error>,
    ) -> anyhow::Result<T> {
        match f(strict) {
            Ok(v) => Ok(v),
            Err(e) if errors::is_guarded_undefined(&e, source) => {
                f(lax).map_err(|_| explain(&e, source, Some((strict, vars)), shown))
            }
            Err(e) => Err(explain(&e, source, Some((strict, vars)), shown)),
        }
    }

    /// Renders a string. A string that is exactly one `{{ expr }}` keeps the expression's
    /// native type (a list stays a list), as Ansible does.
    pub fn render_value(&self, value: &Value, vars: &Vars) -> anyhow::Result<Value> {
        if !needs_render(value) {
            return Ok(value.clone());
        }
        self.render_value_shared(value, &Arc::new(vars.clone()))
    }

    /// [`render_value`](Self::render_value) with vars the caller shares between many
    /// calls (no copy of the vars per call; use this in loops over many strings).
    pub fn render_value_shared(&self, value: &Value, vars: &Arc<Vars>) -> anyhow::Result<Value> {
        if !needs_render(value) {
            return Ok(value.clone());
        }
        let ctx = self.context(vars);
        self.render_value_in(value, &ctx, vars)
    }

    fn render_value_in(&self, value: &Value, ctx: &JValue, vars: &Vars) -> anyhow::Result<Value> {
        if let Some(text) = untrusted::marked_text(value) {
            return Ok(Value::String(text.to_string()));
        }
        Ok(match value {
            Value::String(s) if is_template(s) => {
                // Ansible (2.19) reads `{{ expr }}\n` as the lone expression too: a string
                // result gets its trailing newlines back, any other type keeps its type.
                let body = s.trim_end_matches('\n');
                match single_expression(body) {
                    Some(expr) => {
                        match self.eval_in(&scan::literals_as_written(expr), ctx, vars)? {
                            Value::String(text) => Value::String(with_trailing_newlines(text, s)),
                            native => native,
                        }
                    }
                    None => Value::String(self.render_in(s, ctx, vars)?),
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value_in(i, ctx, vars))
                    .collect::<anyhow::Result<_>>()?,
            ),
            Value::Object(map) => {
                let mut out = Vars::new();
                for (k, v) in map {
                    let key = if is_template(k) {
                        self.render_in(k, ctx, vars)?
                    } else {
                        k.clone()
                    };
                    out.insert(key, self.render_value_in(v, ctx, vars)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Renders a string to a string.
    pub fn render_str(&self, source: &str, vars: &Vars) -> anyhow::Result<String> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        self.render_str_shared(source, &Arc::new(vars.clone()))
    }

    /// [`render_str`](Self::render_str) with shared vars.
    pub fn render_str_shared(&self, source: &str, vars: &Arc<Vars>) -> anyhow::Result<String> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        self.render_in(source, &self.context(vars), vars)
    }

    fn render_in(&self, source: &str, ctx: &JValue, vars: &Vars) -> anyhow::Result<String> {
        self.run(
            &self.strings,
            &self.strings_lax,
            source,
            None,
            vars,
            |env| env.get_template(source)?.render(ctx),
        )
    }

    /// Renders a template file's content (the template module): `trim_blocks` and
    /// `lstrip_blocks` as Ansible's (defaults true and false); keeps the trailing newline.
    pub fn render_file(
        &self,
        source: &str,
        vars: &Vars,
        trim_blocks: bool,
        lstrip_blocks: bool,
    ) -> anyhow::Result<String> {
        self.render_file_shared(source, &Arc::new(vars.clone()), trim_blocks, lstrip_blocks)
    }

    /// [`render_file`](Self::render_file) with shared vars.
    pub fn render_file_shared(
        &self,
        source: &str,
        vars: &Arc<Vars>,
        trim_blocks: bool,
        lstrip_blocks: bool,
    ) -> anyhow::Result<String> {
        self.render_file_over(source, vars, &Vars::new(), trim_blocks, lstrip_blocks)
    }

    /// [`render_file_shared`](Self::render_file_shared) with `over`'s names on top of
    /// `vars` (the template module's `template_path`, ...), looked up there first rather
    /// than copied in: the task's vars hold the host's facts, tens of kilobytes.
    pub fn render_file_over(
        &self,
        source: &str,
        vars: &Arc<Vars>,
        over: &Vars,
        trim_blocks: bool,
        lstrip_blocks: bool,
    ) -> anyhow::Result<String> {
        let i = usize::from(trim_blocks) * 2 + usize::from(lstrip_blocks);
        let ctx = if over.is_empty() {
            self.context(vars)
        } else {
            // The last map that has a name wins.
            minijinja::value::merge_maps([self.context(vars), JValue::from_serialize(over)])
        };
        self.run(
            &self.files[i],
            &self.files_lax[i],
            source,
            None,
            vars,
            |env| {
                env.template_from_str(&scan::python_percent(source))?
                    .render(&ctx)
            },
        )
    }

    /// [`render_file_shared`](Self::render_file_shared) for a template that may
    /// `{% include %}` or `{% import %}` other files, found in `search_dirs` in order
    /// (Ansible: the role's `templates/`, then the including file's folder).
    pub fn render_file_with_includes(
        &self,
        source: &str,
        vars: &Arc<Vars>,
        trim_blocks: bool,
        lstrip_blocks: bool,
        search_dirs: &[std::path::PathBuf],
    ) -> anyhow::Result<String> {
        let with_loader = |behavior| {
            let mut env = build_env(trim_blocks, lstrip_blocks, behavior);
            let dirs = search_dirs.to_vec();
            env.set_loader(move |name| {
                for d in &dirs {
                    let candidate = d.join(name);
                    if candidate.is_file() {
                        return std::fs::read_to_string(&candidate)
                            .map(|text| Some(scan::python_percent(&text).into_owned()))
                            .map_err(|e| {
                                Error::new(
                                    ErrorKind::InvalidOperation,
                                    format!("reading {}: {e}", candidate.display()),
                                )
                            });
                    }
                }
                Ok(None)
            });
            env
        };
        let (strict, lax) = (
            with_loader(UndefinedBehavior::Strict),
            with_loader(UndefinedBehavior::Chainable),
        );
        let ctx = self.context(vars);
        self.run(&strict, &lax, source, None, vars, |env| {
            env.template_from_str(&scan::python_percent(source))?
                .render(&ctx)
        })
    }

    /// Evaluates a bare expression (`when:`, `until:`, `changed_when:`) to a value. An
    /// expression wrapped in `{{ }}` is accepted too.
    pub fn eval(&self, expr: &str, vars: &Vars) -> anyhow::Result<Value> {
        self.eval_shared(expr, &Arc::new(vars.clone()))
    }

    /// [`eval`](Self::eval) with shared vars.
    pub fn eval_shared(&self, expr: &str, vars: &Arc<Vars>) -> anyhow::Result<Value> {
        let expr = single_expression(expr.trim()).unwrap_or(expr);
        self.eval_in(expr, &self.context(vars), vars)
    }

    fn eval_in(&self, expr: &str, ctx: &JValue, vars: &Vars) -> anyhow::Result<Value> {
        let source = eval_source(expr);
        let result = self.run(
            &self.strings,
            &self.strings_lax,
            &source,
            Some(expr),
            vars,
            |env| eval_with(env, expr, ctx),
        )?;
        to_json_value(&result).map_err(|e| anyhow::anyhow!("in `{expr}`: {e}"))
    }

    /// Expands a `with_<name>` loop: runs lookup `name` on `terms` (already rendered) with
    /// the task's variables. `subdir` is the folder `first_found` searches first (Ansible
    /// picks `vars`, `templates` or `files` from the task's action).
    pub fn with_lookup(
        &self,
        name: &str,
        terms: &Value,
        subdir: Option<&str>,
        vars: &Arc<Vars>,
    ) -> anyhow::Result<Vec<Value>> {
        const TERMS: &str = "__infra_with_terms";
        let mut vars = vars.clone();
        // Passed encoded: the terms are rendered already, and a rendered term that
        // contains `{{` must not be rendered a second time when read.
        Arc::make_mut(&mut vars).insert(TERMS.into(), Value::from(lookups::encode_terms(terms)));
        let quote = |s: &str| Value::from(s).to_string();
        let expr = format!(
            "{}({}, {TERMS}, {})",
            lookups::WITH_FUNCTION,
            quote(name),
            subdir.map(quote).unwrap_or_else(|| "none".into())
        );
        match self.eval_shared(&expr, &vars)? {
            Value::Array(items) => Ok(items),
            other => anyhow::bail!("with_{name} gave {other}, not a list"),
        }
    }

    /// Evaluates a condition with Jinja's truthiness of the expression's value.
    pub fn eval_bool(&self, expr: &str, vars: &Vars) -> anyhow::Result<bool> {
        self.eval_bool_shared(expr, &Arc::new(vars.clone()))
    }

    /// [`eval_bool`](Self::eval_bool) with shared vars.
    pub fn eval_bool_shared(&self, expr: &str, vars: &Arc<Vars>) -> anyhow::Result<bool> {
        let expr = single_expression(expr.trim()).unwrap_or(expr);
        let source = format!("{{% if ({expr}) %}}1{{% endif %}}");
        let ctx = self.context(vars);
        let out = self.run(
            &self.strings,
            &self.strings_lax,
            &source,
            Some(expr),
            vars,
            |env| env.get_template(&source)?.render(&ctx),
        )?;
        Ok(out == "1")
    }

    /// Checks template syntax without rendering (used when a playbook loads).
    pub fn check_syntax(&self, source: &str) -> anyhow::Result<()> {
        self.files[2]
            .template_from_str(source)
            .map(|_| ())
            .map_err(|e| explain(&e, source, None, None))
    }

    /// Checks a bare expression's syntax (`when:` and friends).
    pub fn check_expr_syntax(&self, expr: &str) -> anyhow::Result<()> {
        let expr = single_expression(expr.trim()).unwrap_or(expr);
        self.files[2]
            .compile_expression(expr)
            .map(|_| ())
            .map_err(|e| explain(&e, expr, None, Some(expr)))
    }
}

/// The cached template that evaluates `expr` into [`RESULT_VAR`].
fn eval_source(expr: &str) -> String {
    format!("{{% set {RESULT_VAR} = ({expr}) %}}")
}

/// Evaluates `expr` in `env` (which must have the identity loader) to a native value.
fn eval_with(env: &Environment<'static>, expr: &str, ctx: &JValue) -> Result<JValue, Error> {
    let tmpl = env.get_template(&eval_source(expr))?;
    let captured = tmpl.render_captured(ctx)?;
    match captured.state().lookup(RESULT_VAR) {
        Some(v) if !v.is_undefined() => Ok(v),
        // `{% set %}` stores an undefined value silently; Ansible fails on it.
        _ if env.undefined_behavior() == UndefinedBehavior::Strict => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("'{}' is undefined", expr.trim()),
        )),
        _ => Ok(JValue::UNDEFINED),
    }
}

/// Whether a string contains template syntax.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn needs_render(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(items) => items.iter().any(needs_render),
        // A marker is not rendered, but rendering gives its plain text back.
        Value::Object(_) if untrusted::marked_text(v).is_some() => true,
        Value::Object(map) => map.iter().any(|(k, v)| is_template(k) || needs_render(v)),
        _ => false,
    }
}

/// `{{ expr }}` and nothing else: the inner expression.
/// `text` ending with as many newlines as `template` does (Ansible's
/// `preserve_trailing_newlines`: it adds what rendering took away, never removes).
fn with_trailing_newlines(mut text: String, template: &str) -> String {
    let count = |t: &str| t.len() - t.trim_end_matches('\n').len();
    let missing = count(template).saturating_sub(count(&text));
    text.push_str(&"\n".repeat(missing));
    text
}

fn to_json_value(v: &JValue) -> Result<Value, String> {
    if v.is_undefined() {
        return Ok(Value::Null);
    }
    serde_json::to_value(v).map_err(|e| e.to_string())
}

fn build_env(
    trim_blocks: bool,
    lstrip_blocks: bool,
    behavior: UndefinedBehavior,
) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_undefined_behavior(behavior);
    env.set_trim_blocks(trim_blocks);
    env.set_lstrip_blocks(lstrip_blocks);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(|out, _state, value| {
        // Strict environments never pass a real undefined here, only the silent one of
        // an `if` expression without `else` (`{{ "," if not loop.last }}`), which
        // prints as nothing, as in Jinja2.
        if value.is_undefined() || value.is_none() {
            return Ok(());
        }
        out.write_str(&pyfmt::py_str(value))
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "failed to write output"))
    });
    env.set_unknown_method_callback(checks::python_method);
    env.add_global("omit", OMIT);

    use filters as f;
    env.add_filter("default", f::default);
    env.add_filter("d", f::default);
    env.add_filter("mandatory", f::mandatory);
    env.add_filter("bool", f::to_bool);
    env.add_filter("int", f::to_int);
    env.add_filter("float", f::to_float);
    env.add_filter("string", f::to_string);
    env.add_filter("join", f::join);
    env.add_filter("split", f::split);
    env.add_filter("replace", f::replace);
    env.add_filter("round", f::round);
    env.add_filter("regex_replace", f::regex_replace);
    env.add_filter("regex_search", f::regex_search);
    env.add_filter("regex_findall", f::regex_findall);
    env.add_filter("regex_escape", f::regex_escape);
    env.add_filter("to_json", f::to_json_filter);
    env.add_filter("to_nice_json", f::to_nice_json);
    env.add_filter("to_yaml", f::to_yaml);
    env.add_filter("to_nice_yaml", f::to_nice_yaml);
    env.add_filter("from_json", f::from_json);
    env.add_filter("from_yaml", f::from_yaml);
    env.add_filter("b64encode", f::b64encode);
    env.add_filter("b64decode", f::b64decode);
    env.add_filter("basename", f::basename);
    env.add_filter("dirname", f::dirname);
    env.add_filter("quote", f::quote);
    env.add_filter("unique", f::unique);
    env.add_filter("union", f::union);
    env.add_filter("intersect", f::intersect);
    env.add_filter("difference", f::difference);
    env.add_filter("symmetric_difference", f::symmetric_difference);
    env.add_filter("dict2items", f::dict2items);
    env.add_filter("items2dict", f::items2dict);
    env.add_filter("combine", f::combine);
    env.add_filter("hash", f::hash);
    env.add_filter("checksum", f::checksum);
    env.add_filter("ternary", f::ternary);
    env.add_filter("flatten", f::flatten);
    env.add_filter("type_debug", f::type_debug);
    env.add_filter("extract", f::extract);
    env.add_filter("path_join", f::path_join);

    use filters_lists as fl;
    env.add_filter("subelements", fl::subelements);
    env.add_filter("product", fl::product);
    env.add_filter("zip_longest", fl::zip_longest);
    env.add_filter("random", fl::random);
    env.add_filter("shuffle", fl::shuffle);
    env.add_filter("pow", fl::pow);

    use filters_text as ft;
    env.add_filter("comment", ft::comment);
    env.add_filter("password_hash", ft::password_hash);
    env.add_filter("to_uuid", ft::to_uuid);
    env.add_filter("splitext", ft::splitext);
    env.add_filter("urlsplit", ft::urlsplit);
    env.add_filter("human_readable", ft::human_readable);
    env.add_filter("human_to_bytes", ft::human_to_bytes);
    env.add_filter("truncate", ft::truncate);
    env.add_filter("center", ft::center);
    env.add_function("now", ft::now);

    use checks as c;
    env.add_test("failed", c::failed);
    env.add_test("failure", c::failed);
    env.add_test("succeeded", c::succeeded);
    env.add_test("success", c::succeeded);
    env.add_test("successful", c::succeeded);
    env.add_test("changed", c::changed);
    env.add_test("change", c::changed);
    env.add_test("skipped", c::skipped);
    env.add_test("skip", c::skipped);
    env.add_test("match", c::is_match);
    env.add_test("search", c::is_search);
    env.add_test("regex", c::is_regex);
    env.add_test("truthy", c::truthy);
    env.add_test("falsy", c::falsy);
    env.add_test("contains", c::contains);
    env.add_test("version", c::version);
    env.add_test("version_compare", c::version);
    env.add_test("subset", c::subset);
    env.add_test("superset", c::superset);
    env.add_test("any", c::any);
    env.add_test("all", c::all);

    env.add_function("lookup", lookups::lookup);
    env.add_function("query", lookups::query);
    env.add_function("q", lookups::query);
    env.add_function(lookups::WITH_FUNCTION, lookups::with_loop);
    env
}

#[cfg(test)]
mod tests;
