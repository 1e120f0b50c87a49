//! The single writer: one thread owns the write connection and commits whatever requests are
//! waiting in one transaction (group commit). A reply is sent only after `COMMIT` returned, and
//! with `synchronous=FULL` that means the WAL is fsynced: an acknowledged event is on disk.
//!
//! Each request runs inside its own savepoint, so one request failing (or an all-or-nothing
//! batch conflicting) never affects the others sharing the transaction.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tfr_core::{Event, EventId, EventPatch};
use tfr_store::{
    BatchMode, InsertOutcome, InsertRecord, StoreError, StoreResult, StoredEvent, StreamPosition,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::checkpoint::Checkpointer;
use crate::fts;
use crate::rows;
use crate::sqlite_error;

/// Requests stop being merged into one transaction past this many events...
const MAX_GROUP_EVENTS: usize = 4_000;
/// ...or this much text, so a group of large events holds bounded memory.
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// What the writer thread is asked to do.
pub enum Command {
    Write(Write),
    /// Report the write connection's durability settings (for tests).
    Pragmas(oneshot::Sender<StoreResult<WriterPragmas>>),
    /// Finish the queue, checkpoint, and stop.
    Shutdown(oneshot::Sender<StoreResult<()>>),
}

/// The durability settings of the write connection: `journal_mode` and `synchronous`
/// (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA).
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterPragmas {
    pub journal_mode: String,
    pub synchronous: i64,
}

fn read_pragmas(connection: &Connection) -> rusqlite::Result<WriterPragmas> {
    Ok(WriterPragmas {
        journal_mode: connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?,
        synchronous: connection.query_row("PRAGMA synchronous", [], |row| row.get(0))?,
    })
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
    /// Any other change (a deletion, a token): see [`Job`].
    Job(Box<dyn Job>),
}

/// A change that runs in its own savepoint inside the group's transaction, and answers once
/// the transaction's fate is known — the same promise as inserts and patches, without a
/// variant of [`Write`] and [`Pending`] for each kind of change.
pub trait Job: Send {
    /// Runs the change; keeps its result until [`Job::finish`].
    fn run(&mut self, transaction: &mut Transaction<'_>);
    /// Answers: the kept result, or `failure` in place of a success (the commit failed) or of
    /// a job that never ran.
    fn finish(self: Box<Self>, failure: Option<&str>);
}

/// A [`Job`] made of a function of the connection and the channel its answer goes to.
pub struct JobFn<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> JobFn<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    pub fn boxed(work: F, reply: oneshot::Sender<StoreResult<T>>) -> Box<dyn Job> {
        Box::new(Self {
            work: Some(work),
            result: None,
            reply,
        })
    }
}

impl<T, F> Job for JobFn<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    fn run(&mut self, transaction: &mut Transaction<'_>) {
        let Some(work) = self.work.take() else {
            return;
        };
        self.result = Some((|| {
            let savepoint = transaction.savepoint().map_err(sqlite_error)?;
            // On error, dropping the savepoint rolls this change back.
            let value = work(&savepoint).map_err(sqlite_error)?;
            savepoint.commit().map_err(sqlite_error)?;
            Ok(value)
        })());
    }

    fn finish(self: Box<Self>, failure: Option<&str>) {
        let failed = |message: &str| StoreError::Unavailable(format!("commit failed: {message}"));
        let answer = match (self.result, failure) {
            (Some(Ok(_)), Some(message)) => Err(failed(message)),
            (None, Some(message)) => Err(StoreError::Unavailable(message.to_owned())),
            (Some(result), _) => result,
            (None, None) => Err(StoreError::Internal("the change was never run".into())),
        };
        // A requester that went away no longer needs its answer.
        let _ = self.reply.send(answer);
    }
}

impl Write {
    fn weight(&self) -> usize {
        match self {
            Write::Insert { records, .. } => records.len().max(1),
            Write::Patch { .. } | Write::Job(_) => 1,
        }
    }

    /// Roughly how much text the write carries (the fields that can be large).
    fn bytes(&self) -> usize {
        match self {
            Write::Insert { records, .. } => records
                .iter()
                .map(|record| {
                    let event = &record.event;
                    event.title.len()
                        + event.description.as_ref().map_or(0, String::len)
                        + event.diff.as_ref().map_or(0, String::len)
                        + event.tags.iter().map(String::len).sum::<usize>()
                        + event.links.iter().map(|l| l.url.len()).sum::<usize>()
                })
                .sum(),
            Write::Patch { .. } | Write::Job(_) => 0,
        }
    }
}

