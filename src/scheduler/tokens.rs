//! API tokens: what a token is, how it is made, kept and checked. A token is
//! `<id>.<secret>`: the id (64 random bits, hex) names it in `infra token list` and
//! `revoke`; the secret (256 random bits, hex) is shown once, when it is made, and the
//! store keeps only its SHA-256 (a slow password hash buys nothing for 256 random bits).
//! A presented token is found by its id and its secret's hash compared in constant time,
//! so neither the answer nor its timing tells how much of a guess was right.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// GET (and HEAD) only.
    ReadOnly,
    /// Reads, and writes to apps, their tasks and deployments under its app prefixes.
    Deployer,
    /// Everything, token management included.
    Admin,
}

impl Role {
    pub const NAMES: [&'static str; 3] = ["read-only", "deployer", "admin"];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::ReadOnly => "read-only",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        })
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "read-only" => Ok(Role::ReadOnly),
            "deployer" => Ok(Role::Deployer),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected one of {}",
                Role::NAMES.join(", ")
            )),
        }
    }
}

/// A token as the store keeps it (and `infra token list` shows it): never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// App id patterns a deployer may write: `/team/*` (every app under `/team/`) or an
    /// exact app id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    #[serde(default)]
    pub created: String,
}

/// A token just made: its record and the token text, to be shown once.
pub struct NewToken {
    pub record: TokenRecord,
    pub token: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Hex SHA-256 of a token's secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Makes a token (the caller stores the record). `apps` must have passed
/// [`check_app_pattern`].
pub fn generate(role: Role, apps: Vec<String>, name: String) -> NewToken {
    let id = random_hex(8);
    let secret = random_hex(32);
    NewToken {
        token: format!("{id}.{secret}"),
        record: TokenRecord {
            id,
            name,
            role,
            apps,
            hash: hash_secret(&secret),
            created: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        },
    }
}

/// `<id>.<secret>` split; None for anything else.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Whether `secret` is the one `record` was made with (constant time in the secret).
pub fn matches(record: &TokenRecord, secret: &str) -> bool {
    let presented = hash_secret(secret);
    presented.as_bytes().ct_eq(record.hash.as_bytes()).into()
}

/// An app pattern for `--apps`: an absolute app id, or one ending in `/*`.
pub fn check_app_pattern(pattern: &str) -> Result<(), String> {
    let base = pattern.strip_suffix("/*").unwrap_or(pattern);
    let valid = pattern == "/*"
        || (base.starts_with('/')
            && base.len() > 1
            && !base.contains('*')
            && base
                .split('/')
                .skip(1)
                .all(|s| !s.is_empty() && s != "." && s != ".."));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "app pattern {pattern:?}: expected an app id such as /team/web, or a prefix \
             such as /team/*"
        ))
    }
}

/// Whether one of `patterns` covers the app `app_id` (canonical, starting with `/`).
pub fn covers(patterns: &[String], app_id: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => app_id.starts_with(prefix) && app_id.len() > prefix.len(),
            None => pattern == app_id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_record_and_nothing_else() {
        let new = generate(Role::Admin, Vec::new(), "x".into());
        let (id, secret) = split(&new.token).unwrap();
        assert_eq!(id, new.record.id);
        assert_eq!(secret.len(), 64, "256 bits of secret");
        assert!(matches(&new.record, secret));
        assert!(!matches(&new.record, &secret[1..]));
        assert!(!new.record.hash.contains(secret));
        let other = generate(Role::Admin, Vec::new(), "y".into());
        assert_ne!(other.token, new.token);
    }

    #[test]
    fn app_patterns_cover_what_they_name() {
        let team = vec!["/team/*".to_string(), "/solo".to_string()];
        assert!(covers(&team, "/team/web"));
        assert!(covers(&team, "/team/a/b"));
        assert!(!covers(&team, "/team"));
        assert!(!covers(&team, "/teamx/web"));
        assert!(covers(&team, "/solo"));
        assert!(!covers(&team, "/solo/x"));
        assert!(covers(&["/*".to_string()], "/anything"));
    }

    #[test]
    fn bad_app_patterns_are_refused() {
        for bad in ["team/*", "/team*", "/a/../b/*", "", "/", "/a//b"] {
            assert!(check_app_pattern(bad).is_err(), "{bad}");
        }
        for good in ["/team/*", "/a/b", "/*"] {
            assert!(check_app_pattern(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn roles_read_as_they_print() {
        for name in Role::NAMES {
            assert_eq!(name.parse::<Role>().unwrap().to_string(), name);
        }
        assert!("root".parse::<Role>().unwrap_err().contains("read-only"));
    }
}
