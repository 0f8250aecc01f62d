//! The receiving side of a volume move: pulls an app's volumes from the sending agent's
//! volume server (mutual TLS, the sender's certificate checked against its host name)
//! into a staging directory, in two passes: a pre-copy while the old task still runs, then
//! (once the scheduler says the old task has stopped) a final pass that copies only what
//! changed. Then the checksums of both sides must agree; only then is the staged copy put
//! in place. The receiver never deletes anything of the sender's: the sender deletes its
//! own copy when the scheduler, having recorded the receiver as the app's agent, says so
//! (see `scheduler::moves::releases_for`). Anything failing leaves the sender's copy as
//! it was (the receiver only reads it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::config::AgentTls;
use super::volume_manifest::{self, is_safe_relative, Manifest};
use super::volume_server::{FILE_PATH, MANIFEST_PATH};
use super::volumes;
use crate::api::moves::{MovePhase, MoveProgress, MoveState, VolumeMove};

struct Job {
    /// The phase the running (or last) pass is for.
    phase: MovePhase,
    state: MoveState,
    detail: Option<String>,
    handle: tokio::task::JoinHandle<()>,
}

/// The moves this agent receives, keyed by app id.
#[derive(Clone)]
pub struct VolumeMovers {
    data_dir: PathBuf,
    tls: AgentTls,
    jobs: Arc<Mutex<HashMap<String, Job>>>,
}

