//! The live stream across nodes: every node delivers every event stored by any node.
//!
//! A write transaction ends with `pg_notify` carrying only the new stream head (payloads are
//! limited to 8000 bytes; an event is up to a megabyte). Each node keeps one `LISTEN`
//! connection; a notification only wakes the node, which then reads the events after the last
//! position it delivered (`stored_since`) and broadcasts them in position order. Because
//! positions follow commit order ([`crate::writer`]), reading "after the last position" never
//! skips an event, and nothing depends on a notification arriving: a lost connection (whose
//! notifications are gone) is followed by a catch-up read, and a read every
//! [`POLL_INTERVAL`] covers anything else.
//!
//! Events this node stored itself are published as they were created (the writer hands them
//! over after `COMMIT`, see [`LocalFeed`]), in the same position order, and without reading
//! them back; only events of other nodes are read. (An event of another node patched before
//! this node read it is published as it stands then.)
//!
//! With nobody subscribed, the node only follows the head, without reading events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx_postgres::{PgListener, PgPool};
use tfr_store::{StoredEvent, StreamPosition};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

use crate::{STREAM_CHANNEL, read_stored_since, read_stream_head};

/// The longest a node goes without checking for new events, notification or not.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long to wait before listening again after the connection failed.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Events read per query while catching up.
const CATCH_UP_BATCH: usize = 500;

/// Events this node committed, handed from the writer to the delivering task.
pub struct LocalFeed {
    committed: Mutex<BTreeMap<StreamPosition, StoredEvent>>,
    wake: Arc<Notify>,
    sender: broadcast::Sender<Arc<StoredEvent>>,
}

impl LocalFeed {
    pub fn new(sender: broadcast::Sender<Arc<StoredEvent>>) -> Arc<Self> {
        Arc::new(Self {
            committed: Mutex::new(BTreeMap::new()),
            wake: Arc::new(Notify::new()),
            sender,
        })
    }

    /// Called by the writer once these events are committed.
    pub fn committed(&self, events: Vec<StoredEvent>) {
        if events.is_empty() {
            return;
        }
        // Nobody listening: the delivering task will only follow the head.
        if self.sender.receiver_count() > 0
            && let Ok(mut committed) = self.committed.lock()
        {
            committed.extend(events.into_iter().map(|event| (event.position, event)));
        }
        self.wake.notify_one();
    }

    /// The event at `position`, if this node committed it.
    fn take(&self, position: StreamPosition) -> Option<StoredEvent> {
        self.committed.lock().ok()?.remove(&position)
    }

    /// Forgets what was delivered (or skipped) up to `last`.
    fn forget_up_to(&self, last: StreamPosition) {
        if let Ok(mut committed) = self.committed.lock() {
            let rest = committed.split_off(&StreamPosition(last.0.saturating_add(1)));
            *committed = rest;
        }
    }
}

/// The two tasks that keep a node's stream: one listens, one reads and delivers.
pub struct StreamTasks {
    listen: JoinHandle<()>,
    deliver: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl StreamTasks {
    /// Starts delivering events stored after `start`.
    pub fn start(
        listen_pool: PgPool,
        reads: PgPool,
        start: StreamPosition,
        feed: Arc<LocalFeed>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let listen = tokio::spawn(listen(listen_pool, Arc::clone(&feed.wake)));
        let deliver = tokio::spawn(deliver(reads, start, feed, stopped));
        Self {
            listen,
            deliver,
            stop,
        }
    }

    /// Stops both tasks and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.listen.abort();
        let _ = self.listen.await;
        let _ = self.deliver.await;
    }
}

/// Holds the `LISTEN` connection and wakes the delivering task on each notification, and after
/// each reconnection (notifications sent meanwhile are lost: the catch-up read covers them).
/// Never cancelled mid-read except when the store stops.
async fn listen(pool: PgPool, wake: Arc<Notify>) {
    let mut listener: Option<PgListener> = None;
    let mut failing = false;
    loop {
        let Some(active) = listener.as_mut() else {
            match subscribe(&pool).await {
                Ok(connected) => {
                    if failing {
                        tracing::info!("listening for stored events again");
                        failing = false;
                    }
                    listener = Some(connected);
                    wake.notify_one();
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot listen for stored events; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
            continue;
        };
        match active.try_recv().await {
            Ok(_) => {
                // Several notifications may be waiting: one read serves them all.
                while active.next_buffered().is_some() {}
                wake.notify_one();
            }
            Err(error) => {
                tracing::debug!(%error, "the listening connection failed");
                listener = None;
            }
        }
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx_core::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(STREAM_CHANNEL).await?;
    Ok(listener)
}

/// Reads and broadcasts new events whenever woken, and at least every [`POLL_INTERVAL`].
async fn deliver(
    reads: PgPool,
    start: StreamPosition,
    feed: Arc<LocalFeed>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut last = start;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            () = feed.wake.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let caught_up = catch_up(&reads, &mut last, &feed).await;
        feed.forget_up_to(last);
        match caught_up {
            Ok(()) => failing = false,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot read new events for the stream; retrying");
                    failing = true;
                }
            }
        }
    }
}

/// Delivers every event stored after `last`, in order.
async fn catch_up(
    reads: &PgPool,
    last: &mut StreamPosition,
    feed: &LocalFeed,
) -> Result<(), sqlx_core::Error> {
    let sender = &feed.sender;
    loop {
        // This node's own events need no read: positions have no gaps, and every position
        // below a committed one is committed.
        while let Some(event) = feed.take(StreamPosition(last.0.saturating_add(1))) {
            *last = event.position;
            let _ = sender.send(Arc::new(event));
        }
        // The head is read before looking for subscribers: anyone subscribing after that look
        // subscribed after every event up to this head was stored.
        let head = read_stream_head(reads).await?;
        if head <= *last {
            return Ok(());
        }
        if sender.receiver_count() == 0 {
            *last = head;
            return Ok(());
        }
        let events = read_stored_since(reads, *last, CATCH_UP_BATCH).await?;
        if events.is_empty() {
            *last = head;
            return Ok(());
        }
        for event in events {
            // Our own events as created; others' as read.
            let event = feed.take(event.position).unwrap_or(event);
            *last = event.position;
            // No subscriber left is not an error.
            let _ = sender.send(Arc::new(event));
        }
    }
}
