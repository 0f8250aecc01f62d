//! Ansible's filters that make or take apart text, beyond the everyday ones in
//! `filters.rs`: `comment` (the `{{ ansible_managed | comment }}` of most role
//! templates), `password_hash` (what passlib writes, so a fixed salt gives the hash Ansible
//! gave and `user` stays unchanged), `to_uuid`, `splitext`, `urlsplit`, `human_readable`,
//! `human_to_bytes`, and Jinja's `truncate` and `center`, which minijinja leaves out.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};
use rand::Rng as _;
use serde_json::{json, Value as Json};

use super::pyfmt::py_str;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `comment(style='plain', **overrides)`: the text as a comment block.
pub fn comment(value: Value, style: Option<String>, kw: Kwargs) -> Result<String, Error> {
    let text = py_str(&value);
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(err(format!(
                "Invalid style '{other}'; available styles: plain, erlang, c, cblock, xml"
            )))
        }
    };
    let get = |name: &str, default: String| -> Result<String, Error> {
        Ok(kw.get::<Option<String>>(name)?.unwrap_or(default))
    };
    let count =
        |name: &str| -> Result<usize, Error> { Ok(kw.get::<Option<usize>>(name)?.unwrap_or(1)) };
    // The prefix and postfix lines are the style's decoration (or the one given), trimmed.
    let around = get("decoration", decoration.to_string())?
        .trim_end()
        .to_string();
    let newline = get("newline", "\n".into())?;
    let beginning = get("beginning", beginning.into())?;
    let prefix = get("prefix", around.clone())?;
    let prefix_count = count("prefix_count")?;
    let decoration = get("decoration", decoration.into())?;
    let postfix = get("postfix", around)?;
    let postfix_count = count("postfix_count")?;
    let end = get("end", end.into())?;
    kw.assert_all_used()?;

    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let line = if prefix != newline {
            format!("{prefix}{newline}")
        } else {
            newline.clone()
        };
        out.push_str(&line.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    )
    .replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

/// passlib's default rounds, which it writes into the hash (`$6$rounds=656000$...`).
const SHA512_ROUNDS: usize = 656_000;
const SHA256_ROUNDS: usize = 535_000;
/// The characters of a crypt salt.
const SALT_CHARS: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `password_hash(hashtype='sha512', salt=None, rounds=None)`: a crypt(3) hash as passlib
/// (which ansible-core uses) writes it. Without a salt, a random one, as Ansible does.
pub fn password_hash(
    value: Value,
    hashtype: Option<String>,
    salt: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let salt = salt.or(kw.get::<Option<String>>("salt")?);
    let rounds: Option<usize> = kw.get("rounds")?;
    // Accepted for compatibility; only the default identifiers exist for SHA-crypt.
    let _ident: Option<String> = kw.get("ident")?;
    kw.assert_all_used()?;
    let password = py_str(&value);
    let hashtype = hashtype.unwrap_or_else(|| "sha512".into());
    let salt = match salt {
        Some(s) => s,
        None => {
            let mut rng = rand::thread_rng();
            (0..16)
                .map(|_| char::from(SALT_CHARS[rng.gen_range(0..SALT_CHARS.len())]))
                .collect()
        }
    };
    if !salt.bytes().all(|b| SALT_CHARS.contains(&b)) {
        return Err(err(format!(
            "invalid characters in the salt {salt:?} (allowed: ./0-9A-Za-z)"
        )));
    }
    let salt: String = salt.chars().take(16).collect();
    let crypt_err = |e| err(format!("password_hash: {e:?}"));
    match hashtype.as_str() {
        "sha512" | "sha512_crypt" => {
            let rounds = rounds.unwrap_or(SHA512_ROUNDS);
            let params = sha_crypt::Sha512Params::new(rounds).map_err(crypt_err)?;
            let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
                .map_err(crypt_err)?;
            Ok(format!("$6${}{salt}${hash}", rounds_field(rounds)))
        }
        "sha256" | "sha256_crypt" => {
            let rounds = rounds.unwrap_or(SHA256_ROUNDS);
            let params = sha_crypt::Sha256Params::new(rounds).map_err(crypt_err)?;
            let hash = sha_crypt::sha256_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
                .map_err(crypt_err)?;
            Ok(format!("$5${}{salt}${hash}", rounds_field(rounds)))
        }
        other => Err(err(format!(
            "password_hash: the hash type '{other}' is not supported (sha512, sha256)"
        ))),
    }
}

/// The `rounds=N$` field of a SHA-crypt hash; crypt's own default (5000) is left
/// implicit, as passlib and glibc write it.
fn rounds_field(rounds: usize) -> String {
    if rounds == 5000 {
        String::new()
    } else {
        format!("rounds={rounds}$")
    }
}

