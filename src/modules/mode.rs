//! File modes as Ansible accepts them: an integer (`420`, what YAML 1.1 makes of `0644`),
//! an octal string (`"0644"`, `"644"`, `"0o644"`), `preserve` (copy), or a symbolic mode
//! (`u=rw,g=r,o=r`, `a+x`, `go-w`, `u+X`). Shown as 4-digit octal strings.

use serde_json::Value;

/// A `mode:` argument before it is resolved against a file's current mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeArg {
    Octal(u32),
    Symbolic(String),
    /// copy's `mode: preserve`: the source file's mode.
    Preserve,
}

/// Parses a `mode:` argument.
pub fn parse(v: &Value) -> anyhow::Result<ModeArg> {
    match v {
        Value::Number(n) => {
            let m = n
                .as_u64()
                .ok_or_else(|| anyhow::anyhow!("argument mode: {n} is not a valid mode"))?;
            if m > 0o7777 {
                anyhow::bail!("argument mode: {m} is not a valid mode (above 07777)");
            }
            Ok(ModeArg::Octal(m as u32))
        }
        Value::String(s) => {
            let s = s.trim();
            if s == "preserve" {
                return Ok(ModeArg::Preserve);
            }
            let digits = s.strip_prefix("0o").unwrap_or(s);
            if !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                let m = u32::from_str_radix(digits, 8)
                    .map_err(|_| anyhow::anyhow!("argument mode: {s:?} is not a valid mode"))?;
                if m > 0o7777 {
                    anyhow::bail!("argument mode: {s:?} is not a valid mode (above 07777)");
                }
                return Ok(ModeArg::Octal(m));
            }
            // Validate now, so bad input fails before anything runs.
            symbolic(s, 0, false)?;
            Ok(ModeArg::Symbolic(s.to_string()))
        }
        other => anyhow::bail!("argument mode: {other} is not a valid mode"),
    }
}

impl ModeArg {
    /// The mode a file ends with, given its current mode (`None`: a new entry, whose
    /// default is 0644 for files and 0755 for directories).
    pub fn resolve(&self, current: Option<u32>, is_dir: bool) -> anyhow::Result<Option<u32>> {
        let base = current.unwrap_or(if is_dir { 0o755 } else { 0o644 });
        match self {
            ModeArg::Octal(m) => Ok(Some(*m)),
            ModeArg::Symbolic(s) => symbolic(s, base, is_dir).map(Some),
            ModeArg::Preserve => Ok(None),
        }
    }
}

/// Formats a mode as Ansible shows it: `"0644"`.
pub fn fmt(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Applies a symbolic mode (as chmod(1)) to `current`.
pub fn symbolic(spec: &str, current: u32, is_dir: bool) -> anyhow::Result<u32> {
    let bad = || anyhow::anyhow!("argument mode: {spec:?} is not a valid mode");
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let clause = clause.trim();
        let who_len = clause.find(|c: char| !"ugoa".contains(c)).ok_or_else(bad)?;
        let (who, mut rest) = clause.split_at(who_len);
        let mut who_mask = 0u32;
        for c in who.chars() {
            who_mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
        }
        if who_mask == 0 {
            who_mask = 0o7777;
        }
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let op = rest.chars().next().ok_or_else(bad)?;
            if !"+-=".contains(op) {
                return Err(bad());
            }
            rest = &rest[1..];
            let perm_len = rest.find(['+', '-', '=']).unwrap_or(rest.len());
            let (perms, tail) = rest.split_at(perm_len);
            rest = tail;
            let mut bits = 0u32;
            for c in perms.chars() {
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    'u' => copy_class((mode >> 6) & 7),
                    'g' => copy_class((mode >> 3) & 7),
                    'o' => copy_class(mode & 7),
                    _ => return Err(bad()),
                };
            }
            let bits = bits & who_mask;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => {
                    // `=` resets the rwx bits of the classes named (and their s/t bits).
                    mode = (mode & !who_mask) | bits;
                }
            }
        }
    }
    Ok(mode)
}

/// The bits of one class (rwx as 0..7) copied to all classes (masked later by `who`).
fn copy_class(rwx: u32) -> u32 {
    rwx | rwx << 3 | rwx << 6
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_the_numeric_mode() {
        assert_eq!(parse(&json!(420)).unwrap(), ModeArg::Octal(0o644));
        assert_eq!(parse(&json!(493)).unwrap(), ModeArg::Octal(0o755));
        assert!(parse(&json!(70000)).is_err());
        assert!(parse(&json!(-1)).is_err());
    }

    #[test]
    fn octal_strings() {
        assert_eq!(parse(&json!("0644")).unwrap(), ModeArg::Octal(0o644));
        assert_eq!(parse(&json!("644")).unwrap(), ModeArg::Octal(0o644));
        assert_eq!(parse(&json!("0o750")).unwrap(), ModeArg::Octal(0o750));
        assert_eq!(parse(&json!("1777")).unwrap(), ModeArg::Octal(0o1777));
        assert_eq!(parse(&json!("preserve")).unwrap(), ModeArg::Preserve);
        assert!(parse(&json!("0899")).is_err());
        assert!(parse(&json!([1])).is_err());
    }

    #[test]
    fn symbolic_modes_like_chmod() {
        assert_eq!(symbolic("u=rw,g=r,o=r", 0o777, false).unwrap(), 0o644);
        assert_eq!(symbolic("a+x", 0o644, false).unwrap(), 0o755);
        assert_eq!(symbolic("+x", 0o600, false).unwrap(), 0o711);
        assert_eq!(symbolic("go-w", 0o777, false).unwrap(), 0o755);
        assert_eq!(symbolic("u=rwx,go=rx", 0, false).unwrap(), 0o755);
        assert_eq!(symbolic("ug=rw,o=", 0o777, false).unwrap(), 0o660);
        assert_eq!(symbolic("u+X", 0o644, false).unwrap(), 0o644);
        assert_eq!(symbolic("u+X", 0o644, true).unwrap(), 0o744);
        assert_eq!(symbolic("a+X", 0o654, false).unwrap(), 0o755);
        assert_eq!(symbolic("g=u", 0o640, false).unwrap(), 0o660);
        assert_eq!(symbolic("u+s", 0o755, false).unwrap(), 0o4755);
        assert_eq!(symbolic("+t", 0o777, true).unwrap(), 0o1777);
        assert_eq!(symbolic("u-w+x", 0o644, false).unwrap(), 0o544);
    }

    #[test]
    fn bad_symbolic_modes_fail() {
        for bad in ["u", "z=r", "u=q", "u*r", ""] {
            assert!(parse(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_uses_defaults_for_new_entries() {
        let m = parse(&json!("u+x")).unwrap();
        assert_eq!(m.resolve(None, false).unwrap(), Some(0o744));
        assert_eq!(m.resolve(Some(0o600), false).unwrap(), Some(0o700));
        assert_eq!(ModeArg::Preserve.resolve(None, false).unwrap(), None);
        assert_eq!(fmt(0o644), "0644");
        assert_eq!(fmt(0o4755), "4755");
    }
}
