//! `tfr log`: search events, newest first, as a table for people or NDJSON for scripts.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use tfr_core::Event;

use super::http::{Api, ApiError};
use super::{
    ClientOptions, build_query, format_utc, ignore_broken_pipe, parse_bound, sanitize_for_terminal,
};

/// The most the server returns in one page (`limit` is 1..=500); larger `--limit`s follow
/// the cursor.
pub const MAX_PAGE: u64 = 500;

/// Flags of `tfr log`.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Query (design §3), e.g. `system:player kind:deploy "rate limit"`; several words are
    /// joined with spaces. With a negated term, quote the query or end the options
    /// with `--`: `tfr log -- system:player -kind:deploy`.
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    /// Only events of the last DURATION, e.g. 30m, 12h, 7d, 2w (adds `since:` to the query).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// Only events at or after this time (a date or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// Only events before this time (a date or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// How many events to show at most.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,

    /// One event JSON per line (NDJSON) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Keep running and print each new matching event as it is stored (like `tail -f`). The
    /// events already there are then shown oldest first, so the newest is last.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Deserialize)]
struct Page {
    events: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// Runs `tfr log`.
pub async fn run(args: LogArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    ignore_broken_pipe(log(&args, options).await)
}

async fn log(args: &LogArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    if let Some(since) = &args.since {
        tfr_core::time::parse_duration(since).map_err(|m| anyhow::anyhow!("--since: {m}"))?;
    }
    let from = args
        .from
        .as_deref()
        .map(|t| parse_bound("--from", t))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| parse_bound("--to", t))
        .transpose()?;
    let from = from.map(|t| t.to_string()).unwrap_or_default();
    let to = to.map(|t| t.to_string()).unwrap_or_default();
    let query = build_query(&args.query, args.since.as_deref());

