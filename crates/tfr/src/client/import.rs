//! `tfr import`: load events from NDJSON (an export, or new events written by hand or by a
//! script) through `POST /api/v1/events/bulk`.
//!
//! Every line gets an idempotency key derived from what it is (its exported id, or a hash of
//! the line), so an import interrupted half-way can simply be run again: the lines already
//! stored come back as "already present" and nothing is created twice. The file is read as a
//! stream and sent in batches, so its size does not matter.

use std::collections::VecDeque;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::http::{Api, ApiError, BulkReport};
use super::{ClientOptions, ignore_broken_pipe};

/// A batch is also sent early once its body reaches this size, so that events with large
/// diffs do not make one request of a gigabyte.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// How many line errors are kept for the final report; beyond that only the count grows,
/// so a file of garbage cannot exhaust memory.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// Fields the server sets; an export carries them, a new event must not.
const READ_ONLY_FIELDS: [&str; 4] = ["id", "recorded_at", "submitted_by", "has_diff"];

/// Flags of `tfr import`.
#[derive(Args, Clone, Debug)]
pub struct ImportArgs {
    /// NDJSON file to read, one event per line, or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,

    /// Events per request to the bulk endpoint.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,
}

/// What one input line becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    /// An empty or whitespace-only line: skipped.
    Blank,
    /// An event object ready to send: read-only fields removed, idempotency key set.
    Event(Map<String, Value>),
    /// A line that cannot be an event (not JSON, not an object); reported, not sent.
    Invalid(String),
}

/// Turns one line of the file into an event to send. Read-only fields (`id`, `recorded_at`,
/// `submitted_by`, `has_diff`) are dropped; a line without an idempotency key gets
/// `import:<id>` when it had an id (an exported event), else `import:<sha256 of the line>`,
/// the line being trimmed of surrounding whitespace first.
pub fn prepare_line(line: &[u8]) -> Prepared {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Prepared::Blank;
    }
    let mut object = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Prepared::Invalid("not a JSON object".to_owned()),
        Err(error) => return Prepared::Invalid(format!("not JSON: {error}")),
    };
    let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
    for field in READ_ONLY_FIELDS {
        object.remove(field);
    }
    let has_key =
        matches!(object.get("idempotency_key"), Some(Value::String(key)) if !key.trim().is_empty());
    if !has_key {
        let key = match id.filter(|id| !id.trim().is_empty()) {
            Some(id) => format!("{}{id}", tfr_store::IMPORT_KEY_PREFIX),
            None => format!("{}{}", tfr_store::IMPORT_KEY_PREFIX, sha256_hex(line)),
        };
        object.insert("idempotency_key".to_owned(), Value::String(key));
    }
    Prepared::Event(object)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Events waiting to be sent, with the line of the file each came from, so the 1-based line
/// numbers of the server's bulk report map back to lines of the file.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    body: Vec<u8>,
    file_lines: Vec<u64>,
}

impl Batch {
    /// Appends an event read from line `file_line` of the file.
    pub fn push(&mut self, file_line: u64, event: &Map<String, Value>) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.body, event)?;
        self.body.push(b'\n');
        self.file_lines.push(file_line);
        Ok(())
    }

    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        self.file_lines.len()
    }

    /// Whether there is nothing left to send.
    pub fn is_empty(&self) -> bool {
        self.file_lines.is_empty()
    }

    /// The NDJSON request body: one event per line.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Size of the NDJSON body so far.
    pub fn bytes(&self) -> usize {
        self.body.len()
    }

    /// The line of the file behind line `batch_line` (1-based) of the request body.
    pub fn file_line(&self, batch_line: u64) -> Option<u64> {
        let index = usize::try_from(batch_line.checked_sub(1)?).ok()?;
        self.file_lines.get(index).copied()
    }

    /// The file lines this batch spans, for messages about the whole batch.
    pub fn span(&self) -> (u64, u64) {
        (
            self.file_lines.first().copied().unwrap_or(0),
            self.file_lines.last().copied().unwrap_or(0),
        )
    }
}

