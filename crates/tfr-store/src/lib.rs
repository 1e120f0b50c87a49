//! The storage contract: one trait, [`Store`], that speaks domain types and never SQL. Each
//! backend (`tfr-store-sqlite`, and PostgreSQL later) implements it and passes the same
//! conformance suite.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use tfr_core::query::Query;
use tfr_core::stats::GroupField;
use tfr_core::token::Scope;
use tfr_core::{Event, EventId, EventPatch, NewEvent, ValidationError};

pub mod buckets;
#[cfg(feature = "conformance")]
pub mod conformance;

/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: usize = 500;
/// The page size when none is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest batch one insert call accepts (the API's array limit).
pub const MAX_BATCH: usize = 1000;

/// Which events a read is about: a parsed query, an optional time range on `occurred_at`
/// (`from` inclusive, `to` exclusive), and the instant relative terms (`since:7d`) count from.
#[derive(Clone, Debug, PartialEq)]
pub struct EventFilter {
    pub query: Query,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub now: Timestamp,
}

impl EventFilter {
    /// Every event.
    pub fn all(now: Timestamp) -> Self {
        Self {
            query: Query::all(),
            from: None,
            to: None,
            now,
        }
    }
}

/// A position in the feed: the `(occurred_at, id)` of the last event of a page. Pages resume
/// strictly after it, so inserts between page loads cause neither gaps nor duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub occurred_at: Timestamp,
    pub id: EventId,
}

impl Cursor {
    pub fn after(event: &Event) -> Self {
        Self {
            occurred_at: event.occurred_at,
            id: event.id,
        }
    }
}

/// Cursors travel as opaque text: `<microseconds>_<id>`.
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}",
            self.occurred_at.as_microsecond(),
            self.id.as_uuid().simple()
        )
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("'{text}' is not a cursor returned by this server");
        let (micros, id) = text.split_once('_').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Self {
            occurred_at: Timestamp::from_microsecond(micros).map_err(|_| invalid())?,
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// Feed order. The feed is newest first; exports replay history oldest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// One page to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub order: Order,
    /// Diffs can weigh a megabyte each: lists leave them out, exports ask for them.
    pub include_diffs: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_SIZE,
            cursor: None,
            order: Order::NewestFirst,
            include_diffs: false,
        }
    }
}

/// A page of events, and the cursor to the next one if there is more.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub events: Vec<Event>,
    pub next_cursor: Option<Cursor>,
}

/// The prefix of the idempotency keys `tfr import` derives from exported ids.
pub const IMPORT_KEY_PREFIX: &str = "import:";

/// An event ready to store, with what idempotency needs to recognise a repeat of it.
#[derive(Clone, Debug, PartialEq)]
pub struct InsertRecord {
    pub event: Event,
    /// Digest of the content as submitted ([`NewEvent::content_digest`]).
    pub content_digest: String,
    /// Whether the client gave `occurred_at` (otherwise it is the time of receipt).
    pub occurred_at_given: bool,
}

impl InsertRecord {
    /// Makes a validated submission ready to store, as received at `recorded_at` from
    /// `submitted_by`.
    pub fn new(submitted: NewEvent, recorded_at: Timestamp, submitted_by: &str) -> Self {
        let content_digest = submitted.content_digest();
        let occurred_at_given = submitted.occurred_at.is_some();
        Self {
            event: submitted.into_event(recorded_at, submitted_by),
            content_digest,
            occurred_at_given,
        }
    }

    /// The event this record was exported from, when its idempotency key is
    /// `import:<id>` — the key `tfr import` gives an exported event that had none. A store
    /// treats such a record as keyed by that event too, so importing an export back into the
    /// server it came from creates nothing twice.
    pub fn imported_from(&self) -> Option<EventId> {
        self.event
            .idempotency_key
            .as_deref()?
            .strip_prefix(IMPORT_KEY_PREFIX)?
            .parse()
            .ok()
    }

