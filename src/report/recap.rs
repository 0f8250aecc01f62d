//! The PLAY RECAP block, formatted exactly like Ansible's default callback: the host name
//! padded to 26 columns, then `ok=N` and friends each padded to `name=` plus 4 columns.

use super::{paint, Color};

/// Per-host counts, as in Ansible's PLAY RECAP.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Recap {
    pub hosts: indexmap::IndexMap<String, HostStats>,
}

impl Recap {
    /// 0 all ok, 2 a task failed on some host, 4 some host unreachable and none failed.
    pub fn exit_code(&self) -> i32 {
        if self.hosts.values().any(|s| s.failed > 0) {
            2
        } else if self.hosts.values().any(|s| s.unreachable > 0) {
            4
        } else {
            0
        }
    }
}

/// The whole recap: banner line and one line per host, in the recap's order.
pub fn format_recap(recap: &Recap, color: bool) -> String {
    let mut out = format!("\n{}\n", super::banner("PLAY RECAP"));
    for (host, stats) in &recap.hosts {
        out.push_str(&format_host_line(host, stats, color));
        out.push('\n');
    }
    out
}

/// One host's recap line, e.g. `h1                         : ok=2    changed=1    ...`.
pub fn format_host_line(host: &str, s: &HostStats, color: bool) -> String {
    let host_color = if s.failed > 0 || s.unreachable > 0 {
        Color::Red
    } else if s.changed > 0 {
        Color::Yellow
    } else {
        Color::Green
    };
    let padded = format!("{host:<26}");
    let host_part = if color {
        // Ansible pads after coloring only the name; keep the visible width at 26.
        let pad = padded.len() - host.len();
        format!("{}{}", paint(host, host_color, true), " ".repeat(pad))
    } else {
        padded
    };
    let fields = [
        ("ok", s.ok, Color::Green),
        ("changed", s.changed, Color::Yellow),
        ("unreachable", s.unreachable, Color::BrightRed),
        ("failed", s.failed, Color::Red),
        ("skipped", s.skipped, Color::Cyan),
        ("rescued", s.rescued, Color::Magenta),
        ("ignored", s.ignored, Color::Magenta),
    ];
    let parts: Vec<String> = fields
        .iter()
        .map(|(name, n, c)| {
            let text = format!("{name}={:<4}", n.to_string());
            if *n != 0 {
                paint(&text, *c, color)
            } else {
                text
            }
        })
        .collect();
    format!("{host_part} : {}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_line_matches_ansible_alignment() {
        let stats = HostStats {
            ok: 3,
            changed: 1,
            skipped: 12,
            ..Default::default()
        };
        assert_eq!(
            format_host_line("h1", &stats, false),
            "h1                         : ok=3    changed=1    unreachable=0    failed=0    \
             skipped=12   rescued=0    ignored=0   "
        );
    }

    #[test]
    fn long_host_names_are_not_cut() {
        let name = "a-very-long-host-name.example.org";
        let line = format_host_line(name, &HostStats::default(), false);
        assert!(line.starts_with(&format!("{name} : ok=0")));
    }

    #[test]
    fn colored_line_keeps_visible_width() {
        let stats = HostStats {
            failed: 1,
            ..Default::default()
        };
        let line = format_host_line("h1", &stats, true);
        assert!(line.starts_with("\x1b[0;31mh1\x1b[0m                         : ok=0    "));
        assert!(line.contains("\x1b[0;31mfailed=1   \x1b[0m"));
    }

    #[test]
    fn recap_has_banner_and_every_host() {
        let mut recap = Recap::default();
        recap.hosts.insert("a".into(), HostStats::default());
        recap.hosts.insert("b".into(), HostStats::default());
        let text = format_recap(&recap, false);
        assert!(text.starts_with("\nPLAY RECAP ****"));
        assert_eq!(text.lines().filter(|l| l.contains(" : ok=")).count(), 2);
    }
}
