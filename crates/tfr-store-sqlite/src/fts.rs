//! The full-text index, kept in a database file of its own and built behind the writer by a
//! thread of its own, so that the writer's group commits carry no full-text work.
//!
//! FTS5 was the largest part of the writer's time (tokenising, its segment flush at every
//! commit, and merging segments, which held one commit in several for 8–30 ms: see
//! docs/benchmarks.md). Now the writer stores events and the indexer thread, on the other
//! core, adds them to `tfr-fts.db` in batches of up to [`BATCH_EVENTS`] soon after their
//! commit. Every acknowledged event is still found at once: a search reads the index for the
//! events it holds and checks the rest — the *tail* after the index's high-water mark, and the
//! events changed since they were indexed — one by one with the same rules in Rust
//! ([`tfr_core::query::text_matches_fields`], registered as the SQL function
//! `tfr_text_match`). The tail is a few hundred events while the indexer keeps up.
//!
//! Consistency, without a transaction spanning the two files:
//! - `fts_state.indexed_through` (the high-water mark) is written in the same transaction as
//!   the index rows, so an index always agrees with its own mark, also after a crash; each
//!   batch is fsynced (`synchronous = FULL`) before the writer may drop what it took.
//! - Changes to indexed text (a patch of tags, a deletion) are queued in the main database by
//!   triggers, in the change's own transaction: `fts_stale` (migration 8), numbered by `mark`.
//!   The indexer re-indexes them and records the last mark done in `fts_state.stale_through`;
//!   until then searches check those events one by one. The writer later drops queue entries
//!   the index has caught up with.
//! - A statement reads the main database first (SQLite takes its snapshots in schema order),
//!   so the index it reads is at least as new as the queue it reads. The two snapshots are
//!   not one moment: a tag patched between them may already match in the index while the
//!   row returned still shows the tags before it — the answer a search racing the patch
//!   could give anyway.
//! - The tail is checked with tfr's own tokenizer ([`tfr_core::query::tokens`]), which follows
//!   `unicode61` for letters, digits and the accented Latin letters, but not for every
//!   script and symbol (Vietnamese stacked accents, some dotless or stroked letters, combining
//!   marks written apart, circled letters): for such words an event in the tail may match
//!   differently for the moment until it is indexed — as the live stream's filter, which uses
//!   the same rules, always has.
//! - The writer drops queued changes the index has caught up with, and records the last mark
//!   dropped (`counters.fts_stale_dropped`) in the same transaction; an index file behind
//!   that mark (an older copy) is rebuilt at open.
//!
//! The index can always be rebuilt from the events: a missing or damaged `tfr-fts.db` is
//! made again, from the start, when the store opens (a backup needs only `tfr.db`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};
use tfr_core::query::{TextPattern, text_matches_fields};

/// The index's file, beside `tfr.db`.
pub const FTS_FILE: &str = "tfr-fts.db";

/// The schema name the index file is attached under on read connections.
pub const SCHEMA: &str = "fts";

/// Events indexed per transaction of the indexer: large enough that segments are few and
/// merging cheap, small enough that a batch takes a fraction of a second.
const BATCH_EVENTS: i64 = 4_000;

/// Changed events re-indexed per transaction.
const BATCH_STALE: i64 = 1_000;

/// At open, a tail longer than this is indexed before the store is ready (a new index, or an
/// upgrade from a version that kept the index in `tfr.db`), so that searches never check
/// millions of events one by one.
const CATCH_UP_AT_OPEN: i64 = 20_000;

/// How long the indexer sleeps when nobody wakes it: it is woken after every commit, this is
/// only a safety net.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The most events the writer lets the index fall behind before it waits for the indexer: a
/// search checks the tail one event at a time, so it must stay short, and a sustained load
/// then runs at the pace of the slower of the two threads rather than growing the tail.
pub const MAX_TAIL: i64 = 20_000;

/// The longest the writer waits for the indexer before a group: should the indexer be stuck
/// (a failing disk), writes slow down but go on.
const MAX_TAIL_WAIT: Duration = Duration::from_secs(1);

