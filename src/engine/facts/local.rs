//! Local facts (`fact_path/*.fact`): the script's base64 lines decoded, each file's content
//! read as JSON, else INI, as Ansible's local collector does.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::parsers;

/// The `@@local` lines -> `ansible_local`: each `*.fact` file by its name without `.fact`,
/// JSON first, else INI; a failing script or unreadable content becomes the message Ansible
/// puts in its place.
pub fn local_facts(text: &str) -> Map<String, Value> {
    let b64 = |s: &str| -> Vec<u8> {
        if s == "-" {
            return vec![];
        }
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_default()
    };
    let mut out = Map::new();
    for line in text.lines() {
        let (content, path) = match line.split_once(' ') {
            Some(("x", rest)) => {
                let mut parts = rest.splitn(4, ' ');
                let (Some(rc), Some(o), Some(e), Some(path)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if rc != "0" {
                    let err = String::from_utf8_lossy(&b64(e)).into_owned();
                    out.insert(
                        fact_name(path),
                        json!(format!(
                            "Failure executing fact script ({path}), rc: {rc}, err: {err}"
                        )),
                    );
                    continue;
                }
                (b64(o), path)
            }
            Some(("f", rest)) => match rest.split_once(' ') {
                Some((c, path)) => (b64(c), path),
                None => continue,
            },
            _ => continue,
        };
        let value = match String::from_utf8(content) {
            Err(_) => json!(format!(
                "error loading fact - output of running \"{path}\" was not utf-8"
            )),
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => v,
                Err(_) => match parsers::ini(&text) {
                    Some(m) => Value::Object(m),
                    None => json!(format!(
                        "error loading facts as JSON or ini - please check content: {path}"
                    )),
                },
            },
        };
        out.insert(fact_name(path), value);
    }
    out
}

pub fn fact_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.replace(".fact", "")
}
