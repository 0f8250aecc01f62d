//! The minijinja environment with Ansible's common filters and tests.
//!
//! Undefined variables are errors (as in Ansible), except where `default`, `is defined`
//! and friends look at them. Owns: rendering strings, whole data structures, templates
//! and `when` expressions. May call: nothing else.

use serde_json::Value;

use crate::Vars;

/// Renders Ansible-style templates. Cheap to share (`Arc`) between hosts.
pub struct Templar {}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

impl Templar {
    pub fn new() -> Self {
        Templar {}
    }

    /// Renders a string. A string that is exactly one `{{ expr }}` keeps the expression's
    /// native type (a list stays a list), as Ansible does.
    pub fn render_value(&self, value: &Value, vars: &Vars) -> anyhow::Result<Value> {
        let _ = (value, vars);
        anyhow::bail!("templating is not implemented yet")
    }

    /// Renders a string to a string.
    pub fn render_str(&self, source: &str, vars: &Vars) -> anyhow::Result<String> {
        let _ = (source, vars);
        anyhow::bail!("templating is not implemented yet")
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
        let _ = (source, vars, trim_blocks, lstrip_blocks);
        anyhow::bail!("templating is not implemented yet")
    }

    /// Evaluates a bare expression (`when:`, `until:`, `changed_when:`) to a value.
    pub fn eval(&self, expr: &str, vars: &Vars) -> anyhow::Result<Value> {
        let _ = (expr, vars);
        anyhow::bail!("templating is not implemented yet")
    }

    /// Evaluates a condition with Ansible's truthiness.
    pub fn eval_bool(&self, expr: &str, vars: &Vars) -> anyhow::Result<bool> {
        let _ = (expr, vars);
        anyhow::bail!("templating is not implemented yet")
    }

    /// Checks template syntax without rendering (used when a playbook loads).
    pub fn check_syntax(&self, source: &str) -> anyhow::Result<()> {
        let _ = source;
        Ok(())
    }
}
