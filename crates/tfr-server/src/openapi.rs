//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::api::{correlate, events, export, health, stats, stream};
use crate::integrations::{cloudevents, datadog, github, gitlab, grafana, honeycomb, pagerduty};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tfr — the Technical Fact Repository",
        description = "Record every technical change (deploys, config pushes, schema changes, A/B tests, feature flags, OS updates) as a fact, and search the platform's history.",
    ),
    paths(
        events::create,
        events::bulk,
        events::list,
        events::get_one,
        events::patch,
        events::last,
        events::around,
        export::export,
        stream::stream,
        stats::histogram,
        stats::top,
        correlate::correlate,
        health::healthz,
        health::readyz,
        health::metrics,
        github::receive,
        gitlab::receive,
        pagerduty::enqueue,
        datadog::create,
        grafana::create,
        grafana::create_graphite,
        grafana::find,
        grafana::simplejson_root,
        grafana::simplejson_annotations,
        honeycomb::create_marker,
        cloudevents::receive,
    ),
    tags(
        (name = "events", description = "Record and search facts"),
        (name = "stats", description = "Statistics and correlation"),
        (name = "operations", description = "Health and metrics"),
        (name = "integrations", description = "Tools already in place (GitHub, GitLab, PagerDuty, Datadog, Grafana, Honeycomb, CloudEvents) send facts in their own formats; Grafana reads them back. See docs/integrations.md"),
    )
)]
struct ApiDoc;

/// The document, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
