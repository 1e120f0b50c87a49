//! The tfr server: the HTTP API of design §4 over any [`Store`].
//!
//! [`router`] builds the whole application, so tests drive it without a socket; [`serve`] runs
//! it on a listener with a graceful shutdown.

mod api;
mod error;
mod extract;
mod metrics;
mod ndjson;
mod openapi;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use tfr_core::Limits;
use tfr_store::Store;
use tokio::net::TcpListener;

pub use crate::error::{ApiError, ApiResult};
pub use crate::metrics::Metrics;
pub use crate::openapi::openapi_document;
pub use crate::routes::router;

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
}

/// Default body limit: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Default request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            limits: Limits::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        Self {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
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
