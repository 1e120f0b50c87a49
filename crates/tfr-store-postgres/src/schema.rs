//! Versioned migrations, applied at start in order, each in its own transaction — the same
//! numbering as the SQLite store's. Files are never edited once released; a change is a new
//! file with the next number, in both stores.
//!
//! Several nodes may start at once on one database: whoever takes the migration lock (a
//! session-level advisory lock) applies what is pending while the others wait, then finds
//! nothing left to do.

use sqlx_core::connection::Connection;
use sqlx_core::executor::Executor;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::raw_sql::raw_sql;
use sqlx_postgres::{PgConnection, PgPool};

/// `(version, name, SQL)`, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "events", include_str!("../migrations/0001_events.sql")),
    (2, "rollups", include_str!("../migrations/0002_rollups.sql")),
    (3, "tokens", include_str!("../migrations/0003_tokens.sql")),
    (
        4,
        "batched_indexing",
        include_str!("../migrations/0004_batched_indexing.sql"),
    ),
    (
        5,
        "rollup_levels",
        include_str!("../migrations/0005_rollup_levels.sql"),
    ),
    (
        6,
        "search_statistics",
        include_str!("../migrations/0006_search_statistics.sql"),
    ),
];

/// The advisory lock key of migrations (`'tfr_migr'` in ASCII). Advisory locks are per
/// database, so two tfr databases on one server do not wait for each other.
const MIGRATION_LOCK: i64 = 0x7466_725f_6d69_6772;

/// The latest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Database(#[from] sqlx_core::Error),
    #[error(
        "the database is at schema version {found}, newer than this tfr knows ({known}); run a newer tfr"
    )]
    TooNew { found: i64, known: i64 },
}

/// Brings the database up to the latest schema, under the migration lock.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrationError> {
    let mut connection = pool.acquire().await?;
    query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await?;
    let applied = apply_pending(&mut connection).await;
    let unlocked = query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await;
    if applied.is_err() || unlocked.is_err() {
        // Never hand a connection that may still hold the lock back to the pool: closing it
        // ends the session, which releases the lock.
        let _ = connection.detach().close().await;
    }
    applied?;
    unlocked?;
    Ok(())
}

async fn apply_pending(connection: &mut PgConnection) -> Result<(), MigrationError> {
    connection
        .execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT      PRIMARY KEY,
                 name       TEXT        NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i64 = query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(&mut *connection)
        .await?;
    let known = latest();
    if current > known {
        return Err(MigrationError::TooNew {
            found: current,
            known,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        let mut transaction = connection.begin().await?;
        raw_sql(*sql).execute(&mut *transaction).await?;
        query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}
