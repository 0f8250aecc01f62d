//! `uri`: an HTTP(S) request made FROM THE HOST, as Ansible's uri does: a small Python
//! program ([`SCRIPT`], urllib from the host's `python3`, the interpreter Ansible's module
//! needs too) gets the request as JSON on stdin and prints the response as JSON. The result
//! has Ansible's keys: `status`, `url`, `msg`, `redirected`, `elapsed`, `cookies`, every
//! response header lowercased with `-` as `_`, `json` for JSON responses, `content` with
//! `return_content`; a status not in `status_code` fails the task.
//!
//! Like Ansible's (which has no check mode support), the task is skipped in check mode.
//! In a real run the request is made while planning, because its response is the result
//! the task registers and ops cannot produce results; the host itself is only changed
//! through an op: the `dest` file, written (and diffed) like copy's, only when it differs.

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Map, Value};

use super::args::{bool_arg, choice, get, int_opt, list, sh_quote, str_opt, str_req};
use super::fileops::{self, Attrs, WriteOpts};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::transport::{ExecOptions, FileKind};
use crate::Vars;

pub struct Uri;

/// The request program run on the host.
pub const SCRIPT: &str = include_str!("uri_request.py");

const ARGS: &[ArgDef] = &[
    ArgDef::req("url"),
    ArgDef::opt("method"),
    ArgDef::opt("body"),
    ArgDef::opt("body_format"),
    ArgDef::opt("headers"),
    ArgDef::opt("status_code"),
    ArgDef::opt("return_content"),
    ArgDef::opt("dest"),
    ArgDef::opt("creates"),
    ArgDef::opt("removes"),
    ArgDef::opt("validate_certs"),
    ArgDef::opt("timeout"),
    ArgDef::alias("url_username", &["user"]),
    ArgDef::alias("url_password", &["password"]),
    ArgDef::opt("force_basic_auth"),
    ArgDef::opt("follow_redirects"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("http_agent"),
    ArgDef::opt("use_proxy"),
];

/// The settings the host program reads.
fn request(args: &Vars) -> anyhow::Result<Value> {
    let url = str_req(args, &["url"])?;
    let method = str_opt(args, &["method"])?.unwrap_or_else(|| "GET".into());
    let method = method.to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        anyhow::bail!(
            "argument method: Parameter 'method' needs to be a single word in uppercase, like GET or POST."
        );
    }
    let body_format = choice(
        args,
        &["body_format"],
        &["raw", "json", "form-urlencoded"],
        "raw",
    )?;
    let mut headers = Map::new();
    match get(args, &["headers"]) {
        None => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                headers.insert(
                    k.clone(),
                    Value::String(super::args::scalar_text("headers", v)?),
                );
            }
        }
        Some(other) => anyhow::bail!("argument headers: expected a dict, got {other}"),
    }
    let has_type = headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    let default_type = match body_format.as_str() {
        "json" => Some("application/json"),
        "form-urlencoded" => Some("application/x-www-form-urlencoded"),
        _ => None,
    };
    if let (false, Some(t)) = (has_type, default_type) {
        headers.insert("Content-Type".into(), Value::String(t.into()));
    }
    let user = str_opt(args, &["url_username"])?;
    let password = str_opt(args, &["url_password"])?;
    let force = bool_arg(args, &["force_basic_auth"], false)?;
    if let (true, Some(u)) = (force, &user) {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{u}:{}", password.clone().unwrap_or_default()));
        headers.insert(
            "Authorization".into(),
            Value::String(format!("Basic {token}")),
        );
    }
    let follow = match str_opt(args, &["follow_redirects"])?.as_deref() {
        None => "safe".to_string(),
        Some("yes") | Some("all") | Some("urllib2") => "all".to_string(),
        Some(f @ ("no" | "none" | "safe")) => f.to_string(),
        Some(other) => anyhow::bail!(
            "argument follow_redirects: {other:?} is not one of all, no, none, safe, urllib2, yes"
        ),
    };
    Ok(serde_json::json!({
        "url": url,
        "method": method,
        "body": get(args, &["body"]).cloned().unwrap_or(Value::Null),
        "body_format": body_format,
        "headers": headers,
        "validate_certs": bool_arg(args, &["validate_certs"], true)?,
        "timeout": int_opt(args, &["timeout"])?.unwrap_or(30),
        "user": user,
        "password": password,
        "force_basic_auth": force,
        "follow": follow,
    }))
}

