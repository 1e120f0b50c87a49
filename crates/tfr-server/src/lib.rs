//! The tfr server: the HTTP API of design §4 over any [`Store`].
//!
//! [`router`] builds the whole application, so tests drive it without a socket; [`serve`] runs
//! it on a listener with a graceful shutdown.

mod api;
mod auth;
mod error;
mod extract;
mod integrations;
mod metrics;
mod ndjson;
mod openapi;
mod routes;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tfr_core::Limits;
use tfr_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

pub use crate::auth::{ANONYMOUS, Caller, TOKEN_CACHE_TTL, TOUCH_INTERVAL};
pub use crate::error::{ApiError, ApiResult};
pub use crate::integrations::Secret;
pub use crate::metrics::Metrics;
pub use crate::openapi::openapi_document;
pub use crate::routes::router;
pub use crate::ui::monitoring::MonitoringLink;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (the NDJSON bulk endpoint streams, and applies
    /// this limit to each line instead).
    pub body_limit: usize,
    /// Limits of the event model that operators may change.
    pub limits: Limits,
    /// Time allowed to produce a response (streaming endpoints excepted).
    pub request_timeout: Duration,
    /// Monitoring links shown on every event (Grafana, Kibana, Datadog...).
    pub monitoring: Vec<MonitoringLink>,
    /// How much time monitoring links show either side of an event.
    pub monitoring_window: jiff::SignedDuration,
    /// Integrations: the GitHub webhook secret (`X-Hub-Signature-256`); `None` refuses every
    /// GitHub delivery.
    pub github_secret: Option<Secret>,
    /// Integrations: record GitHub pushes to the default branch only.
    pub github_default_branch_only: bool,
    /// Integrations: the GitHub workflows whose completed runs are recorded (`*`: all).
    pub github_workflows: Vec<String>,
    /// Integrations: the GitLab webhook token (`X-Gitlab-Token`); `None` refuses every GitLab
    /// delivery.
    pub gitlab_token: Option<Secret>,
    /// Whether callers without a token may read (the API's reads, the stream, the web UI,
    /// `/metrics`).
    pub anonymous_read: bool,
    /// Whether callers without a token may write.
    pub anonymous_writes: AnonymousWrites,
    /// Requests each caller (a token, or an anonymous client's address) may make; `None`: no
    /// limit.
    pub rate_limit: Option<RateLimit>,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Live streams (`/api/v1/stream`) open at once; more are answered `503`.
    pub max_streams: usize,
    /// A connection that sends no complete request head for this long is closed: idle
    /// keep-alive connections, and clients that send their headers too slowly. Request bodies
    /// must keep arriving at least this often.
    pub idle_timeout: Duration,
}

/// Whether callers without a token may write (design §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnonymousWrites {
    /// Never: a token with the write scope is needed (the default off loopback).
    Refused,
    /// As long as no API token has been created (the default on loopback: the two-command
    /// start). Once one exists, writes need a token.
    UntilFirstToken,
    /// Always (`--allow-anonymous-writes`).
    Allowed,
}

/// `requests` per `per`, for each caller: a bucket of `requests` that refills at that rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    /// `20/s`, `600/m`, `10000/h`, or a bare number (per second).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "'{}' is not a rate; expected requests per second, minute or hour, e.g. 20/s or 600/m",
                tfr_core::clip(text)
            )
        };
        let (count, unit) = text.trim().split_once('/').unwrap_or((text.trim(), "s"));
        let requests: u32 = count.trim().parse().map_err(|_| invalid())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        if requests == 0 {
            return Err(format!("{}: the rate must be at least 1", invalid()));
        }
        Ok(Self { requests, per })
    }
}

/// Default body limit: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Default half-width of the monitoring window: 30 minutes either side of the event.
pub const DEFAULT_MONITORING_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// Default request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default cap on live streams open at once.
pub const DEFAULT_MAX_STREAMS: usize = 256;
/// Default idle timeout of a connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            limits: Limits::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            monitoring: Vec::new(),
            monitoring_window: DEFAULT_MONITORING_WINDOW,
            github_secret: None,
            github_default_branch_only: false,
            github_workflows: Vec::new(),
            gitlab_token: None,
            anonymous_read: true,
            anonymous_writes: AnonymousWrites::UntilFirstToken,
            rate_limit: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_streams: DEFAULT_MAX_STREAMS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    /// The web UI's filter choices, recomputed at most once a minute.
    pub(crate) filter_options:
        Arc<std::sync::Mutex<Option<(std::time::Instant, ui::FilterOptions)>>>,
    /// Tokens seen lately, and the rate limiter.
    pub(crate) auth: Arc<auth::Auth>,
    /// One permit per live stream open.
    pub(crate) streams: Arc<Semaphore>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        let streams = Arc::new(Semaphore::new(config.max_streams));
        Self {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            filter_options: Arc::default(),
            auth: Arc::default(),
            streams,
        }
    }
}

/// Serves the application on `listener` until `shutdown` completes; then stops accepting,
/// lets in-flight requests finish, and returns. Flushing the store is the caller's last step.
///
/// At most `max_connections` connections are served at once (more wait in the listen queue
/// until one closes), and a connection that sends no complete request head for
/// `idle_timeout` is closed, so neither idle clients nor slow ones hold the server's slots.
/// Handlers see the client's address as [`ConnectInfo`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(state.config.max_connections.max(1)));
    let idle_timeout = state.config.idle_timeout;
    let app = router(state);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(idle_timeout);
    let graceful = GracefulShutdown::new();
    // Tells connections that have not sent anything yet that the server is stopping.
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let mut closing = closing_seen.clone();
        tokio::spawn(async move {
            // The protocol is told by the first bytes, which hyper waits for without a timer:
            // a client that connects and says nothing is dropped here, and at once when the
            // server stops (it has no request in flight to finish: a stop must not wait out
            // its idle timeout, as HTTP clients keep spare connections open).
            let mut first = [0_u8; 1];
            let spoke = tokio::select! {
                // A request already arrived is served, even when the stop comes at once.
                biased;
                peeked = tokio::time::timeout(idle_timeout, stream.peek(&mut first)) => {
                    matches!(peeked, Ok(Ok(1..)))
                }
                _ = closing.wait_for(|closing| *closing) => false,
            };
            if !spoke {
                drop(slot);
                return;
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    graceful.shutdown().await;
    Ok(())
}

/// An error accepting a connection: a client that gave up is nothing; anything else (out of
/// file descriptors, say) is logged and waited out, rather than spinning.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
