//! Copies the write-ahead log into the database file on a thread of its own, when the writer
//! pauses or the log has grown large, so commits — and the requests waiting for them — rarely
//! pay for it.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that crosses its threshold (1,000
//! pages): the requests of that group wait while pages are copied and the database file is
//! fsynced, and on a busy disk every commit's own fsync then queues behind that one. Measured
//! with `tfr-bench` (docs/benchmarks.md), checkpoints were what kept single posts from 64
//! clients above 25 ms at p99. Here:
//!
//! - the writer's commit hook only records how long the log is and nudges this thread;
//! - this thread checkpoints once the writer has been idle for [`IDLE`], or when the log has
//!   grown by [`LARGE_LOG_PAGES`] since its last checkpoint;
//! - a checkpoint is two steps: `PASSIVE` copies what is committed without blocking anyone
//!   (again, while commits add much meanwhile), then `RESTART` copies the few frames left,
//!   waits for readers of older snapshots, and lets the next write start the log over, so it
//!   does not grow without end. This thread restarts the log when the writer is idle; under
//!   load the writer does, between two transactions ([`Checkpointer::before_write`]): it
//!   would win every race for the write lock otherwise;
//! - should this thread fall far behind, the writer checkpoints itself at commit once the log
//!   passes [`WRITER_BACKSTOP_PAGES`], as SQLite would.
//!
//! Durability is unchanged: commits are fsynced in the log (`synchronous = FULL`), and the
//! database file is fsynced before the log is reused.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

/// How long the writer must be idle before the log is copied.
pub const IDLE: Duration = Duration::from_millis(100);

/// Log growth (pages of 4 KiB: 256 MiB) after which the log is copied even though writes go
/// on. Larger means rarer checkpoints under sustained load, a longer log to replay after a
/// crash, and more disk.
pub const LARGE_LOG_PAGES: i64 = 65_536;

/// How long the writer waits for readers when it starts the log over.
const WRITER_RESTART_WAIT: Duration = Duration::from_millis(50);

/// The writer connection's busy timeout otherwise (`PRAGMA busy_timeout` at open).
const WRITER_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Log length at which the writer copies it itself, at commit.
pub const WRITER_BACKSTOP_PAGES: i64 = 4 * LARGE_LOG_PAGES;

/// What the writer and the checkpoint thread share.
#[derive(Default)]
struct Shared {
    /// Frames in the log after the writer's last commit; [`STOP`] to stop the thread.
    log: AtomicI64,
    /// The log is copied but for a few frames: the writer should start it over before its
    /// next transaction ([`Checkpointer::before_write`]).
    restart: AtomicBool,
}

/// Pages committed during a copy that are left for the writer to copy when it starts the
/// log over (16 MiB)...
const SMALL_REMAINDER: i64 = 4_096;
/// ...after at most this many copies in a row.
const MAX_PASSES: usize = 4;

