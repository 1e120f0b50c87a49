//! Newest-first pages filtered by words, read by walking the matches in storage order.
//!
//! Full-text row ids are row numbers (`seq`), in the order events were stored, and FTS5 reads
//! its matches in row id order, newest stored first, at no cost. Storage order is nearly time
//! order — events are mostly posted as they happen, and imports replay histories oldest first
//! — so the newest matches by time are almost always among the matches stored last. The walk
//! reads matches from the top down, a step at a time, keeps the best page so far, and stops as
//! soon as no match stored earlier can be newer than the page's last event: the largest
//! `occurred_at` among lower row numbers is known from `seq_blocks` (migration 7). It reads
//! about a page of matches whether the word is in 5% of ten million events or in 50 of
//! them, where sorting every match grows with the matches (docs/benchmarks.md).
//!
//! When storage order says little (a page far down, a range far back, a history imported
//! newest first) the walk gives up after [`BUDGET`] matches and the page is read the planner's
//! way; the result is the same, only the cost differs.

use rusqlite::Connection;
use rusqlite::types::Value;
use tfr_core::Event;
use tfr_store::{EventFilter, PageRequest};

use crate::{fts, rows, sql};

/// Matches read per step.
const STEP: i64 = 256;

/// Matches read before giving up for the planner's way.
const BUDGET: usize = 16_384;

/// Row numbers per block of `seq_blocks`: `seq >> BLOCK_SHIFT`.
const BLOCK_SHIFT: u32 = 12;

/// A block of row numbers and the range of `occurred_at` in it.
struct Block {
    block: i64,
    min: i64,
    max: i64,
}

/// Reads one newest-first page of events matching `filter`, whose positive words are `text`
/// ([`sql::positive_text`]), and `extra`; resumes after the page's
/// cursor. `None` when the walk gave up: read the page another way.
pub fn newest_first(
    connection: &Connection,
    filter: &EventFilter,
    page: &PageRequest,
    extra: Option<(&str, Vec<Value>)>,
    text: sql::PositiveText,
) -> rusqlite::Result<Option<Vec<Event>>> {
    let limit = page.limit;
    if limit == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut condition = sql::compile_with(filter, sql::TextPlan::Omit);
    if let Some((fragment, params)) = extra {
        condition.and(fragment, params);
    }
    // The newest `occurred_at` an event on this page can have.
    let mut ceiling = filter.to.map(|to| to.as_microsecond().saturating_sub(1));
    if let Some(cursor) = &page.cursor {
        let at = cursor.occurred_at.as_microsecond();
        ceiling = Some(ceiling.map_or(at, |c| c.min(at)));
        condition.and(
            "(e.occurred_at, e.id) < (?, ?)",
            [Value::Integer(at), Value::Text(cursor.id.to_string())],
        );
    }
    // One snapshot for the block ranges and every step: a commit landing in between could
    // otherwise add matches newer than the bounds read before it.
    let snapshot = connection.unchecked_transaction()?;
    // First, so the main database's snapshot is taken before the full-text index's (`fts.rs`).
    let blocks = read_blocks(&snapshot)?;
    // The largest `occurred_at` in blocks `..=i`.
    let newest_up_to: Vec<i64> = blocks
        .iter()
        .scan(i64::MIN, |newest, block| {
            *newest = (*newest).max(block.max);
            Some(*newest)
        })
        .collect();
    // Row numbers at or above `below` are done with: at first, the blocks at the top whose
    // every event is newer than the ceiling.
    let mut below = i64::MAX;
    if let Some(ceiling) = ceiling {
        for block in blocks.iter().rev() {
            if block.min <= ceiling {
                break;
            }
            below = block.block << BLOCK_SHIFT;
        }
    }
    let (diff_column, diff_join) = if page.include_diffs {
        (", d.diff", " LEFT JOIN event_diffs d ON d.seq = e.seq")
    } else {
        ("", "")
    };
    let statement_text = format!(
        "SELECT {}{diff_column}, c.seq FROM \
         (SELECT seq FROM ({}) ORDER BY seq DESC LIMIT ?) c \
         LEFT JOIN events e ON e.seq = c.seq AND ({}){diff_join}",
        rows::COLUMNS,
        fts::match_set(" AND {seq} < ?"),
        condition.where_sql(),
    );
    let rowid_column = rows::COLUMN_COUNT + usize::from(page.include_diffs);
    let mut statement = snapshot.prepare_cached(&statement_text)?;
    let mut best: Vec<Event> = Vec::new();
    let mut walked = 0;
    loop {
        let mut params = vec![
            Value::Text(text.expression.clone()),
            Value::Integer(below),
            Value::Integer(below),
            Value::Text(text.patterns.clone()),
            Value::Integer(STEP),
        ];
        params.extend(condition.params.iter().cloned());
        let mut read = 0;
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            read += 1;
            below = below.min(row.get::<_, i64>(rowid_column)?);
            // No event: the match does not meet the rest of the query.
            if row.get::<_, Option<String>>(0)?.is_some() {
                best.push(rows::event_from_row(row, page.include_diffs)?);
            }
        }
        best.sort_by_key(|event| std::cmp::Reverse((event.occurred_at, event.id)));
        best.truncate(limit);
        walked += read;
        if read < STEP as usize {
            // Every match was read.
            return Ok(Some(best));
        }
        if let Some(last) = best.last().filter(|_| best.len() == limit) {
            let newest_below = newest_before(&blocks, &newest_up_to, below);
            if newest_below < last.occurred_at.as_microsecond() {
                return Ok(Some(best));
            }
        }
        if walked >= BUDGET {
            return Ok(None);
        }
    }
}

/// Every block's time range, in order.
fn read_blocks(connection: &Connection) -> rusqlite::Result<Vec<Block>> {
    connection
        .prepare_cached(
            "SELECT block, min_occurred_at, max_occurred_at FROM seq_blocks ORDER BY block",
        )?
        .query_map([], |row| {
            Ok(Block {
                block: row.get(0)?,
                min: row.get(1)?,
                max: row.get(2)?,
            })
        })?
        .collect()
}

/// The largest `occurred_at` an event with a row number below `seq` can have (`i64::MIN`
/// when there is none). The block holding `seq - 1` counts whole: a bound, not the value.
fn newest_before(blocks: &[Block], newest_up_to: &[i64], seq: i64) -> i64 {
    let last_block = (seq - 1) >> BLOCK_SHIFT;
    blocks
        .partition_point(|block| block.block <= last_block)
        .checked_sub(1)
        .map_or(i64::MIN, |index| newest_up_to[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Vec<Block> {
        [(0, 5, 10), (1, 8, 30), (3, 1, 20)]
            .into_iter()
            .map(|(block, min, max)| Block { block, min, max })
            .collect()
    }

    #[test]
    fn the_newest_time_below_a_row_number_covers_every_lower_block() {
        let blocks = blocks();
        let newest = [10, 30, 30];
        assert_eq!(newest_before(&blocks, &newest, 0), i64::MIN);
        assert_eq!(newest_before(&blocks, &newest, 1), 10);
        assert_eq!(newest_before(&blocks, &newest, 4096), 10);
        assert_eq!(newest_before(&blocks, &newest, 4097), 30);
        // Block 2 has no rows: blocks 0 and 1 bound it.
        assert_eq!(newest_before(&blocks, &newest, 3 << 12), 30);
        assert_eq!(newest_before(&blocks, &newest, i64::MAX), 30);
    }
}