/// A line that was not stored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for LineError {
    /// `line 12: field: message`, or `line 12: message` when no field is at fault.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field.as_deref().filter(|field| !field.is_empty()) {
            Some(field) => write!(f, "line {}: {field}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// The running outcome of an import (or of `tfr demo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub created: u64,
    pub duplicates: u64,
    pub error_count: u64,
    /// The first [`MAX_REPORTED_ERRORS`] errors.
    pub errors: Vec<LineError>,
}

impl Tally {
    /// Records a refused line.
    pub fn error(&mut self, error: LineError) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
    }

    /// Adds the server's report on `batch`, mapping its line numbers back to the file.
    pub fn add_report(&mut self, report: BulkReport, batch: &Batch) {
        self.created += report.created;
        self.duplicates += report.duplicates;
        for line_error in report.errors {
            let (line, message) = match batch.file_line(line_error.line) {
                Some(line) => (line, line_error.error.message),
                // The server named a line the batch does not have: keep the error anyway.
                None => (
                    batch.span().0,
                    format!(
                        "{} (reported for line {} of a batch)",
                        line_error.error.message, line_error.line
                    ),
                ),
            };
            self.error(LineError {
                line,
                field: line_error.error.field,
                message,
            });
        }
    }

    /// `N created, N already present, N errors`.
    pub fn summary(&self) -> String {
        format!(
            "{} created, {} already present, {} errors",
            self.created, self.duplicates, self.error_count
        )
    }

    /// Prints the summary line on stdout, prefixed with `label`, then each error in line
    /// order.
    pub fn print(&self, label: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{label}: {}", self.summary())?;
        let mut errors: Vec<&LineError> = self.errors.iter().collect();
        errors.sort_by_key(|error| error.line);
        for error in &errors {
            writeln!(stdout, "{error}")?;
        }
        let unlisted = self.error_count.saturating_sub(errors.len() as u64);
        if unlisted > 0 {
            writeln!(stdout, "… and {unlisted} more errors")?;
        }
        stdout.flush()
    }
}

/// Runs `tfr import`; exits 1 when any line was refused.
pub async fn run(args: ImportArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    ignore_broken_pipe(import(&args, options).await)
}

