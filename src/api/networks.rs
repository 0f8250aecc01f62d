//! Container networks in an app definition (issue 16): which named network an app's tasks
//! join, read from Marathon 1.5's `networks: [{"mode": "container", "name": ...}]` or the
//! older `ipAddress: {"networkName": ...}`, and the 422 details when either is malformed.
//! A task on such a network gets its own address there, so its container ports are reached
//! directly; host ports exist only where a port mapping asks for a `hostPort`.

use serde_json::{Map, Value};

use crate::api::marathon::App;

/// The network name a container network task joins, if the app asks for one.
pub fn container_network(app: &App) -> Option<String> {
    if let Some(net) = app.networks.iter().find(|n| n.mode == "container") {
        return net.name.clone();
    }
    legacy_network_name(app.extra.get("ipAddress"))
}

fn legacy_network_name(ip_address: Option<&Value>) -> Option<String> {
    ip_address?
        .get("networkName")?
        .as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// Docker network names infra accepts: what a DNS label allows (the name is also a DNS
/// label, `<app>.<net>`), so letters, digits and `-`, at most 63 characters.
pub fn valid_network_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

const NAME_RULE: &str =
    "a container network name is lowercase letters, digits and '-' (at most 63 characters)";

/// The (path, message) pairs of what is wrong with the container network fields.
pub fn check(def: &Map<String, Value>) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    if let Some(Value::Array(items)) = def.get("networks") {
        let mut containers = 0;
        for (i, item) in items.iter().enumerate() {
            if item.get("mode").and_then(Value::as_str) != Some("container") {
                continue;
            }
            containers += 1;
            let path = format!("/networks({i})/name");
            match item.get("name") {
                Some(Value::String(name)) if valid_network_name(name) => {}
                Some(Value::String(_)) => errors.push((path, NAME_RULE.to_string())),
                None | Some(Value::Null) => errors.push((
                    path,
                    "a network of mode container needs the name of the network".to_string(),
                )),
                Some(_) => errors.push((path, "error.expected.jsstring".to_string())),
            }
        }
        if containers > 1 {
            errors.push((
                "/networks".to_string(),
                "infra joins a task to one container network; several are given".to_string(),
            ));
        }
        let modes: Vec<&str> = items
            .iter()
            .filter_map(|n| n.get("mode").and_then(Value::as_str))
            .collect();
        if containers > 0 && modes.iter().any(|m| *m != "container") {
            errors.push((
                "/networks".to_string(),
                "mode container cannot be mixed with host or container/bridge".to_string(),
            ));
        }
    }
    let on_network = def
        .get("networks")
        .and_then(Value::as_array)
        .is_some_and(|n| {
            n.iter()
                .any(|n| n.get("mode").and_then(Value::as_str) == Some("container"))
        })
        || def
            .get("ipAddress")
            .and_then(|ip| ip.get("networkName"))
            .is_some_and(Value::is_string);
    if on_network {
        errors.extend(health_checks_without_host_port(def));
    }
    match def.get("ipAddress") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ip)) => match ip.get("networkName") {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) if valid_network_name(name) => {}
            Some(Value::String(_)) => {
                errors.push(("/ipAddress/networkName".to_string(), NAME_RULE.to_string()))
            }
            Some(_) => errors.push((
                "/ipAddress/networkName".to_string(),
                "error.expected.jsstring".to_string(),
            )),
        },
        Some(_) => errors.push((
            "/ipAddress".to_string(),
            "error.expected.jsobject".to_string(),
        )),
    }
    errors
}

/// The agent runs HTTP and TCP checks against a host port on 127.0.0.1, so on a container
/// network such a check needs its port mapping to ask for a `hostPort` (a COMMAND check runs
/// inside the container and needs none).
fn health_checks_without_host_port(def: &Map<String, Value>) -> Vec<(String, String)> {
    let container = def.get("container");
    let mappings = container
        .and_then(|c| c.get("portMappings"))
        .or_else(|| container?.get("docker")?.get("portMappings"))
        .and_then(Value::as_array);
    let Some(checks) = def.get("healthChecks").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for (i, hc) in checks.iter().enumerate() {
        let protocol = hc.get("protocol").and_then(Value::as_str).unwrap_or("HTTP");
        if protocol == "COMMAND" || hc.get("port").is_some_and(|p| !p.is_null()) {
            continue;
        }
        let index = hc.get("portIndex").and_then(Value::as_u64).unwrap_or(0) as usize;
        let host_port = mappings
            .and_then(|m| m.get(index))
            .and_then(|m| m.get("hostPort"))
            .is_some_and(|p| !p.is_null());
        if !host_port {
            errors.push((
                format!("/healthChecks({i})/portIndex"),
                "on a container network an HTTP or TCP health check needs a port mapping \
                 with a hostPort (or use a COMMAND check, run inside the container)"
                    .to_string(),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(def: Value) -> App {
        serde_json::from_value(def).expect("app json")
    }

    #[test]
    fn reads_the_network_from_either_shape() {
        let current = app(json!({"id": "/a", "networks": [{"mode": "container", "name": "apps"}]}));
        assert_eq!(container_network(&current).as_deref(), Some("apps"));
        let legacy = app(json!({"id": "/a", "ipAddress": {"networkName": "apps"}}));
        assert_eq!(container_network(&legacy).as_deref(), Some("apps"));
        let bridge = app(json!({"id": "/a", "networks": [{"mode": "container/bridge"}]}));
        assert_eq!(container_network(&bridge), None);
    }

    fn paths(def: Value) -> Vec<String> {
        check(def.as_object().expect("object"))
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            paths(json!({"networks": [{"mode": "container"}]})),
            vec!["/networks(0)/name"]
        );
        assert_eq!(
            paths(json!({"networks": [{"mode": "container", "name": "Bad_Name"}]})),
            vec!["/networks(0)/name"]
        );
        assert_eq!(
            paths(json!({"networks": [{"mode": "host"}, {"mode": "container", "name": "a"}]})),
            vec!["/networks"]
        );
        assert_eq!(
            paths(json!({"ipAddress": {"networkName": 3}})),
            vec!["/ipAddress/networkName"]
        );
        assert!(paths(json!({"networks": [{"mode": "container", "name": "apps"}]})).is_empty());
        let checked = |mapping: Value| {
            paths(json!({"networks": [{"mode": "container", "name": "apps"}],
                "container": {"portMappings": [mapping]},
                "healthChecks": [{"protocol": "HTTP", "portIndex": 0}]}))
        };
        assert_eq!(
            checked(json!({"containerPort": 80})),
            vec!["/healthChecks(0)/portIndex"]
        );
        assert!(checked(json!({"containerPort": 80, "hostPort": 0})).is_empty());
    }
}
