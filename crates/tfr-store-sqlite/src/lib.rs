//! The embedded store: one SQLite file in the data directory, in WAL mode, with keyset indexes
//! for the feed, and an FTS5 full-text index in a second file, built behind the writer (see
//! [`fts`]).
//!
//! Writes go through one writer thread that commits concurrent requests together (see
//! [`writer`]); reads run on a small pool of read-only connections on tokio's blocking threads,
//! so they never wait for a write.

mod admin;
mod buckets;
mod checkpoint;
mod fts;
mod records;
mod rows;
mod schema;
mod sql;
mod text_walk;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tfr_core::stats::{GroupField, QUARTER_MICROS};
use tfr_core::{Event, EventId, EventPatch};
use tfr_store::{
    AroundRequest, AuditEntry, BatchMode, Cursor, Deletion, EventFilter, InsertOutcome,
    InsertRecord, NewToken, Order, Page, PageRequest, QuarterCount, STREAM_BUFFER, Store,
    StoreError, StoreResult, StoredEvent, StreamPosition, TimelineEntry, TokenInfo, ValueCount,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::checkpoint::Checkpointer;
#[doc(hidden)]
pub use crate::writer::WriterPragmas;
use crate::writer::{Command, JobFn, Write};

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "tfr.db";

/// Read connections kept open between requests.
const IDLE_READERS: usize = 8;

/// Reads running at once; more wait. Each holds a connection and a blocking thread.
const MAX_READERS: usize = 16;

/// Prepared statements kept per connection. rusqlite keeps 16; the writer alone uses about
/// that many on every group (inserts, lookups, the full-text index, three rollup levels...),
/// and a statement pushed out is parsed and planned again on its next use.
const STATEMENT_CACHE: usize = 64;

/// Requests waiting for the writer before callers are made to wait.
const WRITE_QUEUE: usize = 1024;

/// Errors opening the store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot migrate the database {path}: {source}")]
    Migration {
        path: PathBuf,
        source: schema::MigrationError,
    },
    #[error("cannot start the writer thread: {0}")]
    Writer(std::io::Error),
    #[error("cannot start checkpointing: {0}")]
    Checkpointer(checkpoint::StartError),
    #[error(transparent)]
    FullText(fts::StartError),
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: mpsc::Sender<Command>,
    readers: Arc<Readers>,
    closed: AtomicBool,
    stream: broadcast::Sender<Arc<StoredEvent>>,
    read_slots: tokio::sync::Semaphore,
    /// Builds the full-text index behind the writer; stopped at shutdown or drop.
    indexer: Mutex<Option<fts::Indexer>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and applies pending migrations.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let database_error = |source| OpenError::Database {
            path: path.clone(),
            source,
        };
        let mut connection = Connection::open(&path).map_err(database_error)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 5000;
                 PRAGMA cache_size = -32000;",
            )
            .map_err(database_error)?;
        schema::migrate(&mut connection).map_err(|source| OpenError::Migration {
            path: path.clone(),
            source,
        })?;
        let index_path = data_dir.join(fts::FTS_FILE);
        let indexer = fts::start(&path, &index_path).map_err(OpenError::FullText)?;
        let checkpointer =
            Checkpointer::start(&path, &mut connection).map_err(OpenError::Checkpointer)?;
        let readers = Arc::new(Readers {
            path: path.clone(),
            index_path,
            idle: Mutex::new(Vec::new()),
        });
        // Open one reader now, so a file that can't be read fails at start, not at first use.
        let first = readers.open().map_err(database_error)?;
        readers.give_back(first);

        let (sender, receiver) = mpsc::channel(WRITE_QUEUE);
        let (stream, _) = broadcast::channel(STREAM_BUFFER);
        std::thread::Builder::new()
            .name("tfr-sqlite-writer".into())
            .spawn({
                let stream = stream.clone();
                let index = Arc::clone(indexer.progress());
                move || writer::run(connection, receiver, stream, checkpointer, index)
            })
            .map_err(OpenError::Writer)?;
        Ok(Self {
            writer: sender,
            readers,
            closed: AtomicBool::new(false),
            stream,
            read_slots: tokio::sync::Semaphore::new(MAX_READERS),
            indexer: Mutex::new(Some(indexer)),
        })
    }

    /// The write connection's `journal_mode` and `synchronous` setting, so tests can check the
    /// durability promise on the connection that commits. Not part of the store's API.
    #[doc(hidden)]
    pub async fn writer_pragmas(&self) -> StoreResult<WriterPragmas> {
        self.check_open()?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Command::Pragmas(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    /// The indexer, taken out to be stopped (once: later calls find none).
    fn take_indexer(&self) -> Option<fts::Indexer> {
        self.indexer
            .lock()
            .ok()
            .and_then(|mut indexer| indexer.take())
    }

    /// Stops the full-text indexer until the store is opened again, so tests can exercise
    /// searches of events the index does not hold. Not part of the store's API.
    #[doc(hidden)]
    pub fn stop_full_text_indexer(&self) {
        let indexer = self.take_indexer();
        if let Some(mut indexer) = indexer {
            indexer.stop();
        }
    }

    /// Waits (up to `timeout`) until the full-text index holds every committed event and
    /// change, so tests can exercise searches served by the index rather than by the tail.
    /// Returns whether it did. Not part of the store's API.
    #[doc(hidden)]
    pub async fn wait_for_full_text(&self, timeout: std::time::Duration) -> StoreResult<bool> {
        let progress = match self.indexer.lock() {
            Ok(indexer) => indexer
                .as_ref()
                .map(|indexer| Arc::clone(indexer.progress())),
            Err(_) => None,
        };
        let Some(progress) = progress else {
            return Ok(false);
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (last_seq, last_mark) = self
                .read(|connection| {
                    connection.query_row(
                        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events), \
                                (SELECT COALESCE(MAX(mark), 0) FROM fts_stale)",
                        [],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                    )
                })
                .await?;
            if progress.indexed_through() >= last_seq && progress.stale_through() >= last_mark {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn check_open(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Unavailable("the store is shut down".into()))
        } else {
            Ok(())
        }
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Write,
    ) -> StoreResult<T> {
        self.check_open()?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Command::Write(make(reply)))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    /// Runs `work` on the writer thread, in its own savepoint of the next group's transaction;
    /// answers once that transaction is committed.
    async fn write_job<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.write(|reply| Write::Job(JobFn::boxed(work, reply)))
            .await
    }

    /// Runs `work` on a read connection on a blocking thread. At most [`MAX_READERS`] reads
    /// run at once (the rest wait their turn), and a read whose caller gave up (a request
    /// timed out, a client went away) is interrupted rather than left running.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.check_open()?;
        let _permit = self
            .read_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store is shut down".into()))?;
        let connection = self.readers.take().map_err(sqlite_error)?;
        let interrupt = InterruptOnDrop {
            handle: connection.get_interrupt_handle(),
            armed: true,
        };
        let readers = Arc::clone(&self.readers);
        let result = tokio::task::spawn_blocking(move || {
            let result = work(&connection).map_err(sqlite_error);
            readers.give_back(connection);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")));
        interrupt.disarm();
        result?
    }
}

/// Maps a SQLite failure onto the store's error kinds: a full disk or an I/O error is the
/// store being unavailable (503, try later); anything else is internal.
pub(crate) fn sqlite_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match error.sqlite_error_code() {
        Some(DiskFull | SystemIoFailure | CannotOpen | DatabaseBusy | DatabaseLocked) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Internal(error.to_string()),
    }
}

