//! `tfr serve`: the server, on the embedded SQLite store (`--data DIR`) or on a PostgreSQL
//! database shared by any number of nodes (`--database postgres://...`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tfr_core::Limits;
use tfr_server::{AppState, ServerConfig};
use tfr_store::Store;
use tfr_store_postgres::{DEFAULT_POOL_SIZE, PostgresOptions, PostgresStore};
use tfr_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::config::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, FileConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TFR_LISTEN", value_name = "ADDR")]
    listen: Option<String>,

    /// Data directory of the embedded SQLite store (created if missing).
    #[arg(
        long,
        env = "TFR_DATA",
        value_name = "DIR",
        conflicts_with = "database"
    )]
    data: Option<PathBuf>,

    /// PostgreSQL URL (`postgres://user:password@host:5432/tfr`): use the PostgreSQL store,
    /// which any number of `tfr serve` nodes can share, instead of the embedded one.
    #[arg(
        long,
        env = "TFR_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,

    /// Connections each node opens to PostgreSQL for reads and writes (default 8; one more
    /// listens for the live stream).
    #[arg(long, env = "TFR_POOL_SIZE", value_name = "N")]
    pool_size: Option<u32>,

    /// Largest request body, in bytes (default 16 MiB).
    #[arg(long, env = "TFR_BODY_LIMIT", value_name = "BYTES")]
    body_limit: Option<usize>,

    /// Largest diff of one event, in bytes (default 1 MiB).
    #[arg(long, env = "TFR_MAX_DIFF_BYTES", value_name = "BYTES")]
    max_diff_bytes: Option<usize>,

    /// Seconds a request may take before it is answered 503 (default 30).
    #[arg(long, env = "TFR_REQUEST_TIMEOUT", value_name = "SECONDS")]
    request_timeout: Option<u64>,

    /// Accept writes without a token on a non-loopback address.
    #[arg(long, env = "TFR_ALLOW_ANONYMOUS_WRITES")]
    allow_anonymous_writes: bool,

    /// Secret of the GitHub webhooks sent to /integrations/github; without one they are
    /// refused. Prefer the environment or tfr.toml: a flag shows in the process list.
    #[arg(
        long,
        env = "TFR_GITHUB_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    github_secret: Option<String>,

    /// Record GitHub pushes to the repository's default branch only.
    #[arg(
        long,
        env = "TFR_GITHUB_DEFAULT_BRANCH_ONLY",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    github_default_branch_only: Option<bool>,

    /// GitHub workflows whose completed runs are recorded, comma-separated (`*`: all).
    #[arg(
        long,
        env = "TFR_GITHUB_WORKFLOWS",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    github_workflows: Option<Vec<String>>,

    /// Secret token of the GitLab webhooks sent to /integrations/gitlab; without one they are
    /// refused. Prefer the environment or tfr.toml.
    #[arg(
        long,
        env = "TFR_GITLAB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    gitlab_token: Option<String>,
}

/// How long in-flight requests may run after a stop is asked before the server stops anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub async fn run(args: ServeArgs, file: FileConfig) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TFR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let address: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen '{listen}' is not an address such as 127.0.0.1:8080"))?;
    if !address.ip().is_loopback() && !args.allow_anonymous_writes {
        bail!(
            "refusing to listen on {address} without authentication: anyone who can reach it could write events. \
             Listen on a loopback address, or pass --allow-anonymous-writes if that is really what you want"
        );
    }
    let backend = Backend::choose(args.database, args.data, file.database, file.data)?;
    let pool_size = args
        .pool_size
        .or(file.pool_size)
        .unwrap_or(DEFAULT_POOL_SIZE);
    if pool_size == 0 {
        bail!("--pool-size must be at least 1");
    }
    let config = ServerConfig {
        body_limit: args
            .body_limit
            .or(file.body_limit)
            .unwrap_or(tfr_server::DEFAULT_BODY_LIMIT),
        limits: Limits {
            max_diff_bytes: args
                .max_diff_bytes
                .or(file.max_diff_bytes)
                .unwrap_or(tfr_core::validate::DEFAULT_MAX_DIFF_BYTES),
        },
        request_timeout: args
            .request_timeout
            .or(file.request_timeout_secs)
            .map_or(tfr_server::DEFAULT_REQUEST_TIMEOUT, Duration::from_secs),
        monitoring: file.monitoring.clone(),
        monitoring_window: file
            .monitoring_window_minutes
            .map_or(tfr_server::DEFAULT_MONITORING_WINDOW, |minutes| {
                jiff::SignedDuration::from_mins(i64::from(minutes))
            }),
        github_secret: args
            .github_secret
            .map(tfr_server::Secret::new)
            .or(file.github_secret)
            .filter(|secret| !secret.is_empty()),
        github_default_branch_only: args
            .github_default_branch_only
            .or(file.github_default_branch_only)
            .unwrap_or(false),
        github_workflows: args
            .github_workflows
            .or(file.github_workflows)
            .unwrap_or_default(),
        gitlab_token: args
            .gitlab_token
            .map(tfr_server::Secret::new)
            .or(file.gitlab_token)
            .filter(|token| !token.is_empty()),
    };
    tracing::info!(
        github = config.github_secret.is_some(),
        gitlab = config.gitlab_token.is_some(),
        "webhook integrations enabled (those without a secret refuse every delivery)"
    );
    for link in &config.monitoring {
        link.validate()
            .map_err(|message| anyhow::anyhow!("tfr.toml: {message}"))?;
    }
    if config.request_timeout.is_zero() {
        bail!("--request-timeout must be at least 1 second");
    }
    if config.body_limit < 1024 {
        bail!("--body-limit must be at least 1024 bytes");
    }

    let store: Arc<dyn Store> = match &backend {
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
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    if !address.ip().is_loopback() {
        tracing::warn!("anonymous writes are allowed on a non-loopback address");
    } else {
        tracing::info!("no tokens defined: anonymous writes are allowed on loopback");
    }
    match &backend {
        Backend::Sqlite(data) => {
            tracing::info!(data = %data.display(), "tfr listening on http://{local}");
        }
        Backend::Postgres(url) => {
            tracing::info!(database = %redact(url), pool_size, "tfr listening on http://{local}");
        }
    }

    let state = AppState::new(Arc::clone(&store), config);
    let (stopping, mut stop_requested) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    };
    let server = tfr_server::serve(listener, state, signal);
    tokio::pin!(server);
    let served = tokio::select! {
        result = &mut server => result,
        () = async {
            let _ = stop_requested.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(
                "requests still running {} s after the stop was asked; stopping anyway",
                SHUTDOWN_GRACE.as_secs()
            );
            Ok(())
        }
    };
    tracing::info!("stopped accepting; flushing the store");
    let flushed = store.shutdown().await;
    served.context("the server failed")?;
    flushed.context("flushing the store failed")?;
    tracing::info!("bye");
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}

/// Where the events are kept.
#[derive(Debug, PartialEq)]
enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    /// Flags and environment (`--database`, `--data`) win over the file; the file may name one
    /// of the two, not both; with none, the embedded store in `./tfr-data`.
    fn choose(
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
