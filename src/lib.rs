//! `infra`: one binary that provisions hosts Ansible-style over SSH, creates local clusters
//! (the `vagrant up` of this project), and runs the platform's scheduler, agent and proxy.
//!
//! Data flows one way: cli -> engine -> modules -> transport; cli -> client -> scheduler API.
//! The scheduler never imports the engine; the agent only shares `api` types with the scheduler.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod dns;
pub mod engine;
pub mod fsutil;
pub mod inventory;
pub mod modules;
pub mod pki;
pub mod playbook;
pub mod provider;
pub mod proxy;
pub mod report;
pub mod scheduler;
pub mod template;
pub mod tls;
pub mod transport;
pub mod ui;
pub mod vault;

/// Variables as every layer sees them: an insertion-ordered JSON object.
pub type Vars = serde_json::Map<String, serde_json::Value>;
