//! Variables as Ansible sees them: a var whose value is itself a template
//! (`url: "http://{{ host }}:80"`) is rendered when it is read, against the same vars,
//! at any depth (`app.urls[0]`), keeping native types for a lone `{{ expr }}`. A var that
//! refers back to itself is an error, not a hang. Nothing is converted up front: maps and
//! lists are views into the shared vars, so reading `hostvars[h].x` costs a few lookups.

use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as JValue};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value as Json;

use super::{is_template, single_expression};
use crate::Vars;

/// One render call's variables.
pub(super) struct LazyCtx {
    env: Arc<Environment<'static>>,
    vars: Arc<Vars>,
    /// Paths of vars being rendered right now (loop detection).
    resolving: Mutex<Vec<String>>,
}

impl fmt::Debug for LazyCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyCtx")
            .field("vars", &self.vars.len())
            .finish()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

impl LazyCtx {
    /// The root context value for rendering with `vars`.
    pub(super) fn root(env: Arc<Environment<'static>>, vars: Arc<Vars>) -> JValue {
        let ctx = Arc::new(LazyCtx {
            env,
            vars,
            resolving: Mutex::new(Vec::new()),
        });
        JValue::from_object(LazyMap {
            ctx,
            path: Vec::new(),
            scope: false,
        })
    }

    /// The variables this render sees (for lookups that render: `template`).
    pub(super) fn vars(&self) -> &Arc<Vars> {
        &self.vars
    }

    /// The environment templated variables render in.
    pub(super) fn env(&self) -> &Arc<Environment<'static>> {
        &self.env
    }

    fn lookup(&self, path: &[Step]) -> Option<&Json> {
        let (first, rest) = path.split_first()?;
        let Step::Key(k) = first else { return None };
        let mut current = self.vars.get(k)?;
        for step in rest {
            current = match (current, step) {
                (Json::Object(m), Step::Key(k)) => m.get(k)?,
                (Json::Array(a), Step::Index(i)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(current)
    }

    fn wrap(self: &Arc<Self>, json: &Json, path: Vec<Step>) -> JValue {
        if let Some(text) = super::untrusted::marked_text(json) {
            return JValue::from(text);
        }
        match json {
            Json::Object(_) => JValue::from_object(LazyMap {
                ctx: self.clone(),
                path,
                scope: false,
            }),
            Json::Array(_) => JValue::from_object(LazySeq {
                ctx: self.clone(),
                path,
            }),
            Json::String(s) if is_template(s) => self.render_nested(s, &path),
            Json::String(s) => JValue::from(s.as_str()),
            other => JValue::from_serialize(other),
        }
    }

    fn render_nested(self: &Arc<Self>, source: &str, path: &[Step]) -> JValue {
        let name = path_name(path);
        {
            let Ok(mut resolving) = self.resolving.lock() else {
                return JValue::from(Error::new(ErrorKind::InvalidOperation, "lock poisoned"));
            };
            if resolving.contains(&name) {
                return JValue::from(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("recursive loop detected in template for variable '{name}'"),
                ));
            }
            resolving.push(name.clone());
        }
        // A var inside `hostvars[h]` renders in that host's scope, as in Ansible; names
        // it lacks fall back to the current vars.
        let in_hostvars = path.len() >= 3 && matches!(&path[0], Step::Key(k) if k == "hostvars");
        let root = JValue::from_object(LazyMap {
            ctx: self.clone(),
            path: if in_hostvars {
                path[..2].to_vec()
            } else {
                Vec::new()
            },
            scope: in_hostvars,
        });
        let result = match single_expression(source) {
            Some(expr) => {
                super::eval_with(&self.env, &super::scan::literals_as_written(expr), &root)
            }
            None => self
                .env
                .get_template(source)
                .and_then(|t| t.render(&root))
                .map(JValue::from),
        };
        if let Ok(mut resolving) = self.resolving.lock() {
            resolving.retain(|n| n != &name);
        }
        result.unwrap_or_else(|e| {
            let inner =
                super::errors::explain(&e, source, Some((&self.env, &self.vars)), Some(source));
            JValue::from(Error::new(
                ErrorKind::InvalidOperation,
                format!("in variable '{name}': {inner:#}"),
            ))
        })
    }
}

fn path_name(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Debug)]
struct LazyMap {
    ctx: Arc<LazyCtx>,
    path: Vec<Step>,
    /// A host's scope (`hostvars[h]` as a root): missing names come from the top level.
    scope: bool,
}

impl LazyMap {
    fn map(&self) -> Option<&serde_json::Map<String, Json>> {
        if self.path.is_empty() {
            return Some(&self.ctx.vars);
        }
        match self.ctx.lookup(&self.path)? {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }
}

impl Object for LazyMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let key = key.as_str()?;
        if key == super::lookups::ROOT_KEY && self.path.is_empty() && !self.scope {
            return Some(JValue::from_object(super::lookups::RootHandle(
                self.ctx.clone(),
            )));
        }
        match self.map()?.get(key) {
            Some(child) => {
                let mut path = self.path.clone();
                path.push(Step::Key(key.to_string()));
                Some(self.ctx.wrap(child, path))
            }
            None if self.scope => {
                let child = self.ctx.vars.get(key)?;
                Some(self.ctx.wrap(child, vec![Step::Key(key.to_string())]))
            }
            None => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.map() {
            Some(m) => Enumerator::Values(m.keys().map(|k| JValue::from(k.as_str())).collect()),
            None => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.map().map(|m| m.len())
    }
}

#[derive(Debug)]
struct LazySeq {
    ctx: Arc<LazyCtx>,
    path: Vec<Step>,
}

impl LazySeq {
    fn items(&self) -> Option<&Vec<Json>> {
        match self.ctx.lookup(&self.path)? {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl Object for LazySeq {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let items = self.items()?;
        let idx = key.as_i64()?;
        let idx = if idx < 0 {
            usize::try_from(items.len() as i64 + idx).ok()?
        } else {
            usize::try_from(idx).ok()?
        };
        let child = items.get(idx)?;
        let mut path = self.path.clone();
        path.push(Step::Index(idx));
        Some(self.ctx.wrap(child, path))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.items() {
            Some(a) => Enumerator::Seq(a.len()),
            None => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.items().map(|a| a.len())
    }
}
