//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::api::{audit, correlate, events, export, health, stats, stream};
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
        events::delete,
        events::last,
        events::around,
        export::export,
        stream::stream,
        stats::histogram,
        stats::top,
        correlate::correlate,
        audit::list,
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
    modifiers(&Security),
    tags(
        (name = "events", description = "Record and search facts"),
        (name = "stats", description = "Statistics and correlation"),
        (name = "operations", description = "Health and metrics"),
        (name = "integrations", description = "Tools already in place (GitHub, GitLab, PagerDuty, Datadog, Grafana, Honeycomb, CloudEvents) send facts in their own formats; Grafana reads them back. See docs/integrations.md"),
    )
)]
struct ApiDoc;

/// The bearer token scheme, and on each operation the scope it needs (OpenAPI 3.1 lets a
/// bearer requirement name roles): the rules of `auth.rs` and the route table, written down.
/// An alternative empty requirement (`{}`) marks the operations that callers without a token
/// may use where the server allows it (`--anonymous-read`, anonymous writes).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tfr_<64 hex digits>")
                    .description(Some(
                        "An API token made with `tfr token create --name NAME --scope read|write|admin`, \
                         sent as `Authorization: Bearer tfr_...`. `admin` includes `write`, which includes `read`. \
                         Missing, unknown, revoked or expired: `401`; a scope too small: `403`; over the rate limit: `429`. \
                         See docs/security.md.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation
                    && let Some((scope, anonymous)) = required(path, method)
                {
                    let mut requirements = vec![SecurityRequirement::new("bearer", [scope])];
                    if anonymous {
                        requirements.push(SecurityRequirement::default());
                    }
                    operation.security = Some(requirements);
                    add_refusals(operation);
                }
            }
        }
    }
}

/// The scope an operation needs, and whether the server may let callers without a token do
/// it; `None` for open operations and those with their own authentication (the GitHub and
/// GitLab webhooks' secrets).
fn required(path: &str, method: &str) -> Option<(&'static str, bool)> {
    if matches!(path, "/healthz" | "/readyz" | "/openapi.json")
        || matches!(path, "/integrations/github" | "/integrations/gitlab")
    {
        return None;
    }
    if path == "/api/v1/audit" || method == "delete" {
        return Some(("admin", false));
    }
    // Grafana's SimpleJSON data source reads with POSTs.
    if method == "get" || path.starts_with("/integrations/grafana/simplejson") {
        return Some(("read", true));
    }
    Some(("write", true))
}

/// The answers every guarded operation may give, in the error shape of the API.
fn add_refusals(operation: &mut Operation) {
    for (status, description) in [
        (
            "401",
            "No token (where the server needs one), or a token that is unknown, revoked or expired; `WWW-Authenticate: Bearer`",
        ),
        ("403", "The token's scope does not allow this"),
        (
            "429",
            "Over the rate limit; `Retry-After` says when to retry",
        ),
    ] {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build(),
                )
            });
    }
}

/// The document, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