impl VolumeMovers {
    pub fn new(data_dir: &Path, tls: &AgentTls) -> VolumeMovers {
        VolumeMovers {
            data_dir: data_dir.to_path_buf(),
            tls: tls.clone(),
            jobs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to report in the next heartbeat.
    pub fn progress(&self) -> Vec<MoveProgress> {
        self.lock()
            .iter()
            .map(|(app, job)| MoveProgress {
                app_id: app.clone(),
                state: job.state,
                detail: job.detail.clone(),
            })
            .collect()
    }

    /// Level-triggered, like the tasks: start the pass each assigned move needs; drop the
    /// moves no longer assigned (cancelled: their staged copy is removed).
    pub fn apply(&self, moves: &[VolumeMove]) {
        let mut jobs = self.lock();
        let wanted: Vec<&str> = moves.iter().map(|m| m.app_id.as_str()).collect();
        let gone: Vec<String> = jobs
            .keys()
            .filter(|k| !wanted.contains(&k.as_str()))
            .cloned()
            .collect();
        for app in gone {
            if let Some(job) = jobs.remove(&app) {
                job.handle.abort();
                if job.state != MoveState::Done {
                    let staging = staging_dir(&self.data_dir, &app);
                    if let Err(err) = std::fs::remove_dir_all(&staging) {
                        if err.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!("removing {}: {err}", staging.display());
                        }
                    }
                }
            }
        }
        for wanted in moves {
            let start = match jobs.get(&wanted.app_id) {
                None => true,
                Some(job) => {
                    wanted.phase == MovePhase::Final
                        && job.phase == MovePhase::Precopy
                        && job.state == MoveState::Precopied
                }
            };
            if !start {
                continue;
            }
            let this = self.clone();
            let spec = wanted.clone();
            let handle = tokio::spawn(async move {
                let outcome = this.pass(&spec).await;
                let mut jobs = this.lock();
                let Some(job) = jobs.get_mut(&spec.app_id) else {
                    return;
                };
                match outcome {
                    Ok(detail) => {
                        job.state = match spec.phase {
                            MovePhase::Precopy => MoveState::Precopied,
                            MovePhase::Final => MoveState::Done,
                        };
                        job.detail = detail;
                    }
                    Err(err) => {
                        tracing::warn!("moving the volumes of {}: {err:#}", spec.app_id);
                        job.state = MoveState::Failed;
                        job.detail = Some(format!("{err:#}"));
                    }
                }
            });
            jobs.insert(
                wanted.app_id.clone(),
                Job {
                    phase: wanted.phase,
                    state: MoveState::Copying,
                    detail: None,
                    handle,
                },
            );
        }
    }

    /// One pass; the final one returns the agreed checksum.
    async fn pass(&self, spec: &VolumeMove) -> anyhow::Result<Option<String>> {
        let source = Source::connect(spec, &self.tls)?;
        let staging = staging_dir(&self.data_dir, &spec.app_id);
        let started = std::time::Instant::now();
        match spec.phase {
            MovePhase::Precopy => {
                let remote = source.manifest(&spec.app_id, false).await?;
                sync(&source, &spec.app_id, &remote, &staging).await?;
                tracing::info!(
                    "{}: pre-copied {} files in {:?}",
                    spec.app_id,
                    remote.files.len(),
                    started.elapsed()
                );
                Ok(None)
            }
            MovePhase::Final => {
                let remote = source.manifest(&spec.app_id, true).await?;
                sync(&source, &spec.app_id, &remote, &staging).await?;
                let scan_dir = staging.clone();
                let local =
                    tokio::task::spawn_blocking(move || volume_manifest::scan(&scan_dir, true))
                        .await
                        .context("checksumming the copy")??;
                anyhow::ensure!(
                    local.checksum == remote.checksum,
                    "checksums differ after the copy: here {:?}, on {} {:?}",
                    local.checksum,
                    spec.source_hostname,
                    remote.checksum
                );
                let target = volumes::app_dir(&self.data_dir, &spec.app_id);
                volumes::remove_app(&self.data_dir, &spec.app_id)?;
                std::fs::rename(&staging, &target).with_context(|| {
                    format!("moving {} to {}", staging.display(), target.display())
                })?;
                tracing::info!(
                    "{}: final copy verified ({:?}) in {:?}; in place here",
                    spec.app_id,
                    local.checksum,
                    started.elapsed()
                );
                Ok(local.checksum)
            }
        }
    }
}

/// Starts the volume server when the agent has the cluster CA and its host certificate;
/// its URL (for the registration) is `https://ADDRESS:PORT`.
pub async fn start_server(
    config: &super::AgentConfig,
    address: &str,
) -> anyhow::Result<Option<String>> {
    let (Some(ca), Some(identity), Some(listen)) = (
        config.tls.ca.as_deref(),
        config.tls.identity.as_ref(),
        config.volume_listen,
    ) else {
        tracing::info!("no volume server: the agent has no --ca and --tls-cert");
        return Ok(None);
    };
    let bound = super::volume_server::spawn(listen, identity, ca, config.data_dir.clone()).await?;
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    tracing::info!("volume server on {bound}");
    Ok(Some(format!("https://{host}:{}", bound.port())))
}

/// `DATA_DIR/volumes/.incoming/<app>`: a partial copy is never where tasks look.
fn staging_dir(data_dir: &Path, app_id: &str) -> PathBuf {
    let name = volumes::app_dir(data_dir, app_id)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    volumes::volumes_root(data_dir).join(".incoming").join(name)
}

/// The sending agent's volume server.
struct Source {
    http: reqwest::Client,
    base: String,
}

impl Source {
    /// A client that trusts the cluster CA only, shows this host's certificate, and
    /// reaches the sender's address under its host name, so that the sender's
    /// certificate is checked against that name.
    fn connect(spec: &VolumeMove, tls: &AgentTls) -> anyhow::Result<Source> {
        let url = reqwest::Url::parse(&spec.source_url)
            .with_context(|| format!("the sender's volume URL {}", spec.source_url))?;
        let host = url
            .host_str()
            .context("the sender's volume URL has no host")?;
        let port = url
            .port_or_known_default()
            .context("the sender's volume URL has no port")?;
        let ip: std::net::IpAddr = host
            .trim_matches(['[', ']'])
            .parse()
            .with_context(|| format!("the sender's address {host} is not an IP address"))?;
        let ca = tls
            .ca
            .as_deref()
            .context("this agent has no cluster CA (--ca) to check the sender with")?;
        let identity = tls
            .identity
            .as_ref()
            .context("this agent has no host certificate (--tls-cert) to show the sender")?;
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .resolve(&spec.source_hostname, std::net::SocketAddr::new(ip, port));
        let http = crate::tls::client_builder(builder, Some(ca), Some(identity))?
            .build()
            .context("building the volume client")?;
        Ok(Source {
            http,
            base: format!("https://{}:{port}", spec.source_hostname),
        })
    }