    let api = Api::new(options)?;
    let mut stdout = std::io::stdout().lock();
    let mut table: Option<Table> = None;
    let mut remaining = args.limit;
    let mut cursor = String::new();
    let mut shown: u64 = 0;
    let now = tfr_core::time::now();
    // With --follow, the history is printed oldest first once all of it is read.
    let mut history: Vec<Value> = Vec::new();
    while remaining > 0 {
        let limit = remaining.min(MAX_PAGE).to_string();
        let params = [
            ("q", query.as_str()),
            ("from", from.as_str()),
            ("to", to.as_str()),
            ("limit", limit.as_str()),
            ("cursor", cursor.as_str()),
        ];
        let answer = api.get_json("/api/v1/events", &params).await?;
        let page: Page = serde_json::from_value(answer).map_err(|error| ApiError::BadResponse {
            url: format!("{}/api/v1/events", api.server()),
            message: format!("not a page of events: {error}"),
        })?;
        let take = usize::try_from(remaining).unwrap_or(usize::MAX);
        let events = &page.events[..page.events.len().min(take)];
        if args.follow {
            history.extend_from_slice(events);
        } else if args.json {
            for raw in events {
                serde_json::to_writer(&mut stdout, raw)?;
                writeln!(stdout)?;
            }
        } else {
            let rows = events
                .iter()
                .map(|raw| {
                    serde_json::from_value::<Event>(raw.clone())
                        .map(|event| Row::new(&event, now))
                        .context("the server sent an event tfr cannot read")
                })
                .collect::<anyhow::Result<Vec<Row>>>()?;
            let table = table.get_or_insert_with(|| Table::fit(&rows));
            if shown == 0 && !rows.is_empty() {
                writeln!(stdout, "{}", table.header())?;
            }
            for row in &rows {
                writeln!(stdout, "{}", table.line(row))?;
            }
        }
        let count = events.len() as u64;
        shown += count;
        remaining = remaining.saturating_sub(count);
        stdout.flush()?;
        match page.next_cursor {
            Some(next) if !next.is_empty() && !page.events.is_empty() => cursor = next,
            _ => break,
        }
    }
    if args.follow {
        history.reverse();
        let mut printer = Printer::new(args.json, &history, now)?;
        for raw in &history {
            printer.print(&mut stdout, raw)?;
        }
        drop(stdout);
        return follow(&api, &query, printer).await;
    }
    if shown == 0 {
        eprintln!("no events match");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints events one at a time, as a table row or a JSON line.
struct Printer {
    json: bool,
    table: Table,
    header_printed: bool,
}

impl Printer {
    fn new(json: bool, sample: &[Value], now: Timestamp) -> anyhow::Result<Self> {
        let rows = sample
            .iter()
            .map(|raw| read_event(raw).map(|event| Row::new(&event, now)))
            .collect::<anyhow::Result<Vec<Row>>>()?;
        Ok(Self {
            json,
            table: Table::fit(&rows),
            header_printed: false,
        })
    }

    fn print(&mut self, out: &mut impl Write, raw: &Value) -> anyhow::Result<()> {
        if self.json {
            serde_json::to_writer(&mut *out, raw)?;
            writeln!(out)?;
        } else {
            let row = Row::new(&read_event(raw)?, tfr_core::time::now());
            if !self.header_printed {
                writeln!(out, "{}", self.table.header())?;
                self.header_printed = true;
            }
            writeln!(out, "{}", self.table.line(&row))?;
        }
        out.flush()?;
        Ok(())
    }
}

fn read_event(raw: &Value) -> anyhow::Result<Event> {
    serde_json::from_value::<Event>(raw.clone()).context("the server sent an event tfr cannot read")
}

/// Tails the live stream until interrupted, reconnecting (from the last event seen, so none
/// is missed) when the connection drops.
async fn follow(api: &Api, query: &str, mut printer: Printer) -> anyhow::Result<ExitCode> {
    use futures_util::StreamExt;
    let mut last_id: Option<String> = None;
    loop {
        let response = api.open_event_stream(query, last_id.as_deref()).await?;
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some((id, data)) = parse_sse_block(&block) {
                    let raw: Value = serde_json::from_str(&data)
                        .context("the server sent a stream message tfr cannot read")?;
                    printer.print(&mut std::io::stdout().lock(), &raw)?;
                    last_id = Some(id);
                }
            }
        }
        eprintln!("tfr: the stream was interrupted; reconnecting");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The `id` and `data` of one Server-Sent Events message; `None` for comments (heartbeats).
pub fn parse_sse_block(block: &str) -> Option<(String, String)> {
    let mut id = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim_start().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            data = Some(match data {
                Some(previous) => format!("{previous}\n{value}"),
                None => value.to_owned(),
            });
        }
    }
    Some((id?, data?))
}

/// One event as the table shows it; every cell already made safe for a terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub age: String,
    pub time: String,
    pub kind: String,
    pub system: String,
    pub environment: String,
    pub author: String,
    pub title: String,
}

impl Row {
    /// The cells of `event`, its age relative to `now`; `-` for an absent environment.
    pub fn new(event: &Event, now: Timestamp) -> Self {
        let age = now
            .as_second()
            .saturating_sub(event.occurred_at.as_second());
        Self {
            age: tfr_core::time::humanize_seconds(age),
            time: format_utc(event.occurred_at),
            kind: sanitize_for_terminal(&event.kind),
            system: sanitize_for_terminal(&event.system),
            environment: event
                .environment
                .as_deref()
                .map_or_else(|| "-".to_owned(), sanitize_for_terminal),
            author: sanitize_for_terminal(&event.author),
            title: sanitize_for_terminal(&event.title),
        }
    }

    fn fixed_cells(&self) -> [&str; 6] {
        [
            &self.age,
            &self.time,
            &self.kind,
            &self.system,
            &self.environment,
            &self.author,
        ]
    }
}

const HEADERS: [&str; 6] = ["WHEN", "TIME (UTC)", "KIND", "SYSTEM", "ENV", "AUTHOR"];
const TITLE_HEADER: &str = "TITLE";

