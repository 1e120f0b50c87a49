//! API tokens (design §10): what a token looks like, how it is stored (a SHA-256 hash, never
//! the token), what its scopes allow, and what it may be named.
//!
//! Tokens are 32 random bytes, hex-encoded behind the prefix `tfr_`: the prefix makes a leaked
//! token easy to recognise (secret scanners, logs) and lets the integrations tell a tfr token
//! from a tool's own API key. The random bytes come from the caller (the CLI reads the OS
//! random number generator), so this module stays free of I/O. A token has 256 bits of
//! entropy, so a plain SHA-256 is the right hash: there is no password to guess, and a
//! deliberately slow hash would only slow every request down.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What every tfr token starts with.
pub const TOKEN_PREFIX: &str = "tfr_";

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// The longest token name.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

/// Names an event's `submitted_by` already uses for callers without a token: a token may not
/// take them, so `submitted_by` always says who it was.
pub const RESERVED_TOKEN_NAMES: [&str; 3] = ["anonymous", "github-webhook", "gitlab-webhook"];

/// What a token may do. Each scope includes the ones below it: `admin` ⊃ `write` ⊃ `read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read events, statistics, the stream and the web UI.
    Read,
    /// Also record events and patch them.
    Write,
    /// Also delete events (redaction) and read the audit log.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` is required for.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    /// The scopes this one grants, lowest first (`write` → `read, write`).
    pub fn granted(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| self.allows(*s)).collect()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!(
                "'{}' is not a scope; expected read, write or admin",
                crate::clip(text)
            )),
        }
    }
}

/// The token made of `TOKEN_BYTES` random bytes: `tfr_` and 64 lowercase hex digits.
pub fn token_from_bytes(bytes: &[u8; TOKEN_BYTES]) -> String {
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
    token.push_str(TOKEN_PREFIX);
    for byte in bytes {
        token.push(char::from(HEX[usize::from(byte >> 4)]));
        token.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    token
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What the store keeps of a token: its SHA-256, in hex.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .flat_map(|byte| [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]])
        .map(char::from)
        .collect()
}

/// Whether a credential is meant as a tfr token (it has the prefix). The integrations use it to
/// tell a tfr token from a tool's own key (a Grafana service account token, a Datadog API
/// key), which tfr does not know and treats as no credential at all.
pub fn looks_like_token(credential: &str) -> bool {
    credential.starts_with(TOKEN_PREFIX)
}

/// Checks a token name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter
/// or a digit, and not a name `submitted_by` uses for callers without a token. The name is
/// what events record in `submitted_by`, so it is kept plain.
pub fn validate_token_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a token name cannot be empty".into());
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(format!(
            "a token name has at most {MAX_TOKEN_NAME_CHARS} characters"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a token name starts with a letter or a digit".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "'{}' cannot be in a token name (letters, digits, '-', '_' and '.' only)",
            bad.escape_default()
        ));
    }
    if RESERVED_TOKEN_NAMES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "'{name}' is what events record for callers without a token; choose another name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_include_the_ones_below() {
        assert!(Scope::Admin.allows(Scope::Write) && Scope::Admin.allows(Scope::Read));
        assert!(Scope::Write.allows(Scope::Read) && !Scope::Write.allows(Scope::Admin));
        assert!(!Scope::Read.allows(Scope::Write));
        assert_eq!(Scope::Write.granted(), [Scope::Read, Scope::Write]);
        assert_eq!("ADMIN".parse::<Scope>(), Ok(Scope::Admin));
        assert!("root".parse::<Scope>().is_err());
        assert_eq!(serde_json::to_string(&Scope::Read).unwrap(), "\"read\"");
    }

    #[test]
    fn tokens_have_the_prefix_and_hash_to_hex() {
        let token = token_from_bytes(&[0xab; TOKEN_BYTES]);
        assert_eq!(token.len(), 4 + 64);
        assert!(token.starts_with("tfr_abab") && looks_like_token(&token));
        assert!(!looks_like_token("glsa_0123"));
        // SHA-256 of the empty string.
        assert_eq!(
            hash_token(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(hash_token(&token), token);
    }

    #[test]
    fn token_names() {
        for good in ["ci-jenkins", "grafana.prod", "a", "team_1", &"x".repeat(64)] {
            assert_eq!(validate_token_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-x",
            "with space",
            "ünï",
            "a/b",
            "anonymous",
            "GitHub-Webhook",
            &"x".repeat(65),
        ] {
            assert!(validate_token_name(bad).is_err(), "{bad}");
        }
    }
}
