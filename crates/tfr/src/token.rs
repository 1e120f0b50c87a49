//! `tfr token create|list|revoke`: API tokens, managed by the operator directly on the store
//! named by `--data`/`--database` (like `tfr serve`), not through the HTTP API: whoever can
//! open the store is already trusted with everything in it.
//!
//! A token is shown once, by `create`, alone on stdout (`T=$(tfr token create ...)`); the
//! store keeps only its SHA-256.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde_json::json;
use tfr_core::time::{now, parse_duration, parse_time_bound};
use tfr_core::token::{Scope, TOKEN_BYTES, hash_token, token_from_bytes, validate_token_name};
use tfr_server::TOKEN_CACHE_TTL;
use tfr_store::{NewToken, Store, TokenInfo};

use crate::client::{format_utc, sanitize_for_terminal};
use crate::config::FileConfig;
use crate::store::StoreArgs;

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print it, alone, on stdout (it is shown once).
    Create(CreateArgs),
    /// List the tokens: name, scope, created, last used, expires, state.
    List(ListArgs),
    /// Revoke a token: it stops working on every server within seconds. Its name stays taken.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The token's name, recorded as `submitted_by` on every event it sends (letters, digits,
    /// `-`, `_`, `.`; at most 64).
    #[arg(long)]
    name: String,

    /// What the token may do: `read`, `write` (includes read) or `admin` (includes write:
    /// deleting events, the audit log).
    #[arg(long, value_name = "SCOPE")]
    scope: Scope,

    /// When the token stops working: a duration from now (`90d`, `12h`, `4w`) or a date or
    /// time (`2027-01-01`, RFC 3339). Default: never.
    #[arg(long, value_name = "WHEN")]
    expires: Option<String>,

    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Print JSON (an array of tokens) instead of a table.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
struct RevokeArgs {
    /// The token's name.
    name: String,

    #[command(flatten)]
    store: StoreArgs,
}

/// Connections of a token command to PostgreSQL: it runs one statement at a time.
const POOL_SIZE: u32 = 2;

pub async fn run(args: TokenArgs, file: FileConfig) -> anyhow::Result<ExitCode> {
    let store_args = match &args.command {
        TokenCommand::Create(create) => &create.store,
        TokenCommand::List(list) => &list.store,
        TokenCommand::Revoke(revoke) => &revoke.store,
    };
    // Checked before the store is opened (and, for SQLite, created).
    if let TokenCommand::Create(create) = &args.command {
        validate_token_name(&create.name)
            .map_err(|message| anyhow::anyhow!("--name: {message}"))?;
    }
    let backend = StoreArgs {
        data: store_args.data.clone(),
        database: store_args.database.clone(),
    }
    .backend(&file)?;
    let expires_at = match &args.command {
        TokenCommand::Create(create) => create.expires.as_deref().map(expiry).transpose()?,
        _ => None,
    };
    if !matches!(args.command, TokenCommand::Create(_)) && !backend.exists() {
        bail!("there is no store in {}", backend.describe());
    }
    let store = backend.open(POOL_SIZE).await?;
    let result = match args.command {
        TokenCommand::Create(create) => {
            create_token(&store, create.name, create.scope, expires_at).await
        }
        TokenCommand::List(list) => list_tokens(&store, list.json).await,
        TokenCommand::Revoke(revoke) => revoke_token(&store, &revoke.name).await,
    };
    let flushed = store.shutdown().await;
    let code = result?;
    flushed.context("closing the store failed")?;
    Ok(code)
}

/// `--expires`: a duration from now, or an instant (which must be in the future).
fn expiry(text: &str) -> anyhow::Result<Timestamp> {
    let now = now();
    let at = match parse_duration(text) {
        Ok(duration) => now
            .checked_add(duration)
            .map_err(|_| anyhow::anyhow!("--expires: '{text}' is too far away"))?,
        Err(_) => parse_time_bound(text).map_err(|_| {
            anyhow::anyhow!(
                "--expires: '{text}' is neither a duration (90d, 12h, 4w) nor a date or time (2027-01-01, RFC 3339)"
            )
        })?,
    };
    if at <= now {
        bail!("--expires: {at} is in the past");
    }
    Ok(at)
}

