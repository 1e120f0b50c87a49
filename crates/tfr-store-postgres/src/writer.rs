//! The write path. One task per node takes every write request waiting and runs them together
//! in one transaction (group commit), each request in its own savepoint, exactly as the SQLite
//! store's writer thread does. A reply is sent only after `COMMIT` returned.
//!
//! # Positions are in commit order, across nodes
//!
//! Every write transaction first takes one transaction-level advisory lock
//! ([`WRITE_LOCK`]), then reads the last stream position handed out (`counters.stream_head`),
//! numbers its new events after it, and stores the new head before `COMMIT`. The lock is held
//! until the transaction ends — PostgreSQL releases it only after the commit is visible — so
//! write transactions of all nodes follow one another, and the order of positions is the order
//! of commits. A reader that has seen position `n` has therefore seen every position below
//! `n`, and a client resuming the stream after `n` (`stored_since`) misses nothing. (A sequence
//! would not do: numbers are taken at insert time, and a transaction that took a smaller
//! number can commit after one that took a larger.)
//!
//! The price is that writes are serialised across the cluster, like SQLite's single writer;
//! grouping is what keeps that cheap: one lock, one commit (one WAL flush) for everything a
//! node had waiting, and one round of statements for all the insert requests that queued up
//! one after another (a patch between them runs alone, in its place). The lock also means two nodes
//! can never race on one idempotency key; the unique index is still there, and a request that
//! hits it anyway (a writer that does not take the lock) is rolled back to its savepoint and
//! run again, which then finds the stored event and answers Duplicate or Conflict.
//!
//! The transaction ends with `pg_notify` carrying the new head: PostgreSQL delivers it at
//! commit, in commit order, to every node listening (see [`crate::stream`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use sqlx_core::executor::Executor;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, PgTransaction};
use tfr_core::{Event, EventId, EventPatch, ValidationError};
use tfr_store::{
    BatchMode, InsertOutcome, InsertRecord, StoreError, StoreResult, StoredEvent, StreamPosition,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::rows::{self, PgTime};
use crate::stream::LocalFeed;
use crate::{ImportReport, STREAM_CHANNEL, fts, pg_error};

/// The advisory lock key every write transaction takes (`'tfr_writ'` in ASCII).
pub const WRITE_LOCK: i64 = 0x7466_725f_7772_6974;

/// How long a write transaction may sit idle before PostgreSQL ends its session.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// Requests stop being merged into one transaction past this many events...
const MAX_GROUP_EVENTS: usize = 4_000;
/// ...or this much text, so a group of large events holds bounded memory.
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// What the writer task is asked to do.
pub enum Command {
    Write(Write),
    /// Finish the queue, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// A change to the database, committed with whatever else is waiting.
pub enum Write {
    Insert {
        records: Vec<InsertRecord>,
        mode: BatchMode,
        reply: oneshot::Sender<StoreResult<Vec<InsertOutcome>>>,
    },
    Patch {
        id: EventId,
        patch: EventPatch,
        reply: oneshot::Sender<StoreResult<Option<Event>>>,
    },
    Import {
        records: Vec<InsertRecord>,
        reply: oneshot::Sender<StoreResult<ImportReport>>,
    },
}

impl Write {
    fn weight(&self) -> usize {
        match self {
            Write::Insert { records, .. } | Write::Import { records, .. } => records.len().max(1),
            Write::Patch { .. } => 1,
        }
    }

    /// Roughly how much text the write carries (the fields that can be large).
    fn bytes(&self) -> usize {
        match self {
            Write::Insert { records, .. } | Write::Import { records, .. } => {
                records.iter().map(record_bytes).sum()
            }
            Write::Patch { .. } => 0,
        }
    }

    fn fail(self, error: StoreError) {
        // A requester that went away (client disconnected) no longer needs its answer.
        match self {
            Write::Insert { reply, .. } => drop(reply.send(Err(error))),
            Write::Patch { reply, .. } => drop(reply.send(Err(error))),
            Write::Import { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// Roughly how much text a record carries.
fn record_bytes(record: &InsertRecord) -> usize {
    let event = &record.event;
    event.title.len()
        + event.description.as_ref().map_or(0, String::len)
        + event.diff.as_ref().map_or(0, String::len)
        + event.tags.iter().map(String::len).sum::<usize>()
        + event.links.iter().map(|link| link.url.len()).sum::<usize>()
}

/// Why one request failed inside the transaction.
#[derive(Debug)]
enum Failure {
    Database(sqlx_core::Error),
    Invalid(ValidationError),
}

impl From<sqlx_core::Error> for Failure {
    fn from(error: sqlx_core::Error) -> Self {
        Failure::Database(error)
    }
}

impl Failure {
    fn is_unique_violation(&self) -> bool {
        matches!(self, Failure::Database(sqlx_core::Error::Database(error)) if error.is_unique_violation())
    }

    fn into_store_error(self) -> StoreError {
        match self {
            Failure::Database(error) => pg_error(error),
            Failure::Invalid(invalid) => StoreError::Invalid(invalid),
        }
    }
}

/// What one request produced, kept until the transaction's fate is known.
enum Done {
    Insert(Vec<InsertOutcome>),
    Patch(Option<Box<Event>>),
    Import(ImportReport),
}

/// Runs the writer loop until every sender is gone, or a shutdown was asked and the queue
/// drained.
pub async fn run(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Command>,
    feed: Arc<LocalFeed>,
    head: StreamPosition,
) {
    let mut statistics = Statistics::new(head);
    let mut shutdown_replies = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut group = Vec::new();
        let mut weight = 0;
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Shutdown(reply) => {
                    // Stop taking new work, but finish everything already queued.
                    receiver.close();
                    shutdown_replies.push(reply);
                }
                Command::Write(write) => {
                    weight += write.weight();
                    bytes += write.bytes();
                    group.push(write);
                }
            }
            if weight < MAX_GROUP_EVENTS && bytes < MAX_GROUP_BYTES {
                next = receiver.try_recv().ok();
            }
        }
        if !group.is_empty()
            && let Some(head) = commit_group(&pool, group, &feed).await
        {
            statistics.committed(&pool, head);
        }
    }
    for reply in shutdown_replies {
        let _ = reply.send(());
    }
}

/// Opens the group's transaction, takes the write lock, and reads the stream head.
async fn begin_locked(pool: &PgPool) -> Result<(PgTransaction<'static>, i64), sqlx_core::Error> {
    let mut transaction = pool.begin().await?;
    // A node that vanishes mid-transaction (a crash, a partition) must not hold the write lock
    // of every node for the hours a dead TCP connection can take to notice: PostgreSQL ends a
    // session idle in a transaction this long, and with it the lock.
    query(
        "SELECT set_config('idle_in_transaction_session_timeout', $1, true), \
         pg_advisory_xact_lock($2)",
    )
    .bind(IDLE_IN_TRANSACTION_TIMEOUT)
    .bind(WRITE_LOCK)
    .execute(&mut *transaction)
    .await?;
    let head: i64 = query_scalar("SELECT value FROM counters WHERE name = 'stream_head'")
        .fetch_one(&mut *transaction)
        .await?;
    Ok((transaction, head))
}

/// Runs and commits a group; returns the new stream head if it committed new events.
async fn commit_group(pool: &PgPool, group: Vec<Write>, feed: &LocalFeed) -> Option<i64> {
    let (mut transaction, start) = match begin_locked(pool).await {
        Ok(begun) => begun,
        Err(error) => {
            tracing::warn!(%error, "cannot begin a write transaction");
            let message = error.to_string();
            let unavailable = matches!(pg_error(error), StoreError::Unavailable(_));
            for write in group {
                write.fail(if unavailable {
                    StoreError::Unavailable(message.clone())
                } else {
                    StoreError::Internal(message.clone())
                });
            }
            return None;
        }
    };
    let mut head = start;
    let mut stored = Vec::new();
    let mut results = Vec::with_capacity(group.len());
    let mut queue: VecDeque<Write> = group.into();
    while let Some(first) = queue.pop_front() {
        // Consecutive inserts run together; anything else (a patch may name an event stored
        // just before it) runs alone, in order.
        let mut batch = vec![first];
        if is_insert(&batch[0]) {
            while queue.front().is_some_and(is_insert) {
                batch.extend(queue.pop_front());
            }
        }
        let ran = if batch.len() > 1 {
            run_inserts_together(&mut transaction, &batch, &mut head, &mut stored).await
        } else {
            run_in_savepoint(&mut transaction, &batch[0], &mut head, &mut stored)
                .await
                .map(|result| vec![result])
        };
        match ran {
            Ok(ran) => {
                debug_assert_eq!(ran.len(), batch.len(), "one result per request");
                results.extend(batch.into_iter().zip(ran));
            }
            Err(error) => {
                // The savepoint itself failed: the connection or the transaction is gone, and
                // nothing of this group will commit.
                tracing::warn!(%error, "write transaction broken");
                let message = error.to_string();
                let earlier = results.into_iter().map(|(write, _)| write);
                for write in earlier.chain(batch).chain(queue) {
                    write.fail(StoreError::Unavailable(message.clone()));
                }
                return None;
            }
        }
    }
    let created = head - start;
    let committed = finish(&mut transaction, created, head).await;
    let committed = match committed {
        Ok(()) => transaction.commit().await,
        Err(error) => Err(error),
    };
    let failure = committed.err().map(|error| {
        tracing::warn!(%error, "group commit failed");
        error.to_string()
    });
    let committed = failure.is_none();
    if committed {
        feed.committed(stored);
    }
    for (write, result) in results {
        send(write, result, failure.as_deref());
    }
    (committed && created > 0).then_some(head)
}

/// Fewer events than this are planned well enough without statistics.
const ANALYZE_FROM: i64 = 1_000;

/// Keeps the planner's statistics up to date while the history grows fast. Autovacuum
/// analyses a table only after a tenth of it changed, and at most once a minute: right after
/// a bulk load the planner still believed `events` small, and `last system:X kind:Y` read
/// both indexes and sorted thousands of events (15 ms at 30,000 events) instead of walking
/// the time index backwards (0.07 ms). Each time the stream head doubles (from
/// [`ANALYZE_FROM`] on), this node runs `ANALYZE` once, off the write path, on a connection
/// of the pool idle at that moment (if none is, after a later commit).
struct Statistics {
    analyzed_at: i64,
}

impl Statistics {
    fn new(head: StreamPosition) -> Self {
        Self {
            analyzed_at: i64::try_from(head.0).unwrap_or(i64::MAX),
        }
    }

    fn committed(&mut self, pool: &PgPool, head: i64) {
        if head < ANALYZE_FROM || head < self.analyzed_at.saturating_mul(2) {
            return;
        }
        if pool.num_idle() == 0 {
            // Every connection is serving requests: not now, after a later commit.
            return;
        }
        self.analyzed_at = head;
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(error) = pool.execute("ANALYZE events, event_tags").await {
                tracing::warn!(%error, "cannot analyse the events table");
            }
        });
    }
}

/// Counters, and the notification every node's stream wakes up on.
async fn finish(
    transaction: &mut PgTransaction<'static>,
    created: i64,
    head: i64,
) -> Result<(), sqlx_core::Error> {
    if created == 0 {
        return Ok(());
    }
    // One statement, one round trip: PostgreSQL runs the updates in `WITH` whether or not
    // the query reads them.
    query(
        "WITH stored AS (UPDATE counters SET value = value + $1 WHERE name = 'events'), \
              head AS (UPDATE counters SET value = $2 WHERE name = 'stream_head') \
         SELECT pg_notify($3, $4)",
    )
    .bind(created)
    .bind(head)
    .bind(STREAM_CHANNEL)
    .bind(head.to_string())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Sends a request's result, or the commit's failure in place of a success.
fn send(write: Write, result: Result<Done, Failure>, commit_failure: Option<&str>) {
    let result = match (result, commit_failure) {
        (Ok(_), Some(message)) => {
            return write.fail(StoreError::Unavailable(format!("commit failed: {message}")));
        }
        (result, _) => result,
    };
    match (write, result) {
        (Write::Insert { reply, .. }, Ok(Done::Insert(outcomes))) => {
            let _ = reply.send(Ok(outcomes));
        }
        (Write::Patch { reply, .. }, Ok(Done::Patch(event))) => {
            let _ = reply.send(Ok(event.map(|event| *event)));
        }
        (Write::Import { reply, .. }, Ok(Done::Import(report))) => {
            let _ = reply.send(Ok(report));
        }
        (write, Err(failure)) => write.fail(failure.into_store_error()),
        (write, Ok(_)) => write.fail(StoreError::Internal("mismatched write result".into())),
    }
}

fn is_insert(write: &Write) -> bool {
    matches!(write, Write::Insert { .. })
}

/// Runs consecutive insert requests with one set of statements ([`insert_together`]) inside
/// one savepoint. If those statements fail, they are rolled back and the requests run again
/// one at a time, each in its own savepoint, so one request's failure stays its own. The outer
/// error means the transaction is unusable.
async fn run_inserts_together(
    transaction: &mut PgTransaction<'static>,
    batch: &[Write],
    head: &mut i64,
    stored: &mut Vec<StoredEvent>,
) -> Result<Vec<Result<Done, Failure>>, sqlx_core::Error> {
    let requests: Vec<(&[InsertRecord], BatchMode)> = batch
        .iter()
        .filter_map(|write| match write {
            Write::Insert { records, mode, .. } => Some((records.as_slice(), *mode)),
            Write::Patch { .. } | Write::Import { .. } => None,
        })
        .collect();
    if requests.len() == batch.len() {
        transaction.execute("SAVEPOINT tfr_together").await?;
        let before = *head;
        let stored_before = stored.len();
        match insert_together(transaction, &requests, head, stored).await {
            Ok(results) => {
                transaction
                    .execute("RELEASE SAVEPOINT tfr_together")
                    .await?;
                return Ok(results);
            }
            Err(failure) => {
                tracing::debug!(
                    ?failure,
                    "inserts together failed; running them one at a time"
                );
                transaction
                    .execute("ROLLBACK TO SAVEPOINT tfr_together")
                    .await?;
                transaction
                    .execute("RELEASE SAVEPOINT tfr_together")
                    .await?;
                *head = before;
                stored.truncate(stored_before);
            }
        }
    }
    let mut results = Vec::with_capacity(batch.len());
    for write in batch {
        results.push(run_in_savepoint(transaction, write, head, stored).await?);
    }
    Ok(results)
}

/// Runs one request inside a savepoint: on failure it is rolled back alone (and run once more
/// after a unique violation, see the module doc). The outer error means the transaction is
/// unusable.
async fn run_in_savepoint(
    transaction: &mut PgTransaction<'static>,
    write: &Write,
    head: &mut i64,
    stored: &mut Vec<StoredEvent>,
) -> Result<Result<Done, Failure>, sqlx_core::Error> {
    let mut retried = false;
    loop {
        transaction.execute("SAVEPOINT tfr_request").await?;
        let before = *head;
        let stored_before = stored.len();
        let result = match write {
            Write::Insert { records, mode, .. } => {
                insert(transaction, records, *mode, head, stored)
                    .await
                    .map(Done::Insert)
            }
            Write::Patch { id, patch, .. } => patch_event(transaction, *id, patch)
                .await
                .map(|event| Done::Patch(event.map(Box::new))),
            Write::Import { records, .. } => import(transaction, records, head, stored)
                .await
                .map(Done::Import),
        };
        match result {
            Ok(done) => {
                transaction.execute("RELEASE SAVEPOINT tfr_request").await?;
                return Ok(Ok(done));
            }
            Err(failure) => {
                transaction
                    .execute("ROLLBACK TO SAVEPOINT tfr_request")
                    .await?;
                *head = before;
                stored.truncate(stored_before);
                if failure.is_unique_violation() && !retried {
                    retried = true;
                    continue;
                }
                return Ok(Err(failure));
            }
        }
    }
}

/// Refuses instants PostgreSQL cannot hold (before 4713 BC), rather than storing them wrong.
fn check_storable(records: &[InsertRecord]) -> Result<(), Failure> {
    for record in records {
        let event = &record.event;
        for (field, at) in [
            ("occurred_at", Some(event.occurred_at)),
            ("ended_at", event.ended_at),
            ("recorded_at", Some(event.recorded_at)),
        ] {
            if let Some(at) = at
                && !PgTime::storable(at)
            {
                return Err(Failure::Invalid(ValidationError::new(
                    field,
                    "is outside the range of times this store holds (4713 BC to 294276 AD)",
                )));
            }
        }
    }
    Ok(())
}

/// Stored events holding any of `keys`, with their digests.
async fn load_by_keys(
    transaction: &mut PgTransaction<'static>,
    keys: Vec<String>,
    include_diffs: bool,
) -> Result<HashMap<String, (String, Event)>, Failure> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let text = format!(
        "SELECT {}, e.content_digest {} WHERE e.idempotency_key = ANY($1::text[])",
        rows::select_list(include_diffs),
        rows::from_clause(include_diffs)
    );
    let found = query(AssertSqlSafe(text))
        .bind(keys)
        .fetch_all(&mut **transaction)
        .await?;
    let mut by_key = HashMap::with_capacity(found.len());
    for row in found {
        let event = rows::event_from_row(&row)?;
        let digest: String = row.try_get(rows::COLUMN_COUNT + 1)?;
        if let Some(key) = event.idempotency_key.clone() {
            by_key.insert(key, (digest, event));
        }
    }
    Ok(by_key)
}

/// Stored events without a key among `ids` (what `import:<id>` keys may name).
async fn load_keyless(
    transaction: &mut PgTransaction<'static>,
    ids: Vec<Uuid>,
) -> Result<HashMap<EventId, Event>, Failure> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let text = format!(
        "SELECT {} {} WHERE e.id = ANY($1::uuid[]) AND e.idempotency_key IS NULL",
        rows::select_list(true),
        rows::from_clause(true)
    );
    let found = query(AssertSqlSafe(text))
        .bind(ids)
        .fetch_all(&mut **transaction)
        .await?;
    let mut by_id = HashMap::with_capacity(found.len());
    for row in found {
        let event = rows::event_from_row(&row)?;
        by_id.insert(event.id, event);
    }
    Ok(by_id)
}