/// Counts matching events per quarter by reading them (through the filter's indexes).
fn scan_quarter_counts(
    connection: &Connection,
    filter: &EventFilter,
    group: Option<GroupField>,
) -> rusqlite::Result<Vec<QuarterCount>> {
    let condition = sql::compile(filter);
    let group_column = group.map_or("NULL", group_column);
    // Floor division, so that instants before 1970 fall in the right quarter.
    let text = format!(
        "SELECT CASE WHEN e.occurred_at >= 0 THEN e.occurred_at / {QUARTER_MICROS} \
         ELSE (e.occurred_at + 1) / {QUARTER_MICROS} - 1 END AS quarter, {group_column}, count(*) \
         FROM events e WHERE {} GROUP BY 1, 2",
        condition.where_sql()
    );
    let mut statement = connection.prepare_cached(&text)?;
    statement
        .query_map(rusqlite::params_from_iter(condition.params), |row| {
            Ok(QuarterCount {
                quarter: row.get(0)?,
                group: row.get(1)?,
                count: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            })
        })?
        .collect()
}

/// Counts per quarter for a filter with no query terms (only a time range): whole quarters
/// come from the rollups kept by the triggers of migration 0002, and the partial quarters at
/// the ends of the range are counted from the events, so the result is exact.
fn rollup_quarter_counts(
    connection: &Connection,
    filter: &EventFilter,
    group: Option<GroupField>,
) -> rusqlite::Result<Vec<QuarterCount>> {
    let from = filter.from.map(|t| t.as_microsecond());
    let to = filter.to.map(|t| t.as_microsecond());
    // Whole quarters: [first, end).
    let first = from.map_or(i64::MIN, |from| {
        from.div_euclid(QUARTER_MICROS) + i64::from(from.rem_euclid(QUARTER_MICROS) != 0)
    });
    let end = to.map_or(i64::MAX, |to| to.div_euclid(QUARTER_MICROS));
    if first >= end {
        return scan_quarter_counts(connection, filter, group);
    }
    let dimension = group.map_or("", GroupField::name);
    let mut counts: Vec<QuarterCount> = connection
        .prepare_cached(
            "SELECT quarter, value, count FROM rollups \
             WHERE dimension = ?1 AND quarter >= ?2 AND quarter < ?3 AND count > 0",
        )?
        .query_map((dimension, first, end), |row| {
            let value: String = row.get(1)?;
            Ok(QuarterCount {
                quarter: row.get(0)?,
                group: (group.is_some() && !value.is_empty()).then_some(value),
                count: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let instant = |quarter: i64| {
        jiff::Timestamp::from_microsecond(quarter.saturating_mul(QUARTER_MICROS)).ok()
    };
    if let Some(from) = filter.from
        && let Some(first_start) = instant(first)
        && from < first_start
    {
        let edge = EventFilter {
            to: Some(first_start),
            ..filter.clone()
        };
        counts.extend(scan_quarter_counts(connection, &edge, group)?);
    }
    if let Some(to) = filter.to
        && let Some(end_start) = instant(end)
        && end_start < to
    {
        let edge = EventFilter {
            from: Some(end_start),
            ..filter.clone()
        };
        counts.extend(scan_quarter_counts(connection, &edge, group)?);
    }
    Ok(counts)
}

/// The column a field is grouped by, over `events e`.
fn group_column(field: GroupField) -> &'static str {
    match field {
        GroupField::Kind => "e.kind",
        GroupField::System => "e.system",
        GroupField::Author => "e.author",
        GroupField::Team => "e.team",
        GroupField::Environment => "e.environment",
        GroupField::Source => "e.source",
    }
}

/// A limit as SQL text: SQLite reads an integer literal beyond `i64` as a real number, which
/// `LIMIT` refuses ("datatype mismatch"), so the largest limits are clamped to `i64::MAX`.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Interrupts a read's statement if its future is dropped before the read finished.
struct InterruptOnDrop {
    handle: rusqlite::InterruptHandle,
    armed: bool,
}

impl InterruptOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.handle.interrupt();
        }
    }
}

