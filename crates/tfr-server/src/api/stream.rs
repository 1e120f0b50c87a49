//! `GET /api/v1/stream`: Server-Sent Events, one per newly stored event matching `q`.
//!
//! Each SSE `id` is the event's stream position. A client reconnecting with `Last-Event-ID`
//! first gets every matching event stored since that position, from the store, then the live
//! feed: nothing stored meanwhile is missed. A slow client falls behind the in-memory feed
//! (bounded), then catches up from the store the same way, so memory stays bounded.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tfr_core::query::{self, Query};
use tfr_core::time::now;
use tfr_store::{Store, StoredEvent, StreamPosition};
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Params;

/// Events read from the store per catch-up query.
const CATCH_UP_PAGE: usize = 500;
/// SSE messages buffered per client before the sender waits.
const CLIENT_BUFFER: usize = 64;
/// A comment line is sent this often so proxies keep the connection open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Parameters of the stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only events matching this query (tfr query language).
    pub q: Option<String>,
}

/// Live events matching `q`, as Server-Sent Events (`id:` = stream position, `data:` = the
/// event as JSON, without its diff). Reconnect with `Last-Event-ID` to resume without gaps.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "events",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this stream position"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`; a comment `: connected` is sent once subscribed", content_type = "text/event-stream", body = String),
        (status = 400, description = "Invalid query or Last-Event-ID", body = ErrorBody),
        (status = 503, description = "As many live streams are open as the server allows (`--max-streams`); retry later", body = ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<StreamParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let query = query::parse(params.q.as_deref().unwrap_or(""))?;
    // Held by the response: released when the client goes away.
    let slot = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Unavailable(format!(
                "{} live streams are open, the most this server allows; retry shortly",
                state.config.max_streams
            ))
        })?;
    let resume = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| "not text".to_owned())
                .and_then(str::parse::<StreamPosition>)
                .map_err(|m| ApiError::parameter("Last-Event-ID", m))
        })
        .transpose()?;
    // Subscribe before reading the head, so nothing falls between the two.
    let live = state.store.subscribe();
    let start = match resume {
        Some(position) => position,
        None => state.store.stream_head().await?,
    };
    let (sender, receiver) = mpsc::channel(CLIENT_BUFFER);
    tokio::spawn(feed(Arc::clone(&state.store), query, start, live, sender));
    let events =
        futures_util::stream::unfold((receiver, slot), |(mut receiver, slot)| async move {
            receiver
                .recv()
                .await
                .map(|event| (Ok(event), (receiver, slot)))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// Sends matching events to one client until it goes away.
async fn feed(
    store: Arc<dyn Store>,
    query: Query,
    start: StreamPosition,
    mut live: broadcast::Receiver<Arc<StoredEvent>>,
    sender: mpsc::Sender<SseEvent>,
) {
    if sender
        .send(SseEvent::default().comment("connected"))
        .await
        .is_err()
    {
        return;
    }
    let mut position = start;
    // Whatever was stored after `start` and before the subscription delivers anything.
    if catch_up(store.as_ref(), &query, &mut position, &sender)
        .await
        .is_err()
    {
        return;
    }
    loop {
        // A client that went away ends its feed at once, not at the next event.
        let received = tokio::select! {
            received = live.recv() => received,
            () = sender.closed() => return,
        };
        match received {
            Ok(stored) => {
                if stored.position <= position {
                    continue;
                }
                if send_if_matching(&query, &stored, &sender).await.is_err() {
                    return;
                }
                position = stored.position;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if catch_up(store.as_ref(), &query, &mut position, &sender)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sends every matching event stored after `position`, advancing it.
async fn catch_up(
    store: &dyn Store,
    query: &Query,
    position: &mut StreamPosition,
    sender: &mpsc::Sender<SseEvent>,
) -> Result<(), ()> {
    loop {
        let page = match store.stored_since(*position, CATCH_UP_PAGE).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "stream catch-up failed; closing the stream");
                return Err(());
            }
        };
        let done = page.len() < CATCH_UP_PAGE;
        for stored in &page {
            send_if_matching(query, stored, sender).await?;
            *position = stored.position;
        }
        if done {
            return Ok(());
        }
    }
}

async fn send_if_matching(
    query: &Query,
    stored: &StoredEvent,
    sender: &mpsc::Sender<SseEvent>,
) -> Result<(), ()> {
    if !query.matches(&stored.event, now()) {
        return Ok(());
    }
    let data = serde_json::to_string(&stored.event).map_err(|_| ())?;
    let message = SseEvent::default()
        .id(stored.position.to_string())
        .data(data);
    sender.send(message).await.map_err(|_| ())
}
