//! Histogram buckets cut into the coarsest rollup units that fit them.
//!
//! [`Store::bucket_counts`](crate::Store::bucket_counts) is defined as quarter counts summed
//! into buckets ([`bucket_counts_from_quarters`](crate::bucket_counts_from_quarters)). Read
//! that way, two years by day and kind is ~325,000 quarter rows. A store that also counts
//! events per UTC hour and day cuts each bucket into the largest units that lie wholly inside
//! it ([`Plan`]) and reads each level once over merged ranges ([`merged`]): UTC days over two
//! years are one range of daily rows, a few thousand rows. Both stores read their rollups
//! this way; only the SQL differs.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tfr_core::stats::QUARTER_MICROS;

use crate::{BucketCount, EventFilter};

/// Quarters in an hour, hours in a day.
pub const QUARTERS_PER_HOUR: i64 = 4;
pub const HOURS_PER_DAY: i64 = 24;

/// Units `[start, end)` of one rollup level, all inside bucket `bucket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: i64,
    pub end: i64,
    pub bucket: usize,
}

/// What one bucket is read from: whole units of each level (quarters, hours, days, all
/// counted from the Unix epoch in UTC and floored), and microsecond ranges `[start, end)` inside a quarter, counted
/// from the events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub levels: [Vec<Piece>; 3],
    pub scans: Vec<(i64, i64, usize)>,
}

fn ceil_div(value: i64, unit: i64) -> i64 {
    value.div_euclid(unit) + i64::from(value.rem_euclid(unit) != 0)
}

fn push(pieces: &mut Vec<Piece>, start: i64, end: i64, bucket: usize) {
    if start < end {
        pieces.push(Piece { start, end, bucket });
    }
}

impl Plan {
    /// Cuts the events of bucket `bucket`, `[lo, hi)` in microseconds, into: the partial
    /// quarters at its ends (scans), whole quarters up to the next whole hour, whole hours up
    /// to the next whole UTC day, whole days, then hours, then quarters.
    fn add_bucket(&mut self, bucket: usize, lo: i64, hi: i64) {
        if lo >= hi {
            return;
        }
        let first_quarter = ceil_div(lo, QUARTER_MICROS);
        let end_quarter = hi.div_euclid(QUARTER_MICROS);
        if first_quarter >= end_quarter {
            self.scans.push((lo, hi, bucket));
            return;
        }
        if lo < first_quarter * QUARTER_MICROS {
            self.scans
                .push((lo, first_quarter * QUARTER_MICROS, bucket));
        }
        if end_quarter * QUARTER_MICROS < hi {
            self.scans.push((end_quarter * QUARTER_MICROS, hi, bucket));
        }
        let [quarters, hours, days] = &mut self.levels;
        let first_hour = ceil_div(first_quarter, QUARTERS_PER_HOUR);
        let end_hour = end_quarter.div_euclid(QUARTERS_PER_HOUR);
        if first_hour >= end_hour {
            push(quarters, first_quarter, end_quarter, bucket);
            return;
        }
        push(
            quarters,
            first_quarter,
            first_hour * QUARTERS_PER_HOUR,
            bucket,
        );
        let first_day = ceil_div(first_hour, HOURS_PER_DAY);
        let end_day = end_hour.div_euclid(HOURS_PER_DAY);
        if first_day >= end_day {
            push(hours, first_hour, end_hour, bucket);
        } else {
            push(hours, first_hour, first_day * HOURS_PER_DAY, bucket);
            push(days, first_day, end_day, bucket);
            push(hours, end_day * HOURS_PER_DAY, end_hour, bucket);
        }
        push(quarters, end_hour * QUARTERS_PER_HOUR, end_quarter, bucket);
    }

    /// The plan of every bucket. Counting is by quarter ([`crate::bucket_counts_from_quarters`]), so
    /// a bucket starts at its start rounded up to a quarter, and not before the filter's
    /// `from`; it ends where the next starts, the last at the filter's `to` (`end`: past the
    /// last representable instant when there is none).
    pub fn new(filter: &EventFilter, starts: &[Timestamp], end: i64) -> Self {
        let from = filter.from.map_or(i64::MIN, |from| from.as_microsecond());
        let to = filter.to.map_or(end, |to| to.as_microsecond());
        let edges: Vec<i64> = starts
            .iter()
            .map(|start| ceil_div(start.as_microsecond(), QUARTER_MICROS) * QUARTER_MICROS)
            .collect();
        let mut plan = Self::default();
        for (bucket, edge) in edges.iter().enumerate() {
            let lo = (*edge).max(from);
            let hi = edges.get(bucket + 1).map_or(to, |next| (*next).min(to));
            plan.add_bucket(bucket, lo, hi);
        }
        plan
    }

