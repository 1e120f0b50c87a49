//! `tfr serve`: the server, on the embedded SQLite store (`--data DIR`) or on a PostgreSQL
//! database shared by any number of nodes (`--database postgres://...`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tfr_core::Limits;
use tfr_core::token::Scope;
use tfr_server::{AnonymousWrites, AppState, RateLimit, ServerConfig};
use tfr_store_postgres::DEFAULT_POOL_SIZE;
use tokio::net::TcpListener;

use crate::config::{DEFAULT_LISTEN, FileConfig};
use crate::store::{Backend, StoreArgs};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TFR_LISTEN", value_name = "ADDR")]
    listen: Option<String>,

    #[command(flatten)]
    store: StoreArgs,

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

    /// Accept writes without a token, on any address and even once tokens exist.
    #[arg(long, env = "TFR_ALLOW_ANONYMOUS_WRITES")]
    allow_anonymous_writes: bool,

    /// Let callers without a token read (the API's reads, the stream, the web UI, /metrics).
    /// Default: true on a loopback address or with --allow-anonymous-writes, false elsewhere.
    #[arg(
        long,
        env = "TFR_ANONYMOUS_READ",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    anonymous_read: Option<bool>,

    /// Requests each token (and each anonymous client address) may make: `20/s`, `600/m`,
    /// `10000/h`; more are answered 429 with Retry-After. Default: no limit.
    #[arg(long, env = "TFR_RATE_LIMIT", value_name = "N/s")]
    rate_limit: Option<RateLimit>,

    /// Connections served at once; more wait to be accepted (default 1024).
    #[arg(long, env = "TFR_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,

    /// Live streams (/api/v1/stream) open at once; more are answered 503 (default 256).
    #[arg(long, env = "TFR_MAX_STREAMS", value_name = "N")]
    max_streams: Option<usize>,

    /// Seconds a connection may stay without sending a complete request head (idle
    /// keep-alive, slow clients) before it is closed (default 30).
    #[arg(long, env = "TFR_IDLE_TIMEOUT", value_name = "SECONDS")]
    idle_timeout: Option<u64>,

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
        .or(file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let address: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen '{listen}' is not an address such as 127.0.0.1:8080"))?;
    let backend = args.store.backend(&file)?;
    let loopback = address.ip().is_loopback();
    let allow_anonymous_writes =
        args.allow_anonymous_writes || file.allow_anonymous_writes.unwrap_or(false);
    let needs_write_token = !loopback && !allow_anonymous_writes;
    if needs_write_token && !backend.exists() {
        bail!(refusal(address));
    }
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
        anonymous_read: args
            .anonymous_read
            .or(file.anonymous_read)
            .unwrap_or(loopback || allow_anonymous_writes),
        anonymous_writes: if allow_anonymous_writes {
            AnonymousWrites::Allowed
        } else if loopback {
            AnonymousWrites::UntilFirstToken
        } else {
            AnonymousWrites::Refused
        },
        rate_limit: match args.rate_limit {
            Some(limit) => Some(limit),
            None => file
                .rate_limit
                .as_deref()
                .map(str::parse::<RateLimit>)
                .transpose()
                .map_err(|message| anyhow::anyhow!("tfr.toml: rate_limit: {message}"))?,
        },
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(tfr_server::DEFAULT_MAX_CONNECTIONS),
        max_streams: args
            .max_streams
            .or(file.max_streams)
            .unwrap_or(tfr_server::DEFAULT_MAX_STREAMS),
        idle_timeout: args
            .idle_timeout
            .or(file.idle_timeout_secs)
            .map_or(tfr_server::DEFAULT_IDLE_TIMEOUT, Duration::from_secs),
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
    if config.max_connections == 0 || config.max_streams == 0 {
        bail!("--max-connections and --max-streams must be at least 1");
    }
    if config.idle_timeout.is_zero() {
        bail!("--idle-timeout must be at least 1 second");
    }

    let store = backend.open(pool_size).await?;
    let tokens = match store.list_tokens().await {
        Ok(tokens) => tokens,
        Err(error) => {
            let _ = store.shutdown().await;
            return Err(error).context("cannot read the API tokens");
        }
    };
    let now = tfr_core::time::now();
    let write_tokens = tokens
        .iter()
        .filter(|token| token.is_active(now) && token.scope.allows(Scope::Write))
        .count();
    if needs_write_token && write_tokens == 0 {
        let _ = store.shutdown().await;
        bail!(refusal(address));
    }
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            let _ = store.shutdown().await;
            return Err(error).with_context(|| format!("cannot listen on {address}"));
        }
    };
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    match config.anonymous_writes {
        AnonymousWrites::Allowed if loopback => {
            tracing::info!("anonymous writes are allowed (--allow-anonymous-writes)");
        }
        AnonymousWrites::Allowed => tracing::warn!(
            "anonymous writes are allowed on a non-loopback address (--allow-anonymous-writes): anyone who can reach it can write"
        ),
        AnonymousWrites::UntilFirstToken if tokens.is_empty() => {
            tracing::info!("no tokens defined: anonymous writes are allowed on loopback");
        }
        AnonymousWrites::UntilFirstToken | AnonymousWrites::Refused => tracing::info!(
            tokens = tokens.len(),
            write_tokens,
            "writes need a token with the write scope"
        ),
    }
    if config.anonymous_read {
        tracing::info!("anonymous reads are allowed");
    } else {
        tracing::info!(
            "anonymous reads are refused: the API, the stream and the web UI need a token with the read scope (--anonymous-read true to open them)"
        );
    }
    match &backend {
        Backend::Sqlite(_) => {
            tracing::info!(data = %backend.describe(), "tfr listening on http://{local}");
        }
        Backend::Postgres(_) => {
            tracing::info!(database = %backend.describe(), pool_size, "tfr listening on http://{local}");
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

/// Why `tfr serve` will not listen on a non-loopback address, and what to do about it.
fn refusal(address: SocketAddr) -> String {
    format!(
        "refusing to listen on {address} without authentication: anyone who can reach it could write events. \
         Create a token with the write scope first (tfr token create --name NAME --scope write, with the same --data or --database), \
         listen on a loopback address, or pass --allow-anonymous-writes if that is really what you want"
    )
}
