//! The shared store: PostgreSQL, so that any number of stateless `tfr serve` nodes behind a
//! load balancer share one database (design §8). It behaves exactly as the SQLite store does —
//! both pass the same conformance suite — and adds what several nodes need:
//!
//! - writes from all nodes are numbered in commit order, and every node's live stream delivers
//!   every event stored by any node ([`writer`], [`stream`]);
//! - idempotency holds across nodes (one write lock, plus a unique index);
//! - migrations are applied at start under a lock, so nodes starting together don't race
//!   ([`schema`]).
//!
//! Reads run on a connection pool; writes go through one task per node that commits whatever is
//! waiting together (group commit). A write is acknowledged only after `COMMIT` returned.

mod admin;
mod fts;
#[cfg(unix)]
mod relay;
mod rows;
mod schema;
mod sql;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod writer;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx_core::connection::Connection;
use sqlx_core::query::{query, query_with};
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use tfr_core::stats::{GroupField, QUARTER_MICROS};
use tfr_core::{Event, EventId, EventPatch};
use tfr_store::buckets::{Plan, Sums, merged, piece_at};
use tfr_store::{
    AroundRequest, AuditEntry, BatchMode, BucketCount, Cursor, Deletion, EventFilter,
    InsertOutcome, InsertRecord, MAX_BATCH, NewToken, Order, Page, PageRequest, QuarterCount,
    STREAM_BUFFER, Store, StoreError, StoreResult, StoredEvent, StreamPosition, TimelineEntry,
    TokenInfo, ValueCount, bucket_counts_from_quarters,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::rows::PgTime;
pub use crate::schema::MigrationError;
use crate::sql::{Condition, Param};
use crate::stream::{LocalFeed, StreamTasks};
use crate::writer::{Command, Write};

/// Connections per node when none is configured: enough for a node on a small machine to
/// overlap its reads with the writer's transaction, without exhausting a server's
/// `max_connections` once there are several nodes.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// How long a request waits for a connection (and so for an unreachable server) before it is
/// answered as unavailable.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a readiness check waits for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Write requests waiting for the writer before callers are made to wait.
const WRITE_QUEUE: usize = 1024;

/// The notification channel of new events.
const STREAM_CHANNEL: &str = "tfr_events";

/// How to connect.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// The most connections this node opens for reads and writes (one more listens for the
    /// stream).
    pub pool_size: u32,
    /// How long a request waits for a connection before it fails as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: DEFAULT_POOL_SIZE,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

/// Errors opening the store. Messages never include the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("the pool size must be at least 1")]
    PoolSize,
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(sqlx_core::Error),
    #[error("cannot migrate the database: {0}")]
    Migration(#[from] MigrationError),
    #[error("cannot read the stream head: {0}")]
    Head(sqlx_core::Error),
}

/// What [`PostgresStore::import`] did with a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Events stored now.
    pub stored: u64,
    /// Events left out because their id or idempotency key was already stored.
    pub skipped: u64,
}

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    listen_pool: PgPool,
    writer: mpsc::Sender<Command>,
    closed: AtomicBool,
    stream: broadcast::Sender<Arc<StoredEvent>>,
    stream_tasks: Mutex<Option<StreamTasks>>,
    /// Kept for as long as the pools may connect through it.
    _relay: Option<Relay>,
}

#[cfg(unix)]
type Relay = relay::Relay;
#[cfg(not(unix))]
type Relay = ();

/// The options the pools connect with: through a [`relay::Relay`] that sets `TCP_NODELAY`
/// when the server is reached over TCP (and the relay can start), else `connect` itself.
#[cfg(unix)]
fn relayed(connect: PgConnectOptions, patience: Duration) -> (Option<Relay>, PgConnectOptions) {
    match relay::Relay::start(&connect, patience) {
        Ok(Some((relay, relayed))) => (Some(relay), relayed),
        Ok(None) => (None, connect),
        Err(error) => {
            tracing::warn!(%error, "cannot start the TCP_NODELAY relay; connecting directly");
            (None, connect)
        }
    }
}

