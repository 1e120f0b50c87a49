//! Versioned migrations, applied at start in order, each in its own transaction. Files are
//! never edited once released; a change is a new file with the next number.

use rusqlite::Connection;

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
        "fts_automerge",
        include_str!("../migrations/0006_fts_automerge.sql"),
    ),
    (
        7,
        "seq_blocks",
        include_str!("../migrations/0007_seq_blocks.sql"),
    ),
    (
        8,
        "fts_own_file",
        include_str!("../migrations/0008_fts_own_file.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database is at schema version {found}, newer than this tfr knows ({known}); run a newer tfr"
    )]
    TooNew { found: i64, known: i64 },
}

/// Brings the database up to the latest schema.
pub fn migrate(connection: &mut Connection) -> Result<(), MigrationError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    let current: i64 = connection.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if current > known {
        return Err(MigrationError::TooNew {
            found: current,
            known,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            (version, name, jiff::Timestamp::now().to_string()),
        )?;
        transaction.commit()?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}
