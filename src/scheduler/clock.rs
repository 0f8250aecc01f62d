//! Time as Marathon shows it (RFC 3339, milliseconds, `Z`), strictly increasing so two
//! versions written in the same millisecond still differ and sort.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

static LAST: Mutex<Option<DateTime<Utc>>> = Mutex::new(None);

pub fn format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Now, formatted.
pub fn now_rfc3339() -> String {
    format(Utc::now())
}

/// A new version timestamp, later than every one handed out before by this process.
pub fn new_version() -> String {
    let now = Utc::now();
    let mut now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1_000_000));
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(prev) = *last {
        if now <= prev {
            now = prev + Duration::milliseconds(1);
        }
    }
    *last = Some(now);
    format(now)
}

/// Parses an RFC 3339 time.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase() {
        let a = new_version();
        let b = new_version();
        assert!(b > a);
        assert!(parse(&a).is_some());
        assert!(a.ends_with('Z') && a.len() == 24);
    }
}
