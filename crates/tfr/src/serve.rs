//! `tfr serve`: the server on the embedded SQLite store.

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

    /// Database URL. `postgres://` URLs select the PostgreSQL store (not available yet).
    #[arg(long, env = "TFR_DATABASE_URL", value_name = "URL")]
    database: Option<String>,

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
    if let Some(url) = &args.database {
        bail!(
            "--database '{}': only the embedded SQLite store is available in this version; use --data DIR",
            redact(url)
        );
    }
    let data = args
        .data
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
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
    };
    if config.request_timeout.is_zero() {
        bail!("--request-timeout must be at least 1 second");
    }
    if config.body_limit < 1024 {
        bail!("--body-limit must be at least 1024 bytes");
    }

    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&data)
            .with_context(|| format!("cannot open the store in {}", data.display()))?,
    );
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
    tracing::info!(data = %data.display(), "tfr listening on http://{local}");

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

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://tfr:secret@db:5432/tfr"),
            "postgres://tfr:***@db:5432/tfr"
        );
        assert_eq!(redact("postgres://db/tfr"), "postgres://db/tfr");
    }
}
