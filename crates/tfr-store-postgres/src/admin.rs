//! API tokens and the audit log (migration 0003): plain SQL over `api_tokens` and
//! `audit_log`, each change in a transaction of its own on the pool. These writes allocate no
//! stream positions, so they need neither the writer task nor its lock.

use jiff::Timestamp;
use sqlx_core::query::query;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, PgRow};
use tfr_core::EventId;
use tfr_core::token::Scope;
use tfr_store::{AuditAction, AuditEntry, Deletion, NewToken, TokenInfo};
use uuid::Uuid;

use crate::rows::PgTime;

const TOKEN_COLUMNS: &str = "name, scope, created_at, expires_at, last_used_at, revoked_at";

const AUDIT_COLUMNS: &str = "id, at, actor, action, event_id, title, system, reason";

fn decode_error(index: usize, message: String) -> sqlx_core::Error {
    sqlx_core::Error::ColumnDecode {
        index: index.to_string(),
        source: message.into(),
    }
}

fn optional_time(row: &PgRow, index: usize) -> Result<Option<Timestamp>, sqlx_core::Error> {
    row.try_get::<Option<PgTime>, _>(index)?
        .map(PgTime::timestamp)
        .transpose()
}

fn token_from_row(row: &PgRow) -> Result<TokenInfo, sqlx_core::Error> {
    let scope: String = row.try_get(1)?;
    Ok(TokenInfo {
        name: row.try_get(0)?,
        scope: scope
            .parse::<Scope>()
            .map_err(|error| decode_error(1, error))?,
        created_at: row.try_get::<PgTime, _>(2)?.timestamp()?,
        expires_at: optional_time(row, 3)?,
        last_used_at: optional_time(row, 4)?,
        revoked_at: optional_time(row, 5)?,
    })
}

fn audit_from_row(row: &PgRow) -> Result<AuditEntry, sqlx_core::Error> {
    let action: String = row.try_get(3)?;
    Ok(AuditEntry {
        id: u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
        at: row.try_get::<PgTime, _>(1)?.timestamp()?,
        actor: row.try_get(2)?,
        action: action
            .parse::<AuditAction>()
            .map_err(|error| decode_error(3, error))?,
        event_id: EventId::from(row.try_get::<Uuid, _>(4)?),
        title: row.try_get(5)?,
        system: row.try_get(6)?,
        reason: row.try_get(7)?,
    })
}

/// Inserts a token unless its name is taken.
pub async fn create_token(
    pool: &PgPool,
    token: &NewToken,
) -> Result<Option<TokenInfo>, sqlx_core::Error> {
    let text = format!(
        "INSERT INTO api_tokens (name, hash, scope, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING {TOKEN_COLUMNS}"
    );
    let row = query(AssertSqlSafe(text))
        .bind(&token.name)
        .bind(&token.hash)
        .bind(token.scope.as_str())
        .bind(PgTime::of(token.created_at))
        .bind(token.expires_at.map(PgTime::of))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token_from_row).transpose()
}

/// Every token, by name.
pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenInfo>, sqlx_core::Error> {
    let text = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name");
    query(AssertSqlSafe(text))
        .fetch_all(pool)
        .await?
        .iter()
        .map(token_from_row)
        .collect()
}

/// Sets `revoked_at` unless already set.
pub async fn revoke_token(
    pool: &PgPool,
    name: &str,
    at: Timestamp,
) -> Result<Option<TokenInfo>, sqlx_core::Error> {
    let text = format!(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1 \
         RETURNING {TOKEN_COLUMNS}"
    );
    let row = query(AssertSqlSafe(text))
        .bind(name)
        .bind(PgTime::of(at))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token_from_row).transpose()
}

/// The token with this hash.
pub async fn token_by_hash(
    pool: &PgPool,
    hash: &str,
) -> Result<Option<TokenInfo>, sqlx_core::Error> {
    let text = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1");
    let row = query(AssertSqlSafe(text))
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token_from_row).transpose()
}

/// Moves `last_used_at` forward to `at`.
pub async fn touch_token(pool: &PgPool, name: &str, at: Timestamp) -> Result<(), sqlx_core::Error> {
    query(
        "UPDATE api_tokens SET last_used_at = $2 \
         WHERE name = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
    )
    .bind(name)
    .bind(PgTime::of(at))
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes an event and records it in the audit log, in one transaction. The statement
/// trigger of migration 0002 takes it out of the rollups; its tags and diff go by cascade.
pub async fn delete_event(
    pool: &PgPool,
    deletion: &Deletion,
) -> Result<Option<AuditEntry>, sqlx_core::Error> {
    let mut transaction = pool.begin().await?;
    let deleted: Option<(String, String)> =
        query("DELETE FROM events WHERE id = $1 RETURNING title, system")
            .bind(deletion.id.as_uuid())
            .fetch_optional(&mut *transaction)
            .await?
            .map(|row| Ok::<_, sqlx_core::Error>((row.try_get(0)?, row.try_get(1)?)))
            .transpose()?;
    let Some((title, system)) = deleted else {
        return Ok(None);
    };
    query("UPDATE counters SET value = value - 1 WHERE name = 'events'")
        .execute(&mut *transaction)
        .await?;
    let text = format!(
        "INSERT INTO audit_log (at, actor, action, event_id, title, system, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {AUDIT_COLUMNS}"
    );
    let row = query(AssertSqlSafe(text))
        .bind(PgTime::of(deletion.at))
        .bind(&deletion.actor)
        .bind(AuditAction::EventDeleted.as_str())
        .bind(deletion.id.as_uuid())
        .bind(&title)
        .bind(&system)
        .bind(&deletion.reason)
        .fetch_one(&mut *transaction)
        .await?;
    let entry = audit_from_row(&row)?;
    transaction.commit().await?;
    Ok(Some(entry))
}

/// Audit entries below `before`, newest first.
pub async fn audit_log(
    pool: &PgPool,
    before: Option<u64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx_core::Error> {
    let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
    let text =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2");
    query(AssertSqlSafe(text))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
}
