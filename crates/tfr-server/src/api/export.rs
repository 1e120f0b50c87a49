//! `GET /api/v1/export`: every matching event as NDJSON, oldest first — the import format.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use tfr_core::time::now;

use tfr_store::{EventFilter, MAX_PAGE_SIZE, Order, PageRequest, Store};
use tokio::sync::mpsc;
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
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(produce(Arc::clone(&state.store), filter, sender));
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok((
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// Chunks of the body are sent when they reach this size.
const CHUNK_BYTES: usize = 256 * 1024;

type Chunk = Result<Bytes, std::io::Error>;

/// Writes the export into `sender` page by page. Pages are read without diffs and each diff is
/// read alone, so memory holds one page of events and one diff, whatever the history holds.
async fn produce(store: Arc<dyn Store>, filter: EventFilter, sender: mpsc::Sender<Chunk>) {
    let mut cursor = None;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    loop {
        let request = PageRequest {
            limit: MAX_PAGE_SIZE,
            cursor,
            order: Order::OldestFirst,
            include_diffs: false,
        };
        let page = match store.list(&filter, request).await {
            Ok(page) => page,
            Err(error) => return fail(&sender, error.to_string()).await,
        };
        for mut event in page.events {
            if event.has_diff {
                match store.get(event.id).await {
                    Ok(Some(full)) => event.diff = full.diff,
                    Ok(None) => {} // deleted meanwhile: exported without it
                    Err(error) => return fail(&sender, error.to_string()).await,
                }
            }
            if let Err(error) = serde_json::to_writer(&mut chunk, &event) {
                return fail(&sender, error.to_string()).await;
            }
            chunk.push(b'\n');
            if chunk.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES));
                if sender.send(Ok(Bytes::from(full))).await.is_err() {
                    return; // the client went away
                }
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if !chunk.is_empty() {
        let _ = sender.send(Ok(Bytes::from(chunk))).await;
    }
}

/// The status line is gone: ending the body with an error makes the client see a broken
/// transfer instead of a silently short export.
async fn fail(sender: &mpsc::Sender<Chunk>, detail: String) {
    tracing::error!(%detail, "export failed midway");
    let _ = sender
        .send(Err(std::io::Error::other(
            "the export failed; see the server log",
        )))
        .await;
}
