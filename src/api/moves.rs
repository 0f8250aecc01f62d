//! The scheduler <-> agent messages of a volume move (`infra move APP --to HOST`). The
//! data goes agent to agent (the receiving agent pulls from the sending agent's volume
//! server over mutual TLS); the scheduler only says who pulls what and when, through the
//! heartbeat answers, and hears how far the pull got through the heartbeats.

use serde::{Deserialize, Serialize};

/// What the scheduler asks of the receiving agent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MovePhase {
    /// Copy the volume while the old task still runs (and keep it fresh).
    Precopy,
    /// The old task has stopped: copy what changed, compare checksums with the sender,
    /// and put the copy in place. The sender deletes its own copy only when the scheduler
    /// has recorded the receiver as the app's agent (`Assignments::volume_releases`).
    Final,
}

/// One volume move assigned to the receiving agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMove {
    pub app_id: String,
    /// The sending agent's volume server, `https://ADDRESS:PORT`.
    pub source_url: String,
    /// The sending agent's host name: its certificate must be issued for it.
    pub source_hostname: String,
    pub phase: MovePhase,
}

/// How far the receiving agent got.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MoveState {
    Copying,
    /// The pre-copy is complete (the old task may stop now).
    Precopied,
    /// Final copy done, checksums agree, the copy is in place here.
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MoveProgress {
    pub app_id: String,
    pub state: MoveState,
    /// The volume's checksum both sides agreed on (Done), or what failed (Failed).
    pub detail: Option<String>,
}
