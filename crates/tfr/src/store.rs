//! Which store a command works on — the embedded SQLite store (`--data DIR`) or a PostgreSQL
//! database (`--database URL`) — shared by `tfr serve` and the operator commands that open the
//! store directly (`tfr token`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use tfr_store::Store;
use tfr_store_postgres::{PostgresOptions, PostgresStore};
use tfr_store_sqlite::{DATABASE_FILE, SqliteStore};

use crate::config::{DEFAULT_DATA_DIR, FileConfig};

/// `--data` / `--database`, with their environment variables.
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Data directory of the embedded SQLite store (created if missing).
    #[arg(
        long,
        env = "TFR_DATA",
        value_name = "DIR",
        conflicts_with = "database"
    )]
    pub data: Option<PathBuf>,

    /// PostgreSQL URL (`postgres://user:password@host:5432/tfr`): use the PostgreSQL store,
    /// which any number of `tfr serve` nodes can share, instead of the embedded one.
    #[arg(
        long,
        env = "TFR_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
}

impl StoreArgs {
    /// The store named by the flags (or environment), else by the file, else `./tfr-data`.
    pub fn backend(self, file: &FileConfig) -> anyhow::Result<Backend> {
        Backend::choose(
            self.database,
            self.data,
            file.database.clone(),
            file.data.clone(),
        )
    }
}

/// Where the events are kept.
#[derive(Debug, PartialEq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    /// Flags and environment (`--database`, `--data`) win over the file; the file may name one
    /// of the two, not both; with none, the embedded store in `./tfr-data`.
    pub fn choose(
        database: Option<String>,
        data: Option<PathBuf>,
        file_database: Option<String>,
        file_data: Option<PathBuf>,
    ) -> anyhow::Result<Backend> {
        let url = match (database, data, file_database, file_data) {
            (Some(url), _, _, _) => url,
            (None, Some(data), _, _) => return Ok(Backend::Sqlite(data)),
            (None, None, Some(_), Some(_)) => {
                bail!("the configuration file sets both `data` and `database`; keep one")
            }
            (None, None, Some(url), None) => url,
            (None, None, None, data) => {
                return Ok(Backend::Sqlite(
                    data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
                ));
            }
        };
        if !is_postgres_url(&url) {
            bail!(
                "--database '{}': only PostgreSQL URLs (postgres://...) are supported; for the embedded store use --data DIR",
                redact(&url)
            );
        }
        Ok(Backend::Postgres(url))
    }

    /// Whether the store already exists: always for PostgreSQL (the database is the
    /// operator's), for SQLite when its database file does. Lets a command refuse before it
    /// creates anything.
    pub fn exists(&self) -> bool {
        match self {
            Backend::Sqlite(data) => data.join(DATABASE_FILE).exists(),
            Backend::Postgres(_) => true,
        }
    }

    /// Opens the store (creating the SQLite one if needed) and applies pending migrations.
    pub async fn open(&self, pool_size: u32) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Backend::Sqlite(data) => Arc::new(
                SqliteStore::open(data)
                    .with_context(|| format!("cannot open the store in {}", data.display()))?,
            ),
            Backend::Postgres(url) => {
                let options = PostgresOptions {
                    pool_size,
                    ..PostgresOptions::default()
                };
                Arc::new(
                    PostgresStore::open(url, &options)
                        .await
                        .with_context(|| format!("cannot open the store at {}", redact(url)))?,
                )
            }
        })
    }

    /// The store for messages: the data directory, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(data) => display(data),
            Backend::Postgres(url) => redact(url),
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Whether a URL names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL without its password (in the credentials or as a `password=` parameter),
/// for messages.
pub fn redact(url: &str) -> String {
    let mut redacted = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    if let Some((base, parameters)) = redacted.clone().split_once('?') {
        let parameters: Vec<String> = parameters
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}=***")
                }
                _ => parameter.to_owned(),
            })
            .collect();
        redacted = format!("{base}?{}", parameters.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://tfr:secret@db:5432/tfr"),
            "postgres://tfr:***@db:5432/tfr"
        );
        assert_eq!(redact("postgres://db/tfr"), "postgres://db/tfr");
        assert_eq!(
            redact("postgres://tfr@db/tfr?sslmode=require&password=secret"),
            "postgres://tfr@db/tfr?sslmode=require&password=***"
        );
    }

    #[test]
    fn the_store_is_chosen_flags_first() {
        let url = || Some("postgres://db/tfr".to_owned());
        let dir = || Some(PathBuf::from("/d"));
        let postgres = Backend::Postgres("postgres://db/tfr".into());
        assert_eq!(Backend::choose(url(), None, None, dir()).unwrap(), postgres);
        assert_eq!(
            Backend::choose(None, dir(), url(), None).unwrap(),
            Backend::Sqlite("/d".into())
        );
        assert_eq!(Backend::choose(None, None, url(), None).unwrap(), postgres);
        assert_eq!(
            Backend::choose(None, None, None, None).unwrap(),
            Backend::Sqlite(DEFAULT_DATA_DIR.into())
        );
        assert!(Backend::choose(None, None, url(), dir()).is_err());
        let refused = Backend::choose(Some("mysql://u:pw@h/db".into()), None, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("postgres://") && !refused.contains("pw"),
            "{refused}"
        );
    }
}