/// Ansible's namespace for `to_uuid`.
const ANSIBLE_UUID_NAMESPACE: uuid::Uuid = uuid::uuid!("361E6D51-FAEC-444A-9079-341386DA8E2E");

/// `to_uuid(namespace=ansible's)`: the name-based (version 5) UUID of the text.
pub fn to_uuid(value: Value, namespace: Option<String>) -> Result<String, Error> {
    let namespace = match namespace {
        Some(ns) => uuid::Uuid::parse_str(&ns)
            .map_err(|e| err(format!("to_uuid: invalid namespace {ns:?}: {e}")))?,
        None => ANSIBLE_UUID_NAMESPACE,
    };
    Ok(uuid::Uuid::new_v5(&namespace, py_str(&value).as_bytes()).to_string())
}

/// `splitext`: Python's `os.path.splitext`, `[root, ext]`.
pub fn splitext(value: Value) -> Value {
    let path = py_str(&value);
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let name = &path[name_start..];
    // Leading dots belong to the name (`.bashrc` has no extension).
    let dots = name.len() - name.trim_start_matches('.').len();
    match name[dots..].rfind('.') {
        Some(i) => {
            let at = name_start + dots + i;
            Value::from(vec![path[..at].to_string(), path[at..].to_string()])
        }
        None => Value::from(vec![path.clone(), String::new()]),
    }
}

/// `urlsplit(query='')`: Python's `urllib.parse.urlsplit` as a dict, or one part of it.
pub fn urlsplit(value: Value, query: Option<String>) -> Result<Value, Error> {
    let parts = split_url(&py_str(&value));
    match query.filter(|q| !q.is_empty()) {
        None => Ok(Value::from_serialize(&parts)),
        Some(q) => parts
            .get(&q)
            .map(Value::from_serialize)
            .ok_or_else(|| err(format!("urlsplit: unknown URL component: {q}"))),
    }
}

fn split_url(url: &str) -> Json {
    let (scheme, rest) = match url.split_once(':') {
        Some((s, rest))
            if !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_ascii_lowercase(), rest)
        }
        _ => (String::new(), url),
    };
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (netloc, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        },
        None => ("", rest),
    };
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((name, pw)) => (Some(name), Some(pw)),
            None => (Some(u), None),
        },
        None => (None, None),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => (v6, None),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let hostname = (!host.is_empty()).then(|| host.to_ascii_lowercase());
    let port = port.and_then(|p| p.parse::<u16>().ok());
    json!({
        "fragment": fragment,
        "hostname": hostname,
        "netloc": netloc,
        "password": password,
        "path": path,
        "port": port,
        "query": query,
        "scheme": scheme,
        "username": username,
    })
}

/// Ansible's size suffixes, largest first.
const SIZE_RANGES: [(char, f64); 9] = [
    ('Y', 1_208_925_819_614_629_174_706_176.0),
    ('Z', 1_180_591_620_717_411_303_424.0),
    ('E', 1_152_921_504_606_846_976.0),
    ('P', 1_125_899_906_842_624.0),
    ('T', 1_099_511_627_776.0),
    ('G', 1_073_741_824.0),
    ('M', 1_048_576.0),
    ('K', 1_024.0),
    ('B', 1.0),
];

/// `human_readable(isbits=False, unit=None)`: `1.18 MB`.
pub fn human_readable(
    value: Value,
    isbits: Option<bool>,
    unit: Option<String>,
) -> Result<String, Error> {
    let size = f64::try_from(value).map_err(|_| err("human_readable() failed on bad input"))?;
    let base = if isbits.unwrap_or(false) {
        "bits"
    } else {
        "Bytes"
    };
    let wanted = unit
        .as_deref()
        .and_then(|u| u.chars().next())
        .map(|c| c.to_ascii_uppercase());
    let (suffix, limit) = SIZE_RANGES
        .iter()
        .copied()
        .find(|(s, limit)| match wanted {
            None => size >= *limit,
            Some(w) => w == *s,
        })
        .unwrap_or(('B', 1.0));
    let suffix = if limit != 1.0 {
        format!("{suffix}{}", &base[..1])
    } else {
        base.to_string()
    };
    Ok(format!("{:.2} {suffix}", size / limit))
}

