//! What the user sees: progress bars on a TTY (indicatif), Ansible-style lines otherwise,
//! or one JSON document; colored unified diffs (similar); the PLAY RECAP. `NO_COLOR` and
//! `no_log` are respected everywhere.
//!
//! Owns: output only. May call: nothing that touches hosts.