const SCHEMA_SQL: &str = "
    PRAGMA journal_mode = WAL;
    CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5 (
        title, description, system, author, tags_text, version,
        content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', 8);
    CREATE TABLE IF NOT EXISTS fts_state (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        -- `store_identity.id` of the tfr.db this index was built from.
        store_id         TEXT    NOT NULL DEFAULT '',
        -- Every event with seq <= this was indexed (as it was then).
        indexed_through  INTEGER NOT NULL,
        -- Every queued change (`fts_stale` in tfr.db) with mark <= this was re-indexed.
        stale_through    INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO fts_state (id, indexed_through, stale_through) VALUES (1, 0, 0);
";

/// The set of `seq`s matching a full-text expression, as a `SELECT` of one column, `seq`: the
/// index for the events it holds as they are, `tfr_text_match` for the others. Parameters, in
/// order: the FTS5 expression ([`crate::sql::positive_text`]), the parameters of `bound`, the
/// parameters of `bound` again, then the patterns ([`encode_patterns`]). `bound` is SQL added
/// to both arms (e.g. ` AND {seq} < ?`, where `{seq}` becomes the arm's row number column).
pub fn match_set(bound: &str) -> String {
    let fts_bound = bound.replace("{seq}", "rowid");
    let tail_bound = bound.replace("{seq}", "seq");
    format!(
        "SELECT rowid AS seq FROM {SCHEMA}.events_fts WHERE events_fts MATCH ? \
           AND rowid <= (SELECT indexed_through FROM {SCHEMA}.fts_state) \
           AND rowid NOT IN (SELECT seq FROM fts_stale \
                             WHERE mark > (SELECT stale_through FROM {SCHEMA}.fts_state)){fts_bound} \
         UNION ALL \
         SELECT seq FROM events \
         WHERE (seq > (SELECT indexed_through FROM {SCHEMA}.fts_state) \
                OR seq IN (SELECT seq FROM fts_stale \
                           WHERE mark > (SELECT stale_through FROM {SCHEMA}.fts_state))){tail_bound} \
           AND tfr_text_match(?, title, description, system, author, tags_text, version)"
    )
}

/// Patterns as one text for `tfr_text_match`: each as its kind (`w`, `p`, `h`), the length of
/// its text in bytes, `:`, and the text — unambiguous whatever the text holds.
pub fn encode_patterns<'a>(patterns: impl IntoIterator<Item = &'a TextPattern>) -> String {
    let mut out = String::new();
    for pattern in patterns {
        let kind = match pattern {
            TextPattern::Word(_) => 'w',
            TextPattern::Prefix(_) => 'p',
            TextPattern::Phrase(_) => 'h',
        };
        let text = pattern.text();
        out.push(kind);
        out.push_str(&text.len().to_string());
        out.push(':');
        out.push_str(text);
    }
    out
}

/// The inverse of [`encode_patterns`]; `None` for text it did not make.
fn decode_patterns(mut encoded: &str) -> Option<Vec<TextPattern>> {
    let mut patterns = Vec::new();
    while !encoded.is_empty() {
        let kind = encoded.chars().next()?;
        let (length, rest) = encoded[kind.len_utf8()..].split_once(':')?;
        let length: usize = length.parse().ok()?;
        let text = rest.get(..length)?.to_owned();
        encoded = &rest[length..];
        patterns.push(match kind {
            'w' => TextPattern::Word(text),
            'p' => TextPattern::Prefix(text),
            'h' => TextPattern::Phrase(text),
            _ => return None,
        });
    }
    Some(patterns)
}

/// Registers `tfr_text_match(patterns, title, description, system, author, tags_text,
/// version)`: whether the columns match every pattern, by the rules of the index.
pub fn register_match_function(connection: &Connection) -> rusqlite::Result<()> {
    connection.create_scalar_function(
        "tfr_text_match",
        7,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let patterns = context.get_or_create_aux(0, |value| {
                let encoded = value.as_str()?;
                decode_patterns(encoded).ok_or_else(|| {
                    rusqlite::Error::UserFunctionError("malformed text patterns".into())
                })
            })?;
            let mut fields = [None; 6];
            for (index, field) in fields.iter_mut().enumerate() {
                *field = context.get_raw(index + 1).as_str_or_null()?;
            }
            Ok(patterns
                .iter()
                .all(|pattern| text_matches_fields(pattern, fields)))
        },
    )
}