    async fn manifest(&self, app: &str, hashed: bool) -> anyhow::Result<Manifest> {
        let url = format!("{}{MANIFEST_PATH}", self.base);
        let response = self
            .http
            .get(&url)
            .query(&[
                ("app", app),
                ("hashed", if hashed { "true" } else { "false" }),
            ])
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let response = ok(response, &url).await?;
        response
            .json()
            .await
            .with_context(|| format!("decoding {url}"))
    }

    /// Downloads one file to `tmp`.
    async fn download(&self, app: &str, path: &str, tmp: &Path) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let url = format!("{}{FILE_PATH}", self.base);
        let response = self
            .http
            .get(&url)
            .query(&[("app", app), ("path", path)])
            .send()
            .await
            .with_context(|| format!("GET {url} {path}"))?;
        let mut response = ok(response, &url).await?;
        let mut file = tokio::fs::File::create(tmp)
            .await
            .with_context(|| format!("creating {}", tmp.display()))?;
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("reading {path} from the sender"))?
        {
            file.write_all(&chunk)
                .await
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        file.sync_all()
            .await
            .with_context(|| format!("syncing {}", tmp.display()))?;
        Ok(())
    }
}

async fn ok(response: reqwest::Response, url: &str) -> anyhow::Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    anyhow::bail!("{url}: HTTP {status}: {text}")
}

/// Makes `staging` hold what `remote` lists: creates directories, downloads files whose
/// size or time differ (each to a temporary name, then renamed), removes what the sender
/// no longer has.
async fn sync(source: &Source, app: &str, remote: &Manifest, staging: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    for dir in &remote.dirs {
        anyhow::ensure!(
            is_safe_relative(dir),
            "the sender listed a bad path {dir:?}"
        );
        let path = staging.join(dir);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let local = volume_manifest::scan(staging, false)?;
    let have: HashMap<&str, &volume_manifest::FileEntry> =
        local.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for file in &remote.files {
        anyhow::ensure!(
            is_safe_relative(&file.path),
            "the sender listed a bad path {:?}",
            file.path
        );
        let same = have
            .get(file.path.as_str())
            .is_some_and(|l| l.size == file.size && l.mtime_ns == file.mtime_ns);
        if same {
            continue;
        }
        let target = staging.join(&file.path);
        let tmp = target.with_file_name(format!(
            ".{}.part",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        source.download(app, &file.path, &tmp).await?;
        finish_file(&tmp, &target, file)?;
    }
    let wanted_files: std::collections::HashSet<&str> =
        remote.files.iter().map(|f| f.path.as_str()).collect();
    for file in &local.files {
        if !wanted_files.contains(file.path.as_str()) {
            let path = staging.join(&file.path);
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let wanted_dirs: std::collections::HashSet<&str> =
        remote.dirs.iter().map(String::as_str).collect();
    for dir in local.dirs.iter().rev() {
        if !wanted_dirs.contains(dir.as_str()) {
            let path = staging.join(dir);
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Gives the downloaded file the sender's mode and time, then its name.
fn finish_file(
    tmp: &Path,
    target: &Path,
    entry: &volume_manifest::FileEntry,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(entry.mode))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    let mtime = if entry.mtime_ns >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(entry.mtime_ns as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };
    let file = std::fs::File::options()
        .write(true)
        .open(tmp)
        .with_context(|| format!("opening {}", tmp.display()))?;
    file.set_modified(mtime)
        .with_context(|| format!("setting the time of {}", tmp.display()))?;
    drop(file);
    std::fs::rename(tmp, target)
        .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))
}