#[cfg(not(unix))]
fn relayed(connect: PgConnectOptions, _patience: Duration) -> (Option<Relay>, PgConnectOptions) {
    (None, connect)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, with
    /// `sslmode` and the other libpq parameters), applies pending migrations, and starts the
    /// writer and the stream.
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self, OpenError> {
        if options.pool_size == 0 {
            return Err(OpenError::PoolSize);
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|error| OpenError::Url(describe_url_error(&error)))?
            .application_name("tfr");
        // One connection first, so that a server that cannot be reached or refuses us is
        // reported with its reason (the pool would only say it timed out).
        match tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        {
            Ok(Ok(connection)) => drop(connection.close().await),
            Ok(Err(error)) => return Err(OpenError::Connect(error)),
            Err(_) => {
                return Err(OpenError::Connect(sqlx_core::Error::PoolTimedOut));
            }
        }
        let (relay, connect) = relayed(connect, options.acquire_timeout);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(OpenError::Connect)?;
        schema::migrate(&pool).await?;
        let head = read_stream_head(&pool).await.map_err(OpenError::Head)?;
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);

        let (stream, _) = broadcast::channel(STREAM_BUFFER);
        let feed = LocalFeed::new(stream.clone());
        let stream_tasks =
            StreamTasks::start(listen_pool.clone(), pool.clone(), head, Arc::clone(&feed));
        let (sender, receiver) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(writer::run(pool.clone(), receiver, feed, head));
        Ok(Self {
            pool,
            listen_pool,
            writer: sender,
            closed: AtomicBool::new(false),
            stream,
            stream_tasks: Mutex::new(Some(stream_tasks)),
            _relay: relay,
        })
    }

    /// Stores events exactly as they are — ids, times, submitter, idempotency key and content
    /// digest kept — to move a history from another store (`tfr migrate-store`). An event whose
    /// id or idempotency key is already stored is skipped, so running the same import again
    /// stores nothing twice. At most [`MAX_BATCH`] records per call, stored in one transaction,
    /// in order, and streamed like any other write.
    pub async fn import(&self, records: Vec<InsertRecord>) -> StoreResult<ImportReport> {
        self.check_open()?;
        if records.len() > MAX_BATCH {
            return Err(StoreError::Internal(format!(
                "an import batch holds at most {MAX_BATCH} events"
            )));
        }
        if records.is_empty() {
            return Ok(ImportReport::default());
        }
        self.write(|reply| Write::Import { records, reply }).await
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

    /// Runs a select built from `condition` and maps each row.
    async fn fetch<T>(
        &self,
        text: String,
        condition: &Condition,
        map: impl Fn(&PgRow) -> Result<T, sqlx_core::Error>,
    ) -> StoreResult<Vec<T>> {
        self.check_open()?;
        let arguments = condition.arguments().map_err(pg_error)?;
        let found = query_with(AssertSqlSafe(text), arguments)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_error)?;
        found
            .iter()
            .map(map)
            .collect::<Result<_, _>>()
            .map_err(pg_error)
    }

    /// Reads one page in either order, resuming strictly after the cursor.
    async fn select_page(
        &self,
        mut condition: Condition,
        page: PageRequest,
    ) -> StoreResult<Vec<Event>> {
        let (comparison, direction) = match page.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(cursor) = page.cursor {
            let at = condition.param(Param::Time(PgTime::of(cursor.occurred_at)));
            let id = condition.param(Param::Uuid(cursor.id.as_uuid()));
            condition.and(format!("(e.occurred_at, e.id) {comparison} ({at}, {id})"));
        }
        let limit = condition.param(Param::Int(limit_of(page.limit)));
        let text = format!(
            "SELECT {} {} WHERE {} ORDER BY e.occurred_at {direction}, e.id {direction} LIMIT {limit}",
            rows::select_list(page.include_diffs),
            rows::from_clause(page.include_diffs),
            condition.where_sql(),
        );
        self.fetch(text, &condition, rows::event_from_row).await
    }

    /// Counts matching events per quarter by reading them (through the filter's indexes).
    async fn scan_quarter_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
    ) -> StoreResult<Vec<QuarterCount>> {
        let condition = sql::compile(filter);
        let group_column = group.map_or("NULL::text", group_column);
        // Exact microseconds and floor division (migration 5), as the rollups count them, so
        // that instants before 1970 fall in the right quarter.
        let text = format!(
            "SELECT tfr_floor_div(tfr_micros(e.occurred_at), {QUARTER_MICROS}), \
             {group_column}, count(*) FROM events e WHERE {} GROUP BY 1, 2",
            condition.where_sql()
        );
        self.fetch(text, &condition, |row| {
            Ok(QuarterCount {
                quarter: row.try_get(0)?,
                group: row.try_get(1)?,
                count: count_of(row, 2)?,
            })
        })
        .await
    }

    /// Counts per quarter for a filter with no query terms (only a time range): whole quarters
    /// come from the rollups kept by the triggers of migration 0002, and the partial quarters
    /// at the ends of the range are counted from the events, so the result is exact.
    async fn rollup_quarter_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
    ) -> StoreResult<Vec<QuarterCount>> {
        let from = filter.from.map(|t| t.as_microsecond());
        let to = filter.to.map(|t| t.as_microsecond());
        // Whole quarters: [first, end).
        let first = from.map_or(i64::MIN, |from| {
            from.div_euclid(QUARTER_MICROS) + i64::from(from.rem_euclid(QUARTER_MICROS) != 0)
        });
        let end = to.map_or(i64::MAX, |to| to.div_euclid(QUARTER_MICROS));
        if first >= end {
            return self.scan_quarter_counts(filter, group).await;
        }
        let mut condition = Condition::default();
        let dimension = condition.param(Param::Text(group.map_or("", GroupField::name).into()));
        let first_param = condition.param(Param::Int(first));
        let end_param = condition.param(Param::Int(end));
        let text = format!(
            "SELECT quarter, value, count FROM rollups WHERE dimension = {dimension} \
             AND quarter >= {first_param} AND quarter < {end_param} AND count > 0"
        );
        let mut counts = self
            .fetch(text, &condition, |row| {
                let value: String = row.try_get(1)?;
                Ok(QuarterCount {
                    quarter: row.try_get(0)?,
                    group: (group.is_some() && !value.is_empty()).then_some(value),
                    count: count_of(row, 2)?,
                })
            })
            .await?;
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
            counts.extend(self.scan_quarter_counts(&edge, group).await?);
        }
        if let Some(to) = filter.to
            && let Some(end_start) = instant(end)
            && end_start < to
        {
            let edge = EventFilter {
                from: Some(end_start),
                ..filter.clone()
            };
            counts.extend(self.scan_quarter_counts(&edge, group).await?);
        }
        Ok(counts)
    }
}

