//! Mapping between `events` rows and [`Event`]s.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, Row};
use tfr_core::{Event, EventId};
use tfr_store::InsertRecord;

/// The columns [`event_from_row`] reads, in order, over `events e` (and `event_diffs d` when
/// diffs are wanted).
pub const COLUMNS: &str = "e.id, e.occurred_at, e.ended_at, e.recorded_at, e.title, e.system, \
    e.author, e.kind, e.environment, e.team, e.source, e.version, e.description, e.tags, \
    e.links, e.has_diff, e.attributes, e.idempotency_key, e.submitted_by";

/// How many columns [`COLUMNS`] lists: the index of the first column after them.
pub const COLUMN_COUNT: usize = 19;

/// The `FROM` clause, with or without the diff.
pub fn from_clause(include_diffs: bool) -> &'static str {
    if include_diffs {
        "FROM events e LEFT JOIN event_diffs d ON d.seq = e.seq"
    } else {
        "FROM events e"
    }
}

/// The select list, with or without the diff.
pub fn select_list(include_diffs: bool) -> String {
    if include_diffs {
        format!("{COLUMNS}, d.diff")
    } else {
        COLUMNS.to_owned()
    }
}

fn conversion(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

fn timestamp(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let micros: i64 = row.get(index)?;
    Timestamp::from_microsecond(micros).map_err(|e| conversion(index, e.to_string()))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| conversion(index, e.to_string()))
}

