//! What the user sees: progress bars on a TTY (indicatif), Ansible-style lines otherwise,
//! or one JSON document; colored unified diffs (similar); the PLAY RECAP. `NO_COLOR` and
//! `no_log` are respected everywhere.
//!
//! The engine sends [`Reporter`] events; the three implementations ([`lines::Lines`],
//! [`progress::Progress`], [`json::Json`]) decide how they look. Results reach a reporter
//! already censored when the task has `no_log: true`.
//!
//! Owns: output only, and the types it shows ([`OutputMode`], [`Recap`], [`HostStats`]).
//! May call: nothing that touches hosts; never the engine.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use diff::TextDiff;

pub mod diff;
pub mod json;
pub mod label;
pub mod lines;
pub mod progress;
pub mod recap;

pub use recap::{HostStats, Recap};

/// How results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputMode {
    /// Progress bars on a TTY, Ansible-style lines otherwise.
    #[default]
    Auto,
    /// Ansible-style lines, always.
    Lines,
    /// One JSON document at the end.
    Json,
}

/// The message Ansible shows instead of a `no_log` result.
pub const CENSORED: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// The outcome of a task (or one loop item) on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
    Rescued,
    Ignored,
}

/// A task as reporters see it.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// Unique within a run; free-strategy hosts announce the same task separately.
    pub id: usize,
    pub name: String,
    /// A handler (`RUNNING HANDLER [..]`).
    pub handler: bool,
}

/// One result of a task on one host.
#[derive(Debug, Clone)]
pub struct HostEvent {
    pub host: String,
    /// `delegate_to` target, shown as `[h1 -> localhost]`.
    pub delegated: Option<String>,
    pub status: Status,
    /// The loop item's label when this is one item's result.
    pub item: Option<String>,
    /// The aggregated result of a loop task, sent after its items.
    pub loop_summary: bool,
    /// The module (`debug` results are always shown, like Ansible).
    pub action: String,
    /// Ansible's result dict (censored under no_log).
    pub result: Value,
    /// One-line summaries of the planned changes (shown with -v).
    pub changes: Vec<String>,
    /// Text diffs, when diff mode is on (never under no_log).
    pub diffs: Vec<TextDiff>,
}

/// Receives the run's events. Implementations must be cheap: the engine calls them inline.
pub trait Reporter: Send + Sync {
    /// A play starts on these hosts; `tasks` is the static task count per host (for bars).
    fn play_start(&self, name: &str, hosts: &[String], tasks: usize);
    /// A task starts on these hosts.
    fn task_start(&self, task: &TaskInfo, hosts: &[String]);
    fn host_result(&self, task: &TaskInfo, event: &HostEvent);
    /// `until` failed and the task is tried again.
    fn retry(&self, task: &TaskInfo, host: &str, retries_left: u32);
    /// A message that is not a task result (no hosts matched, deprecations...).
    fn warning(&self, msg: &str);
    /// The end: PLAY RECAP (and, for JSON, the whole document).
    fn recap(&self, recap: &Recap);
}

/// Whether output to stdout gets colors: a TTY and no `NO_COLOR`.
pub fn stdout_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A writer shared between reporter calls.
pub type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// Wraps a writer for a reporter.
pub fn shared(writer: Box<dyn Write + Send>) -> SharedWriter {
    Arc::new(Mutex::new(writer))
}

/// The reporter for an output mode, writing to stdout.
pub fn for_mode(mode: OutputMode, verbosity: u8) -> Arc<dyn Reporter> {
    let color = stdout_color();
    match mode {
        OutputMode::Json => Arc::new(json::Json::new(shared(Box::new(std::io::stdout())))),
        OutputMode::Lines => Arc::new(lines::Lines::new(
            shared(Box::new(std::io::stdout())),
            color,
            verbosity,
        )),
        OutputMode::Auto => {
            if std::io::stdout().is_terminal() {
                Arc::new(progress::Progress::new(color, verbosity))
            } else {
                Arc::new(lines::Lines::new(
                    shared(Box::new(std::io::stdout())),
                    color,
                    verbosity,
                ))
            }
        }
    }
}

/// ANSI colors used by the line output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Green,
    Yellow,
    Red,
    Cyan,
    Magenta,
    BrightRed,
}

/// `text` in `color` when `enabled`.
pub fn paint(text: &str, color: Color, enabled: bool) -> String {
    if !enabled {
        return text.to_string();
    }
    let code = match color {
        Color::Green => "0;32",
        Color::Yellow => "0;33",
        Color::Red => "0;31",
        Color::Cyan => "0;36",
        Color::Magenta => "0;35",
        Color::BrightRed => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Ansible's banner: `TASK [name] ****` filled to 80 columns (at least three stars).
pub fn banner(msg: &str) -> String {
    let msg = msg.trim();
    let stars = 79usize.saturating_sub(msg.chars().count()).max(3);
    format!("{msg} {}", "*".repeat(stars))
}

/// The color Ansible gives a status.
pub fn status_color(status: Status) -> Color {
    match status {
        Status::Ok => Color::Green,
        Status::Changed => Color::Yellow,
        Status::Skipped | Status::Ignored | Status::Rescued => Color::Cyan,
        Status::Failed | Status::Unreachable => Color::Red,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_fills_to_80_columns() {
        let b = banner("TASK [x]");
        assert_eq!(b.len(), 80);
        assert!(b.starts_with("TASK [x] ***"));
        let long = "x".repeat(100);
        assert!(banner(&long).ends_with(" ***"));
    }

    #[test]
    fn paint_only_when_enabled() {
        assert_eq!(paint("ok", Color::Green, false), "ok");
        assert_eq!(paint("ok", Color::Green, true), "\x1b[0;32mok\x1b[0m");
    }
}
