//! The systemd unit states of one host, read once for every unit a play names.
//!
//! Why: a unit's state lives in systemd, so only a process (`systemctl show`) can read it,
//! and on a converged host starting that process is most of what a service task costs. A
//! play usually names several units (`service`, `systemd`, loops over services, handlers),
//! so the engine tells this cache which units the play will ask about ([`UnitStates::want`])
//! and the first service task of the play reads them all in one exec, as pyinfra gathers
//! facts ahead. Later tasks take their observation from here.
//!
//! Truthfulness: [`super::apply`] calls [`UnitStates::invalidate`] whenever it carried out a
//! plan on the host (and the engine, after a module run through Ansible, which it cannot
//! see into), since a command, a file written or a `daemon-reload` may change any unit,
//! and starting one unit may start the units it pulls in. The next service task reads
//! every wanted unit again, so an observation is never older than the last change made in
//! the run. On a converged host nothing is applied, and the whole play costs one
//! `systemctl show`.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::Mutex;

use super::args::sh_quote;
use super::service::UnitState;
use super::HostCtx;

/// The `systemctl show` properties a unit's observation needs.
const PROPERTIES: &str = "ActiveState,UnitFileState,LoadState,NeedDaemonReload";

/// Per host, per run (see the module doc).
#[derive(Default)]
pub struct UnitStates {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Units the play will ask about, read together on the first miss.
    wanted: BTreeSet<String>,
    /// What systemd said since the last change made on the host.
    known: HashMap<String, UnitState>,
    /// The play whose units `wanted` was filled for (see [`UnitStates::plan_for`]).
    play: Option<usize>,
}

impl UnitStates {
    /// True the first time it is asked for `play` on this host: the engine then names the
    /// play's units with [`UnitStates::want`].
    pub async fn plan_for(&self, play: usize) -> bool {
        let mut inner = self.inner.lock().await;
        if inner.play == Some(play) {
            return false;
        }
        inner.play = Some(play);
        true
    }

    /// Adds units to read with the next miss.
    pub async fn want(&self, names: impl IntoIterator<Item = String>) {
        let mut inner = self.inner.lock().await;
        inner
            .wanted
            .extend(names.into_iter().filter(|n| valid_name(n)));
    }

    /// Forgets every state read: something on the host may have changed them.
    pub async fn invalidate(&self) {
        self.inner.lock().await.known.clear();
    }

    /// Stores states read elsewhere (with the facts, in the same exec).
    pub async fn insert(&self, states: impl IntoIterator<Item = (String, UnitState)>) {
        self.inner.lock().await.known.extend(states);
    }

    /// The state of `name`: from the cache, else read together with every wanted unit not
    /// read yet, in one `systemctl show` (with the task's become and environment).
    pub async fn get(&self, ctx: &HostCtx, name: &str) -> anyhow::Result<UnitState> {
        let mut inner = self.inner.lock().await;
        if let Some(state) = inner.known.get(name) {
            return Ok(state.clone());
        }
        let mut names: Vec<String> = vec![name.to_string()];
        if valid_name(name) {
            names.extend(
                inner
                    .wanted
                    .iter()
                    .filter(|n| *n != name && !inner.known.contains_key(*n))
                    .cloned(),
            );
        } else {
            names.truncate(1);
        }
        let out = ctx.run(&show_command(&names)).await?;
        if out.rc == 0 {
            if let Some(states) = parse_blocks(&out.stdout, names.len()) {
                inner.known.extend(names.iter().cloned().zip(states));
                if let Some(state) = inner.known.get(name) {
                    return Ok(state.clone());
                }
            }
        }
        if names.len() == 1 {
            anyhow::bail!("systemctl show {name}: {}", out.stderr.trim());
        }
        // One of the other names made systemctl fail: ask about this unit alone, so its
        // own error (if any) is the one reported.
        let out = ctx.run(&show_command(&[name.to_string()])).await?;
        if out.rc != 0 {
            anyhow::bail!("systemctl show {name}: {}", out.stderr.trim());
        }
        let state = UnitState::parse(&out.stdout);
        inner.known.insert(name.to_string(), state.clone());
        Ok(state)
    }
}