/// Attaches the index file to a connection of the main database (read-only if the connection
/// is) and registers `tfr_text_match`, for [`match_set`].
pub fn attach(connection: &Connection, path: &Path) -> rusqlite::Result<()> {
    connection.execute(
        &format!("ATTACH DATABASE ?1 AS {SCHEMA}"),
        [path.to_string_lossy()],
    )?;
    register_match_function(connection)
}

/// What the writer, the indexer and the store share.
#[derive(Debug, Default)]
pub struct Progress {
    /// Set when something was committed that the indexer may have to index.
    wake: Mutex<bool>,
    woken: Condvar,
    /// Signalled each time the indexer commits a batch.
    advanced: Condvar,
    advanced_lock: Mutex<()>,
    stop: AtomicBool,
    /// `fts_state.stale_through` as last committed by the indexer: queue entries up to it
    /// may go.
    stale_through: AtomicI64,
    /// `fts_state.indexed_through` as last committed by the indexer.
    indexed_through: AtomicI64,
    /// The last row number the writer committed.
    committed_through: AtomicI64,
}

impl Progress {
    /// Tells the indexer there is new work.
    pub fn wake(&self) {
        if let Ok(mut wake) = self.wake.lock() {
            *wake = true;
            self.woken.notify_one();
        }
    }

    /// The last mark of the change queue the index has caught up with.
    pub fn stale_through(&self) -> i64 {
        self.stale_through.load(Ordering::Acquire)
    }

    /// Every event with a row number up to this is in the index.
    pub fn indexed_through(&self) -> i64 {
        self.indexed_through.load(Ordering::Acquire)
    }

    /// Records the last row number committed (by the writer).
    pub fn committed(&self, seq: i64) {
        self.committed_through.fetch_max(seq, Ordering::AcqRel);
    }

    /// Row numbers committed past the index's mark: an upper bound on the events the index
    /// does not hold yet (deleted ones count until it passes them).
    pub fn lag(&self) -> u64 {
        let behind = self.committed_through.load(Ordering::Acquire) - self.indexed_through();
        u64::try_from(behind).unwrap_or(0)
    }

    /// Blocks the writer while the index is more than [`MAX_TAIL`] events behind the last
    /// commit (at most [`MAX_TAIL_WAIT`]; not at all once the indexer has stopped).
    pub fn wait_for_tail(&self) {
        if self.lag() <= MAX_TAIL as u64 {
            return;
        }
        let deadline = std::time::Instant::now() + MAX_TAIL_WAIT;
        let Ok(mut guard) = self.advanced_lock.lock() else {
            return;
        };
        while self.lag() > MAX_TAIL as u64 && !self.stop.load(Ordering::Acquire) {
            let now = std::time::Instant::now();
            if now >= deadline {
                tracing::warn!("the full-text index is behind; writing on");
                return;
            }
            guard = match self.advanced.wait_timeout(guard, deadline - now) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
        }
    }

    fn wait(&self, timeout: Duration) {
        let Ok(mut wake) = self.wake.lock() else {
            return;
        };
        if !*wake && !self.stop.load(Ordering::Acquire) {
            wake = match self.woken.wait_timeout(wake, timeout) {
                Ok((wake, _)) => wake,
                Err(_) => return,
            };
        }
        *wake = false;
    }
}