/// The checkpoint thread; stopping it waits for the checkpoint in progress.
pub struct Checkpointer {
    shared: Arc<Shared>,
    nudges: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to `path`, starts the thread, and hooks the writer's commits.
    pub fn start(path: &Path, writer: &mut Connection) -> Result<Self, StartError> {
        let connection = Connection::open(path)?;
        // `RESTART` waits this long for the writer's transaction and for readers of older
        // snapshots (blocking the next write meanwhile), then gives up until next time.
        connection.execute_batch("PRAGMA busy_timeout = 1000; PRAGMA synchronous = FULL;")?;
        let shared = Arc::new(Shared::default());
        let (nudges, received) = sync_channel(1);
        // Replaces SQLite's automatic checkpoint (itself a commit hook).
        writer.wal_hook(Some({
            let shared = Arc::clone(&shared);
            let nudges = nudges.clone();
            move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
                let pages = i64::from(pages);
                shared.log.store(pages, Ordering::Release);
                // An error here would fail the COMMIT that called the hook, although the
                // transaction is committed: like SQLite's own automatic checkpoint, a failed
                // one (busy: the checkpoint thread is copying) is left for the next commit.
                if pages >= WRITER_BACKSTOP_PAGES
                    && let Err(error) = wal.checkpoint_v2(CheckpointMode::PASSIVE)
                {
                    tracing::debug!(%error, "the writer's backstop checkpoint did not run");
                }
                // A nudge already waiting covers this one.
                let _ = nudges.try_send(());
                Ok(())
            }
        }))?;
        let thread = std::thread::Builder::new()
            .name("tfr-sqlite-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&connection, &shared, &received)
            })?;
        Ok(Self {
            shared,
            nudges: Some(nudges),
            thread: Some(thread),
        })
    }

    /// Called by the writer before each transaction: when the checkpoint thread has copied
    /// all but the last few frames of the log, copies those and lets this transaction start
    /// the log over, so that it does not grow without end under sustained writes.
    pub fn before_write(&self, writer: &Connection) {
        if !self.shared.restart.swap(false, Ordering::AcqRel) {
            return;
        }
        // Waiting for readers of older snapshots holds every queued write: wait briefly, and
        // leave it to the next checkpoint when a long read is in the way.
        let waited = writer
            .busy_timeout(WRITER_RESTART_WAIT)
            .map(|()| restart(writer));
        if !matches!(waited, Ok(true)) {
            tracing::debug!("the write-ahead log could not start over yet");
        }
        if let Err(error) = writer.busy_timeout(WRITER_BUSY_TIMEOUT) {
            tracing::warn!(%error, "cannot restore the writer's busy timeout");
        }
    }

    /// Stops the thread once its current checkpoint (if any) is done. The writer's hook keeps
    /// a sender, so the thread is told through the log length instead of the channel.
    pub fn stop(&mut self) {
        self.shared.log.store(STOP, Ordering::Release);
        if let Some(nudges) = self.nudges.take() {
            let _ = nudges.try_send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The log length that tells the thread to stop.
const STOP: i64 = -1;

/// Why checkpointing could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start the checkpoint thread: {0}")]
    Thread(#[from] std::io::Error),
}

fn run(connection: &Connection, shared: &Shared, nudges: &Receiver<()>) {
    // The log's length when it was last copied: growth is counted from there.
    let mut copied_at = 0;
    while nudges.recv().is_ok() {
        let idle = loop {
            let pages = shared.log.load(Ordering::Acquire);
            if pages == STOP {
                return;
            }
            if pages < copied_at {
                // The log started over.
                copied_at = 0;
            }
            if pages - copied_at >= LARGE_LOG_PAGES {
                break false;
            }
            match nudges.recv_timeout(IDLE) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break true,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match copy(connection, shared) {
            Ok(copied) => copied_at = copied,
            // The next commit tries again, and the writer's backstop stays.
            Err(error) => {
                tracing::warn!(%error, "background checkpoint failed");
                continue;
            }
        }
        // Starting the log over takes the write lock: while the writer is idle this thread
        // takes it; under load the writer does it between two transactions, as it would
        // otherwise win every race for the lock.
        if idle && restart(connection) {
            copied_at = 0;
        } else {
            shared.restart.store(true, Ordering::Release);
        }
    }
}

/// Copies the log into the database file without blocking anyone (`PASSIVE`), again while
/// commits keep adding more than [`SMALL_REMAINDER`] pages meanwhile (at most
/// [`MAX_PASSES`] times); returns how many frames are copied.
fn copy(connection: &Connection, shared: &Shared) -> rusqlite::Result<i64> {
    let mut copied = 0;
    for _ in 0..MAX_PASSES {
        copied = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(2)
        })?;
        if shared.log.load(Ordering::Acquire) - copied <= SMALL_REMAINDER {
            break;
        }
    }
    Ok(copied)
}

/// Copies what is left of the log and lets the next write start it over; false when busy (a
/// transaction or an old snapshot outlasted the busy timeout: the next checkpoint retries).
fn restart(connection: &Connection) -> bool {
    match connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
        row.get::<_, i64>(0)
    }) {
        Ok(busy) => busy == 0,
        Err(error) => {
            tracing::warn!(%error, "restarting the write-ahead log failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn copies_the_log_once_the_writer_is_idle_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT);")
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let mut checkpointer = Checkpointer::start(&path, &mut writer).unwrap();
        for _ in 0..50 {
            writer
                .execute("INSERT INTO t (x) VALUES (?1)", ["y".repeat(1000)])
                .unwrap();
        }
        // The hook replaced SQLite's automatic checkpoint; this thread copies the rows into
        // the database file once the writer pauses.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < before + 50 * 1000 {
            assert!(Instant::now() < deadline, "the database file never grew");
            std::thread::sleep(Duration::from_millis(20));
        }
        checkpointer.stop();
        // The log was restarted: the next write starts it over.
        writer
            .execute("INSERT INTO t (x) VALUES ('z')", [])
            .unwrap();
        let (_, log): (i64, i64) = writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert!(log <= 2, "the log holds {log} frames after a restart");
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 51);
    }
}