/// Unit states read in another script's exec, beside it: fact gathering reads the play's
/// units in its own exec ([`crate::engine::facts::Beside`]), so a play that gathers facts
/// still starts one exec per host on a converged run.
pub struct ReadAhead {
    names: Vec<String>,
}

/// The line that separates the other script's output from the units' states.
const READ_AHEAD_MARKER: &str = "@@infra-unit-states";

impl ReadAhead {
    /// Reads `names` (those worth reading ahead, see [`valid_name`]).
    pub fn new(names: Vec<String>) -> ReadAhead {
        ReadAhead {
            names: names.into_iter().filter(|n| valid_name(n)).collect(),
        }
    }

    /// The command to run beside the script, with the marker its output comes after;
    /// `None` when there is nothing to read. It never fails the script: a host without
    /// systemctl, or a name systemd refuses, reads nothing.
    pub fn command(&self) -> Option<(&'static str, String)> {
        (!self.names.is_empty()).then(|| (READ_AHEAD_MARKER, show_command(&self.names)))
    }

    /// Splits the exec's output: stores the units' states in `units` (also wanted there,
    /// to be read again after a change) and returns the other script's own output.
    pub async fn take<'a>(&self, stdout: &'a str, units: &UnitStates) -> &'a str {
        let marker = format!("\n{READ_AHEAD_MARKER}\n");
        let Some(at) = stdout.find(&marker) else {
            return stdout;
        };
        let (own, rest) = (&stdout[..at + 1], &stdout[at + marker.len()..]);
        units.want(self.names.iter().cloned()).await;
        if let Some(states) = parse_blocks(rest, self.names.len()) {
            units.insert(self.names.iter().cloned().zip(states)).await;
        }
        own
    }
}

/// `systemctl show` of several units: their blocks come out in the order asked, separated
/// by blank lines.
pub fn show_command(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| sh_quote(n)).collect();
    format!("systemctl show -p {PROPERTIES} -- {}", quoted.join(" "))
}

/// One state per unit, in order; `None` when the output does not have `count` blocks.
pub fn parse_blocks(out: &str, count: usize) -> Option<Vec<UnitState>> {
    let blocks: Vec<UnitState> = out
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(UnitState::parse)
        .collect();
    (blocks.len() == count).then_some(blocks)
}

/// A name worth reading ahead: not empty, no template left, no option-like dash.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('-') && !name.contains("{{") && !name.contains("{%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_in_the_order_asked() {
        let out = "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nNeedDaemonReload=no\n\n\
                   LoadState=not-found\nActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\n";
        let states = parse_blocks(out, 2).expect("two blocks");
        assert_eq!(states[0].active, "active");
        assert_eq!(states[1].load, "not-found");
        assert!(parse_blocks(out, 3).is_none());
    }

    #[test]
    fn the_command_quotes_every_name() {
        let cmd = show_command(&["cron".into(), "a b.service".into()]);
        assert_eq!(
            cmd,
            "systemctl show -p ActiveState,UnitFileState,LoadState,NeedDaemonReload -- cron 'a b.service'"
        );
    }

    #[tokio::test]
    async fn read_ahead_output_is_split_from_the_other_script() {
        let ahead = ReadAhead::new(vec!["cron".into(), "{{ x }}".into()]);
        let (marker, command) = ahead.command().expect("a unit to read");
        assert_eq!(marker, READ_AHEAD_MARKER);
        assert!(command.ends_with("-- cron"), "{command}");
        let units = UnitStates::default();
        let out = "@@end\n@@infra-unit-states\nLoadState=loaded\nActiveState=active\n";
        assert_eq!(ahead.take(out, &units).await, "@@end\n");
        let known = units.inner.lock().await.known.clone();
        assert_eq!(known["cron"].active, "active");
        assert!(ReadAhead::new(vec![]).command().is_none());
    }

    #[test]
    fn templated_or_odd_names_are_not_read_ahead() {
        assert!(valid_name("web-api"));
        assert!(!valid_name("{{ item }}"));
        assert!(!valid_name("--all"));
        assert!(!valid_name(""));
    }
}