/// The indexer thread; stopped and joined when dropped.
pub struct Indexer {
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Stops the thread after its current batch.
    pub fn stop(&mut self) {
        self.progress.stop.store(true, Ordering::Release);
        self.progress.wake();
        if let Ok(_guard) = self.progress.advanced_lock.lock() {
            self.progress.advanced.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why the index could not be opened or started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the full-text index {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the full-text indexer thread: {0}")]
    Thread(std::io::Error),
}

/// Opens (or makes) the index beside `database`, brings it up to date if it is far behind,
/// and starts the indexer thread.
pub fn start(database: &Path, index: &Path) -> Result<Indexer, StartError> {
    let open_error = |source| StartError::Open {
        path: index.to_owned(),
        source,
    };
    let mut writer = open_index(index)
        .or_else(|error| {
            // The index only ever holds what the events can give again: a file that is not a
            // database, or a damaged one, is made anew. Any other failure (permissions, I/O,
            // another process holding it) is reported, and the files are left alone.
            if !matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ) {
                return Err(error);
            }
            tracing::warn!(%error, path = %index.display(), "rebuilding the full-text index");
            for suffix in ["", "-wal", "-shm"] {
                let mut path = index.as_os_str().to_owned();
                path.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(path));
            }
            open_index(index)
        })
        .map_err(open_error)?;
    let reader = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|reader| {
        reader.execute_batch("PRAGMA busy_timeout = 5000;")?;
        Ok(reader)
    })
    .map_err(open_error)?;
    let progress = Arc::new(Progress::default());
    let mut state = read_state(&writer).map_err(open_error)?;
    let main = read_main(&reader).map_err(open_error)?;
    // An index of another database, or newer than this one (a restored backup of tfr.db:
    // row numbers or change marks would be given again), starts over.
    if state.store_id != main.store_id
        || main.events_through < state.indexed_through
        || main.stale_marks_through < state.stale_through
        || state.stale_through < main.stale_dropped_through
    {
        if state.store_id == main.store_id {
            tracing::warn!("the full-text index is newer than the events; rebuilding it");
        }
        let transaction = writer.transaction().map_err(open_error)?;
        transaction
            .execute_batch("INSERT INTO events_fts (events_fts) VALUES ('delete-all')")
            .and_then(|()| {
                // Rebuilt from the events as they are now, the index owes nothing to the
                // changes queued so far.
                transaction.execute(
                    "UPDATE fts_state SET store_id = ?1, indexed_through = 0, stale_through = ?2",
                    (&main.store_id, main.stale_marks_through),
                )
            })
            .map_err(open_error)?;
        transaction.commit().map_err(open_error)?;
        state = read_state(&writer).map_err(open_error)?;
    }
    let last = main.last_seq;
    if last - state.indexed_through > CATCH_UP_AT_OPEN {
        tracing::info!(
            events = last - state.indexed_through,
            "building the full-text index before the store is ready"
        );
        let mut batches = 0_u64;
        while index_batch(&mut writer, &reader, &progress).map_err(open_error)? {
            batches += 1;
            if batches.is_multiple_of(250) {
                tracing::info!(
                    indexed_through = progress.indexed_through(),
                    of = last,
                    "building the full-text index"
                );
            }
        }
    }
    publish(&progress, read_state(&writer).map_err(open_error)?);
    progress.committed(last);
    let thread = std::thread::Builder::new()
        .name("tfr-sqlite-fts".into())
        .spawn({
            let progress = Arc::clone(&progress);
            move || run(writer, reader, progress)
        })
        .map_err(StartError::Thread)?;
    Ok(Indexer {
        progress,
        thread: Some(thread),
    })
}

fn open_index(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // FULL: the writer drops queued changes once a batch that took them is committed here, so
    // a committed batch must not go back (one fsync per batch of up to 4,000 events).
    connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")?;
    connection.execute_batch(SCHEMA_SQL)?;
    // A damaged file can open and still fail here.
    connection.query_row("SELECT count(*) FROM fts_state", [], |_| Ok(()))?;
    Ok(connection)
}

#[derive(Clone, Debug)]
struct State {
    store_id: String,
    indexed_through: i64,
    stale_through: i64,
}

fn read_state(connection: &Connection) -> rusqlite::Result<State> {
    connection.query_row(
        "SELECT store_id, indexed_through, stale_through FROM fts_state WHERE id = 1",
        [],
        |row| {
            Ok(State {
                store_id: row.get(0)?,
                indexed_through: row.get(1)?,
                stale_through: row.get(2)?,
            })
        },
    )
}

