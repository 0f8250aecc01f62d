//! Service-discovery DNS (`<app>.service.infra`, `<app>.service.<dc>.infra`, A and SRV)
//! and forwarding of other datacenters' names to their control nodes, plus Consul's
//! catalog HTTP endpoint over the same data.
//!
//! The scheduler implements [`ServiceCatalog`] from its state, starts a [`DnsServer`] with
//! [`DnsArgs::config`], and merges [`catalog_router`] into its API router. Nothing here
//! imports the scheduler.
//!
//! Files: `catalog` (the trait, the snapshot, the app-id -> name convention), `config`
//! (flags), `names` (what a query name asks for), `answer` (local authoritative answers),
//! `forward` (WAN forwarding), `server` (hickory-server, UDP + TCP), `http` (Consul API).

pub mod answer;
pub mod catalog;
pub mod config;
pub mod forward;
pub mod http;
pub mod names;
pub mod network_names;
pub mod server;

pub use catalog::{
    service_name, CatalogSnapshot, Node, ServiceCatalog, ServiceInstance, StaticCatalog,
};
pub use config::{DnsArgs, DnsConfig};
pub use http::catalog_router;
pub use server::DnsServer;