/// A reply computed inside the transaction, sent only once the transaction's fate is known.
// A few of these live for the length of one transaction: their size does not matter.
#[allow(clippy::large_enum_variant)]
enum Pending {
    Insert(
        oneshot::Sender<StoreResult<Vec<InsertOutcome>>>,
        StoreResult<Vec<InsertOutcome>>,
    ),
    Patch(
        oneshot::Sender<StoreResult<Option<Event>>>,
        StoreResult<Option<Event>>,
    ),
    Job(Box<dyn Job>),
}

impl Pending {
    /// Sends the result, or the commit's failure in place of every success.
    fn send(self, commit_failure: Option<&str>) {
        let failed = |message: &str| StoreError::Unavailable(format!("commit failed: {message}"));
        // A requester that went away (client disconnected) no longer needs its answer.
        match self {
            Pending::Insert(reply, result) => {
                let _ = reply.send(match commit_failure {
                    Some(message) if result.is_ok() => Err(failed(message)),
                    _ => result,
                });
            }
            Pending::Patch(reply, result) => {
                let _ = reply.send(match commit_failure {
                    Some(message) if result.is_ok() => Err(failed(message)),
                    _ => result,
                });
            }
            Pending::Job(job) => job.finish(commit_failure),
        }
    }
}

/// Runs the writer loop until every sender is gone or a shutdown was asked and the queue
/// drained. Meant to run on its own thread.
pub fn run(
    mut connection: Connection,
    mut receiver: mpsc::Receiver<Command>,
    stream: broadcast::Sender<Arc<StoredEvent>>,
    mut checkpointer: Checkpointer,
    index: Arc<fts::Progress>,
) {
    let mut shutdown_replies = Vec::new();
    let mut index = IndexQueue {
        progress: index,
        dropped_through: 0,
    };
    while let Some(first) = receiver.blocking_recv() {
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
                Command::Pragmas(reply) => {
                    let _ = reply.send(read_pragmas(&connection).map_err(sqlite_error));
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
        if !group.is_empty() {
            index.progress.wait_for_tail();
            checkpointer.before_write(&connection);
            commit_group(&mut connection, group, &stream, &mut index);
        }
    }
    // One checkpoint at a time: the last one, below, leaves the log empty.
    checkpointer.stop();
    let result = connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(sqlite_error);
    if let Err(error) = &result {
        tracing::error!(%error, "final checkpoint failed");
    }
    drop(connection);
    for reply in shutdown_replies {
        let _ = reply.send(match &result {
            Ok(()) => Ok(()),
            Err(error) => Err(StoreError::Internal(error.to_string())),
        });
    }
}

fn commit_group(
    connection: &mut Connection,
    group: Vec<Write>,
    stream: &broadcast::Sender<Arc<StoredEvent>>,
    index: &mut IndexQueue,
) {
    let mut transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate)
    {
        Ok(transaction) => transaction,
        Err(error) => {
            let message = error.to_string();
            tracing::error!(%message, "cannot begin a write transaction");
            for write in group {
                fail(write, &message);
            }
            return;
        }
    };
    let mut pending = Vec::with_capacity(group.len());
    let mut stored = Vec::new();
    // The new events not yet indexed: `stored[unindexed..]`.
    let mut unindexed = 0;
    let mut index_failure = None;
    let mut commands = group.into_iter();
    while let Some(command) = commands.next() {
        if !matches!(command, Write::Insert { .. }) && index_failure.is_none() {
            // A patch or a deletion may touch an event stored earlier in this group: its
            // update and delete triggers need it indexed.
            index_failure = index_stored(&transaction, &stored[unindexed..]).err();
            unindexed = stored.len();
        }
        match command {
            Write::Insert {
                records,
                mode,
                reply,
            } => {
                let result =
                    insert_batch(&mut transaction, &records, mode).map(|(outcomes, created)| {
                        stored.extend(created);
                        outcomes
                    });
                pending.push(Pending::Insert(reply, result));
            }
            Write::Patch { id, patch, reply } => {
                let result = patch_event(&mut transaction, id, &patch);
                pending.push(Pending::Patch(reply, result));
            }
            Write::Job(mut job) => {
                job.run(&mut transaction);
                pending.push(Pending::Job(job));
            }
        }
        // After some errors (disk full, I/O, out of memory) SQLite rolls the whole transaction
        // back by itself. Going on would run each later request in its own implicit
        // transaction: everything in this group has failed, and is answered so.
        if transaction.is_autocommit() {
            const ROLLED_BACK: &str = "the database rolled the transaction back";
            tracing::error!("{ROLLED_BACK}; failing the whole group");
            for write in commands {
                fail(write, ROLLED_BACK);
            }
            for reply in pending {
                reply.send(Some(ROLLED_BACK));
            }
            return;
        }
    }
    let created_total = i64::try_from(stored.len()).unwrap_or(i64::MAX);
    let committed = match index_failure {
        // Dropping the transaction rolls the whole group back.
        Some(error) => Err(error),
        None => index_stored(&transaction, &stored[unindexed..])
            .and_then(|()| bump_event_counter(&transaction, created_total))
            .and_then(|()| index.drop_caught_up(&transaction))
            .and_then(|dropped_through| {
                transaction.commit()?;
                index.dropped_through = dropped_through;
                Ok(())
            }),
    }
    .map_err(|error| error.to_string());
    if committed.is_ok() {
        if let Some(last) = stored.last() {
            index
                .progress
                .committed(i64::try_from(last.position.0).unwrap_or(i64::MAX));
        }
        index.progress.wake();
    }
    if let Err(message) = &committed {
        tracing::error!(%message, "group commit failed");
    }
    for reply in pending {
        reply.send(committed.as_ref().err().map(String::as_str));
    }
    if committed.is_ok() {
        for event in stored {
            // No subscriber is not an error.
            let _ = stream.send(Arc::new(event));
        }
    }
}