/// A pool of read-only connections.
struct Readers {
    path: PathBuf,
    /// The full-text index, attached to each reader (`fts.rs`).
    index_path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16000;")?;
        fts::attach(&connection, &self.index_path)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        match idle {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(connection);
        }
    }
}

/// Full-text matches from which a page walks an index in its order and probes the matches,
/// rather than reading and sorting every match (`docs/benchmarks.md`, full text).
const COMMON_TEXT_MATCHES: i64 = 5000;

/// How a page uses its positive full-text terms: rare words drive the query (few row
/// lookups, then a small sort); words with at least [`COMMON_TEXT_MATCHES`] matches are only
/// probed while an index is walked in the page's order, which stops at the page's limit.
fn page_text_plan(
    connection: &Connection,
    filter: &EventFilter,
) -> rusqlite::Result<sql::TextPlan> {
    let Some(text) = sql::positive_text(filter) else {
        return Ok(sql::TextPlan::Lookup);
    };
    // The index alone: the plan only needs to know whether the words are common.
    let matches: i64 = connection
        .prepare_cached(
            "SELECT count(*) FROM \
             (SELECT rowid FROM fts.events_fts WHERE events_fts MATCH ?1 LIMIT ?2)",
        )?
        .query_row((text.expression, COMMON_TEXT_MATCHES), |row| row.get(0))?;
    Ok(if matches >= COMMON_TEXT_MATCHES {
        sql::TextPlan::Probe
    } else {
        sql::TextPlan::Lookup
    })
}