/// The rollup tables by level, in [`Plan`] order (quarter-hours, hours, days), with their
/// unit column.
const ROLLUP_LEVELS: [(&str, &str); 3] = [
    ("rollups", "quarter"),
    ("rollups_hour", "hour"),
    ("rollups_day", "day"),
];

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// What is wrong with a URL, without repeating it (it may hold a password).
fn describe_url_error(error: &sqlx_core::Error) -> String {
    match error {
        sqlx_core::Error::Configuration(source) => source.to_string(),
        _ => "not a postgres:// URL".to_owned(),
    }
}

/// Maps a database failure onto the store's error kinds: a server that cannot be reached, is
/// shutting down, is out of connections or resources, or asks to retry is unavailable (503,
/// try later); anything else is internal.
pub(crate) fn pg_error(error: sqlx_core::Error) -> StoreError {
    use sqlx_core::Error;
    let unavailable = match &error {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed
        | Error::Protocol(_) => true,
        Error::Database(database) => database.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources; 57P: operator
            // intervention (shutdown, recovery); 58: system error; 40001/40P01: retry;
            // 55P03: a lock not available in time; 25P03: an idle transaction timed out.
            ["08", "53", "57P", "58", "40001", "40P01", "55P03", "25P03"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Internal(error.to_string())
    }
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

fn count_of(row: &PgRow, index: usize) -> Result<u64, sqlx_core::Error> {
    Ok(u64::try_from(row.try_get::<i64, _>(index)?).unwrap_or(0))
}

/// The last stream position handed out.
pub(crate) async fn read_stream_head(pool: &PgPool) -> Result<StreamPosition, sqlx_core::Error> {
    let head: i64 = query_scalar("SELECT value FROM counters WHERE name = 'stream_head'")
        .fetch_one(pool)
        .await?;
    Ok(StreamPosition(u64::try_from(head).unwrap_or(0)))
}

/// Events stored after `after`, in stored order (without diffs).
pub(crate) async fn read_stored_since(
    pool: &PgPool,
    after: StreamPosition,
    limit: usize,
) -> Result<Vec<StoredEvent>, sqlx_core::Error> {
    let text = format!(
        "SELECT {}, e.seq {} WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
        rows::select_list(false),
        rows::from_clause(false)
    );
    let found = query(AssertSqlSafe(text))
        .bind(i64::try_from(after.0).unwrap_or(i64::MAX))
        .bind(limit_of(limit))
        .fetch_all(pool)
        .await?;
    found
        .iter()
        .map(|row| {
            Ok(StoredEvent {
                event: rows::event_from_row(row)?,
                position: StreamPosition(count_of(row, rows::COLUMN_COUNT + 1)?),
            })
        })
        .collect()
}

#[async_trait]
impl Store for PostgresStore {
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
        let mut condition = Condition::default();
        let id = condition.param(Param::Uuid(id.as_uuid()));
        condition.and(format!("e.id = {id}"));
        let text = format!(
            "SELECT {} {} WHERE {}",
            rows::select_list(true),
            rows::from_clause(true),
            condition.where_sql()
        );
        Ok(self
            .fetch(text, &condition, rows::event_from_row)
            .await?
            .pop())
    }

    async fn list(&self, filter: &EventFilter, page: PageRequest) -> StoreResult<Page> {
        let wanted = page.limit;
        // One more than asked tells whether there is a next page.
        let probe = PageRequest {
            limit: wanted + 1,
            ..page
        };
        let mut events = self.select_page(sql::compile(filter), probe).await?;
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
        let time = around.time.as_microsecond();
        let start = time.saturating_sub(sql::micros(around.before));
        let end = time.saturating_add(sql::micros(around.after));
        let side = |order, lower: (&str, i64), upper: i64| {
            let mut condition = sql::compile(filter);
            let low = condition.param(Param::Time(PgTime::bound(lower.1)));
            let high = condition.param(Param::Time(PgTime::bound(upper)));
            condition.and(format!(
                "e.occurred_at {} {low} AND e.occurred_at <= {high}",
                lower.0
            ));
            let page = PageRequest {
                limit: around.limit,
                cursor: None,
                order,
                include_diffs: false,
            };
            self.select_page(condition, page)
        };
        let before = side(Order::NewestFirst, (">=", start), time).await?;
        let after = side(Order::OldestFirst, (">", time), end).await?;
        let mut events: Vec<Event> = before.into_iter().chain(after).collect();
        events.sort_by_key(|event| {
            let offset = event.occurred_at.as_microsecond() - time;
            (offset.unsigned_abs(), offset, event.id)
        });
        events.truncate(around.limit);
        Ok(events)
    }

    async fn patch(&self, id: EventId, patch: EventPatch) -> StoreResult<Option<Event>> {
        self.write(|reply| Write::Patch { id, patch, reply }).await
    }

    async fn count(&self) -> StoreResult<u64> {
        self.check_open()?;
        let count: i64 = query_scalar("SELECT value FROM counters WHERE name = 'events'")
            .fetch_one(&self.pool)
            .await
            .map_err(pg_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.check_open()?;
        if self.writer.is_closed() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        match tokio::time::timeout(PING_TIMEOUT, query("SELECT 1").execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(pg_error(error)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {} s",
                PING_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn shutdown(&self) -> StoreResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        if self.writer.send(Command::Shutdown(reply)).await.is_ok() {
            // The writer answers once everything queued before is committed (or failed).
            let _ = answer.await;
        }
        let tasks = self
            .stream_tasks
            .lock()
            .map(|mut tasks| tasks.take())
            .unwrap_or(None);
        if let Some(tasks) = tasks {
            tasks.stop().await;
        }
        self.listen_pool.close().await;
        self.pool.close().await;
        Ok(())
    }

    async fn quarter_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
    ) -> StoreResult<Vec<QuarterCount>> {
        if filter.query.is_empty() {
            self.rollup_quarter_counts(filter, group).await
        } else {
            self.scan_quarter_counts(filter, group).await
        }
    }

    /// Without query terms, from the daily, hourly and quarter-hour rollups (migrations 2
    /// and 5): each bucket cut into whole units ([`tfr_store::buckets::Plan`]), each level
    /// read with one statement, the partial quarters at the ends counted from the events.
    /// With query terms, the definition over scanned quarters.
    async fn bucket_counts(
        &self,
        filter: &EventFilter,
        group: Option<GroupField>,
        starts: &[jiff::Timestamp],
    ) -> StoreResult<Vec<BucketCount>> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let plan = match Plan::of_buckets(filter, starts) {
            Some(plan) if filter.query.is_empty() => plan,
            _ => {
                let quarters = self.quarter_counts(filter, group).await?;
                return Ok(bucket_counts_from_quarters(quarters, starts));
            }
        };
        self.check_open()?;
        let mut sums = Sums::default();
        for (edge, bucket) in plan.scan_filters(filter) {
            for count in self.scan_quarter_counts(&edge, group).await? {
                sums.add(bucket, count.group, count.count);
            }
        }
        let dimension = group.map_or("", GroupField::name);
        for ((table, unit), pieces) in ROLLUP_LEVELS.iter().zip(&plan.levels) {
            let (starts, ends): (Vec<i64>, Vec<i64>) = merged(pieces).into_iter().unzip();
            if starts.is_empty() {
                continue;
            }
            let text = format!(
                "SELECT r.{unit}, r.value, r.count \
                 FROM unnest($2::int8[], $3::int8[]) AS w (lo, hi) \
                 JOIN {table} r ON r.dimension = $1 AND r.{unit} >= w.lo AND r.{unit} < w.hi \
                 WHERE r.count > 0"
            );
            let rows = query(AssertSqlSafe(text))
                .bind(dimension)
                .bind(starts)
                .bind(ends)
                .fetch_all(&self.pool)
                .await
                .map_err(pg_error)?;
            for row in rows {
                let at: i64 = row.try_get(0).map_err(pg_error)?;
                let value: String = row.try_get(1).map_err(pg_error)?;
                let count = count_of(&row, 2).map_err(pg_error)?;
                let Some(piece) = piece_at(pieces, at) else {
                    continue;
                };
                let group = (group.is_some() && !value.is_empty()).then_some(value);
                sums.add(piece.bucket, group, count);
            }
        }
        Ok(sums.into_counts())
    }

    async fn top_values(
        &self,
        filter: &EventFilter,
        field: GroupField,
        limit: usize,
    ) -> StoreResult<Vec<ValueCount>> {
        let mut condition = sql::compile(filter);
        let column = group_column(field);
        condition.and(format!("{column} IS NOT NULL"));
        let limit = condition.param(Param::Int(limit_of(limit)));
        let text = format!(
            "SELECT {column}, count(*) AS n FROM events e WHERE {} \
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT {limit}",
            condition.where_sql()
        );
        self.fetch(text, &condition, |row| {
            Ok(ValueCount {
                value: row.try_get(0)?,
                count: count_of(row, 1)?,
            })
        })
        .await
    }

    async fn timeline(
        &self,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let mut condition = sql::compile(filter);
        let limit = condition.param(Param::Int(limit_of(limit)));
        let text = format!(
            "SELECT e.occurred_at, e.id FROM events e WHERE {} \
             ORDER BY e.occurred_at, e.id LIMIT {limit}",
            condition.where_sql()
        );
        self.fetch(text, &condition, |row| {
            Ok(TimelineEntry {
                occurred_at: row.try_get::<PgTime, _>(0)?.timestamp()?,
                id: EventId::from(row.try_get::<Uuid, _>(1)?),
            })
        })
        .await
    }

    async fn get_many(&self, ids: &[EventId]) -> StoreResult<Vec<Event>> {
        let mut condition = Condition::default();
        let ids = condition.param(Param::Uuids(ids.iter().map(EventId::as_uuid).collect()));
        condition.and(format!("e.id = ANY({ids}::uuid[])"));
        let text = format!(
            "SELECT {} {} WHERE {}",
            rows::select_list(false),
            rows::from_clause(false),
            condition.where_sql()
        );
        self.fetch(text, &condition, rows::event_from_row).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.stream.subscribe()
    }

    async fn stored_since(
        &self,
        after: StreamPosition,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.check_open()?;
        read_stored_since(&self.pool, after, limit)
            .await
            .map_err(pg_error)
    }

    async fn stream_head(&self) -> StoreResult<StreamPosition> {
        self.check_open()?;
        read_stream_head(&self.pool).await.map_err(pg_error)
    }

    async fn delete_event(&self, deletion: Deletion) -> StoreResult<Option<AuditEntry>> {
        self.check_open()?;
        admin::delete_event(&self.pool, &deletion)
            .await
            .map_err(pg_error)
    }

    async fn audit_log(&self, before: Option<u64>, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.check_open()?;
        admin::audit_log(&self.pool, before, limit_of(limit))
            .await
            .map_err(pg_error)
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<Option<TokenInfo>> {
        self.check_open()?;
        admin::create_token(&self.pool, &token)
            .await
            .map_err(pg_error)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.check_open()?;
        admin::list_tokens(&self.pool).await.map_err(pg_error)
    }

    async fn revoke_token(
        &self,
        name: &str,
        at: jiff::Timestamp,
    ) -> StoreResult<Option<TokenInfo>> {
        self.check_open()?;
        admin::revoke_token(&self.pool, name, at)
            .await
            .map_err(pg_error)
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenInfo>> {
        self.check_open()?;
        admin::token_by_hash(&self.pool, hash)
            .await
            .map_err(pg_error)
    }

    async fn touch_token(&self, name: &str, at: jiff::Timestamp) -> StoreResult<()> {
        self.check_open()?;
        admin::touch_token(&self.pool, name, at)
            .await
            .map_err(pg_error)
    }
}
