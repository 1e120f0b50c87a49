//! The route table: every path of the server, top to bottom.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::api::{correlate, events, export, health, stats, stream};
use crate::{metrics, openapi};

/// Builds the application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    // Endpoints that answer in bounded time: they get the request timeout.
    let bounded = Router::new()
        .route("/api/v1/events", post(events::create).get(events::list))
        .route("/api/v1/events/last", get(events::last))
        .route("/api/v1/events/around", get(events::around))
        .route("/api/v1/stats/histogram", get(stats::histogram))
        .route("/api/v1/stats/top", get(stats::top))
        .route("/api/v1/correlate", get(correlate::correlate))
        .route(
            "/api/v1/events/{id}",
            get(events::get_one).patch(events::patch),
        )
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::timeout,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ));
    // Streaming endpoints: their length is the data's, not a request's.
    let streaming = Router::new()
        .route(
            "/api/v1/events/bulk",
            post(events::bulk).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/stream", get(stream::stream))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ));
    Router::new()
        .merge(bounded)
        .merge(streaming)
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(health::panic_response))
        .with_state(state)
}
