//! Putting a rendered config in front of nginx: write it atomically (temp file beside the
//! target, fsync, rename), check it with `nginx -t`, reload only when it changed, and put
//! the previous good config back when the check fails (kept as `<path>.last-good`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::fsutil::{write_atomic, Mode};

/// The generated files keep the mode they have (0644 when new).
const KEEP_MODE: Mode = Mode::KeepOr(0o644);

/// How to test and reload nginx.
#[derive(Debug, Clone)]
pub struct Nginx {
    /// The generated config file (included by nginx's main config).
    pub config: PathBuf,
    /// The nginx binary for `nginx -t`.
    pub bin: String,
    /// The main config to test (`-c`), when not nginx's default.
    pub main_config: Option<PathBuf>,
    /// The reload command line (split like a shell would).
    pub reload_cmd: String,
}

/// What [`Nginx::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The rendered config is what nginx already has: nothing written, no reload.
    Unchanged,
    /// Written, tested and reloaded.
    Reloaded,
}

impl Nginx {
    pub fn last_good_path(&self) -> PathBuf {
        let mut name = self.config.as_os_str().to_owned();
        name.push(".last-good");
        PathBuf::from(name)
    }

    /// Installs `rendered` if it differs from the current file: write, `nginx -t`, reload.
    /// A failed test puts the previous file back (or removes the new one when there was
    /// none) and returns the error with nginx's message.
    pub fn apply(&self, rendered: &str) -> anyhow::Result<Applied> {
        let previous = match std::fs::read_to_string(&self.config) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.config.display())),
        };
        if previous.as_deref() == Some(rendered) {
            return Ok(Applied::Unchanged);
        }
        write_atomic(&self.config, rendered.as_bytes(), KEEP_MODE)?;
        if let Err(err) = self.test() {
            let restored = match &previous {
                Some(text) => write_atomic(&self.config, text.as_bytes(), KEEP_MODE),
                None => std::fs::remove_file(&self.config)
                    .with_context(|| format!("removing {}", self.config.display())),
            };
            if let Err(restore_err) = restored {
                return Err(err.context(format!(
                    "and restoring the previous config failed: {restore_err:#}"
                )));
            }
            return Err(err);
        }
        write_atomic(&self.last_good_path(), rendered.as_bytes(), KEEP_MODE)?;
        self.reload()?;
        Ok(Applied::Reloaded)
    }

    /// `nginx -t [-c main]`; its output is the error when it fails.
    pub fn test(&self) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-t");
        if let Some(main) = &self.main_config {
            cmd.arg("-c").arg(main);
        }
        let out = cmd
            .output()
            .with_context(|| format!("running {} -t", self.bin))?;
        if !out.status.success() {
            bail!(
                "nginx -t rejected the generated config {}: {}",
                self.config.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Runs the reload command.
    pub fn reload(&self) -> anyhow::Result<()> {
        let words = shlex::split(&self.reload_cmd)
            .filter(|w| !w.is_empty())
            .with_context(|| format!("--reload-cmd {:?} is not a command line", self.reload_cmd))?;
        let out = Command::new(&words[0])
            .args(&words[1..])
            .output()
            .with_context(|| format!("running {}", self.reload_cmd))?;
        if !out.status.success() {
            bail!(
                "{} failed ({}): {}",
                self.reload_cmd,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}