    /// The plan of histogram buckets `starts` under `filter`, to the end of time when the
    /// filter has no `to`; `None` when `starts` are not ascending (not a histogram's buckets:
    /// keep to the definition, whatever it makes of them).
    pub fn of_buckets(filter: &EventFilter, starts: &[Timestamp]) -> Option<Self> {
        if starts.windows(2).any(|pair| pair[0] > pair[1]) {
            return None;
        }
        let end = Timestamp::MAX.as_microsecond().saturating_add(1);
        Some(Self::new(filter, starts, end))
    }

    /// The partial quarters to count from the events ([`Plan::scans`]), each as `filter`
    /// narrowed to it, with its bucket.
    pub fn scan_filters<'a>(
        &'a self,
        filter: &'a EventFilter,
    ) -> impl Iterator<Item = (EventFilter, usize)> + 'a {
        let last = Timestamp::MAX.as_microsecond();
        let instant = |micros: i64| Timestamp::from_microsecond(micros).ok();
        self.scans.iter().map(move |&(start, end, bucket)| {
            let edge = EventFilter {
                from: instant(start),
                to: if end > last { None } else { instant(end) },
                ..filter.clone()
            };
            (edge, bucket)
        })
    }
}

/// Merges pieces that follow each other into ranges `[start, end)`.
pub fn merged(pieces: &[Piece]) -> Vec<(i64, i64)> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for piece in pieces {
        match ranges.last_mut() {
            Some(last) if last.1 == piece.start => last.1 = piece.end,
            _ => ranges.push((piece.start, piece.end)),
        }
    }
    ranges
}

/// The piece of `pieces` (sorted, as a [`Plan`] level holds them) that holds unit `at`.
pub fn piece_at(pieces: &[Piece], at: i64) -> Option<&Piece> {
    pieces
        .partition_point(|piece| piece.start <= at)
        .checked_sub(1)
        .and_then(|index| pieces.get(index))
        .filter(|piece| at < piece.end)
}

/// Counts added up per bucket and group, then listed as [`Store::bucket_counts`] returns
/// them: by bucket, then group, without zeros.
///
/// [`Store::bucket_counts`]: crate::Store::bucket_counts
#[derive(Debug, Default)]
pub struct Sums(BTreeMap<(usize, Option<String>), u64>);

impl Sums {
    pub fn add(&mut self, bucket: usize, group: Option<String>, count: u64) {
        *self.0.entry((bucket, group)).or_default() += count;
    }