/// Reads an event from a row selected with [`select_list`].
pub fn event_from_row(row: &Row<'_>, include_diffs: bool) -> rusqlite::Result<Event> {
    let id: String = row.get(0)?;
    let attributes: Option<String> = row.get(16)?;
    Ok(Event {
        id: id.parse::<EventId>().map_err(|e| conversion(0, e))?,
        occurred_at: timestamp(row, 1)?,
        ended_at: row
            .get::<_, Option<i64>>(2)?
            .map(|_| timestamp(row, 2))
            .transpose()?,
        recorded_at: timestamp(row, 3)?,
        title: row.get(4)?,
        system: row.get(5)?,
        author: row.get(6)?,
        kind: row.get(7)?,
        environment: row.get(8)?,
        team: row.get(9)?,
        source: row.get(10)?,
        version: row.get(11)?,
        description: row.get(12)?,
        tags: json(row, 13)?,
        links: json(row, 14)?,
        has_diff: row.get(15)?,
        attributes: attributes
            .map(|text| serde_json::from_str(&text).map_err(|e| conversion(16, e.to_string())))
            .transpose()?,
        idempotency_key: row.get(17)?,
        submitted_by: row.get(18)?,
        diff: if include_diffs { row.get(19)? } else { None },
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

/// The text the full-text index sees for tags: one per line, so `release:5.2` is found by
/// `release` and by `5.2`.
pub fn tags_text(tags: &[String]) -> String {
    tags.join("\n")
}

/// Inserts a new event with its tags and diff. Returns its row number.
///
/// The event is not yet counted in the rollups: [`index_new_events`] counts the new rows in
/// bulk, in the same transaction. Searches find it at once (`fts.rs`).
pub fn insert_event(connection: &Connection, record: &InsertRecord) -> rusqlite::Result<i64> {
    let event = &record.event;
    connection
        .prepare_cached(
            "INSERT INTO events (id, occurred_at, ended_at, recorded_at, title, system, author, \
             kind, environment, team, source, version, description, tags, tags_text, links, \
             has_diff, attributes, idempotency_key, content_digest, submitted_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21)",
        )?
        .execute(rusqlite::params![
            event.id.to_string(),
            event.occurred_at.as_microsecond(),
            event.ended_at.map(|t| t.as_microsecond()),
            event.recorded_at.as_microsecond(),
            event.title,
            event.system,
            event.author,
            event.kind,
            event.environment,
            event.team,
            event.source,
            event.version,
            event.description,
            to_json(&event.tags)?,
            tags_text(&event.tags),
            to_json(&event.links)?,
            event.diff.is_some(),
            event.attributes.as_ref().map(to_json).transpose()?,
            event.idempotency_key,
            record.content_digest,
            event.submitted_by,
        ])?;
    let seq = connection.last_insert_rowid();
    insert_tags(connection, seq, &event.tags)?;
    if let Some(diff) = &event.diff {
        connection
            .prepare_cached("INSERT INTO event_diffs (seq, diff) VALUES (?1, ?2)")?
            .execute((seq, diff))?;
    }
    Ok(seq)
}

/// The rollup tables by level: table, unit column, and the unit's length in microseconds.
/// Units are counted from the Unix epoch in UTC and floored (migrations 2 and 5).
pub const ROLLUP_LEVELS: [(&str, &str, i64); 3] = [
    ("rollups", "quarter", 900_000_000),
    ("rollups_hour", "hour", 3_600_000_000),
    ("rollups_day", "day", 86_400_000_000),
];

/// Adds the events with row numbers `first..=last` — all inserted with [`insert_event`] in
/// the open transaction and not yet indexed — to the rollups and the row number blocks
/// (migration 4 dropped the per-row `AFTER INSERT` triggers, which took seven upserts per
/// event). Every path that inserts into `events` calls this before anything can patch or
/// delete the rows (their delete triggers expect them counted) and before committing.
///
/// The new rows are read once and counted here, in memory: per level of the rollups
/// (quarter-hours, hours, days: [`ROLLUP_LEVELS`]), per dimension, unit and value — units and
/// values as `rollups_delete` takes them off again (migration 5) — then each count is added
/// with one upsert, in key order. Grouped in SQL (seven passes over the new rows and a sort
/// per level), the same work cost the writer ~10% more time in bulk ingest; the upserts
/// themselves, about a third of the writer's time, remain (docs/benchmarks.md). The time
/// ranges of row number blocks (`seq_blocks`, migration 7) are kept the same way. The
/// full-text index is built after the commit, by its own thread (`fts.rs`).
pub fn index_new_events(connection: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    if first > last {
        return Ok(());
    }
    let mut new_rows = Vec::new();
    {
        let mut statement = connection.prepare_cached(
            "SELECT seq, occurred_at, kind, system, author, team, environment, source \
             FROM events WHERE seq BETWEEN ?1 AND ?2",
        )?;
        let mut rows = statement.query([first, last])?;
        while let Some(row) = rows.next()? {
            // Absent optional values are counted under "".
            let optional = |index| -> rusqlite::Result<String> {
                Ok(row.get::<_, Option<String>>(index)?.unwrap_or_default())
            };
            new_rows.push(NewRow {
                seq: row.get(0)?,
                occurred_at: row.get(1)?,
                values: [
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    optional(5)?,
                    optional(6)?,
                    optional(7)?,
                ],
            });
        }
    }
    let mut counts = RollupCounts::default();
    let mut blocks: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for row in &new_rows {
        counts.add(row);
        blocks
            .entry(row.seq >> SEQ_BLOCK_BITS)
            .and_modify(|(min, max)| {
                *min = (*min).min(row.occurred_at);
                *max = (*max).max(row.occurred_at);
            })
            .or_insert((row.occurred_at, row.occurred_at));
    }
    let mut block_upsert = connection.prepare_cached(
        "INSERT INTO seq_blocks (block, min_occurred_at, max_occurred_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (block) DO UPDATE SET \
         min_occurred_at = min(min_occurred_at, excluded.min_occurred_at), \
         max_occurred_at = max(max_occurred_at, excluded.max_occurred_at)",
    )?;
    for (block, (min, max)) in blocks {
        block_upsert.execute([block, min, max])?;
    }
    for ((table, unit, _), level) in ROLLUP_LEVELS.iter().zip(&counts.levels) {
        let mut upsert = connection.prepare_cached(&format!(
            "INSERT INTO {table} (dimension, {unit}, value, count) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (dimension, {unit}, value) DO UPDATE SET count = count + excluded.count"
        ))?;
        for ((dimension, unit, value), count) in level {
            upsert.execute(rusqlite::params![dimension, unit, value, count])?;
        }
    }
    Ok(())
}

/// Row numbers per block of `seq_blocks` (migration 7): `seq >> 12`.
const SEQ_BLOCK_BITS: u32 = 12;

/// What [`index_new_events`] reads of a new row: its values in the order of [`DIMENSIONS`].
struct NewRow {
    seq: i64,
    occurred_at: i64,
    values: [String; 6],
}

/// The dimensions the rollups count events by, besides the total (`""`).
const DIMENSIONS: [&str; 6] = ["kind", "system", "author", "team", "environment", "source"];

/// New events counted per level of [`ROLLUP_LEVELS`], keyed as the tables are: dimension
/// (`""` for all events), unit, value.
#[derive(Default)]
struct RollupCounts<'a> {
    levels: [BTreeMap<(&'static str, i64, &'a str), i64>; 3],
}

impl<'a> RollupCounts<'a> {
    /// Counts one event: in the total (dimension and value `""`) and under each of its
    /// dimensions' values, at every level.
    fn add(&mut self, row: &'a NewRow) {
        for ((_, _, micros), level) in ROLLUP_LEVELS.iter().zip(&mut self.levels) {
            // Floored, as `rollups_delete` computes it: instants before 1970 fall in
            // negative units.
            let unit = row.occurred_at.div_euclid(*micros);
            *level.entry(("", unit, "")).or_default() += 1;
            for (dimension, value) in DIMENSIONS.iter().zip(&row.values) {
                *level.entry((dimension, unit, value.as_str())).or_default() += 1;
            }
        }
    }
}

/// Adds rows to the tag index; tags already there are kept.
pub fn insert_tags(connection: &Connection, seq: i64, tags: &[String]) -> rusqlite::Result<()> {
    let mut statement =
        connection.prepare_cached("INSERT OR IGNORE INTO event_tags (tag, seq) VALUES (?1, ?2)")?;
    for tag in tags {
        statement.execute((tag, seq))?;
    }
    Ok(())
}

/// Writes the mutable parts of an event (`ended_at`, tags, links) back to its row.
pub fn update_mutable(connection: &Connection, seq: i64, event: &Event) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "UPDATE events SET ended_at = ?1, tags = ?2, tags_text = ?3, links = ?4 WHERE seq = ?5",
        )?
        .execute(rusqlite::params![
            event.ended_at.map(|t| t.as_microsecond()),
            to_json(&event.tags)?,
            tags_text(&event.tags),
            to_json(&event.links)?,
            seq,
        ])?;
    insert_tags(connection, seq, &event.tags)
}
