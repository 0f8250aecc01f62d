//! The data model the nginx template sees: every app with its name, routes and *healthy
//! running* backends, built from the scheduler's apps (with embedded tasks). Pure data, so
//! the naming and the health filter are unit-tested without a scheduler.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::marathon::{App, Task};

/// One app as the template sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyApp {
    /// The Marathon id, e.g. `/shop/web`.
    pub id: String,
    /// The id without its leading slash, slashes replaced by `-`: `shop-web`.
    pub name: String,
    /// The path route: `/<name>/`.
    pub path: String,
    /// The host route: `<name>.<domain>`.
    pub host: String,
    /// The app's first service port, when it has a non-zero one.
    pub service_port: Option<u32>,
    pub labels: BTreeMap<String, String>,
    /// Healthy running tasks, sorted, as `host:port` pairs.
    pub backends: Vec<Backend>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Backend {
    pub host: String,
    pub port: u16,
}

/// `/shop/web` -> `shop-web`.
pub fn app_name(id: &str) -> String {
    id.trim_start_matches('/').replace('/', "-")
}

/// A task takes traffic when it is running and, if it has health checks, every result is
/// alive. A task the app declares checks for but that has no result yet is not healthy.
pub fn task_is_healthy(task: &Task, app_has_checks: bool) -> bool {
    if task.state != "TASK_RUNNING" {
        return false;
    }
    if task.health_check_results.is_empty() {
        return !app_has_checks;
    }
    task.health_check_results.iter().all(|r| r.alive)
}

/// The first non-zero service port: `portDefinitions[0].port`, else the first port
/// mapping's `servicePort` (BRIDGE networking).
pub fn service_port(app: &App) -> Option<u32> {
    if let Some(first) = app.port_definitions.first() {
        return (first.port != 0).then_some(first.port);
    }
    port_mappings(app)?
        .first()
        .and_then(|m| m.service_port)
        .filter(|p| *p != 0)
}

/// `container.portMappings`, or the older `container.docker.portMappings`.
fn port_mappings(app: &App) -> Option<&Vec<crate::api::marathon::PortMapping>> {
    let container = app.container.as_ref()?;
    container
        .port_mappings
        .as_ref()
        .or_else(|| container.docker.as_ref()?.port_mappings.as_ref())
}

/// The first container port of an app on a container network: its tasks are reached at
/// their own address on that port (docs/networks.md), not through host ports.
pub fn container_port(app: &App) -> Option<u16> {
    crate::api::networks::container_network(app)?;
    port_mappings(app)?
        .first()
        .and_then(|m| u16::try_from(m.container_port).ok())
}

/// The template's view of one app (its `tasks` embedded).
pub fn proxy_app(app: &App, domain: &str) -> ProxyApp {
    let name = app_name(&app.id);
    let has_checks = !app.health_checks.is_empty();
    let mut backends: Vec<Backend> = app
        .tasks
        .iter()
        .flatten()
        .filter(|t| task_is_healthy(t, has_checks))
        .filter_map(|t| match container_port(app) {
            Some(port) => Some(Backend {
                host: t.ip_addresses.first()?.ip_address.clone(),
                port,
            }),
            None => Some(Backend {
                host: t.host.clone(),
                port: *t.ports.first()?,
            }),
        })
        .collect();
    backends.sort();
    backends.dedup();
    ProxyApp {
        id: app.id.clone(),
        path: format!("/{name}/"),
        host: format!("{name}.{domain}"),
        name,
        service_port: service_port(app),
        labels: app.labels.clone(),
        backends,
    }
}

