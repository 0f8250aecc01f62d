//! The agent's configuration: flags parsed into [`AgentConfig`], resources detected from
//! the host when not given (cpus, `/proc/meminfo`, free disk of the data dir), and the agent
//! id kept in `DATA_DIR/agent-id` so it is stable across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub schedulers: Vec<String>,
    pub data_dir: PathBuf,
    pub hostname: String,
    /// The address tasks are reachable at; detected from the route to the scheduler if unset.
    pub address: Option<String>,
    pub port_range: (u16, u16),
    pub attributes: BTreeMap<String, String>,
    pub cpus: Option<f64>,
    pub mem: Option<f64>,
    pub heartbeat_interval: Duration,
    pub tls: AgentTls,
    /// Where the volume server listens (with TLS only), for volume moves.
    pub volume_listen: Option<std::net::SocketAddr>,
}

/// The cluster CA the schedulers' certificates are checked against, and this host's
/// certificate, which the scheduler checks against the host name the agent registers with.
#[derive(Debug, Clone, Default)]
pub struct AgentTls {
    pub ca: Option<PathBuf>,
    pub identity: Option<crate::tls::Identity>,
}

/// `rack=r1` -> ("rack", "r1").
pub fn parse_attribute(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => bail!("attribute {text:?}: expected KEY=VALUE, e.g. rack=r1"),
    }
}

pub fn detect_cpus() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0)
}

/// MemTotal from `/proc/meminfo`, in MB.
pub fn detect_mem_mb() -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    parse_meminfo_mb(&text).context("/proc/meminfo has no MemTotal line")
}

pub fn parse_meminfo_mb(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0).floor())
}

/// Space available to unprivileged users on the data dir's filesystem, in MB.
pub fn detect_disk_mb(dir: &Path) -> f64 {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return 0.0;
    };
    // SAFETY: statvfs fills the zeroed struct from a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return 0.0;
    }
    (stat.f_bavail as f64 * stat.f_frsize as f64 / 1024.0 / 1024.0).floor()
}

/// The agent id in `DATA_DIR/agent-id`, created on first start.
pub fn agent_id(data_dir: &Path) -> anyhow::Result<String> {
    let file = data_dir.join("agent-id");
    match std::fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    }
    let id = uuid::Uuid::new_v4().to_string();
    crate::fsutil::write_private(&file, format!("{id}\n").as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attributes() {
        assert_eq!(
            parse_attribute("rack=r1").unwrap(),
            ("rack".to_string(), "r1".to_string())
        );
        assert!(parse_attribute("rack").is_err());
    }

    #[test]
    fn reads_meminfo_and_keeps_the_agent_id() {
        assert_eq!(
            parse_meminfo_mb("MemTotal:        2048000 kB\nMemFree: 1 kB\n"),
            Some(2000.0)
        );
        assert!(detect_mem_mb().unwrap() > 0.0);
        let dir = tempfile::tempdir().unwrap();
        let first = agent_id(dir.path()).unwrap();
        assert_eq!(agent_id(dir.path()).unwrap(), first);
    }
}