/// What the index is checked against in `tfr.db` when the store opens.
struct MainState {
    store_id: String,
    /// The last row number ever given (`AUTOINCREMENT`'s counter: deletions leave it).
    events_through: i64,
    /// The last change mark ever given.
    stale_marks_through: i64,
    /// Queued changes up to this mark were dropped by the writer: an index that has not taken
    /// them (an older copy of the file) would never see them again.
    stale_dropped_through: i64,
    /// The last row number stored.
    last_seq: i64,
}

fn read_main(connection: &Connection) -> rusqlite::Result<MainState> {
    connection.query_row(
        "SELECT (SELECT id FROM store_identity), \
                (SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'events'), \
                (SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'fts_stale'), \
                (SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'fts_stale_dropped'), \
                (SELECT COALESCE(MAX(seq), 0) FROM events)",
        [],
        |row| {
            Ok(MainState {
                store_id: row.get(0)?,
                events_through: row.get(1)?,
                stale_marks_through: row.get(2)?,
                stale_dropped_through: row.get(3)?,
                last_seq: row.get(4)?,
            })
        },
    )
}

fn publish(progress: &Progress, state: State) {
    progress
        .indexed_through
        .store(state.indexed_through, Ordering::Release);
    progress
        .stale_through
        .store(state.stale_through, Ordering::Release);
    let _guard = progress.advanced_lock.lock();
    progress.advanced.notify_all();
}

fn run(mut writer: Connection, reader: Connection, progress: Arc<Progress>) {
    /// However the thread ends (a panic included), the writer must stop waiting for it.
    struct Exit<'a>(&'a Progress);
    impl Drop for Exit<'_> {
        fn drop(&mut self) {
            self.0.stop.store(true, Ordering::Release);
            if let Ok(_guard) = self.0.advanced_lock.lock() {
                self.0.advanced.notify_all();
            }
        }
    }
    let _exit = Exit(&progress);
    let mut failures = 0u32;
    while !progress.stop.load(Ordering::Acquire) {
        match index_batch(&mut writer, &reader, &progress) {
            // More to do: go on at once.
            Ok(true) => failures = 0,
            Ok(false) => {
                failures = 0;
                progress.wait(IDLE_POLL);
            }
            Err(error) => {
                // Searches stay right (they check the tail); try again, backing off, waking
                // early for a stop.
                failures = failures.saturating_add(1);
                tracing::error!(%error, failures, "full-text indexing failed; retrying");
                progress.wait(Duration::from_millis(100) * failures.min(50));
            }
        }
    }
}

/// The text columns of `events`, in the index's column order.
const TEXT_COLUMNS: &str = "title, description, system, author, tags_text, version";