/// Outcomes carry events without their diffs: a diff can weigh a megabyte, and whoever wrote
/// the event already has it.
fn without_diff(event: &Event) -> Event {
    Event {
        diff: None,
        ..event.clone()
    }
}

/// Compares a record with the stored event (read with its diff) holding its key.
fn repeat_or_conflict(
    record: &InsertRecord,
    stored_digest: &str,
    original: &Event,
    key: &str,
) -> InsertOutcome {
    if record.repeats(stored_digest, original) {
        InsertOutcome::Duplicate(without_diff(original))
    } else {
        InsertOutcome::Conflict {
            idempotency_key: key.to_owned(),
            existing: original.id,
        }
    }
}

/// What is already stored about a set of records: the events holding their idempotency keys
/// (with their digests) and the keyless events they may re-import (`import:<id>` keys).
/// Deciding records' outcomes adds the events they create, so a key seen earlier counts as
/// stored.
struct Known {
    by_key: HashMap<String, (String, Event)>,
    keyless: HashMap<EventId, Event>,
}

impl Known {
    /// Reads what the store holds about `records`, in at most three statements.
    async fn load(
        transaction: &mut PgTransaction<'static>,
        records: &[&InsertRecord],
    ) -> Result<Self, Failure> {
        let keys: Vec<String> = records
            .iter()
            .filter_map(|record| record.event.idempotency_key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let exported: Vec<Uuid> = records
            .iter()
            .filter_map(|record| record.imported_from().map(|id| id.as_uuid()))
            .collect();
        // A retry (same digest) needs no diff; only events a record must be compared with
        // field by field (another digest: a re-imported export, or a conflict) are read with
        // theirs.
        let mut by_key = load_by_keys(transaction, keys, false).await?;
        let compared: Vec<String> = records
            .iter()
            .filter_map(|record| {
                let key = record.event.idempotency_key.as_ref()?;
                let (digest, _) = by_key.get(key)?;
                (*digest != record.content_digest).then(|| key.clone())
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        by_key.extend(load_by_keys(transaction, compared, true).await?);
        let keyless = load_keyless(transaction, exported).await?;
        Ok(Self { by_key, keyless })
    }

    /// Decides the outcome of each record of one request, in order, numbering new events
    /// after `next`. Returns the outcomes and the events to store; in all-or-nothing mode a
    /// conflict stores nothing, and then neither `next` nor what is known changes.
    fn decide<'a>(
        &mut self,
        records: &'a [InsertRecord],
        mode: BatchMode,
        next: &mut i64,
    ) -> (Vec<InsertOutcome>, Vec<(i64, &'a InsertRecord)>) {
        let mut added_keys: HashMap<&str, (&str, &Event)> = HashMap::new();
        let mut added_ids: HashMap<EventId, &Event> = HashMap::new();
        let mut outcomes = Vec::with_capacity(records.len());
        let mut fresh = Vec::new();
        let mut position = *next;
        for record in records {
            let event = &record.event;
            let repeat = event.idempotency_key.as_deref().and_then(|key| {
                if let Some((digest, stored)) = added_keys.get(key) {
                    return Some(repeat_or_conflict(record, digest, stored, key));
                }
                if let Some((digest, stored)) = self.by_key.get(key) {
                    return Some(repeat_or_conflict(record, digest, stored, key));
                }
                let exported = record.imported_from()?;
                let stored = added_ids
                    .get(&exported)
                    .copied()
                    .or_else(|| self.keyless.get(&exported))?;
                Some(repeat_or_conflict(record, "", stored, key))
            });
            if let Some(outcome) = repeat {
                outcomes.push(outcome);
                continue;
            }
            position += 1;
            fresh.push((position, record));
            match &event.idempotency_key {
                Some(key) => {
                    added_keys.insert(key, (&record.content_digest, event));
                }
                None => {
                    added_ids.insert(event.id, event);
                }
            }
            outcomes.push(InsertOutcome::Created(without_diff(event)));
        }
        let conflicted = outcomes
            .iter()
            .any(|outcome| matches!(outcome, InsertOutcome::Conflict { .. }));
        if mode == BatchMode::AllOrNothing && conflicted {
            return (outcomes, Vec::new());
        }
        for (key, (digest, event)) in added_keys {
            self.by_key
                .insert(key.to_owned(), (digest.to_owned(), event.clone()));
        }
        for (id, event) in added_ids {
            self.keyless.insert(id, event.clone());
        }
        *next = position;
        (outcomes, fresh)
    }
}

/// One insert request: decides each record's outcome in order (a key seen earlier in the batch
/// counts as stored), then stores the new ones with one multi-row statement per table. In
/// all-or-nothing mode a conflict stores nothing.
async fn insert(
    transaction: &mut PgTransaction<'static>,
    records: &[InsertRecord],
    mode: BatchMode,
    head: &mut i64,
    stored: &mut Vec<StoredEvent>,
) -> Result<Vec<InsertOutcome>, Failure> {
    check_storable(records)?;
    let all: Vec<&InsertRecord> = records.iter().collect();
    let mut known = Known::load(transaction, &all).await?;
    let mut next = *head;
    let (outcomes, fresh) = known.decide(records, mode, &mut next);
    insert_rows(transaction, &fresh).await?;
    *head = next;
    published(&fresh, stored);
    Ok(outcomes)
}

/// Several insert requests at once, as if run one after another: one read of what is stored
/// about all their records, each request's outcomes decided in turn (a key stored by an
/// earlier request counts as stored), and one multi-row statement per table for all the new
/// events. Sixty-four clients posting one event each cost a handful of statements, not
/// sixty-four rounds of them. A request refused before storing (an instant out of range)
/// gets its error alone; the outer error means the statements failed and nothing of them
/// stands (the caller rolls back and runs the requests one at a time).
async fn insert_together(
    transaction: &mut PgTransaction<'static>,
    requests: &[(&[InsertRecord], BatchMode)],
    head: &mut i64,
    stored: &mut Vec<StoredEvent>,
) -> Result<Vec<Result<Done, Failure>>, Failure> {
    let checked: Vec<Result<(), Failure>> = requests
        .iter()
        .map(|(records, _)| check_storable(records))
        .collect();
    let all: Vec<&InsertRecord> = requests
        .iter()
        .zip(&checked)
        .filter(|(_, check)| check.is_ok())
        .flat_map(|((records, _), _)| records.iter())
        .collect();
    let mut known = Known::load(transaction, &all).await?;
    let mut next = *head;
    let mut fresh = Vec::new();
    let mut results = Vec::with_capacity(requests.len());
    for ((records, mode), check) in requests.iter().zip(checked) {
        results.push(match check {
            Ok(()) => {
                let (outcomes, new) = known.decide(records, *mode, &mut next);
                fresh.extend(new);
                Ok(Done::Insert(outcomes))
            }
            Err(failure) => Err(failure),
        });
    }
    insert_rows(transaction, &fresh).await?;
    *head = next;
    published(&fresh, stored);
    Ok(results)
}

/// Stores events exactly as given, skipping those whose id or key is already stored.
async fn import(
    transaction: &mut PgTransaction<'static>,
    records: &[InsertRecord],
    head: &mut i64,
    stored_events: &mut Vec<StoredEvent>,
) -> Result<ImportReport, Failure> {
    check_storable(records)?;
    let ids: Vec<Uuid> = records.iter().map(|r| r.event.id.as_uuid()).collect();
    let keys: Vec<String> = records
        .iter()
        .filter_map(|record| record.event.idempotency_key.clone())
        .collect();
    let mut stored_ids: HashSet<Uuid> = query_scalar("SELECT id FROM events WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut **transaction)
        .await?
        .into_iter()
        .collect();
    let mut stored_keys: HashSet<String> =
        query_scalar("SELECT idempotency_key FROM events WHERE idempotency_key = ANY($1::text[])")
            .bind(keys)
            .fetch_all(&mut **transaction)
            .await?
            .into_iter()
            .collect();
    let mut fresh = Vec::new();
    let mut next = *head;
    for record in records {
        let event = &record.event;
        let key_taken = event
            .idempotency_key
            .as_ref()
            .is_some_and(|key| stored_keys.contains(key));
        if key_taken || !stored_ids.insert(event.id.as_uuid()) {
            continue;
        }
        if let Some(key) = &event.idempotency_key {
            stored_keys.insert(key.clone());
        }
        next += 1;
        fresh.push((next, record));
    }
    insert_rows(transaction, &fresh).await?;
    *head = next;
    published(&fresh, stored_events);
    let stored = fresh.len() as u64;
    Ok(ImportReport {
        stored,
        skipped: records.len() as u64 - stored,
    })
}

/// The new events as the stream publishes them: as created, without their diffs.
fn published(fresh: &[(i64, &InsertRecord)], stored: &mut Vec<StoredEvent>) {
    stored.extend(fresh.iter().map(|(position, record)| StoredEvent {
        position: StreamPosition(u64::try_from(*position).unwrap_or(0)),
        event: without_diff(&record.event),
    }));
}

/// Inserts new events (with their positions) into `events`, `event_tags` and `event_diffs`:
/// one statement per table, each row of a column bound as one array.
async fn insert_rows(
    transaction: &mut PgTransaction<'static>,
    fresh: &[(i64, &InsertRecord)],
) -> Result<(), Failure> {
    if fresh.is_empty() {
        return Ok(());
    }
    let count = fresh.len();
    let mut seq = Vec::with_capacity(count);
    let mut id = Vec::with_capacity(count);
    let mut occurred_at = Vec::with_capacity(count);
    let mut ended_at = Vec::with_capacity(count);
    let mut recorded_at = Vec::with_capacity(count);
    let mut title = Vec::with_capacity(count);
    let mut system = Vec::with_capacity(count);
    let mut author = Vec::with_capacity(count);
    let mut kind = Vec::with_capacity(count);
    let mut environment = Vec::with_capacity(count);
    let mut team = Vec::with_capacity(count);
    let mut source = Vec::with_capacity(count);
    let mut version = Vec::with_capacity(count);
    let mut description = Vec::with_capacity(count);
    let mut tags = Vec::with_capacity(count);
    let mut links = Vec::with_capacity(count);
    let mut has_diff = Vec::with_capacity(count);
    let mut attributes = Vec::with_capacity(count);
    let mut idempotency_key = Vec::with_capacity(count);
    let mut content_digest = Vec::with_capacity(count);
    let mut submitted_by = Vec::with_capacity(count);
    let mut search = Vec::with_capacity(count);
    let mut tag_rows: (Vec<&str>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut diff_rows: (Vec<i64>, Vec<&str>) = (Vec::new(), Vec::new());
    for (position, record) in fresh {
        let event = &record.event;
        seq.push(*position);
        id.push(event.id.as_uuid());
        occurred_at.push(PgTime::of(event.occurred_at));
        ended_at.push(event.ended_at.map(PgTime::of));
        recorded_at.push(PgTime::of(event.recorded_at));
        title.push(event.title.as_str());
        system.push(event.system.as_str());
        author.push(event.author.as_str());
        kind.push(event.kind.as_str());
        environment.push(event.environment.as_deref());
        team.push(event.team.as_deref());
        source.push(event.source.as_deref());
        version.push(event.version.as_deref());
        description.push(event.description.as_deref());
        tags.push(rows::to_json(&event.tags));
        links.push(rows::to_json(&event.links));
        has_diff.push(event.diff.is_some());
        attributes.push(event.attributes.as_ref().map(rows::to_json));
        idempotency_key.push(event.idempotency_key.as_deref());
        content_digest.push(record.content_digest.as_str());
        submitted_by.push(event.submitted_by.as_str());
        search.push(fts::document(event));
        for tag in &event.tags {
            tag_rows.0.push(tag.as_str());
            tag_rows.1.push(*position);
        }
        if let Some(diff) = &event.diff {
            diff_rows.0.push(*position);
            diff_rows.1.push(diff.as_str());
        }
    }
    query(
        "INSERT INTO events (seq, id, occurred_at, ended_at, recorded_at, title, system, author, \
         kind, environment, team, source, version, description, tags, links, has_diff, \
         attributes, idempotency_key, content_digest, submitted_by, search) \
         SELECT seq, id, occurred_at, ended_at, recorded_at, title, system, author, kind, \
         environment, team, source, version, description, tags::json, links::json, has_diff, \
         attributes::json, idempotency_key, content_digest, submitted_by, search::tsvector \
         FROM UNNEST($1::int8[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], \
         $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
         $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
         $17::bool[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[]) \
         AS r(seq, id, occurred_at, ended_at, recorded_at, title, system, author, kind, \
         environment, team, source, version, description, tags, links, has_diff, attributes, \
         idempotency_key, content_digest, submitted_by, search)",
    )
    .bind(seq)
    .bind(id)
    .bind(occurred_at)
    .bind(ended_at)
    .bind(recorded_at)
    .bind(title)
    .bind(system)
    .bind(author)
    .bind(kind)
    .bind(environment)
    .bind(team)
    .bind(source)
    .bind(version)
    .bind(description)
    .bind(tags)
    .bind(links)
    .bind(has_diff)
    .bind(attributes)
    .bind(idempotency_key)
    .bind(content_digest)
    .bind(submitted_by)
    .bind(search)
    .execute(&mut **transaction)
    .await?;
    insert_tags(transaction, tag_rows.0, tag_rows.1).await?;
    if !diff_rows.0.is_empty() {
        query("INSERT INTO event_diffs (seq, diff) SELECT * FROM UNNEST($1::int8[], $2::text[])")
            .bind(diff_rows.0)
            .bind(diff_rows.1)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Adds rows to the tag index; tags already there are kept.
async fn insert_tags(
    transaction: &mut PgTransaction<'static>,
    tags: Vec<&str>,
    seqs: Vec<i64>,
) -> Result<(), sqlx_core::Error> {
    if tags.is_empty() {
        return Ok(());
    }
    query(
        "INSERT INTO event_tags (tag, seq) SELECT * FROM UNNEST($1::text[], $2::int8[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tags)
    .bind(seqs)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Sets `ended_at` and adds tags and links, the row locked while it changes.
async fn patch_event(
    transaction: &mut PgTransaction<'static>,
    id: EventId,
    patch: &EventPatch,
) -> Result<Option<Event>, Failure> {
    let text = format!(
        "SELECT {}, e.seq {} WHERE e.id = $1 FOR UPDATE OF e",
        rows::select_list(true),
        rows::from_clause(true)
    );
    let Some(row) = query(AssertSqlSafe(text))
        .bind(id.as_uuid())
        .fetch_optional(&mut **transaction)
        .await?
    else {
        return Ok(None);
    };
    let mut event = rows::event_from_row(&row)?;
    let seq: i64 = row.try_get(rows::COLUMN_COUNT + 1)?;
    patch.apply(&mut event).map_err(Failure::Invalid)?;
    if let Some(ended_at) = event.ended_at
        && !PgTime::storable(ended_at)
    {
        return Err(Failure::Invalid(ValidationError::new(
            "ended_at",
            "is outside the range of times this store holds",
        )));
    }
    query(
        "UPDATE events SET ended_at = $1, tags = $2::json, links = $3::json, \
         search = $4::tsvector WHERE seq = $5",
    )
    .bind(event.ended_at.map(PgTime::of))
    .bind(rows::to_json(&event.tags))
    .bind(rows::to_json(&event.links))
    .bind(fts::document(&event))
    .bind(seq)
    .execute(&mut **transaction)
    .await?;
    let tags: Vec<&str> = event.tags.iter().map(String::as_str).collect();
    let seqs = vec![seq; tags.len()];
    insert_tags(transaction, tags, seqs).await?;
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tfr_store::conformance::record;

    fn keyed(title: &str, key: &str) -> InsertRecord {
        record(&json!({"title": title, "system": "api", "author": "ana", "idempotency_key": key}))
    }

    fn empty() -> Known {
        Known {
            by_key: HashMap::new(),
            keyless: HashMap::new(),
        }
    }

    fn kinds(outcomes: &[InsertOutcome]) -> Vec<&'static str> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                InsertOutcome::Created(_) => "created",
                InsertOutcome::Duplicate(_) => "duplicate",
                InsertOutcome::Conflict { .. } => "conflict",
            })
            .collect()
    }

    #[test]
    fn requests_decided_together_see_the_keys_earlier_ones_store() {
        let mut known = empty();
        let mut next = 10;
        let first = [keyed("a", "k1"), keyed("b", "k2")];
        let (outcomes, fresh) = known.decide(&first, BatchMode::Independent, &mut next);
        assert_eq!(kinds(&outcomes), ["created", "created"]);
        assert_eq!(
            fresh.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
            [11, 12]
        );
        assert_eq!(next, 12);

        // A retry of k1 (same content), a conflict on k2, and a new key.
        let second = [keyed("a", "k1"), keyed("other", "k2"), keyed("c", "k3")];
        let (outcomes, fresh) = known.decide(&second, BatchMode::Independent, &mut next);
        assert_eq!(kinds(&outcomes), ["duplicate", "conflict", "created"]);
        assert_eq!(fresh.iter().map(|(at, _)| *at).collect::<Vec<_>>(), [13]);
        assert_eq!(next, 13);
    }

    #[test]
    fn an_all_or_nothing_request_that_conflicts_leaves_nothing_behind() {
        let mut known = empty();
        let mut next = 0;
        let stored = [keyed("a", "taken")];
        known.decide(&stored, BatchMode::Independent, &mut next);

        // New key `fresh`, then a conflict on `taken`: nothing of this request stands...
        let refused = [keyed("n", "fresh"), keyed("other", "taken")];
        let (outcomes, fresh) = known.decide(&refused, BatchMode::AllOrNothing, &mut next);
        assert_eq!(kinds(&outcomes), ["created", "conflict"]);
        assert!(fresh.is_empty());
        assert_eq!(next, 1, "no position is taken");

        // ...so the next request's `fresh`, with other content, is created, not a conflict.
        let later = [keyed("m", "fresh")];
        let (outcomes, fresh) = known.decide(&later, BatchMode::AllOrNothing, &mut next);
        assert_eq!(kinds(&outcomes), ["created"]);
        assert_eq!(fresh.len(), 1);
        assert_eq!(next, 2);
    }

    #[test]
    fn a_key_repeated_inside_one_request_is_a_duplicate() {
        let mut known = empty();
        let mut next = 0;
        let request = [keyed("a", "k"), keyed("a", "k"), keyed("b", "k")];
        let (outcomes, fresh) = known.decide(&request, BatchMode::Independent, &mut next);
        assert_eq!(kinds(&outcomes), ["created", "duplicate", "conflict"]);
        assert_eq!(fresh.len(), 1);
    }
}
