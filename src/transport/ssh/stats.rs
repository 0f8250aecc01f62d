//! Counters of the SSH work this process did: connections, channels opened, exec requests
//! and SFTP requests. Each one is a round trip (or more) to a host, so their totals tell
//! how chatty a run was without timing anything; `tests/bench_roundtrips.rs` bounds them.
//! The bytes hosts sent back tell how much a run transferred (a big file read back).
//!
//! Process-wide atomics (every connection adds to them); [`snapshot`] reads them and
//! [`SshStats::since`] gives the work done between two snapshots.

use std::sync::atomic::{AtomicU64, Ordering};

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static CHANNELS: AtomicU64 = AtomicU64::new(0);
static EXECS: AtomicU64 = AtomicU64::new(0);
static SFTP_REQUESTS: AtomicU64 = AtomicU64::new(0);
static BYTES_RECEIVED: AtomicU64 = AtomicU64::new(0);

/// Totals of SSH work, since the process started (or between two snapshots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SshStats {
    /// SSH connections opened (handshake + login done).
    pub connections: u64,
    /// Session channels opened (exec channels and the SFTP channel).
    pub channels: u64,
    /// Commands run (exec requests).
    pub execs: u64,
    /// SFTP requests sent (each waits for its answer; chunks of one read count one each).
    pub sftp_requests: u64,
    /// Payload bytes hosts sent back: commands' stdout and stderr, and file content read
    /// over SFTP (the protocols' framing and other SFTP answers not counted).
    pub bytes_received: u64,
}

impl SshStats {
    /// Exec requests plus SFTP requests: the operations that each wait for the host.
    pub fn round_trips(&self) -> u64 {
        self.execs + self.sftp_requests
    }

    /// The work done since `earlier` (a snapshot taken before).
    pub fn since(&self, earlier: &SshStats) -> SshStats {
        SshStats {
            connections: self.connections.saturating_sub(earlier.connections),
            channels: self.channels.saturating_sub(earlier.channels),
            execs: self.execs.saturating_sub(earlier.execs),
            sftp_requests: self.sftp_requests.saturating_sub(earlier.sftp_requests),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
        }
    }
}

/// The totals now.
pub fn snapshot() -> SshStats {
    SshStats {
        connections: CONNECTIONS.load(Ordering::Relaxed),
        channels: CHANNELS.load(Ordering::Relaxed),
        execs: EXECS.load(Ordering::Relaxed),
        sftp_requests: SFTP_REQUESTS.load(Ordering::Relaxed),
        bytes_received: BYTES_RECEIVED.load(Ordering::Relaxed),
    }
}

pub(super) fn connection() {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn channel() {
    CHANNELS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn exec() {
    EXECS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn sftp_request() {
    SFTP_REQUESTS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn received(bytes: usize) {
    BYTES_RECEIVED.fetch_add(bytes as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_field_by_field() {
        let before = SshStats {
            connections: 1,
            channels: 2,
            execs: 3,
            sftp_requests: 4,
            bytes_received: 100,
        };
        let after = SshStats {
            connections: 2,
            channels: 5,
            execs: 4,
            sftp_requests: 10,
            bytes_received: 150,
        };
        let d = after.since(&before);
        assert_eq!(
            d,
            SshStats {
                connections: 1,
                channels: 3,
                execs: 1,
                sftp_requests: 6,
                bytes_received: 50,
            }
        );
        assert_eq!(d.round_trips(), 7);
    }

    #[test]
    fn counters_only_grow() {
        let before = snapshot();
        exec();
        sftp_request();
        received(7);
        let d = snapshot().since(&before);
        assert!(d.execs >= 1 && d.sftp_requests >= 1 && d.bytes_received >= 7);
    }
}