/// Indexes the next batch of new events and queued changes, in one transaction of the index.
/// Returns whether it did anything (so there may be more).
fn index_batch(
    writer: &mut Connection,
    reader: &Connection,
    progress: &Progress,
) -> rusqlite::Result<bool> {
    let state = read_state(writer)?;
    // One snapshot of the main database for both reads.
    let snapshot = reader.unchecked_transaction()?;
    let mut new_events = snapshot.prepare_cached(&format!(
        "SELECT seq, {TEXT_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let rows: Vec<(i64, [Option<String>; 6])> = new_events
        .query_map((state.indexed_through, BATCH_EVENTS), text_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut changed = snapshot.prepare_cached(
        "SELECT s.mark, s.seq, e.seq IS NOT NULL, \
                e.title, e.description, e.system, e.author, e.tags_text, e.version \
         FROM fts_stale s LEFT JOIN events e ON e.seq = s.seq \
         WHERE s.mark > ?1 ORDER BY s.mark LIMIT ?2",
    )?;
    let changes: Vec<(i64, i64, bool, [Option<String>; 6])> = changed
        .query_map((state.stale_through, BATCH_STALE), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, texts_at(row, 3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop((new_events, changed));
    snapshot.finish()?;
    if rows.is_empty() && changes.is_empty() {
        return Ok(false);
    }
    let transaction = writer.transaction()?;
    let mut stale_through = state.stale_through;
    let mut indexed_through = state.indexed_through;
    {
        let mut insert = transaction.prepare_cached(&format!(
            "INSERT INTO events_fts (rowid, {TEXT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))?;
        let mut delete = transaction.prepare_cached("DELETE FROM events_fts WHERE rowid = ?1")?;
        for (mark, seq, exists, texts) in &changes {
            stale_through = stale_through.max(*mark);
            // Events past the mark are indexed below as they are now.
            if *seq <= state.indexed_through {
                delete.execute([seq])?;
                if *exists {
                    insert.execute(rusqlite::params![
                        seq, texts[0], texts[1], texts[2], texts[3], texts[4], texts[5]
                    ])?;
                }
            }
        }
        for (seq, texts) in &rows {
            insert.execute(rusqlite::params![
                seq, texts[0], texts[1], texts[2], texts[3], texts[4], texts[5]
            ])?;
            indexed_through = *seq;
        }
        transaction
            .prepare_cached("UPDATE fts_state SET indexed_through = ?1, stale_through = ?2")?
            .execute((indexed_through, stale_through))?;
    }
    transaction.commit()?;
    publish(
        progress,
        State {
            indexed_through,
            stale_through,
            ..state
        },
    );
    Ok(true)
}

fn text_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, [Option<String>; 6])> {
    Ok((row.get(0)?, texts_at(row, 1)?))
}

/// The six text columns, from column `first` on.
fn texts_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<[Option<String>; 6]> {
    let mut texts: [Option<String>; 6] = Default::default();
    for (index, text) in texts.iter_mut().enumerate() {
        *text = row.get(first + index)?;
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_writer_waits_for_a_long_tail_until_the_indexer_advances() {
        let progress = Arc::new(Progress::default());
        // A short tail: no wait.
        let started = Instant::now();
        progress.committed(MAX_TAIL);
        progress.wait_for_tail();
        assert!(started.elapsed() < Duration::from_millis(100));

        // A long one: until the indexer publishes a mark close enough.
        let indexer = std::thread::spawn({
            let progress = Arc::clone(&progress);
            move || {
                std::thread::sleep(Duration::from_millis(200));
                publish(
                    &progress,
                    State {
                        store_id: String::new(),
                        indexed_through: 15_000,
                        stale_through: 0,
                    },
                );
            }
        });
        progress.committed(MAX_TAIL + 10_000);
        let started = Instant::now();
        progress.wait_for_tail();
        let waited = started.elapsed();
        indexer.join().expect("the indexer thread");
        assert!(waited >= Duration::from_millis(150), "waited {waited:?}");
        assert!(waited < MAX_TAIL_WAIT, "waited {waited:?}");

        assert_eq!(progress.lag(), 15_000);
        // An indexer that never advances holds the writer back at most MAX_TAIL_WAIT...
        progress.committed(15_000 + MAX_TAIL + 1);
        let started = Instant::now();
        progress.wait_for_tail();
        assert!(started.elapsed() >= MAX_TAIL_WAIT);
        // ...and a stopped one not at all.
        progress.stop.store(true, Ordering::Release);
        let started = Instant::now();
        progress.wait_for_tail();
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn patterns_survive_encoding_whatever_their_text() {
        let patterns = vec![
            TextPattern::Word("rollback".into()),
            TextPattern::Prefix("dep:7h".into()),
            TextPattern::Phrase("a \"quoted\" 12:3 phrase\u{1f}é".into()),
            TextPattern::Word(String::new()),
        ];
        let encoded = encode_patterns(&patterns);
        assert_eq!(decode_patterns(&encoded), Some(patterns));
        assert_eq!(decode_patterns("x3:abc"), None);
        assert_eq!(decode_patterns("w9:abc"), None);
        assert_eq!(decode_patterns("w3abc"), None);
        assert_eq!(decode_patterns("é3:abc"), None);
    }
}