/// Reads one page in either order, resuming strictly after the cursor.
fn select_page(
    connection: &Connection,
    filter: &EventFilter,
    page: PageRequest,
    extra: Option<(&str, Vec<Value>)>,
) -> rusqlite::Result<Vec<Event>> {
    if page.order == Order::NewestFirst
        && let Some(text) = sql::positive_text(filter)
        && let Some(events) =
            text_walk::newest_first(connection, filter, &page, extra.clone(), text)?
    {
        return Ok(events);
    }
    let mut condition = sql::compile_with(filter, page_text_plan(connection, filter)?);
    if let Some((fragment, params)) = extra {
        condition.and(fragment, params);
    }
    let (comparison, direction) = match page.order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    if let Some(cursor) = page.cursor {
        condition.and(
            &format!("(e.occurred_at, e.id) {comparison} (?, ?)"),
            [
                Value::Integer(cursor.occurred_at.as_microsecond()),
                Value::Text(cursor.id.to_string()),
            ],
        );
    }
    // The limit is a parameter, so every page size shares one cached statement.
    let text = format!(
        "SELECT {} {} WHERE {} ORDER BY e.occurred_at {direction}, e.id {direction} LIMIT ?",
        rows::select_list(page.include_diffs),
        rows::from_clause(page.include_diffs),
        condition.where_sql(),
    );
    let mut params = condition.params;
    params.push(Value::Integer(sql_limit(page.limit)));
    let mut statement = connection.prepare_cached(&text)?;
    statement
        .query_map(rusqlite::params_from_iter(params), |row| {
            rows::event_from_row(row, page.include_diffs)
        })?
        .collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(
        &self,
        records: Vec<InsertRecord>,
        mode: BatchMode,
    ) -> StoreResult<Vec<InsertOutcome>> {
        self.check_open()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|reply| Write::Insert {
            records,
            mode,
            reply,
        })
        .await
    }

    async fn get(&self, id: EventId) -> StoreResult<Option<Event>> {
        self.read(move |connection| {
            let text = format!(
                "SELECT {} {} WHERE e.id = ?1",
                rows::select_list(true),
                rows::from_clause(true)
            );
            connection
                .prepare_cached(&text)?
                .query_row([id.to_string()], |row| rows::event_from_row(row, true))
                .optional()
        })
        .await
    }

    async fn list(&self, filter: &EventFilter, page: PageRequest) -> StoreResult<Page> {
        let filter = filter.clone();
        let wanted = page.limit;
        // One more than asked tells whether there is a next page.
        let probe = PageRequest {
            limit: wanted.saturating_add(1),
            ..page
        };
        let mut events = self
            .read(move |connection| select_page(connection, &filter, probe, None))
            .await?;
        let next_cursor = if events.len() > wanted {
            events.truncate(wanted);
            events.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page {
            events,
            next_cursor,
        })
    }

    async fn around(
        &self,
        filter: &EventFilter,
        around: &AroundRequest,
    ) -> StoreResult<Vec<Event>> {
        let filter = filter.clone();
        let around = around.clone();
        self.read(move |connection| {
            let time = around.time.as_microsecond();
            let micros = |d: jiff::SignedDuration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
            let start = time.saturating_sub(micros(around.before));
            let end = time.saturating_add(micros(around.after));
            let side = |order, fragment: &str, params: Vec<Value>| {
                let page = PageRequest {
                    limit: around.limit,
                    cursor: None,
                    order,
                    include_diffs: false,
                };
                select_page(connection, &filter, page, Some((fragment, params)))
            };
            let before = side(
                Order::NewestFirst,
                "e.occurred_at >= ? AND e.occurred_at <= ?",
                vec![Value::Integer(start), Value::Integer(time)],
            )?;
            let after = side(
                Order::OldestFirst,
                "e.occurred_at > ? AND e.occurred_at <= ?",
                vec![Value::Integer(time), Value::Integer(end)],
            )?;
            let mut events: Vec<Event> = before.into_iter().chain(after).collect();
            events.sort_by_key(|event| {
                let offset = event.occurred_at.as_microsecond() - time;
                (offset.unsigned_abs(), offset, event.id)
            });
            events.truncate(around.limit);
            Ok(events)
        })
        .await
    }

    async fn patch(&self, id: EventId, patch: EventPatch) -> StoreResult<Option<Event>> {
        self.write(|reply| Write::Patch { id, patch, reply }).await
    }

    async fn count(&self) -> StoreResult<u64> {
        self.read(|connection| {
            connection
                .prepare_cached("SELECT value FROM counters WHERE name = 'events'")?
                .query_row([], |row| row.get::<_, i64>(0))
        })
        .await
        .map(|count| u64::try_from(count).unwrap_or(0))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
            .await?;
        if self.writer.is_closed() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        Ok(())
    }

    fn full_text_lag(&self) -> Option<u64> {
        let indexer = self.indexer.lock().ok()?;
        indexer.as_ref().map(|indexer| indexer.progress().lag())
    }

    async fn shutdown(&self) -> StoreResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        if self.writer.send(Command::Shutdown(reply)).await.is_err() {
            return Ok(());
        }
        let result = answer
            .await
            .map_err(|_| StoreError::Internal("the writer stopped during shutdown".into()))?;
        let indexer = self.take_indexer();
        if let Some(mut indexer) = indexer {
            // Joins the thread, which may be in the middle of a batch.
            tokio::task::spawn_blocking(move || indexer.stop())
                .await
                .map_err(|e| StoreError::Internal(format!("stopping the indexer failed: {e}")))?;
        }
        result
    }

    async fn quarter_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
    ) -> StoreResult<Vec<QuarterCount>> {
        let filter = filter.clone();
        self.read(move |connection| {
            if filter.query.is_empty() {
                rollup_quarter_counts(connection, &filter, group)
            } else {
                scan_quarter_counts(connection, &filter, group)
            }
        })
        .await
    }

    /// Without query terms, from the daily, hourly and quarter-hour rollups
    /// ([`buckets::rollup_bucket_counts`]); with them, the definition over scanned quarters.
    async fn bucket_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
        starts: &[jiff::Timestamp],
    ) -> StoreResult<Vec<tfr_store::BucketCount>> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let filter = filter.clone();
        let starts = starts.to_vec();
        self.read(move |connection| {
            if filter.query.is_empty() {
                buckets::rollup_bucket_counts(connection, &filter, group, &starts)
            } else {
                Ok(tfr_store::bucket_counts_from_quarters(
                    scan_quarter_counts(connection, &filter, group)?,
                    &starts,
                ))
            }
        })
        .await
    }

    async fn top_values(
        &self,
        filter: &EventFilter,
        field: GroupField,
        limit: usize,
    ) -> StoreResult<Vec<ValueCount>> {
        let mut condition = sql::compile(filter);
        let column = group_column(field);
        let limit = sql_limit(limit);
        condition.and(&format!("{column} IS NOT NULL"), []);
        let text = format!(
            "SELECT {column}, count(*) AS n FROM events e WHERE {} \
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT {limit}",
            condition.where_sql()
        );
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(&text)?;
            statement
                .query_map(rusqlite::params_from_iter(condition.params), |row| {
                    Ok(ValueCount {
                        value: row.get(0)?,
                        count: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    })
                })?
                .collect()
        })
        .await
    }

    async fn timeline(
        &self,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let limit = sql_limit(limit);
        let condition = sql::compile(filter);
        let text = format!(
            "SELECT e.occurred_at, e.id FROM events e WHERE {} \
             ORDER BY e.occurred_at, e.id LIMIT {limit}",
            condition.where_sql()
        );
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(&text)?;
            statement
                .query_map(rusqlite::params_from_iter(condition.params), |row| {
                    let micros: i64 = row.get(0)?;
                    let id: String = row.get(1)?;
                    let conversion = |index, message: String| {
                        rusqlite::Error::FromSqlConversionFailure(
                            index,
                            rusqlite::types::Type::Text,
                            message.into(),
                        )
                    };
                    Ok(TimelineEntry {
                        occurred_at: jiff::Timestamp::from_microsecond(micros)
                            .map_err(|e| conversion(0, e.to_string()))?,
                        id: id.parse().map_err(|e| conversion(1, e))?,
                    })
                })?
                .collect()
        })
        .await
    }

    async fn get_many(&self, ids: &[EventId]) -> StoreResult<Vec<Event>> {
        let ids: Vec<String> = ids.iter().map(EventId::to_string).collect();
        self.read(move |connection| {
            let mut events = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let text = format!(
                    "SELECT {} {} WHERE e.id IN ({})",
                    rows::select_list(false),
                    rows::from_clause(false),
                    vec!["?"; chunk.len()].join(", ")
                );
                let mut statement = connection.prepare(&text)?;
                let found = statement
                    .query_map(rusqlite::params_from_iter(chunk), |row| {
                        rows::event_from_row(row, false)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                events.extend(found);
            }
            Ok(events)
        })
        .await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.stream.subscribe()
    }

    async fn stored_since(
        &self,
        after: StreamPosition,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let after = i64::try_from(after.0).unwrap_or(i64::MAX);
        let limit = sql_limit(limit);
        let text = format!(
            "SELECT {}, e.seq {} WHERE e.seq > ?1 ORDER BY e.seq LIMIT {limit}",
            rows::select_list(false),
            rows::from_clause(false)
        );
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(&text)?;
            statement
                .query_map([after], |row| {
                    Ok(StoredEvent {
                        event: rows::event_from_row(row, false)?,
                        position: StreamPosition(
                            u64::try_from(row.get::<_, i64>(rows::COLUMN_COUNT)?).unwrap_or(0),
                        ),
                    })
                })?
                .collect()
        })
        .await
    }

    async fn stream_head(&self) -> StoreResult<StreamPosition> {
        self.read(|connection| {
            connection
                // The largest position ever handed out (AUTOINCREMENT's record), so the head
                // does not move back when the newest event is deleted.
                .prepare_cached(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                )?
                .query_row([], |row| row.get::<_, i64>(0))
        })
        .await
        .map(|seq| StreamPosition(u64::try_from(seq).unwrap_or(0)))
    }

    async fn delete_event(&self, deletion: Deletion) -> StoreResult<Option<AuditEntry>> {
        self.write_job(move |connection| admin::delete_event(connection, &deletion))
            .await
    }

    async fn audit_log(&self, before: Option<u64>, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let limit = sql_limit(limit);
        self.read(move |connection| admin::audit_log(connection, before, limit))
            .await
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<Option<TokenInfo>> {
        self.write_job(move |connection| admin::create_token(connection, &token))
            .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.read(admin::list_tokens).await
    }

    async fn revoke_token(
        &self,
        name: &str,
        at: jiff::Timestamp,
    ) -> StoreResult<Option<TokenInfo>> {
        let name = name.to_owned();
        self.write_job(move |connection| admin::revoke_token(connection, &name, at))
            .await
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenInfo>> {
        let hash = hash.to_owned();
        self.read(move |connection| admin::token_by_hash(connection, &hash))
            .await
    }

    async fn touch_token(&self, name: &str, at: jiff::Timestamp) -> StoreResult<()> {
        let name = name.to_owned();
        self.write_job(move |connection| admin::touch_token(connection, &name, at))
            .await
    }
}