/// `human_to_bytes(default_unit=None, isbits=False)`: `'1K'` is 1024.
pub fn human_to_bytes(
    value: Value,
    default_unit: Option<String>,
    isbits: Option<bool>,
) -> Result<i64, Error> {
    let text = py_str(&value);
    let bad = || {
        err(format!(
            "human_to_bytes() can't interpret following string: {text}"
        ))
    };
    let trimmed = text.trim_end();
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let number: f64 = trimmed[..number_end].parse().map_err(|_| bad())?;
    let unit = trimmed[number_end..].trim_start();
    if !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let unit = if unit.is_empty() {
        match default_unit {
            Some(u) => u,
            None => return Ok(number.round() as i64),
        }
    } else {
        unit.to_string()
    };
    let first = unit.chars().next().map(|c| c.to_ascii_uppercase());
    let limit = SIZE_RANGES
        .iter()
        .find(|(s, _)| Some(*s) == first)
        .map(|(_, l)| *l)
        .ok_or_else(|| {
            err(format!(
                "human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
            ))
        })?;
    // A two-letter unit must name bytes (`MB`), or bits (`Mb`) with isbits.
    let class = if isbits.unwrap_or(false) { 'b' } else { 'B' };
    if unit.len() > 1 && !unit.ends_with(class) && !unit.eq_ignore_ascii_case("b") {
        let kind = if class == 'b' { "bit" } else { "byte" };
        return Err(err(format!(
            "human_to_bytes() failed to convert {text}. Value is not a valid string ({unit} is not a {kind} identifier)"
        )));
    }
    Ok((number * limit).round() as i64)
}

/// Jinja's `truncate(length=255, killwords=False, end='...', leeway=5)`.
pub fn truncate(
    value: Value,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let length = length.or(kw.get("length")?).unwrap_or(255);
    let killwords = killwords.or(kw.get("killwords")?).unwrap_or(false);
    let end = end.or(kw.get("end")?).unwrap_or_else(|| "...".into());
    let leeway: usize = kw.get::<Option<usize>>("leeway")?.unwrap_or(5);
    kw.assert_all_used()?;
    let text = py_str(&value);
    let chars: Vec<char> = text.chars().collect();
    let end_len = end.chars().count();
    if length < end_len {
        return Err(err("expected length >= the length of end"));
    }
    if chars.len() <= length + leeway {
        return Ok(text);
    }
    let head: String = chars[..length - end_len].iter().collect();
    if killwords {
        return Ok(head + &end);
    }
    let kept = head
        .rsplit_once(' ')
        .map_or(head.as_str(), |(before, _)| before);
    Ok(format!("{kept}{end}"))
}

/// Jinja's `center(width=80)`: Python's `str.center`.
pub fn center(value: Value, width: Option<usize>) -> String {
    let text = py_str(&value);
    let width = width.unwrap_or(80);
    let len = text.chars().count();
    if width <= len {
        return text;
    }
    let margin = width - len;
    let left = margin / 2 + (margin & width & 1);
    format!("{}{text}{}", " ".repeat(left), " ".repeat(margin - left))
}

/// `now(utc=False, fmt=None)`: the controller's time, formatted with `fmt` (strftime
/// codes) or as Python prints a datetime.
pub fn now(kw: Kwargs) -> Result<String, Error> {
    let utc: bool = kw.get::<Option<bool>>("utc")?.unwrap_or(false);
    let fmt: Option<String> = kw.get("fmt")?;
    kw.assert_all_used()?;
    let fmt = fmt.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S%.6f");
    let mut out = String::new();
    let written = if utc {
        write!(out, "{}", chrono::Utc::now().format(fmt))
    } else {
        write!(out, "{}", chrono::Local::now().format(fmt))
    };
    written.map_err(|_| err(format!("now(): invalid format {fmt:?}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitext_and_urlsplit_follow_python() {
        assert_eq!(
            splitext(Value::from("c.tar.gz")).to_string(),
            r#"["c.tar", ".gz"]"#
        );
        assert_eq!(
            splitext(Value::from("/a.b/.bashrc")).to_string(),
            r#"["/a.b/.bashrc", ""]"#
        );
        let parts = split_url("HTTP://u:pw@WWW.Acme.com:9000/dir/x.html?q=1#frag");
        assert_eq!(parts["scheme"], "http");
        assert_eq!(parts["hostname"], "www.acme.com");
        assert_eq!(parts["netloc"], "u:pw@WWW.Acme.com:9000");
        assert_eq!(parts["port"], 9000);
        assert_eq!(parts["path"], "/dir/x.html");
        assert_eq!(parts["query"], "q=1");
        assert_eq!(parts["fragment"], "frag");
        assert_eq!(parts["username"], "u");
        assert_eq!(parts["password"], "pw");
        assert_eq!(split_url("/just/a/path")["hostname"], Json::Null);
    }

    #[test]
    fn center_matches_python() {
        // Python: 'x'.center(5), 'ab'.center(5), 'ab'.center(6)
        assert_eq!(center(Value::from("x"), Some(5)), "  x  ");
        assert_eq!(center(Value::from("ab"), Some(5)), "  ab ");
        assert_eq!(center(Value::from("ab"), Some(6)), "  ab  ");
    }
}
