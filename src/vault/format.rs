//! The vault envelope: a header line `$ANSIBLE_VAULT;1.1;AES256` (or
//! `$ANSIBLE_VAULT;1.2;AES256;<vault-id label>`), then the payload wrapped at 80 columns,
//! every line ending in a newline, as ansible-vault writes it.

/// What every vault file and `!vault` value starts with.
pub const MAGIC: &str = "$ANSIBLE_VAULT";

/// A parsed envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `1.1` or `1.2`.
    pub version: String,
    pub cipher: String,
    /// The vault-id label of a 1.2 envelope.
    pub label: Option<String>,
    /// The payload with all whitespace removed.
    pub payload: String,
}

/// Is this text (or file content) vault-encrypted?
pub fn is_vault(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data[start..].starts_with(MAGIC.as_bytes())
}

/// Parses an envelope (leading and trailing whitespace, and indentation, are ignored).
pub fn parse(text: &str) -> Result<Envelope, String> {
    let text = text.trim();
    let (header, body) = text.split_once('\n').unwrap_or((text, ""));
    let fields: Vec<&str> = header.trim().split(';').map(str::trim).collect();
    if fields.first() != Some(&MAGIC) || fields.len() < 3 {
        return Err(format!("not a vault header: {:?}", header.trim()));
    }
    let version = fields[1].to_string();
    if version != "1.1" && version != "1.2" {
        return Err(format!("unsupported vault format version {version}"));
    }
    let cipher = fields[2].to_string();
    if cipher != "AES256" {
        return Err(format!("unsupported vault cipher {cipher} (only AES256)"));
    }
    let label = fields
        .get(3)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_string());
    let payload: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if payload.is_empty() {
        return Err("the vault data is empty".into());
    }
    Ok(Envelope {
        version,
        cipher,
        label,
        payload,
    })
}

/// Writes an envelope: 1.1 without a label, 1.2 with one (ansible-vault does the same for
/// any label but `default`).
pub fn format(payload: &str, label: Option<&str>) -> String {
    let mut out = match label {
        Some(l) if l != "default" => format!("{MAGIC};1.2;AES256;{l}\n"),
        _ => format!("{MAGIC};1.1;AES256\n"),
    };
    for chunk in payload.as_bytes().chunks(80) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_both_versions() {
        let e = parse("$ANSIBLE_VAULT;1.2;AES256;prod\n6162\n6364\n").unwrap();
        assert_eq!(e.label.as_deref(), Some("prod"));
        assert_eq!(e.payload, "61626364");
        let e = parse("  $ANSIBLE_VAULT;1.1;AES256\n   6162\n   63\n").unwrap();
        assert_eq!((e.version.as_str(), e.label), ("1.1", None));
        assert!(parse("$ANSIBLE_VAULT;1.1;AES\n61").is_err());
        assert!(parse("hello").is_err());
    }

    #[test]
    fn wraps_at_80_columns_with_a_final_newline() {
        let payload = "a".repeat(170);
        let text = format(&payload, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "$ANSIBLE_VAULT;1.1;AES256");
        assert_eq!(
            lines[1..].iter().map(|l| l.len()).collect::<Vec<_>>(),
            [80, 80, 10]
        );
        assert!(text.ends_with('\n'));
        assert!(format("ab", Some("dev")).starts_with("$ANSIBLE_VAULT;1.2;AES256;dev\n"));
        assert!(is_vault(b"\n $ANSIBLE_VAULT;1.1"));
        assert!(!is_vault(b"plain"));
    }
}
