//! What service discovery knows about the cluster: the [`ServiceCatalog`] trait the scheduler
//! implements from its state, the snapshot it returns, and the app-id -> service-name
//! convention. DNS answers and the Consul-shaped HTTP catalog both read only this, so the
//! scheduler's internals never leak into `src/dns`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// One running task of an app, as discovery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The Marathon app id (`/group/web`); turned into a service name by [`service_name`].
    pub app_id: String,
    /// The task id (Consul's `ServiceID`).
    pub task_id: String,
    /// The hostname of the agent running it (a name under `node.<domain>`).
    pub node: String,
    /// Where the task is reachable (the agent's address).
    pub address: IpAddr,
    /// The host ports of the task, in port-definition order.
    pub ports: Vec<u16>,
    /// Running and passing all of its health checks (or running without any). Only healthy
    /// instances are answered in DNS.
    pub healthy: bool,
    /// Consul's `ServiceTags` (e.g. the app's label keys); may be empty.
    pub tags: Vec<String>,
    /// The container network the task is on: then `address` is the task's own address on
    /// it and `ports` are its container ports (issue 16, docs/networks.md).
    pub network: Option<String>,
}

/// One agent (a name under `node.<domain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The agent's stable id (Consul's node `ID`).
    pub id: String,
    /// Its hostname.
    pub name: String,
    pub address: IpAddr,
}

/// Everything discovery answers from, taken at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogSnapshot {
    pub instances: Vec<ServiceInstance>,
    pub nodes: Vec<Node>,
    /// A counter that grows when the catalog changes (`X-Consul-Index`); 0 if unknown.
    pub index: u64,
}

/// The source of discovery data. The scheduler implements it from its state; it is called
/// once per DNS query or HTTP request, so it should only copy what it needs under its lock.
pub trait ServiceCatalog: Send + Sync + 'static {
    fn snapshot(&self) -> CatalogSnapshot;
}

impl<T: ServiceCatalog + ?Sized> ServiceCatalog for Arc<T> {
    fn snapshot(&self) -> CatalogSnapshot {
        (**self).snapshot()
    }
}

/// A catalog held in memory and replaced as a whole: for tests, and for callers that
/// push snapshots instead of being asked for them.
#[derive(Debug, Default)]
pub struct StaticCatalog {
    snapshot: Mutex<CatalogSnapshot>,
}

impl StaticCatalog {
    pub fn new(snapshot: CatalogSnapshot) -> StaticCatalog {
        StaticCatalog {
            snapshot: Mutex::new(snapshot),
        }
    }

    pub fn replace(&self, snapshot: CatalogSnapshot) {
        let mut guard = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        *guard = snapshot;
    }
}

impl ServiceCatalog for StaticCatalog {
    fn snapshot(&self) -> CatalogSnapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The service name of a Marathon app id, following Mesos-DNS: the path segments are
/// reversed and joined with `-`, so `/web` is `web` and `/shop/backend/api` is
/// `api-backend-shop` (`api-backend-shop.service.infra`). Lowercased; every character that
/// is not a letter, digit or `-` becomes `-`. Two apps that map to the same name (`/a/b` and
/// `/b-a`) share it.
pub fn service_name(app_id: &str) -> String {
    let segments: Vec<&str> = app_id.split('/').filter(|s| !s.is_empty()).collect();
    let joined = segments.iter().rev().copied().collect::<Vec<_>>().join("-");
    joined
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl CatalogSnapshot {
    /// All instances (healthy or not) of the service called `name`.
    pub fn instances_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ServiceInstance> {
        self.instances
            .iter()
            .filter(move |i| service_name(&i.app_id).eq_ignore_ascii_case(name))
    }

    /// The node called `name` (case-insensitive).
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_reverse_path_segments() {
        assert_eq!(service_name("/web"), "web");
        assert_eq!(service_name("web"), "web");
        assert_eq!(service_name("/shop/backend/api"), "api-backend-shop");
        assert_eq!(service_name("/Group/My_App.v2"), "my-app-v2-group");
    }

    #[test]
    fn instances_are_found_by_service_name() {
        let instance = |app: &str| ServiceInstance {
            app_id: app.into(),
            task_id: format!("{app}.1"),
            node: "n1".into(),
            address: "10.0.0.1".parse().unwrap(),
            ports: vec![1],
            healthy: true,
            tags: vec![],
            network: None,
        };
        let snap = CatalogSnapshot {
            instances: vec![instance("/g/app"), instance("/app"), instance("/other")],
            nodes: vec![],
            index: 0,
        };
        let found: Vec<_> = snap.instances_of("APP-G").map(|i| &i.app_id).collect();
        assert_eq!(found, vec!["/g/app"]);
        assert_eq!(snap.instances_of("app").count(), 1);
    }
}