    /// Whether this record is a repeat of `stored`, the event already holding its idempotency
    /// key: either the same submission again (same digest: a retry, even after the stored event
    /// was patched), or the stored event as it stands now (a re-imported export, which carries
    /// the server's `occurred_at` and any tags, links or `ended_at` added since).
    pub fn repeats(&self, stored_digest: &str, stored: &Event) -> bool {
        if self.content_digest == stored_digest {
            return true;
        }
        let event = &self.event;
        (!self.occurred_at_given || event.occurred_at == stored.occurred_at)
            && event.ended_at == stored.ended_at
            && event.title == stored.title
            && event.system == stored.system
            && event.author == stored.author
            && event.kind == stored.kind
            && event.environment == stored.environment
            && event.team == stored.team
            && event.source == stored.source
            && event.version == stored.version
            && event.description == stored.description
            && event.tags == stored.tags
            && event.links == stored.links
            && event.diff == stored.diff
            && event.attributes == stored.attributes
    }
}

/// How a batch treats its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// Nothing is stored if any item conflicts (the JSON array API).
    AllOrNothing,
    /// Each item stands alone (NDJSON bulk ingest).
    Independent,
}

/// What happened to one item of an insert.
#[derive(Clone, Debug, PartialEq)]
pub enum InsertOutcome {
    /// Stored now. The event as stored, without its diff (`has_diff` says whether it has
    /// one): outcomes of large batches must not hold every diff twice.
    Created(Event),
    /// The idempotency key was already used with the same content: the original event,
    /// without its diff.
    Duplicate(Event),
    /// The idempotency key was already used with other content. In an all-or-nothing batch,
    /// nothing of the batch was stored.
    Conflict {
        idempotency_key: String,
        existing: EventId,
    },
}

/// Failures of a store, in terms the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is shutting down; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The change would break a rule of the event model.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Anything else: a bug or a damaged database. Logged, answered generically.
    #[error("store failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where an event stands relative to a moment, for incident triage.
#[derive(Clone, Debug, PartialEq)]
pub struct AroundRequest {
    pub time: Timestamp,
    pub before: SignedDuration,
    pub after: SignedDuration,
    pub limit: usize,
}

/// Events counted in one quarter-hour (see [`tfr_core::stats`]), for one value of the
/// grouping field (`None`: the event has no value, or no grouping was asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarterCount {
    /// Quarter-hours since the Unix epoch ([`tfr_core::stats::quarter_of`]).
    pub quarter: i64,
    pub group: Option<String>,
    pub count: u64,
}

/// Events counted in one bucket of a histogram ([`Store::bucket_counts`]), for one value of
/// the grouping field (`None`: the event has no value, or no grouping was asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketCount {
    /// The bucket's index in the `starts` asked for.
    pub bucket: usize,
    pub group: Option<String>,
    pub count: u64,
}

/// Sums quarter counts into buckets: the definition of [`Store::bucket_counts`], which its
/// default implementation uses and every override must equal.
///
/// Each quarter goes, whole, to the bucket its start lies in: bucket `i` takes the quarters
/// starting in `[starts[i], starts[i + 1])`, the last bucket those starting at or after its
/// start (the quarters counted stop at the filter's `to`), and quarters starting before
/// `starts[0]` are dropped. `starts` must be ascending. The result holds one entry per bucket
/// and group with a count above zero, ordered by bucket, then group (`None` first).
pub fn bucket_counts_from_quarters(
    quarters: impl IntoIterator<Item = QuarterCount>,
    starts: &[Timestamp],
) -> Vec<BucketCount> {
    let start_micros: Vec<i64> = starts.iter().map(|s| s.as_microsecond()).collect();
    let mut sums = buckets::Sums::default();
    for count in quarters {
        let at = tfr_core::stats::quarter_start(count.quarter).as_microsecond();
        let Some(bucket) = start_micros
            .partition_point(|start| *start <= at)
            .checked_sub(1)
        else {
            continue;
        };
        sums.add(bucket, count.group, count.count);
    }
    sums.into_counts()
}