async fn import(args: &ImportArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    let (reader, size): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) =
        if args.file == Path::new("-") {
            (Box::new(tokio::io::stdin()), None)
        } else {
            let file = tokio::fs::File::open(&args.file)
                .await
                .with_context(|| format!("cannot open {}", args.file.display()))?;
            let metadata = file.metadata().await.ok();
            let size = metadata.filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(file), size)
        };
    let progress = progress_bar(size);
    let mut api = Api::new(options)?;
    if !progress.is_hidden() {
        api = api.quiet();
    }

    let batch_size = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut tally = Tally::default();
    let mut batch = Batch::default();
    // Batches sent and not yet answered, oldest first: with two, the server parses one request
    // while it stores the other.
    let mut in_flight: VecDeque<Sending> = VecDeque::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut line_number: u64 = 0;
    // A failure to read the file (or to hold a line) stops the import once the batches in
    // flight are answered and counted.
    let mut stopped: Option<anyhow::Error> = None;
    loop {
        buffer.clear();
        let read = match reader.read_until(b'\n', &mut buffer).await {
            Ok(read) => read,
            Err(error) => {
                stopped = Some(anyhow::Error::new(error).context(format!(
                    "cannot read {} after line {line_number}",
                    args.file.display()
                )));
                break;
            }
        };
        if read == 0 {
            break;
        }
        line_number += 1;
        progress.inc(read as u64);
        match prepare_line(&buffer) {
            Prepared::Blank => {}
            Prepared::Invalid(message) => tally.error(LineError {
                line: line_number,
                field: None,
                message,
            }),
            Prepared::Event(event) => {
                if let Err(error) = batch.push(line_number, &event) {
                    stopped = Some(error);
                    break;
                }
                if batch.len() >= batch_size || batch.bytes() >= MAX_BATCH_BYTES {
                    if in_flight.len() >= IN_FLIGHT {
                        settle_oldest(&mut in_flight, &mut tally, &progress).await?;
                    }
                    in_flight.push_back(Sending::start(&api, std::mem::take(&mut batch)));
                }
            }
        }
    }
    if let Some(error) = stopped {
        while !in_flight.is_empty() {
            if let Err(failed) = settle_oldest(&mut in_flight, &mut tally, &progress).await {
                return Err(error.context(failed.to_string()));
            }
        }
        progress.finish_and_clear();
        tally.print("imported before the failure")?;
        return Err(error);
    }
    if !batch.is_empty() {
        in_flight.push_back(Sending::start(&api, batch));
    }
    while !in_flight.is_empty() {
        settle_oldest(&mut in_flight, &mut tally, &progress).await?;
    }
    progress.finish_and_clear();
    tally.print("imported")?;
    Ok(if tally.error_count > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Bulk requests sent before the first answer is awaited.
const IN_FLIGHT: usize = 2;

/// A batch on its way to the server, sent on a task of its own.
struct Sending {
    task: tokio::task::JoinHandle<(Batch, Result<BulkReport, ApiError>)>,
}

impl Sending {
    fn start(api: &Api, batch: Batch) -> Self {
        let api = api.clone();
        Self {
            task: tokio::spawn(async move {
                let result = api.post_bulk(&batch.body).await;
                (batch, result)
            }),
        }
    }

    async fn answer(self) -> anyhow::Result<(Batch, Result<BulkReport, ApiError>)> {
        self.task
            .await
            .map_err(|error| anyhow::anyhow!("sending a batch failed: {error}"))
    }
}

/// Waits for the oldest batch in flight and counts its answer. A batch the server will not
/// take at all (unreachable after retries, refused as a whole) stops the import: the batches
/// sent after it are waited for and counted too, then what was done so far is said, and that
/// running the import again is safe.
async fn settle_oldest(
    in_flight: &mut VecDeque<Sending>,
    tally: &mut Tally,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let Some(oldest) = in_flight.pop_front() else {
        return Ok(());
    };
    let (sent, result) = oldest.answer().await?;
    match result {
        Ok(report) => {
            tally.add_report(report, &sent);
            progress.set_message(tally.summary());
            Ok(())
        }
        Err(error) => {
            let mut failed = vec![not_imported(&sent, &error)];
            for later in in_flight.drain(..) {
                let (sent, result) = later.answer().await?;
                match result {
                    Ok(report) => tally.add_report(report, &sent),
                    Err(error) => failed.push(not_imported(&sent, &error)),
                }
            }
            progress.finish_and_clear();
            tally.print("imported before the failure")?;
            Err(anyhow::anyhow!(
                "{}\nThe import stopped there: later lines were not sent. Running the same import again is safe: events already stored are skipped.",
                failed.join("\n")
            ))
        }
    }
}

/// Which lines of the file a batch the server did not take held, and why.
fn not_imported(batch: &Batch, error: &ApiError) -> String {
    let (first, last) = batch.span();
    format!("lines {first}–{last} were not imported: {error}")
}

/// A progress bar on stderr, by bytes when the input's size is known (a file), else a
/// spinner counting bytes. indicatif hides it when stderr is not a terminal, so logs of
/// scripted imports stay clean.
fn progress_bar(size: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::new(size),
            "{wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        ),
        None => (ProgressBar::new_spinner(), "{spinner} {bytes} read {msg}"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::http::{BulkLineError, ErrorBody};
    use serde_json::json;

    fn event(prepared: Prepared) -> Value {
        match prepared {
            Prepared::Event(object) => Value::Object(object),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn exported_events_lose_read_only_fields_and_key_on_their_id() {
        let line = br#"{"id":"01938e1c-6a2b-7cc0-8000-000000000001","recorded_at":"2026-11-23T10:00:01Z","submitted_by":"ci","has_diff":true,"diff":"--- a","title":"t","system":"s","author":"a","idempotency_key":null}"#;
        assert_eq!(
            event(prepare_line(line)),
            json!({
                "diff": "--- a",
                "title": "t",
                "system": "s",
                "author": "a",
                "idempotency_key": "import:01938e1c-6a2b-7cc0-8000-000000000001"
            })
        );
    }

    #[test]
    fn existing_keys_are_kept() {
        let line = br#"{"id":"x","title":"t","idempotency_key":"deploy-42"}"#;
        assert_eq!(event(prepare_line(line))["idempotency_key"], "deploy-42");
        let blank_key = br#"{"title":"t","idempotency_key":"  "}"#;
        assert!(
            event(prepare_line(blank_key))["idempotency_key"]
                .as_str()
                .unwrap()
                .starts_with("import:")
        );
    }

    #[test]
    fn new_events_key_on_a_hash_of_the_line() {
        let line = br#"{"title":"t","system":"s","author":"a"}"#;
        let key = event(prepare_line(line))["idempotency_key"].clone();
        let expected = format!("import:{}", sha256_hex(line));
        assert_eq!(key, json!(expected));
        assert_eq!(expected.len(), "import:".len() + 64);
        // The same line with a line ending or padding gets the same key: re-runs match.
        let padded = b"  {\"title\":\"t\",\"system\":\"s\",\"author\":\"a\"}\r\n";
        assert_eq!(event(prepare_line(padded))["idempotency_key"], key);
        let other = br#"{"title":"u","system":"s","author":"a"}"#;
        assert_ne!(event(prepare_line(other))["idempotency_key"], key);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_lines_are_reported_not_fatal() {
        assert_eq!(prepare_line(b"\n"), Prepared::Blank);
        assert_eq!(prepare_line(b"   \r\n"), Prepared::Blank);
        assert!(
            matches!(prepare_line(b"{not json"), Prepared::Invalid(m) if m.starts_with("not JSON"))
        );
        assert_eq!(
            prepare_line(b"[1, 2]"),
            Prepared::Invalid("not a JSON object".to_owned())
        );
        assert!(matches!(prepare_line(b"\xff\xfe"), Prepared::Invalid(_)));
    }

    #[test]
    fn batch_lines_map_back_to_file_lines() {
        let mut batch = Batch::default();
        let object = Map::new();
        for line in [3, 4, 7] {
            batch.push(line, &object).unwrap();
        }
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.file_line(1), Some(3));
        assert_eq!(batch.file_line(3), Some(7));
        assert_eq!(batch.file_line(0), None);
        assert_eq!(batch.file_line(4), None);
        assert_eq!(batch.span(), (3, 7));
        assert_eq!(batch.bytes(), 9);

        let report = BulkReport {
            created: 1,
            duplicates: 1,
            errors: vec![BulkLineError {
                line: 2,
                error: ErrorBody {
                    code: "invalid_event".to_owned(),
                    message: "is required".to_owned(),
                    field: Some("system".to_owned()),
                },
            }],
        };
        let mut tally = Tally::default();
        tally.error(LineError {
            line: 1,
            field: None,
            message: "not a JSON object".to_owned(),
        });
        tally.add_report(report, &batch);
        assert_eq!(tally.summary(), "1 created, 1 already present, 2 errors");
        assert_eq!(tally.errors[0].to_string(), "line 1: not a JSON object");
        assert_eq!(tally.errors[1].to_string(), "line 4: system: is required");
    }

    #[test]
    fn reported_errors_are_capped() {
        let mut tally = Tally::default();
        for line in 0..(MAX_REPORTED_ERRORS as u64 + 5) {
            tally.error(LineError {
                line,
                field: None,
                message: "x".to_owned(),
            });
        }
        assert_eq!(tally.error_count, MAX_REPORTED_ERRORS as u64 + 5);
        assert_eq!(tally.errors.len(), MAX_REPORTED_ERRORS);
    }
}
