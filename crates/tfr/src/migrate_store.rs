//! `tfr migrate-store --from ./tfr-data --to postgres://...`: moves a whole history from the
//! embedded SQLite store to PostgreSQL, working on both stores directly (not over HTTP).
//!
//! Every event keeps its id, times (`recorded_at` too), submitter, tags, links, diff and the
//! digest idempotency compares, and the events keep their order. The destination skips what it
//! already holds (same id or idempotency key), so an interrupted run is simply run again, and
//! a run after more events reached the SQLite store copies only those.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tfr_store::{InsertRecord, MAX_BATCH, Store, StreamPosition};
use tfr_store_postgres::{PostgresOptions, PostgresStore};
use tfr_store_sqlite::{DATABASE_FILE, SqliteStore};

use crate::store::{is_postgres_url, redact};

/// Flags of `tfr migrate-store`.
#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// Data directory of the SQLite store to copy (what `tfr serve --data` was given).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,

    /// PostgreSQL URL of the store to fill; its schema is created or brought up to date first.
    #[arg(
        long,
        value_name = "URL",
        env = "TFR_DATABASE_URL",
        hide_env_values = true
    )]
    to: String,

    /// Events per transaction (fewer when they are large: at most about 16 MiB of text).
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH as u64))]
    batch: u64,
}

pub async fn run(args: MigrateStoreArgs) -> anyhow::Result<ExitCode> {
    if !is_postgres_url(&args.to) {
        bail!(
            "--to '{}': the destination must be a PostgreSQL URL (postgres://...)",
            redact(&args.to)
        );
    }
    let database = args.from.join(DATABASE_FILE);
    if !database.is_file() {
        bail!(
            "--from {}: no tfr store there (expected {})",
            args.from.display(),
            database.display()
        );
    }
    let source = SqliteStore::open(&args.from)
        .with_context(|| format!("cannot open the store in {}", args.from.display()))?;
    let options = PostgresOptions {
        pool_size: 2,
        ..PostgresOptions::default()
    };
    let destination = PostgresStore::open(&args.to, &options)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(&args.to)))?;
    let moved = copy(&source, &destination, args.batch).await;
    let held = destination.count().await;
    source
        .shutdown()
        .await
        .context("closing the SQLite store")?;
    destination
        .shutdown()
        .await
        .context("closing the PostgreSQL store")?;
    let (stored, skipped) = moved?;
    println!(
        "copied {stored} events to {} ({skipped} were already there); it holds {} events",
        redact(&args.to),
        held.context("counting the PostgreSQL store")?
    );
    Ok(ExitCode::SUCCESS)
}

/// A transaction holds at most about this much text (diffs can weigh a megabyte each).
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Roughly how much text an event carries (its large fields).
fn size_of(record: &InsertRecord) -> usize {
    let event = &record.event;
    event.title.len()
        + event.description.as_ref().map_or(0, String::len)
        + event.diff.as_ref().map_or(0, String::len)
}

/// Copies everything, in stored order, batch by batch; returns (stored, skipped).
async fn copy(
    source: &SqliteStore,
    destination: &PostgresStore,
    batch: u64,
) -> anyhow::Result<(u64, u64)> {
    let total = source.count().await.context("counting the SQLite store")?;
    let progress = progress_bar(total);
    let batch = usize::try_from(batch).unwrap_or(MAX_BATCH);
    let (mut stored, mut skipped) = (0, 0);
    let mut after = StreamPosition(0);
    loop {
        let records = source
            .records_after(after, batch)
            .await
            .context("reading the SQLite store")?;
        let Some((last, _)) = records.last() else {
            break;
        };
        after = *last;
        let mut chunk = Vec::new();
        let mut bytes = 0;
        let mut records = records.into_iter().map(|(_, record)| record).peekable();
        while let Some(record) = records.next() {
            bytes += size_of(&record);
            chunk.push(record);
            if records.peek().is_some() && bytes < MAX_BATCH_BYTES {
                continue;
            }
            let count = chunk.len() as u64;
            let report = destination
                .import(std::mem::take(&mut chunk))
                .await
                .with_context(|| format!("writing to PostgreSQL after {stored} events"))?;
            stored += report.stored;
            skipped += report.skipped;
            bytes = 0;
            progress.inc(count);
        }
    }
    progress.finish_and_clear();
    Ok((stored, skipped))
}

/// A progress bar on a terminal; nothing when stderr is a file or a pipe.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {human_pos}/{human_len} events ({eta})")
    {
        bar.set_style(style);
    }
    bar
}
