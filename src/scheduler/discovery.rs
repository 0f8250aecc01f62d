//! The scheduler's state as service discovery (src/dns) sees it: running tasks with their
//! health, and the agents as nodes.

use std::net::IpAddr;
use std::sync::Arc;

use crate::api::agent::TaskState;
use crate::dns::{CatalogSnapshot, Node, ServiceCatalog, ServiceInstance};
use crate::scheduler::core::Scheduler;
use crate::scheduler::state::is_healthy;

/// Answers DNS and the Consul-shaped catalog from the scheduler's live state.
pub struct SchedulerCatalog(pub Arc<Scheduler>);

impl ServiceCatalog for SchedulerCatalog {
    fn snapshot(&self) -> CatalogSnapshot {
        let state = self.0.lock();
        let nodes = state
            .agents
            .values()
            .filter(|a| !a.record.lost)
            .filter_map(|a| {
                let r = &a.record.registration;
                Some(Node {
                    id: r.agent_id.clone(),
                    name: r.hostname.clone(),
                    address: r.address.parse().ok()?,
                })
            })
            .collect();
        let instances = state
            .tasks
            .values()
            .filter(|t| !t.killing && t.state == TaskState::Running)
            .filter_map(|t| {
                let agent = state.agents.get(&t.agent_id);
                let host_address: IpAddr = agent
                    .and_then(|a| a.record.registration.address.parse().ok())
                    .or_else(|| t.host.parse().ok())?;
                // A container network task answers with its own address and container ports.
                let network = t.spec.docker.as_ref().and_then(|d| d.network_name.clone());
                let own = t.ip_addresses.first().and_then(|ip| ip.parse().ok());
                let (address, ports, network) = match (network, own) {
                    (Some(network), Some(own)) => {
                        let ports = state
                            .apps
                            .get(&t.app_id)
                            .map(|a| a.spec.container_ports.clone())
                            .unwrap_or_default();
                        (own, ports, Some(network))
                    }
                    // Not reported yet: not answered (its host has no such ports).
                    (Some(_), None) => return None,
                    (None, _) => (host_address, t.spec.host_ports.clone(), None),
                };
                Some(ServiceInstance {
                    app_id: t.app_id.clone(),
                    task_id: t.id.clone(),
                    node: agent.map_or_else(
                        || t.host.clone(),
                        |a| a.record.registration.hostname.clone(),
                    ),
                    address,
                    ports,
                    healthy: is_healthy(t) && !agent.is_some_and(|a| a.record.lost),
                    tags: t.spec.labels.keys().cloned().collect(),
                    network,
                })
            })
            .collect();
        CatalogSnapshot {
            instances,
            nodes,
            index: 0,
        }
    }
}
