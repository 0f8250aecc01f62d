//! Progress bars for a TTY (indicatif): one bar per host with its current task and
//! done/total; task banners, changes, diffs and failures are printed above the bars.

use std::io::Write;
use std::sync::Mutex;

use indexmap::IndexMap;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Recap;
use super::{banner, diff, lines, recap, HostEvent, Reporter, Status, TaskInfo};

/// Bars on stdout; see the module doc.
pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<IndexMap<String, ProgressBar>>,
    color: bool,
    verbosity: u8,
    last_task: Mutex<Option<usize>>,
}

impl Progress {
    pub fn new(color: bool, verbosity: u8) -> Self {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: Mutex::new(IndexMap::new()),
            color,
            verbosity,
            last_task: Mutex::new(None),
        }
    }

    fn above(&self, text: &str) {
        // Printing fails only when stdout is gone; nothing to do about it then.
        let _ = self.multi.println(text);
    }

    fn clear_bars(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            let _ = self.multi.clear();
            for (_, bar) in bars.drain(..) {
                self.multi.remove(&bar);
            }
        }
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>20.bold} [{bar:20}] {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Reporter for Progress {
    fn play_start(&self, name: &str, hosts: &[String], tasks: usize) {
        self.clear_bars();
        self.above(&format!("\n{}", banner(&format!("PLAY [{name}]"))));
        if let Ok(mut bars) = self.bars.lock() {
            for host in hosts {
                let bar = self.multi.add(ProgressBar::new(tasks as u64));
                bar.set_style(style());
                bar.set_prefix(host.clone());
                bars.insert(host.clone(), bar);
            }
        }
    }

    fn task_start(&self, task: &TaskInfo, hosts: &[String]) {
        let new = match self.last_task.lock() {
            Ok(mut last) if *last != Some(task.id) => {
                *last = Some(task.id);
                true
            }
            _ => false,
        };
        let kind = if task.handler {
            "RUNNING HANDLER"
        } else {
            "TASK"
        };
        if new {
            self.above(&banner(&format!("{kind} [{}]", task.name)));
        }
        if let Ok(bars) = self.bars.lock() {
            for host in hosts {
                if let Some(bar) = bars.get(host) {
                    bar.set_message(task.name.clone());
                }
            }
        }
    }

    fn host_result(&self, _task: &TaskInfo, ev: &HostEvent) {
        for d in &ev.diffs {
            let text = diff::unified(d, self.color);
            if !text.is_empty() {
                self.above(text.trim_end_matches('\n'));
            }
        }
        let worth_a_line = !matches!(ev.status, Status::Ok | Status::Skipped)
            || ev.action == "debug"
            || self.verbosity > 0;
        if worth_a_line {
            if let Some(line) = lines::format_event(ev, self.color, self.verbosity) {
                self.above(&line);
            }
        }
        if ev.item.is_none() {
            if let Ok(bars) = self.bars.lock() {
                if let Some(bar) = bars.get(&ev.host) {
                    if bar.position() >= bar.length().unwrap_or(0) {
                        bar.inc_length(1);
                    }
                    bar.inc(1);
                }
            }
        }
    }

    fn retry(&self, task: &TaskInfo, host: &str, retries_left: u32) {
        self.above(&format!(
            "FAILED - RETRYING: [{host}]: {} ({retries_left} retries left).",
            task.name
        ));
    }

    fn warning(&self, msg: &str) {
        self.above(&format!("[WARNING]: {msg}"));
    }

    fn recap(&self, recap: &Recap) {
        self.clear_bars();
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
        let text = recap::format_recap(recap, self.color);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