/// A value of a field and how many events have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// Where an event lies in time: what correlation needs of each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    pub occurred_at: Timestamp,
    pub id: EventId,
}

/// A position in the order events were stored, which the live stream resumes from. Positions
/// grow with each stored event; `0` is before the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamPosition(pub u64);

impl fmt::Display for StreamPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for StreamPosition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .parse()
            .map(StreamPosition)
            .map_err(|_| format!("'{text}' is not a stream position sent by this server"))
    }
}

/// A newly stored event and its stream position.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub position: StreamPosition,
    pub event: Event,
}

/// How many stored events a subscriber may fall behind before it must catch up from the store.
pub const STREAM_BUFFER: usize = 4096;

/// An API token as the store knows it: everything but the token itself, of which only the
/// hash is kept (see [`tfr_core::token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Unique, never reused (a revoked token keeps its name), so `submitted_by` always names
    /// one token.
    pub name: String,
    pub scope: Scope,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// Updated at most about once a minute (see [`Store::touch_token`]).
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl TokenInfo {
    /// Whether the token may be used at `now`: neither revoked nor expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now < expires)
    }
}

/// A token to store: its name, scope and lifetime, and the SHA-256 of the token
/// ([`tfr_core::token::hash_token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub scope: Scope,
    pub hash: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// An event was deleted (redaction).
    EventDeleted,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::EventDeleted => "event.delete",
        }
    }
}

impl FromStr for AuditAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "event.delete" => Ok(AuditAction::EventDeleted),
            other => Err(format!("unknown audit action '{other}'")),
        }
    }
}

/// One entry of the audit log: who did what, when, to which event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Grows with each entry; the log's paging cursor.
    pub id: u64,
    pub at: Timestamp,
    /// The token name of whoever did it.
    pub actor: String,
    pub action: AuditAction,
    pub event_id: EventId,
    /// The event's title and system when it was deleted, so the log says what is gone.
    pub title: String,
    pub system: String,
    /// Why, as the caller said.
    pub reason: Option<String>,
}

/// A deletion asked for: which event, by whom, when, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub id: EventId,
    pub actor: String,
    pub at: Timestamp,
    pub reason: Option<String>,
}

