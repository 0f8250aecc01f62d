//! Parsers for flag values that several subcommands take: durations (`15s`, `500ms`, `2m`,
//! `1h`, or plain seconds) and port ranges (`31000-32000`). One implementation, so every
//! daemon accepts the same forms and names the same errors.

use std::time::Duration;

/// `15s`, `500ms`, `2m`, `1h`, or plain seconds (`3`); fractions are fine (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 15s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration that must be more than zero (an interval, a timeout).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("'{}' must be more than zero", text.trim()));
    }
    Ok(duration)
}

/// `LOW-HIGH`, inclusive, within 1-65535.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (low, high) = text
        .split_once('-')
        .ok_or_else(|| format!("'{text}' is not a port range like 31000-32000"))?;
    let port = |p: &str| -> Result<u16, String> {
        p.trim()
            .parse()
            .map_err(|_| format!("'{text}': '{}' is not a port", p.trim()))
    };
    let (low, high) = (port(low)?, port(high)?);
    if low == 0 || low > high {
        return Err(format!("'{text}': expected LOW-HIGH within 1-65535"));
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("31000-32000"), Ok((31000, 32000)));
        assert_eq!(parse_port_range(" 1 - 2 "), Ok((1, 2)));
        assert!(parse_port_range("32000-31000").is_err());
        assert!(parse_port_range("31000").is_err());
        assert!(parse_port_range("a-b").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("1-70000").is_err());
    }
}