/// Every app, sorted by id so the rendered config is stable.
pub fn proxy_apps(apps: &[App], domain: &str) -> Vec<ProxyApp> {
    let mut out: Vec<ProxyApp> = apps.iter().map(|a| proxy_app(a, domain)).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(value: serde_json::Value) -> App {
        serde_json::from_value(value).unwrap()
    }

    fn task(state: &str, port: u16, alive: &[bool]) -> serde_json::Value {
        let results: Vec<_> = alive
            .iter()
            .map(|a| json!({"alive": a, "consecutiveFailures": 0, "taskId": "t"}))
            .collect();
        json!({"id": format!("t{port}"), "appId": "/a", "host": "127.0.0.1",
               "ports": [port], "state": state, "version": "v",
               "healthCheckResults": results})
    }

    #[test]
    fn names_paths_and_hosts() {
        assert_eq!(app_name("/shop/web"), "shop-web");
        assert_eq!(app_name("/web"), "web");
        let a = proxy_app(&app(json!({"id": "/shop/web"})), "infra");
        assert_eq!(a.name, "shop-web");
        assert_eq!(a.path, "/shop-web/");
        assert_eq!(a.host, "shop-web.infra");
        assert_eq!(a.service_port, None);
        assert!(a.backends.is_empty());
    }

    #[test]
    fn only_healthy_running_tasks_are_backends() {
        let checked = app(json!({
            "id": "/web",
            "healthChecks": [{"protocol": "HTTP", "path": "/"}],
            "portDefinitions": [{"port": 10001}],
            "tasks": [
                task("TASK_RUNNING", 3, &[true]),
                task("TASK_RUNNING", 1, &[true, true]),
                task("TASK_RUNNING", 2, &[true, false]),
                task("TASK_RUNNING", 4, &[]),
                task("TASK_STAGING", 5, &[true]),
                task("TASK_KILLING", 6, &[true]),
            ]
        }));
        let a = proxy_app(&checked, "infra");
        let ports: Vec<u16> = a.backends.iter().map(|b| b.port).collect();
        assert_eq!(ports, vec![1, 3], "sorted, only all-alive running tasks");
        assert_eq!(a.service_port, Some(10001));

        let unchecked = app(json!({
            "id": "/plain",
            "tasks": [task("TASK_RUNNING", 7, &[]), task("TASK_STARTING", 8, &[])]
        }));
        let a = proxy_app(&unchecked, "infra");
        assert_eq!(
            a.backends,
            vec![Backend {
                host: "127.0.0.1".into(),
                port: 7
            }]
        );
    }

    #[test]
    fn service_port_from_bridge_mappings_and_zero_means_none() {
        let bridge = app(json!({"id": "/b", "container": {"type": "DOCKER",
            "docker": {"image": "x", "network": "BRIDGE",
              "portMappings": [{"containerPort": 80, "servicePort": 10005}]}}}));
        assert_eq!(service_port(&bridge), Some(10005));
        let zero = app(json!({"id": "/z", "portDefinitions": [{"port": 0}]}));
        assert_eq!(service_port(&zero), None);
    }

    #[test]
    fn container_network_tasks_are_reached_at_their_address_and_container_port() {
        let networked = app(json!({"id": "/n",
            "networks": [{"mode": "container", "name": "apps"}],
            "container": {"type": "DOCKER", "docker": {"image": "x"},
              "portMappings": [{"containerPort": 8080}]},
            "tasks": [{"id": "t1", "appId": "/n", "host": "172.20.0.3", "ports": [],
                       "state": "TASK_RUNNING", "version": "v",
                       "ipAddresses": [{"ipAddress": "10.200.1.2", "protocol": "IPv4"}]},
                      {"id": "t2", "appId": "/n", "host": "172.20.0.4", "ports": [],
                       "state": "TASK_RUNNING", "version": "v"}]}));
        let a = proxy_app(&networked, "infra");
        assert_eq!(
            a.backends,
            vec![Backend {
                host: "10.200.1.2".into(),
                port: 8080
            }],
            "a task without its address yet is not a backend"
        );
    }

    #[test]
    fn apps_sorted_by_id() {
        let apps = vec![app(json!({"id": "/b"})), app(json!({"id": "/a"}))];
        let names: Vec<String> = proxy_apps(&apps, "d").into_iter().map(|a| a.name).collect();
        assert_eq!(names, vec!["a", "b"]);
    }
}
