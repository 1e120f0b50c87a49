//! The tfr server: the HTTP API of design §4 over any [`Store`].
//!
//! [`router`] builds the whole application, so tests drive it without a socket; [`serve`] runs
//! it on a listener with a graceful shutdown.

mod api;
mod error;
mod extract;
mod integrations;
mod metrics;
mod ndjson;
mod openapi;
mod routes;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use tfr_core::Limits;
use tfr_store::Store;
use tokio::net::TcpListener;

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
}

/// Default body limit: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Default half-width of the monitoring window: 30 minutes either side of the event.
pub const DEFAULT_MONITORING_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// Default request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        Self {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            filter_options: Arc::default(),
        }
    }
}

/// Serves the application on `listener` until `shutdown` completes; then stops accepting,
/// lets in-flight requests finish, and returns. Flushing the store is the caller's last step.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
