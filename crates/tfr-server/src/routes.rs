//! The route table: every path of the server, top to bottom.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::api::{audit, correlate, events, export, health, stats, stream};
use crate::auth;
use crate::integrations::{cloudevents, datadog, github, gitlab, grafana, honeycomb, pagerduty};
use crate::{metrics, openapi};

/// Builds the application.
///
/// Who may call what (design §10) is decided here, per group of routes, by the middleware of
/// [`crate::auth`]: the API by method (reads `read`, writes `write`, `DELETE` `admin`), the
/// audit log `admin`, the pages and Grafana's reads `read`; the integrations' writes check the
/// tool's credential in their handlers; health, readiness, the OpenAPI document and the static
/// assets are open.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    // Endpoints that answer in bounded time get the request timeout; every group is counted
    // in the metrics. Layers run outermost last: metrics, then the timeout, then the guard.
    let bounded = |routes: Router<AppState>| {
        routes
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                metrics::timeout,
            ))
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                metrics::record,
            ))
    };
    let api = Router::new()
        .route("/api/v1/events", post(events::create).get(events::list))
        .route("/api/v1/events/last", get(events::last))
        .route("/api/v1/events/around", get(events::around))
        .route("/api/v1/stats/histogram", get(stats::histogram))
        .route("/api/v1/stats/top", get(stats::top))
        .route("/api/v1/correlate", get(correlate::correlate))
        .route(
            "/api/v1/events/{id}",
            get(events::get_one)
                .patch(events::patch)
                .delete(events::delete),
        )
        .route("/metrics", get(health::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require));
    let admin = Router::new()
        .route("/api/v1/audit", get(audit::list))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    let open = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    // Streaming endpoints: their length is the data's, not a request's.
    let streaming = Router::new()
        .route(
            "/api/v1/events/bulk",
            post(events::bulk).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/stream", get(stream::stream))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ));
    // Integrations (design §5): each tool's native payload, answered the way the tool expects.
    // Writes check the tool's credential in the handler (GitHub and GitLab their webhook
    // secret); Grafana's reads need `read`.
    let grafana_read = || get(grafana::find).options(grafana::preflight);
    let simplejson_root = || get(grafana::simplejson_root).options(grafana::preflight);
    let integrations = Router::new()
        .route("/integrations/github", post(github::receive))
        .route("/integrations/gitlab", post(gitlab::receive))
        .route(
            "/integrations/pagerduty/v2/change/enqueue",
            post(pagerduty::enqueue),
        )
        .route("/integrations/datadog/api/v1/events", post(datadog::create))
        .route(
            "/integrations/grafana/api/annotations",
            grafana_read().post(grafana::create),
        )
        .route(
            "/integrations/grafana/api/annotations/graphite",
            post(grafana::create_graphite),
        )
        .route(
            "/integrations/honeycomb/1/markers/{dataset}",
            post(honeycomb::create_marker),
        )
        .route(
            "/integrations/cloudevents",
            post(cloudevents::receive).options(cloudevents::handshake),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_integration_reads,
        ));
    // Grafana's SimpleJSON data source reads with POSTs.
    let simplejson = Router::new()
        .route("/integrations/grafana/simplejson", simplejson_root())
        .route("/integrations/grafana/simplejson/", simplejson_root())
        .route(
            "/integrations/grafana/simplejson/annotations",
            post(grafana::simplejson_annotations).options(grafana::preflight),
        )
        .route(
            "/integrations/grafana/simplejson/search",
            post(grafana::simplejson_empty).options(grafana::preflight),
        )
        .route(
            "/integrations/grafana/simplejson/query",
            post(grafana::simplejson_empty).options(grafana::preflight),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_read,
        ));
    let pages = crate::ui::routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_page,
    ));
    Router::new()
        .merge(bounded(api))
        .merge(bounded(admin))
        .merge(bounded(open))
        .merge(streaming)
        .merge(bounded(integrations))
        .merge(bounded(simplejson))
        // The web UI's pages: bounded, like the API's reads; the assets are open.
        .merge(bounded(pages))
        .merge(bounded(crate::ui::assets()))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(health::panic_response))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Adds the security headers (CSP, nosniff, no framing) to every response.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in crate::ui::security_headers() {
        headers.entry(name).or_insert(value);
    }
    response
}
