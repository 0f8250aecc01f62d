//! Host ranges in inventory host names, as Ansible expands them: `web[01:03]` (zero padded
//! when the start has a leading zero), `db-[a:c]`, an optional stride `[1:10:2]`, several
//! ranges in one name. Owns only the expansion; callers attach file locations to errors.

/// Expands every `[begin:end(:step)]` range in `name`. A name without a range is returned
/// unchanged (as the only element).
pub fn expand_host_range(name: &str) -> Result<Vec<String>, String> {
    let Some((head, range, tail)) = split_first_range(name) else {
        return Ok(vec![name.to_string()]);
    };
    let items = expand_bounds(range).map_err(|e| format!("host range `{name}`: {e}"))?;
    let tails = expand_host_range(tail)?;
    let mut out = Vec::with_capacity(items.len() * tails.len());
    for item in &items {
        for t in &tails {
            out.push(format!("{head}{item}{t}"));
        }
    }
    Ok(out)
}

fn split_first_range(name: &str) -> Option<(&str, &str, &str)> {
    let open = name.find('[')?;
    let close = open + name[open..].find(']')?;
    let inner = &name[open + 1..close];
    if !inner.contains(':') {
        return None;
    }
    Some((&name[..open], inner, &name[close + 1..]))
}

fn expand_bounds(range: &str) -> Result<Vec<String>, String> {
    let bounds: Vec<&str> = range.split(':').map(str::trim).collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("a host range must be begin:end or begin:end:step".into());
    }
    let begin = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err("a host range must specify an end value".into());
    }
    let step = match bounds.get(2) {
        None | Some(&"") => 1usize,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("the step `{s}` is not a positive integer"))?,
    };
    if is_letter(begin) && is_letter(end) {
        return expand_letters(begin, end, step);
    }
    let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
        return Err(format!(
            "`{begin}:{end}` is neither a numeric nor a single-letter range"
        ));
    };
    if b > e {
        return Err("a host range must have begin <= end".into());
    }
    let width = if begin.len() > 1 && begin.starts_with('0') {
        if begin.len() != end.len() {
            return Err("a zero-padded host range must have begin and end of equal length".into());
        }
        begin.len()
    } else {
        0
    };
    Ok((b..=e)
        .step_by(step)
        .map(|i| format!("{i:0width$}"))
        .collect())
}

fn is_letter(s: &str) -> bool {
    s.len() == 1 && s.chars().all(|c| c.is_ascii_alphabetic())
}

fn expand_letters(begin: &str, end: &str, step: usize) -> Result<Vec<String>, String> {
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let (Some(b), Some(e)) = (LETTERS.find(begin), LETTERS.find(end)) else {
        return Err("bad letter range".into());
    };
    if b > e {
        return Err("a host range must have begin <= end".into());
    }
    Ok(LETTERS[b..=e]
        .chars()
        .step_by(step)
        .map(|c| c.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_zero_padded() {
        assert_eq!(
            expand_host_range("web[01:03]").unwrap(),
            ["web01", "web02", "web03"]
        );
    }

    #[test]
    fn numeric_plain_and_stride() {
        assert_eq!(
            expand_host_range("n[1:10:4].lan").unwrap(),
            ["n1.lan", "n5.lan", "n9.lan"]
        );
        assert_eq!(expand_host_range("x[:2]").unwrap(), ["x0", "x1", "x2"]);
    }

    #[test]
    fn letters_and_several_ranges() {
        assert_eq!(
            expand_host_range("db-[a:c]").unwrap(),
            ["db-a", "db-b", "db-c"]
        );
        assert_eq!(
            expand_host_range("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
    }

    #[test]
    fn no_range_is_unchanged() {
        assert_eq!(expand_host_range("plain[1]").unwrap(), ["plain[1]"]);
    }

    #[test]
    fn bad_ranges_are_errors() {
        for bad in [
            "w[3:1]",
            "w[1:]",
            "w[01:100]",
            "w[a:3]",
            "w[1:2:0]",
            "w[1:2:3:4]",
        ] {
            assert!(expand_host_range(bad).is_err(), "{bad} should fail");
        }
    }
}