/// Is a content type JSON (`application/json`, `application/problem+json`, javascript)?
pub fn is_json_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let sub = mime.split_once('/').map(|(_, s)| s).unwrap_or("");
    let sub = sub.rsplit_once('+').map(|(_, s)| s).unwrap_or(sub);
    ["json", "javascript"].contains(&sub.to_ascii_lowercase().as_str())
}

/// Ansible's result from the host program's response; the body's bytes on the side.
pub fn result_of(resp: &Value, return_content: bool, ok_codes: &[i64]) -> (Vars, Vec<u8>, bool) {
    let mut r = Vars::new();
    let status = resp["status"].as_i64().unwrap_or(-1);
    let asked = resp["url"].as_str().unwrap_or("");
    for (k, v) in resp.as_object().into_iter().flatten() {
        if !["headers", "body"].contains(&k.as_str()) {
            r.insert(k.clone(), v.clone());
        }
    }
    let mut content_type = String::new();
    for pair in resp["headers"].as_array().into_iter().flatten() {
        let (Some(k), Some(v)) = (pair[0].as_str(), pair[1].as_str()) else {
            continue;
        };
        let key = k.to_ascii_lowercase().replace('-', "_");
        if key == "content_type" {
            content_type = v.to_string();
        }
        r.insert(key, Value::String(v.to_string()));
    }
    r.insert("redirected".into(), Value::Bool(false));
    if let Some(req) = resp.get("requested").and_then(Value::as_str) {
        r.insert("redirected".into(), Value::Bool(req != asked));
    }
    r.remove("requested");
    let body = resp["body"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    if is_json_type(&content_type) {
        if let Ok(js) = serde_json::from_str::<Value>(&text) {
            r.insert("json".into(), js);
        }
    }
    if return_content {
        r.insert("content".into(), Value::String(text));
    }
    let ok = ok_codes.contains(&status);
    if !ok {
        let msg = r
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let codes: Vec<String> = ok_codes.iter().map(|c| c.to_string()).collect();
        r.insert(
            "msg".into(),
            Value::String(format!(
                "Status code was {status} and not [{}]: {msg}",
                codes.join(", ")
            )),
        );
    }
    (r, body, ok)
}

#[async_trait]
impl Module for Uri {
    fn name(&self) -> &'static str {
        "uri"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let mut req = request(args)?;
        let return_content = bool_arg(args, &["return_content"], false)?;
        let codes: Vec<i64> = match list(args, &["status_code"])? {
            c if c.is_empty() => vec![200],
            c => c
                .iter()
                .map(|s| {
                    s.parse::<i64>().map_err(|_| {
                        anyhow::anyhow!("argument status_code: {s:?} is not an integer")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };
        let dest = str_opt(args, &["dest"])?;
        let attrs = Attrs::from_args(args)?;
        let mut plan = Plan::default();
        if ctx.check_mode {
            plan.unpredictable = true;
            return Ok(plan);
        }
        if let Some(c) = str_opt(args, &["creates"])? {
            if super::command::exists(ctx, &c).await? {
                let msg = format!("skipped, since '{c}' exists");
                plan.result.insert("stdout".into(), Value::String(msg));
                return Ok(plan);
            }
        }
        if let Some(r) = str_opt(args, &["removes"])? {
            if !super::command::exists(ctx, &r).await? {
                let msg = format!("skipped, since '{r}' does not exist");
                plan.result.insert("stdout".into(), Value::String(msg));
                return Ok(plan);
            }
        }
        let asked = req["url"].clone();
        let opts = ExecOptions {
            stdin: Some(serde_json::to_vec(&req)?),
            become_: ctx.become_.clone(),
            env: ctx.env.clone(),
            chdir: None,
        };
        let out = ctx
            .transport
            .exec(&format!("python3 -c {}", sh_quote(SCRIPT)), &opts)
            .await?;
        if out.rc != 0 {
            anyhow::bail!(
                "uri: the request program failed on the host (python3 is needed there): {}",
                out.stderr.trim()
            );
        }
        let mut resp: Value = serde_json::from_str(out.stdout.trim()).map_err(|e| {
            anyhow::anyhow!("uri: unexpected output from the host ({e}): {}", out.stdout)
        })?;
        resp["requested"] = asked;
        if let Some(o) = req.as_object_mut() {
            o.remove("password");
        }
        let (mut result, body, ok) = result_of(&resp, return_content, &codes);
        result.insert("changed".into(), Value::Bool(false));
        let status = resp["status"].as_i64().unwrap_or(-1);
        if let (Some(dest), true) = (dest, ok && status != 304) {
            let st = ctx.transport.stat(&dest, ctx.become_.as_ref()).await?;
            let path = match &st {
                Some(s) if s.kind == FileKind::Directory => {
                    let url = result["url"].as_str().unwrap_or("");
                    let name = url
                        .split(['?', '#'])
                        .next()
                        .and_then(|u| u.rsplit('/').next())
                        .filter(|n| !n.is_empty())
                        .unwrap_or("index.html");
                    format!("{}/{name}", dest.trim_end_matches('/'))
                }
                _ => dest.clone(),
            };
            let obs = fileops::observe(ctx, &path, true).await?;
            let ids = fileops::resolve_ids(ctx, &attrs).await?;
            let wopts = WriteOpts {
                after_header: result["url"].as_str().unwrap_or("").to_string(),
                force: true,
                ..Default::default()
            };
            fileops::plan_content(&mut plan, &path, &obs, &body, &attrs, &ids, &wopts)?;
            result.insert("path".into(), Value::String(path));
        }
        if !ok {
            plan.failed = result.get("msg").and_then(Value::as_str).map(String::from);
        }
        result.remove("changed");
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_types() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("application/problem+json; charset=utf-8"));
        assert!(!is_json_type("text/html"));
    }

    #[test]
    fn results_have_lowercased_headers_json_and_status_checks() {
        let resp = json!({"url": "http://h/x", "requested": "http://h/x", "status": 200,
            "msg": "OK (8 bytes)", "elapsed": 0,
            "headers": [["Content-Type", "application/json"], ["X-Req-Id", "7"]],
            "body": base64::engine::general_purpose::STANDARD.encode("{\"a\": 1}")});
        let (r, body, ok) = result_of(&resp, false, &[200]);
        assert!(ok);
        assert_eq!(body, b"{\"a\": 1}");
        assert_eq!(r["x_req_id"], "7");
        assert_eq!(r["content_type"], "application/json");
        assert_eq!(r["json"], json!({"a": 1}));
        assert_eq!(r["redirected"], false);
        assert!(r.get("content").is_none() && r.get("requested").is_none());
        let (r, _, ok) = result_of(&resp, true, &[201, 204]);
        assert!(!ok);
        assert_eq!(
            r["msg"],
            "Status code was 200 and not [201, 204]: OK (8 bytes)"
        );
        assert_eq!(r["content"], "{\"a\": 1}");
    }

    #[test]
    fn bad_method_and_json_content_type() {
        let a = json!({"url": "http://x", "method": "get it"});
        assert!(request(a.as_object().unwrap()).is_err());
        let a = json!({"url": "http://x", "body_format": "json", "body": {"a": 1}});
        let r = request(a.as_object().unwrap()).unwrap();
        assert_eq!(r["headers"]["Content-Type"], "application/json");
        assert_eq!(r["method"], "GET");
    }
}