/// The widest each column may grow, so one long system name cannot push titles off screen.
const MAX_WIDTHS: [usize; 6] = [9, 20, 14, 20, 12, 16];

/// Titles longer than this are cut with "…": a table line should fit a wide terminal.
pub const MAX_TITLE_CHARS: usize = 80;

/// Column widths, fitted once on the first page and kept for the following ones so the
/// columns stay aligned while later pages stream in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    widths: [usize; 6],
}

impl Table {
    /// Widths that fit `rows` and the headers, within [`MAX_WIDTHS`].
    pub fn fit(rows: &[Row]) -> Self {
        let mut widths = HEADERS.map(|header| header.chars().count());
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row.fixed_cells()) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for (width, max) in widths.iter_mut().zip(MAX_WIDTHS) {
            *width = (*width).min(max);
        }
        Self { widths }
    }

    /// The header line.
    pub fn header(&self) -> String {
        self.join(HEADERS, TITLE_HEADER)
    }

    /// One row, each cell padded or cut to its column, the title cut at
    /// [`MAX_TITLE_CHARS`].
    pub fn line(&self, row: &Row) -> String {
        self.join(row.fixed_cells(), &truncate(&row.title, MAX_TITLE_CHARS))
    }

    fn join(&self, cells: [&str; 6], title: &str) -> String {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(self.widths) {
            let cell = truncate(cell, width);
            line.push_str(&format!("{cell:<width$}  "));
        }
        line.push_str(title);
        line
    }
}

/// Cuts `text` to at most `max` characters, ending with "…" when anything was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(title: &str, system: &str, environment: Option<&str>) -> Event {
        serde_json::from_value(json!({
            "id": "01938e1c-6a2b-7cc0-8000-000000000001",
            "occurred_at": "2026-11-23T10:00:00Z",
            "ended_at": null,
            "recorded_at": "2026-11-23T10:00:01Z",
            "title": title,
            "system": system,
            "author": "alice",
            "kind": "deploy",
            "environment": environment,
            "team": null,
            "source": "cli",
            "version": null,
            "description": null,
            "tags": [],
            "links": [],
            "has_diff": false,
            "attributes": null,
            "idempotency_key": null,
            "submitted_by": "anonymous"
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2026-11-26T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn rows_show_age_and_utc_time() {
        let row = Row::new(&event("Deploy player 5.2.1", "player", None), now());
        assert_eq!(row.age, "3d ago");
        assert_eq!(row.time, "2026-11-23T10:00:00Z");
        assert_eq!(row.environment, "-");
    }

    #[test]
    fn table_lines_are_aligned() {
        let rows = vec![
            Row::new(
                &event("Deploy player 5.2.1", "player", Some("production")),
                now(),
            ),
            Row::new(
                &event("Raise rate limit", "api-gateway", Some("staging")),
                now(),
            ),
        ];
        let table = Table::fit(&rows);
        assert_eq!(
            table.header(),
            "WHEN    TIME (UTC)            KIND    SYSTEM       ENV         AUTHOR  TITLE"
        );
        assert_eq!(
            table.line(&rows[0]),
            "3d ago  2026-11-23T10:00:00Z  deploy  player       production  alice   Deploy player 5.2.1"
        );
        assert_eq!(
            table.line(&rows[1]),
            "3d ago  2026-11-23T10:00:00Z  deploy  api-gateway  staging     alice   Raise rate limit"
        );
    }

    #[test]
    fn long_cells_are_cut() {
        let long_title = "x".repeat(200);
        let long_system = "s".repeat(50);
        let row = Row::new(&event(&long_title, &long_system, None), now());
        let table = Table::fit(std::slice::from_ref(&row));
        let line = table.line(&row);
        assert!(line.contains(&format!("{}…  ", "s".repeat(19))), "{line}");
        assert!(
            line.ends_with(&format!("{}…", "x".repeat(MAX_TITLE_CHARS - 1))),
            "{line}"
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("déploiement", 20), "déploiement");
        assert_eq!(truncate("déploiement", 4), "dép…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 1), "…");
    }
}