    pub fn into_counts(self) -> Vec<BucketCount> {
        self.0
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|((bucket, group), count)| BucketCount {
                bucket,
                group,
                count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = QUARTERS_PER_HOUR * QUARTER_MICROS;
    const DAY: i64 = HOURS_PER_DAY * HOUR;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn range(from: &str, to: &str) -> EventFilter {
        EventFilter {
            from: Some(at(from)),
            to: Some(at(to)),
            ..EventFilter::all(at("2026-01-01T00:00:00Z"))
        }
    }

    fn piece(start: i64, end: i64, bucket: usize) -> Piece {
        Piece { start, end, bucket }
    }

    /// Daily UTC buckets over two years from and to mid-quarter instants: one range of days,
    /// at most two of hours and of quarters, and the two partial quarters from the events.
    #[test]
    fn utc_days_read_one_range_of_days() {
        let filter = range("2024-03-10T10:07:00Z", "2026-03-10T17:52:30Z");
        let first_day = at("2024-03-10T00:00:00Z").as_microsecond() / DAY;
        let starts: Vec<Timestamp> = (0..=730)
            .map(|i| Timestamp::from_microsecond((first_day + i) * DAY).expect("a day"))
            .collect();
        let plan = Plan::new(&filter, &starts, i64::MAX);
        let [quarters, hours, days] = &plan.levels;
        assert_eq!(merged(days), [(first_day + 1, first_day + 730)]);
        assert_eq!(days.len(), 729);
        assert_eq!(merged(hours).len(), 2, "{hours:?}");
        assert_eq!(merged(quarters).len(), 2, "{quarters:?}");
        let from = filter.from.expect("from").as_microsecond();
        let to = filter.to.expect("to").as_microsecond();
        assert_eq!(
            plan.scans,
            [
                (
                    from,
                    from.div_euclid(QUARTER_MICROS) * QUARTER_MICROS + QUARTER_MICROS,
                    0
                ),
                (to.div_euclid(QUARTER_MICROS) * QUARTER_MICROS, to, 730),
            ]
        );
        // The first bucket: 10:15..11:00 in quarters, 11:00..24:00 in hours.
        assert_eq!(quarters[0].bucket, 0);
        assert_eq!(hours[0], piece(first_day * 24 + 11, first_day * 24 + 24, 0));
    }

    /// Local days of a +05:30 zone start at 18:30 UTC: half an hour of quarters at each end,
    /// hours up to and from midnight UTC, and no whole UTC day; a week holds whole days.
    #[test]
    fn offset_days_and_weeks_cut_at_half_hours() {
        let start = at("2025-12-31T18:30:00Z").as_microsecond();
        let filter = EventFilter::all(at("2026-01-01T00:00:00Z"));
        let starts = [
            Timestamp::from_microsecond(start).expect("a time"),
            Timestamp::from_microsecond(start + DAY).expect("a time"),
            Timestamp::from_microsecond(start + 8 * DAY).expect("a time"),
        ];
        let plan = Plan::new(&filter, &starts, start + 9 * DAY);
        let q = start / QUARTER_MICROS;
        let h = start.div_euclid(HOUR); // 18:00
        let d = start.div_euclid(DAY);
        let [quarters, hours, days] = &plan.levels;
        assert_eq!(
            quarters,
            &[
                piece(q, q + 2, 0),
                piece(q + 94, q + 96, 0),
                piece(q + 96, q + 98, 1),
                piece(q + 8 * 96 - 2, q + 8 * 96, 1),
                piece(q + 8 * 96, q + 8 * 96 + 2, 2),
                piece(q + 9 * 96 - 2, q + 9 * 96, 2),
            ]
        );
        assert_eq!(
            hours,
            &[
                piece(h + 1, h + 24, 0),
                piece(h + 25, h + 30, 1),
                piece(h + 8 * 24 - 18, h + 8 * 24, 1),
                piece(h + 8 * 24 + 1, h + 9 * 24, 2),
            ]
        );
        assert_eq!(days, &[piece(d + 2, d + 8, 1)]);
        assert!(plan.scans.is_empty());
        assert_eq!(
            merged(quarters),
            [
                (q, q + 2),
                (q + 94, q + 98),
                (q + 8 * 96 - 2, q + 8 * 96 + 2),
                (q + 9 * 96 - 2, q + 9 * 96)
            ]
        );
    }

    #[test]
    fn a_bucket_inside_one_quarter_is_scanned() {
        let filter = range("2026-01-01T10:01:00Z", "2026-01-01T10:14:00Z");
        let starts = [at("2026-01-01T10:00:00Z")];
        let plan = Plan::new(&filter, &starts, i64::MAX);
        let from = filter.from.expect("from").as_microsecond();
        let to = filter.to.expect("to").as_microsecond();
        assert_eq!(plan.scans, [(from, to, 0)]);
        assert!(plan.levels.iter().all(Vec::is_empty));
    }

    #[test]
    fn starts_inside_quarters_round_up_and_before_1970_floor() {
        // -00:20 and +00:07 around the epoch: buckets from -00:15 and from +00:15.
        let filter = range("1969-12-31T22:00:00Z", "1970-01-01T02:00:00Z");
        let starts = [at("1969-12-31T23:40:00Z"), at("1970-01-01T00:07:00Z")];
        let plan = Plan::new(&filter, &starts, i64::MAX);
        let [quarters, hours, days] = &plan.levels;
        assert_eq!(quarters, &[piece(-1, 1, 0), piece(1, 4, 1)]);
        assert_eq!(hours, &[piece(1, 2, 1)]);
        assert!(days.is_empty());
        assert!(plan.scans.is_empty());
        assert_eq!(ceil_div(-1, 4), 0);
        assert_eq!(ceil_div(-4, 4), -1);
        assert_eq!(ceil_div(-5, 4), -1);
        assert_eq!(ceil_div(5, 4), 2);
    }
}
