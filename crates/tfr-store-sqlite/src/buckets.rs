//! Histogram buckets from the coarsest rollups that fit them (the plan is
//! [`tfr_store::buckets::Plan`]): whole UTC days, hours and quarters from the rollups of
//! migrations 2 and 5, the partial quarters at the ends from the events.

use jiff::Timestamp;
use rusqlite::Connection;
use tfr_core::stats::GroupField;
use tfr_store::buckets::{Plan, Sums, merged, piece_at};
use tfr_store::{BucketCount, EventFilter, bucket_counts_from_quarters};

use crate::rows::ROLLUP_LEVELS;
use crate::{rollup_quarter_counts, scan_quarter_counts};

/// Counts per bucket for a filter with no query terms (only a time range): equal to
/// [`bucket_counts_from_quarters`] of [`rollup_quarter_counts`], read from whole days, hours
/// and quarters of the rollups where the buckets hold them, and the partial quarters at the
/// range's ends from the events.
pub(crate) fn rollup_bucket_counts(
    connection: &Connection,
    filter: &EventFilter,
    group: Option<GroupField>,
    starts: &[Timestamp],
) -> rusqlite::Result<Vec<BucketCount>> {
    let Some(plan) = Plan::of_buckets(filter, starts) else {
        return Ok(bucket_counts_from_quarters(
            rollup_quarter_counts(connection, filter, group)?,
            starts,
        ));
    };
    let mut sums = Sums::default();
    for (edge, bucket) in plan.scan_filters(filter) {
        for count in scan_quarter_counts(connection, &edge, group)? {
            sums.add(bucket, count.group, count.count);
        }
    }
    let dimension = group.map_or("", GroupField::name);
    for ((table, unit, _), pieces) in ROLLUP_LEVELS.iter().zip(&plan.levels) {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {unit}, value, count FROM {table} \
             WHERE dimension = ?1 AND {unit} >= ?2 AND {unit} < ?3 AND count > 0"
        ))?;
        for (start, end) in merged(pieces) {
            let mut rows = statement.query((dimension, start, end))?;
            while let Some(row) = rows.next()? {
                let at: i64 = row.get(0)?;
                let value: String = row.get(1)?;
                let count = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
                let Some(piece) = piece_at(pieces, at) else {
                    continue;
                };
                let group = (group.is_some() && !value.is_empty()).then_some(value);
                sums.add(piece.bucket, group, count);
            }
        }
    }
    Ok(sums.into_counts())
}