/// The writer's side of the full-text index (`fts.rs`): it wakes the indexer after each
/// commit, and drops the entries of the change queue the index has caught up with.
struct IndexQueue {
    progress: Arc<fts::Progress>,
    /// Entries of `fts_stale` up to this mark are gone.
    dropped_through: i64,
}

impl IndexQueue {
    /// Drops caught-up entries in the group's transaction; returns the mark now dropped
    /// through (kept once the transaction commits).
    fn drop_caught_up(&self, transaction: &Transaction<'_>) -> rusqlite::Result<i64> {
        let caught_up = self.progress.stale_through();
        if caught_up > self.dropped_through {
            transaction
                .prepare_cached("DELETE FROM fts_stale WHERE mark <= ?1")?
                .execute([caught_up])?;
            // An index file that has not taken these (an older copy) is rebuilt at open.
            transaction
                .prepare_cached(
                    "INSERT INTO counters (name, value) VALUES ('fts_stale_dropped', ?1) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute([caught_up])?;
        }
        Ok(caught_up.max(self.dropped_through))
    }
}

/// Counts events stored in this group in the rollups (in memory, then one upsert per key:
/// `rows::index_new_events`), at the level of the group's transaction: once per group rather
/// than in each request's savepoint.
/// Called before anything that may patch or delete them, and before the commit. (The
/// full-text index takes them after the commit: `fts.rs`.)
fn index_stored(transaction: &Transaction<'_>, events: &[StoredEvent]) -> rusqlite::Result<()> {
    let seq = |event: &StoredEvent| i64::try_from(event.position.0).unwrap_or(i64::MAX);
    match (events.first(), events.last()) {
        // Row numbers only grow, and nothing else inserts events: every row between the first
        // and the last was stored by this group and is not yet indexed.
        (Some(first), Some(last)) => rows::index_new_events(transaction, seq(first), seq(last)),
        _ => Ok(()),
    }
}

fn has_conflict(outcomes: &[InsertOutcome]) -> bool {
    outcomes
        .iter()
        .any(|outcome| matches!(outcome, InsertOutcome::Conflict { .. }))
}

fn bump_event_counter(transaction: &Transaction<'_>, delta: i64) -> rusqlite::Result<()> {
    if delta != 0 {
        transaction
            .prepare_cached("UPDATE counters SET value = value + ?1 WHERE name = 'events'")?
            .execute([delta])?;
    }
    Ok(())
}

fn fail(write: Write, message: &str) {
    let error = || StoreError::Unavailable(message.to_owned());
    match write {
        Write::Insert { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Write::Patch { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Write::Job(job) => job.finish(Some(message)),
    }
}

/// Inserts one request's records inside a savepoint. In all-or-nothing mode a conflict rolls
/// the whole request back; the outcomes then say which items conflicted. Also returns the
/// events actually stored, with their stream positions.
fn insert_batch(
    transaction: &mut Transaction<'_>,
    records: &[InsertRecord],
    mode: BatchMode,
) -> StoreResult<(Vec<InsertOutcome>, Vec<StoredEvent>)> {
    let mut savepoint = transaction.savepoint().map_err(sqlite_error)?;
    let mut outcomes = Vec::with_capacity(records.len());
    let mut stored = Vec::new();
    for record in records {
        // On error, dropping the savepoint rolls this request back.
        let (outcome, seq) = insert_one(&savepoint, record).map_err(sqlite_error)?;
        if let Some(seq) = seq {
            stored.push(StoredEvent {
                position: StreamPosition(u64::try_from(seq).unwrap_or(0)),
                // Published as lists and `stored_since` read it: without the diff.
                event: record.event.without_diff(),
            });
        }
        outcomes.push(outcome);
    }
    if mode == BatchMode::AllOrNothing && has_conflict(&outcomes) {
        savepoint.rollback().map_err(sqlite_error)?;
        return Ok((outcomes, Vec::new()));
    }
    savepoint.commit().map_err(sqlite_error)?;
    Ok((outcomes, stored))
}

/// Inserts one record unless its idempotency key says it is a repeat; returns the row number
/// of a new event.
fn insert_one(
    connection: &Connection,
    record: &InsertRecord,
) -> rusqlite::Result<(InsertOutcome, Option<i64>)> {
    if let Some(key) = &record.event.idempotency_key {
        let existing: Option<(i64, String)> = connection
            .prepare_cached("SELECT seq, content_digest FROM events WHERE idempotency_key = ?1")?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((seq, digest)) = existing {
            if digest == record.content_digest {
                // The same submission again: no need to read (and compare) the diff.
                let original = load_event(connection, seq, false)?;
                return Ok((InsertOutcome::Duplicate(original), None));
            }
            let original = load_event(connection, seq, true)?;
            return Ok((repeat_or_conflict(record, original, key), None));
        }
        if let Some(exported) = record.imported_from() {
            let seq: Option<i64> = connection
                .prepare_cached("SELECT seq FROM events WHERE id = ?1 AND idempotency_key IS NULL")?
                .query_row([exported.to_string()], |row| row.get(0))
                .optional()?;
            if let Some(seq) = seq {
                let original = load_event(connection, seq, true)?;
                return Ok((repeat_or_conflict(record, original, key), None));
            }
        }
    }
    let seq = rows::insert_event(connection, record)?;
    Ok((
        InsertOutcome::Created(record.event.without_diff()),
        Some(seq),
    ))
}

/// Compares a record with the stored event (read with its diff) holding its key. Outcomes
/// carry events without diffs: they can weigh a megabyte each and nobody needs them back.
fn repeat_or_conflict(record: &InsertRecord, original: Event, key: &str) -> InsertOutcome {
    if record.repeats("", &original) {
        InsertOutcome::Duplicate(original.without_diff())
    } else {
        InsertOutcome::Conflict {
            idempotency_key: key.to_owned(),
            existing: original.id,
        }
    }
}

/// Reads one event by row number, with or without its diff.
fn load_event(connection: &Connection, seq: i64, include_diff: bool) -> rusqlite::Result<Event> {
    let sql = format!(
        "SELECT {} {} WHERE e.seq = ?1",
        rows::select_list(include_diff),
        rows::from_clause(include_diff)
    );
    connection
        .prepare_cached(&sql)?
        .query_row([seq], |row| rows::event_from_row(row, include_diff))
}

fn patch_event(
    transaction: &mut Transaction<'_>,
    id: EventId,
    patch: &EventPatch,
) -> StoreResult<Option<Event>> {
    let savepoint = transaction.savepoint().map_err(sqlite_error)?;
    let seq: Option<i64> = savepoint
        .prepare_cached("SELECT seq FROM events WHERE id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([id.to_string()], |row| row.get(0))
                .optional()
        })
        .map_err(sqlite_error)?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let mut event = load_event(&savepoint, seq, true).map_err(sqlite_error)?;
    patch.apply(&mut event)?;
    rows::update_mutable(&savepoint, seq, &event).map_err(sqlite_error)?;
    savepoint.commit().map_err(sqlite_error)?;
    Ok(Some(event))
}
