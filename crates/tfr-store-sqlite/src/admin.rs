//! API tokens and the audit log (migration 0003): plain SQL over `api_tokens` and
//! `audit_log`. Writes run on the writer thread, inside the group's transaction (see
//! [`crate::writer::Job`]); reads on the read pool.

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row};
use tfr_core::EventId;
use tfr_core::token::Scope;
use tfr_store::{AuditAction, AuditEntry, Deletion, NewToken, TokenInfo};

const TOKEN_COLUMNS: &str = "name, scope, created_at, expires_at, last_used_at, revoked_at";

const AUDIT_COLUMNS: &str = "id, at, actor, action, event_id, title, system, reason";

fn conversion(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let micros: i64 = row.get(index)?;
    Timestamp::from_microsecond(micros).map_err(|e| conversion(index, e.to_string()))
}

fn optional_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<i64>>(index)? {
        Some(_) => time(row, index).map(Some),
        None => Ok(None),
    }
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let scope: String = row.get(1)?;
    Ok(TokenInfo {
        name: row.get(0)?,
        scope: scope.parse::<Scope>().map_err(|e| conversion(1, e))?,
        created_at: time(row, 2)?,
        expires_at: optional_time(row, 3)?,
        last_used_at: optional_time(row, 4)?,
        revoked_at: optional_time(row, 5)?,
    })
}

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let action: String = row.get(3)?;
    let event_id: String = row.get(4)?;
    Ok(AuditEntry {
        id: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        at: time(row, 1)?,
        actor: row.get(2)?,
        action: action
            .parse::<AuditAction>()
            .map_err(|e| conversion(3, e))?,
        event_id: event_id.parse::<EventId>().map_err(|e| conversion(4, e))?,
        title: row.get(5)?,
        system: row.get(6)?,
        reason: row.get(7)?,
    })
}

/// Inserts a token unless its name is taken.
pub fn create_token(
    connection: &Connection,
    token: &NewToken,
) -> rusqlite::Result<Option<TokenInfo>> {
    let taken: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1)")?
        .query_row([&token.name], |row| row.get(0))?;
    if taken {
        return Ok(None);
    }
    connection
        .prepare_cached(
            "INSERT INTO api_tokens (name, hash, scope, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute((
            &token.name,
            &token.hash,
            token.scope.as_str(),
            token.created_at.as_microsecond(),
            token.expires_at.map(Timestamp::as_microsecond),
        ))?;
    token_by_name(connection, &token.name)
}

fn token_by_name(connection: &Connection, name: &str) -> rusqlite::Result<Option<TokenInfo>> {
    connection
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = ?1"
        ))?
        .query_row([name], token_from_row)
        .optional()
}

/// Every token, by name.
pub fn list_tokens(connection: &Connection) -> rusqlite::Result<Vec<TokenInfo>> {
    connection
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
        ))?
        .query_map([], token_from_row)?
        .collect()
}

/// Sets `revoked_at` unless already set.
pub fn revoke_token(
    connection: &Connection,
    name: &str,
    at: Timestamp,
) -> rusqlite::Result<Option<TokenInfo>> {
    connection
        .prepare_cached(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        )?
        .execute((name, at.as_microsecond()))?;
    token_by_name(connection, name)
}

/// The token with this hash.
pub fn token_by_hash(connection: &Connection, hash: &str) -> rusqlite::Result<Option<TokenInfo>> {
    connection
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1"
        ))?
        .query_row([hash], token_from_row)
        .optional()
}

/// Moves `last_used_at` forward to `at`.
pub fn touch_token(connection: &Connection, name: &str, at: Timestamp) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "UPDATE api_tokens SET last_used_at = ?2 \
             WHERE name = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        )?
        .execute((name, at.as_microsecond()))?;
    Ok(())
}

/// Deletes an event and records it in the audit log. The triggers of migrations 0001 and 0002
/// take it out of the full-text index and the rollups; its tags and diff go by cascade.
pub fn delete_event(
    connection: &Connection,
    deletion: &Deletion,
) -> rusqlite::Result<Option<AuditEntry>> {
    let found: Option<(i64, String, String)> = connection
        .prepare_cached("SELECT seq, title, system FROM events WHERE id = ?1")?
        .query_row([deletion.id.to_string()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((seq, title, system)) = found else {
        return Ok(None);
    };
    connection
        .prepare_cached("DELETE FROM events WHERE seq = ?1")?
        .execute([seq])?;
    connection
        .prepare_cached("UPDATE counters SET value = value - 1 WHERE name = 'events'")?
        .execute([])?;
    connection
        .prepare_cached(
            "INSERT INTO audit_log (at, actor, action, event_id, title, system, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute((
            deletion.at.as_microsecond(),
            &deletion.actor,
            AuditAction::EventDeleted.as_str(),
            deletion.id.to_string(),
            &title,
            &system,
            &deletion.reason,
        ))?;
    let id = connection.last_insert_rowid();
    connection
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id = ?1"
        ))?
        .query_row([id], audit_from_row)
        .map(Some)
}

/// Audit entries below `before`, newest first.
pub fn audit_log(
    connection: &Connection,
    before: Option<u64>,
    limit: i64,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
    connection
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
        ))?
        .query_map((before, limit), audit_from_row)?
        .collect()
}