async fn create_token(
    store: &Arc<dyn Store>,
    name: String,
    scope: Scope,
    expires_at: Option<Timestamp>,
) -> anyhow::Result<ExitCode> {
    let mut random = [0_u8; TOKEN_BYTES];
    getrandom::fill(&mut random)
        .map_err(|error| anyhow::anyhow!("cannot read the system's random numbers: {error}"))?;
    let token = token_from_bytes(&random);
    let created = store
        .create_token(NewToken {
            name: name.clone(),
            scope,
            hash: hash_token(&token),
            created_at: now(),
            expires_at,
        })
        .await
        .context("cannot store the token")?;
    let Some(created) = created else {
        bail!(
            "a token named '{name}' already exists (names are never reused, even once revoked); choose another name"
        );
    };
    println!("{token}");
    let expires = created.expires_at.map_or_else(
        || "never expires".to_owned(),
        |at| format!("expires {}", format_utc(at)),
    );
    eprintln!(
        "tfr: token '{}' created, scope {} ({}), {expires}. It is shown once: store it now.",
        created.name,
        created.scope,
        scope_list(created.scope),
    );
    Ok(ExitCode::SUCCESS)
}

async fn list_tokens(store: &Arc<dyn Store>, as_json: bool) -> anyhow::Result<ExitCode> {
    let tokens = store
        .list_tokens()
        .await
        .context("cannot read the tokens")?;
    let now = now();
    if as_json {
        let tokens: Vec<_> = tokens
            .iter()
            .map(|token| {
                json!({
                    "name": token.name,
                    "scope": token.scope,
                    "scopes": token.scope.granted(),
                    "created_at": token.created_at,
                    "last_used_at": token.last_used_at,
                    "expires_at": token.expires_at,
                    "revoked_at": token.revoked_at,
                    "state": state(token, now),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&tokens)?);
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        eprintln!("tfr: no tokens (create one with tfr token create --name NAME --scope write)");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = tokens
        .iter()
        .map(|token| {
            [
                sanitize_for_terminal(&token.name),
                scope_list(token.scope),
                format_utc(token.created_at),
                token
                    .last_used_at
                    .map_or_else(|| "never".into(), format_utc),
                token.expires_at.map_or_else(|| "never".into(), format_utc),
                state(token, now),
            ]
        })
        .collect();
    let header = ["NAME", "SCOPES", "CREATED", "LAST USED", "EXPIRES", "STATE"].map(String::from);
    let mut widths = header.each_ref().map(|cell| cell.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke_token(store: &Arc<dyn Store>, name: &str) -> anyhow::Result<ExitCode> {
    let at = now();
    let Some(token) = store
        .revoke_token(name, at)
        .await
        .context("cannot revoke the token")?
    else {
        bail!("there is no token named '{}'", sanitize_for_terminal(name));
    };
    match token.revoked_at {
        Some(revoked_at) if revoked_at < at => eprintln!(
            "tfr: token '{}' was already revoked at {}",
            token.name,
            format_utc(revoked_at)
        ),
        _ => eprintln!(
            "tfr: token '{}' revoked; running servers refuse it within {} s",
            token.name,
            TOKEN_CACHE_TTL.as_secs()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `read`, `read,write`, `read,write,admin`.
fn scope_list(scope: Scope) -> String {
    scope
        .granted()
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// `active`, `revoked` or `expired`.
fn state(token: &TokenInfo, now: Timestamp) -> String {
    if token.revoked_at.is_some() {
        "revoked".into()
    } else if token.is_active(now) {
        "active".into()
    } else {
        "expired".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_a_duration_or_a_time() {
        let in_90_days = expiry("90d").unwrap();
        let days = (in_90_days.as_second() - now().as_second()) / 86_400;
        assert!((89..=90).contains(&days), "{days}");
        assert_eq!(
            expiry("2999-01-01").unwrap(),
            "2999-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(
            expiry("2001-01-01")
                .unwrap_err()
                .to_string()
                .contains("past")
        );
        assert!(expiry("soon").is_err());
    }

    #[test]
    fn scopes_are_listed_with_what_they_include() {
        assert_eq!(scope_list(Scope::Read), "read");
        assert_eq!(scope_list(Scope::Admin), "read,write,admin");
    }
}