/// Durable storage of events. Implementations are cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a batch (at most [`MAX_BATCH`] items). When this returns `Ok`, every `Created`
    /// item is durably on disk.
    async fn insert(
        &self,
        records: Vec<InsertRecord>,
        mode: BatchMode,
    ) -> StoreResult<Vec<InsertOutcome>>;

    /// One event, with its diff.
    async fn get(&self, id: EventId) -> StoreResult<Option<Event>>;

    /// A page of matching events in `(occurred_at, id)` order, resuming after the cursor.
    async fn list(&self, filter: &EventFilter, page: PageRequest) -> StoreResult<Page>;

    /// Matching events within `[time - before, time + after]`, closest to `time` first.
    async fn around(&self, filter: &EventFilter, around: &AroundRequest)
    -> StoreResult<Vec<Event>>;

    /// Sets `ended_at` and adds tags/links; `None` if there is no such event.
    async fn patch(&self, id: EventId, patch: EventPatch) -> StoreResult<Option<Event>>;

    /// How many events are stored (kept as a counter, not counted).
    async fn count(&self) -> StoreResult<u64>;

    /// Succeeds when the store can serve reads and writes.
    async fn ping(&self) -> StoreResult<()>;

    /// Events committed but not yet taken by a full-text index built behind the writer
    /// (searches find them all the same, checking them one by one); `None` for a store that
    /// indexes in the commit.
    fn full_text_lag(&self) -> Option<u64> {
        None
    }

    /// Finishes queued writes and leaves the store clean; later calls fail as unavailable.
    async fn shutdown(&self) -> StoreResult<()>;

    /// Matching events counted per quarter-hour and, with `group`, per value of that field.
    /// Histograms in any time zone are sums of these.
    async fn quarter_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
    ) -> StoreResult<Vec<QuarterCount>>;

    /// Matching events counted per histogram bucket and, with `group`, per value of that
    /// field. Bucket `i` is `[starts[i], starts[i + 1])` and the last one ends at the filter's
    /// `to`; events before `starts[0]` or outside the filter are not counted. `starts` must be
    /// ascending and should fall on quarter-hours (every local hour, day, week and month
    /// does, see [`tfr_core::stats`]): counting is by quarter, so a start inside a quarter
    /// acts as the next quarter boundary. The result is exactly
    /// [`bucket_counts_from_quarters`] of [`Store::quarter_counts`]: one entry per bucket and
    /// group with a count above zero, by bucket, then group.
    ///
    /// The default implementation is that definition. It reads a row per quarter-hour and
    /// group — ~325,000 rows for two years by day and kind — so a store with coarser rollups
    /// overrides it to read whole hours and days where the buckets allow (the SQLite store
    /// does); the result must stay the same.
    async fn bucket_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
        starts: &[Timestamp],
    ) -> StoreResult<Vec<BucketCount>> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let quarters = self.quarter_counts(filter, group).await?;
        Ok(bucket_counts_from_quarters(quarters, starts))
    }

    /// The most frequent values of `field` among matching events (events without a value are
    /// not counted), most frequent first, ties by value.
    async fn top_values(
        &self,
        filter: &EventFilter,
        field: GroupField,
        limit: usize,
    ) -> StoreResult<Vec<ValueCount>>;

    /// The time and id of matching events, oldest first, at most `limit`.
    async fn timeline(&self, filter: &EventFilter, limit: usize)
    -> StoreResult<Vec<TimelineEntry>>;

    /// The events with these ids (without diffs), in no particular order; unknown ids are
    /// skipped.
    async fn get_many(&self, ids: &[EventId]) -> StoreResult<Vec<Event>>;

    /// Every event stored from now on, as soon as it is durable, as it was created and without
    /// its diff (as [`Store::stored_since`] reads it). A receiver that falls more
    /// than [`STREAM_BUFFER`] events behind gets `Lagged` and should catch up with
    /// [`Store::stored_since`].
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StoredEvent>>;

    /// Events stored after `after`, in stored order, at most `limit` (without diffs).
    async fn stored_since(
        &self,
        after: StreamPosition,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// The position of the last stored event.
    async fn stream_head(&self) -> StoreResult<StreamPosition>;

    /// Deletes an event (its diff, tags and full-text entry with it) and records the deletion
    /// in the audit log, in one transaction; `None` if there is no such event. The event's
    /// idempotency key is freed with it.
    async fn delete_event(&self, deletion: Deletion) -> StoreResult<Option<AuditEntry>>;

    /// Audit entries, newest first, those with an id below `before` (all with `None`), at most
    /// `limit`.
    async fn audit_log(&self, before: Option<u64>, limit: usize) -> StoreResult<Vec<AuditEntry>>;

    /// Stores a new token; `None` if a token (even a revoked one) already has this name.
    async fn create_token(&self, token: NewToken) -> StoreResult<Option<TokenInfo>>;

    /// Every token, revoked and expired ones included, by name.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>>;

    /// Revokes a token from `at` on (a token already revoked keeps its first revocation time);
    /// `None` if there is no token of that name.
    async fn revoke_token(&self, name: &str, at: Timestamp) -> StoreResult<Option<TokenInfo>>;

    /// The token whose hash this is, whatever its state (the caller checks
    /// [`TokenInfo::is_active`]).
    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenInfo>>;

    /// Records that a token was used at `at` (never moving `last_used_at` back). Callers
    /// throttle this: it is a write.
    async fn touch_token(&self, name: &str, at: Timestamp) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let cursor = Cursor {
            occurred_at: "2026-11-26T10:00:00.123456Z".parse().unwrap(),
            id: EventId::new(),
        };
        let text = cursor.to_string();
        assert_eq!(text.parse::<Cursor>().unwrap(), cursor);
        for bad in ["", "x", "12_", "_abc", "12_notauuid", "1e99_0193"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
