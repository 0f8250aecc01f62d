//! What the user sees while the provider works: a spinner with the current step on a
//! terminal, one plain line per step otherwise (CI logs).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    prefix: String,
    plain: bool,
}

impl Progress {
    /// A spinner on stderr when it is a terminal; plain lines otherwise.
    pub fn new(prefix: &str) -> Progress {
        let plain = !console::Term::stderr().is_term();
        let bar = if plain {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(prefix.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        Progress {
            bar,
            prefix: prefix.to_string(),
            plain,
        }
    }

    /// No output at all (tests, JSON output).
    pub fn quiet() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
            prefix: String::new(),
            plain: false,
        }
    }

    /// A new step: the spinner's message, or a line in plain mode.
    pub fn step(&self, message: impl Into<String>) {
        let message = message.into();
        if self.plain {
            eprintln!("{}: {message}", self.prefix);
        }
        self.bar.set_message(message);
    }

    /// Detail within a step (e.g. debootstrap's current package): spinner only.
    pub fn detail(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// A line that stays on screen above the spinner.
    pub fn println(&self, line: impl AsRef<str>) {
        if self.plain {
            eprintln!("{}: {}", self.prefix, line.as_ref());
        } else if !self.bar.is_hidden() {
            self.bar
                .println(format!("{}: {}", self.prefix, line.as_ref()));
        }
    }

    pub fn finish(&self, message: impl Into<String>) {
        let message = message.into();
        if self.plain {
            eprintln!("{}: {message}", self.prefix);
        }
        let visible = !self.bar.is_hidden();
        self.bar.finish_and_clear();
        if visible {
            eprintln!("{}: {message}", self.prefix);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
