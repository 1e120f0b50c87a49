//! Fresh databases for tests (feature `testing`), on the server named by
//! `TFR_TEST_DATABASE_URL` (default [`DEFAULT_ADMIN_URL`]): each test gets a database of its own,
//! created from `template0` and dropped when the guard is dropped.
//!
//! When the server cannot be reached, [`TestDatabase::create`] answers `None` after printing
//! `skipped: PostgreSQL not reachable at ...` — unless `CI` is set, where a PostgreSQL test
//! that cannot run is a failure, not a skip.

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use sqlx_core::connection::Connection;
use sqlx_core::executor::Executor;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnectOptions, PgConnection};

/// The administrative connection used when `TFR_TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long to wait for the server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL of the database tests connect to in order to create and drop theirs.
pub fn admin_url() -> String {
    std::env::var("TFR_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// `host:port` of a URL, for messages (never the password).
fn server_of(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => format!("{}:{}", options.get_host(), options.get_port()),
        Err(_) => "an unparsable TFR_TEST_DATABASE_URL".to_owned(),
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, parameters) = match url.split_once('?') {
        Some((base, parameters)) => (base, Some(parameters)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |at| authority + at);
    let mut replaced = format!("{}/{name}", &base[..path]);
    if let Some(parameters) = parameters {
        replaced.push('?');
        replaced.push_str(parameters);
    }
    replaced
}

async fn connect_admin(admin: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(admin)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// A database of one test, dropped (connections and all) when this is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
}

impl TestDatabase {
    /// Creates an empty database. `None` (after printing why) when the server is unreachable
    /// and `CI` is not set; with `CI` set, an unreachable server panics.
    pub async fn create() -> Option<TestDatabase> {
        let admin = admin_url();
        let mut connection = match connect_admin(&admin).await {
            Ok(connection) => connection,
            Err(error) => {
                let message = format!(
                    "PostgreSQL not reachable at {} ({error})",
                    server_of(&admin)
                );
                if std::env::var_os("CI").is_some() {
                    panic!(
                        "{message}: CI is set, so the PostgreSQL tests must run; start the server \
                         (.ci/run does) or point TFR_TEST_DATABASE_URL at one"
                    );
                }
                // Written to stderr directly rather than with `eprintln!`, which the test harness
                // captures: a skip should be seen.
                let _ = writeln!(std::io::stderr(), "skipped: {message}");
                return None;
            }
        };
        let name = format!("tfr_test_{}", uuid::Uuid::now_v7().simple());
        // The name is ours (letters, digits, underscores): identifiers cannot be bound.
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'");
        connection
            .execute(AssertSqlSafe(create))
            .await
            .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        let _ = connection.close().await;
        Some(TestDatabase {
            url: with_database(&admin, &name),
            name,
            admin,
        })
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop may run inside an async task: do the work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let mut connection = connect_admin(&admin).await?;
                connection
                    .execute(AssertSqlSafe(drop))
                    .await
                    .map_err(|error| error.to_string())?;
                let _ = connection.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!(
                "warning: cannot drop the test database {}: {error}",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=require", "x"),
            "postgres://u:p@h/x?sslmode=require"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
