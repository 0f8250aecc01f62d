//! `infra agent`: registers with the scheduler, pulls its assignments with each heartbeat,
//! runs tasks (processes and Docker containers), runs their health checks, reports status,
//! and adopts its running tasks after a restart. Shares only `api` types with the scheduler.
//!
//! - [`config`]: flags, resource detection, the stable agent id;
//! - [`supervisor`]: the level-triggered task table (start what is wanted, kill the rest);
//! - [`process`] and [`docker`]: the two task runtimes; [`cgroup`]: process memory limits;
//! - [`health`]: HTTP/TCP/COMMAND health checks; [`logs`]: task output to syslog;
//!   [`output`]: the tails of task output sent with heartbeats;
//! - [`table`]: the task table persisted in the data dir, for adoption; [`procfs`]: pids;
//! - [`daemon`]: registration and the heartbeat loop; [`report`]: what each heartbeat
//!   reports (only changes, to a scheduler that understands them);
//! - [`volumes`]: local persistent volumes that outlive their tasks; [`volume_server`],
//!   [`volume_mover`] and [`volume_manifest`]: moving them agent to agent (mutual TLS).

pub mod cgroup;
pub mod config;
pub mod container_network;
pub mod daemon;
pub mod docker;
pub mod health;
pub mod logs;
pub mod output;
pub mod process;
pub mod procfs;
pub mod report;
pub mod supervisor;
pub mod table;
pub mod volume_manifest;
pub mod volume_mover;
pub mod volume_server;
pub mod volumes;

pub use config::AgentConfig;
pub use supervisor::Supervisor;
