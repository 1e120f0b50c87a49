//! `GET /api/v1/export`: every matching event as NDJSON, oldest first — the import format.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tfr_core::time::now;
use tfr_store::{Cursor, EventFilter, MAX_PAGE_SIZE, Order, PageRequest, Store};
use utoipa::IntoParams;

use crate::AppState;
use crate::api::params;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Params;

/// Parameters of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Query in the tfr query language.
    pub q: Option<String>,
    /// Only events that occurred at or after this time.
    pub from: Option<String>,
    /// Only events that occurred before this time (exclusive).
    pub to: Option<String>,
}

/// Export matching events as NDJSON, oldest first, diffs included. Streamed page by page, so
/// the whole history can be exported with constant memory. Feed the output to `tfr import`.
#[utoipa::path(
    get,
    path = "/api/v1/export",
    tag = "events",
    params(ExportParams),
    responses(
        (status = 200, description = "NDJSON, one event per line", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "Invalid query or parameter", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Params(params): Params<ExportParams>,
) -> ApiResult<Response> {
    let filter = params::filter(
        params.q.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        now(),
    )?;
    // Fail before the 200 if the store is down, rather than with a truncated body.
    state.store.ping().await?;
    let pages = futures_util::stream::unfold(ExportState::Next(None), move |position| {
        next_chunk(state.store.clone(), filter.clone(), position)
    });
    Ok((
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

enum ExportState {
    Next(Option<Cursor>),
    Done,
}

async fn next_chunk(
    store: std::sync::Arc<dyn Store>,
    filter: EventFilter,
    position: ExportState,
) -> Option<(Result<Bytes, std::io::Error>, ExportState)> {
    let ExportState::Next(cursor) = position else {
        return None;
    };
    let request = PageRequest {
        limit: MAX_PAGE_SIZE,
        cursor,
        order: Order::OldestFirst,
        include_diffs: true,
    };
    match store.list(&filter, request).await {
        Ok(page) => {
            let mut chunk = Vec::new();
            for event in &page.events {
                if let Err(error) = serde_json::to_writer(&mut chunk, event) {
                    return Some((Err(std::io::Error::other(error)), ExportState::Done));
                }
                chunk.push(b'\n');
            }
            let next = match page.next_cursor {
                Some(cursor) => ExportState::Next(Some(cursor)),
                None => ExportState::Done,
            };
            Some((Ok(Bytes::from(chunk)), next))
        }
        Err(error) => {
            // The status line is gone; ending the body with an error makes the client see a
            // broken transfer instead of a silently short export.
            tracing::error!(%error, "export failed midway");
            Some((
                Err(std::io::Error::other(error.to_string())),
                ExportState::Done,
            ))
        }
    }
}
