//! The `password` lookup: a random password kept in a file on the controller.

use std::path::Path;

use rand::Rng as _;

use super::*;

/// Character sets Python's `string` module names.
fn charset(name: &str) -> String {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    match name {
        "ascii_letters" => format!("{LOWER}{UPPER}"),
        "ascii_lowercase" => LOWER.into(),
        "ascii_uppercase" => UPPER.into(),
        "digits" => DIGITS.into(),
        "hexdigits" => "0123456789abcdefABCDEF".into(),
        "octdigits" => "01234567".into(),
        "punctuation" => PUNCT.into(),
        other => other.into(),
    }
}

/// The parameters of a `password` term: `path [length=N] [chars=a,b] [seed=x]`.
struct PasswordSpec {
    path: String,
    length: usize,
    chars: Vec<String>,
    seed: Option<String>,
}

fn password_spec(call: &Call, term: &str) -> Result<PasswordSpec, Error> {
    let mut words = term.split(' ');
    let mut path = words.next().unwrap_or("").to_string();
    let mut params: Vec<(String, String)> = Vec::new();
    for w in words.filter(|w| !w.is_empty()) {
        match w.split_once('=') {
            Some((k, v)) => params.push((k.to_string(), v.to_string())),
            None if params.is_empty() => {
                path.push(' ');
                path.push_str(w);
            }
            None => {
                return Err(err(
                    "Unrecognized value after key=value parameters given to password lookup",
                ))
            }
        }
    }
    let mut spec = PasswordSpec {
        path,
        length: 20,
        chars: vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()],
        seed: None,
    };
    let mut apply = |k: &str, v: &Json| -> Result<(), Error> {
        match k {
            "length" => {
                spec.length = term_text(v).trim().parse().map_err(|_| {
                    err(format!(
                        "password lookup: length must be a number, not {}",
                        term_text(v)
                    ))
                })?
            }
            "chars" => {
                spec.chars = match v {
                    Json::Array(a) => a.iter().map(term_text).collect(),
                    other => {
                        let s = term_text(other);
                        let mut out = Vec::new();
                        if s.contains(",,") {
                            out.push(",".to_string());
                        }
                        out.extend(
                            s.replace(",,", ",")
                                .split(',')
                                .filter(|c| !c.is_empty())
                                .map(str::to_string),
                        );
                        out
                    }
                }
            }
            "seed" => spec.seed = Some(term_text(v)),
            "encrypt" | "ident" => {
                if !v.is_null() {
                    return Err(err(
                        "password lookup: 'encrypt' is not supported by infra; hash the value with a filter",
                    ));
                }
            }
            other => {
                return Err(err(format!(
                    "Unrecognized parameter(s) given to password lookup: {other}"
                )))
            }
        }
        Ok(())
    };
    for (k, v) in &call.options {
        apply(k, v)?;
    }
    for (k, v) in &params {
        apply(k, &Json::String(v.clone()))?;
    }
    Ok(spec)
}

/// `password`: the password stored in a file on the controller, created with a random
/// password the first time (mode 0600, folders 0700); `/dev/null` gives a fresh one each
/// call. A stored `password salt=...` keeps its password part.
pub(super) fn password(call: &Call, term: &str) -> Result<String, Error> {
    let spec = password_spec(call, term)?;
    let path = {
        let p = expand_home(&spec.path);
        if p.is_absolute() {
            p
        } else {
            call.basedir().join(p)
        }
    };
    let dev_null = path == Path::new("/dev/null");
    // Hosts render concurrently: one at a time reads or creates the file (Ansible locks
    // it too), so every host gets the same password.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !dev_null {
        if let Ok(content) = std::fs::read_to_string(&path) {
            return Ok(stored_password(&content));
        }
    }
    let chars: Vec<char> = spec
        .chars
        .iter()
        .map(|c| charset(c))
        .collect::<String>()
        .chars()
        .filter(|c| *c != '"' && *c != '\'')
        .collect();
    if chars.is_empty() {
        return Err(err("password lookup: no characters to choose from"));
    }
    let generated: String = match &spec.seed {
        Some(seed) => {
            use rand::SeedableRng as _;
            let digest = sha1_seed(seed);
            let mut rng = rand::rngs::StdRng::seed_from_u64(digest);
            (0..spec.length)
                .map(|_| chars[rng.gen_range(0..chars.len())])
                .collect()
        }
        None => {
            let mut rng = rand::rngs::OsRng;
            (0..spec.length)
                .map(|_| chars[rng.gen_range(0..chars.len())])
                .collect()
        }
    };
    if !dev_null {
        write_password(&path, &generated).map_err(|e| {
            err(format!(
                "password lookup: writing {}: {e:#}",
                path.display()
            ))
        })?;
    }
    Ok(generated)
}

/// The password part of a stored `password [salt=...]` line.
fn stored_password(content: &str) -> String {
    let content = content.trim_end();
    match content.rfind(" salt=") {
        Some(i) => content[..i].to_string(),
        None => content.to_string(),
    }
}

fn sha1_seed(seed: &str) -> u64 {
    use sha1::Digest as _;
    let d = sha1::Sha1::digest(seed.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&d[..8]);
    u64::from_le_bytes(bytes)
}

fn write_password(path: &Path, password: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(password.as_bytes())?;
    f.sync_all()
}
