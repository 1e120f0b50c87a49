//! Calendar arithmetic for statistics: intervals in a time zone (DST included), the fields
//! events are grouped by, and the quarter-hour grain stores count at.
//!
//! Stores count events per quarter-hour (UTC). Every time zone in use today is offset from UTC
//! by a multiple of 15 minutes, so every local hour, day, week and month starts on a
//! quarter-hour: quarter counts add up exactly into any of those buckets.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};

/// The counting grain of stores: fifteen minutes, in microseconds.
pub const QUARTER_MICROS: i64 = 15 * 60 * 1_000_000;

/// At most this many buckets in one histogram.
pub const MAX_BUCKETS: usize = 10_000;

/// The quarter-hour an instant falls in (floor division, so instants before 1970 work too).
pub fn quarter_of(at: Timestamp) -> i64 {
    at.as_microsecond().div_euclid(QUARTER_MICROS)
}

/// The instant a quarter-hour starts.
pub fn quarter_start(quarter: i64) -> Timestamp {
    Timestamp::from_microsecond(quarter.saturating_mul(QUARTER_MICROS)).unwrap_or(Timestamp::MAX)
}

/// The width of a histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    /// Weeks start on Monday (ISO 8601).
    Week,
    Month,
}

impl Interval {
    pub fn name(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// The start of the bucket holding `at`, in `tz`.
    pub fn floor(self, at: &ZonedDateTime) -> Result<ZonedDateTime, String> {
        let error = |e: jiff::Error| e.to_string();
        match self {
            Interval::Hour => {
                // Local hours can be 30 or 45 minutes off UTC hours: floor in local time.
                let local = at.datetime();
                let hour_start = local.date().at(local.hour(), 0, 0, 0);
                at.time_zone()
                    .to_ambiguous_zoned_datetime(hour_start)
                    .compatible()
                    .map_err(error)
            }
            Interval::Day => at.start_of_day().map_err(error),
            Interval::Week => {
                let back = i64::from(at.weekday().to_monday_zero_offset());
                at.start_of_day()
                    .and_then(|day| day.checked_sub(back.days()))
                    .and_then(|monday| monday.start_of_day())
                    .map_err(error)
            }
            Interval::Month => at
                .first_of_month()
                .and_then(|first| first.start_of_day())
                .map_err(error),
        }
    }

    /// The start of the next bucket after the one starting at `start`.
    pub fn next(self, start: &ZonedDateTime) -> Result<ZonedDateTime, String> {
        let next = match self {
            Interval::Hour => start.checked_add(1.hour()),
            Interval::Day => start.checked_add(1.day()).and_then(|d| d.start_of_day()),
            Interval::Week => start.checked_add(1.week()).and_then(|d| d.start_of_day()),
            Interval::Month => start.checked_add(1.month()).and_then(|d| d.start_of_day()),
        };
        next.map_err(|e| e.to_string())
    }
}

impl FromStr for Interval {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "hour" => Ok(Interval::Hour),
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            "month" => Ok(Interval::Month),
            _ => Err(format!(
                "'{}' is not an interval; use hour, day, week or month",
                crate::clip(text)
            )),
        }
    }
}

/// The starts of the buckets covering `[from, to)` in `tz`: the first is the start of the
/// bucket holding `from`; the last starts before `to`.
pub fn bucket_starts(
    from: Timestamp,
    to: Timestamp,
    interval: Interval,
    tz: &TimeZone,
) -> Result<Vec<ZonedDateTime>, String> {
    let mut start = interval.floor(&from.to_zoned_datetime(tz.clone()))?;
    let mut starts = Vec::new();
    while start.timestamp() < to {
        if starts.len() == MAX_BUCKETS {
            return Err(format!(
                "the range holds more than {MAX_BUCKETS} {}s; use a larger interval or a shorter range",
                interval.name()
            ));
        }
        let next = interval.next(&start)?;
        starts.push(start);
        start = next;
    }
    Ok(starts)
}

/// Fields events can be grouped and ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupField {
    Kind,
    System,
    Author,
    Team,
    Environment,
    Source,
}

impl GroupField {
    pub const ALL: [GroupField; 6] = [
        GroupField::Kind,
        GroupField::System,
        GroupField::Author,
        GroupField::Team,
        GroupField::Environment,
        GroupField::Source,
    ];

    /// The name used in the API (`environment`, as in the event).
    pub fn name(self) -> &'static str {
        match self {
            GroupField::Kind => "kind",
            GroupField::System => "system",
            GroupField::Author => "author",
            GroupField::Team => "team",
            GroupField::Environment => "environment",
            GroupField::Source => "source",
        }
    }

    /// The field's value in an event.
    pub fn value_of(self, event: &crate::Event) -> Option<&str> {
        match self {
            GroupField::Kind => Some(&event.kind),
            GroupField::System => Some(&event.system),
            GroupField::Author => Some(&event.author),
            GroupField::Team => event.team.as_deref(),
            GroupField::Environment => event.environment.as_deref(),
            GroupField::Source => event.source.as_deref(),
        }
    }
}

impl fmt::Display for GroupField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GroupField {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "env" {
            return Ok(GroupField::Environment);
        }
        GroupField::ALL
            .into_iter()
            .find(|field| field.name() == text)
            .ok_or_else(|| {
                format!(
                    "'{}' cannot be grouped by; use kind, system, author, team, environment or source",
                    crate::clip(text)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn starts(from: &str, to: &str, interval: Interval, tz: &str) -> Vec<String> {
        let tz = TimeZone::get(tz).unwrap();
        bucket_starts(ts(from), ts(to), interval, &tz)
            .unwrap()
            .iter()
            .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .collect()
    }

    #[test]
    fn days_in_paris_across_the_spring_dst_change() {
        assert_eq!(
            starts(
                "2026-03-28T10:00:00Z",
                "2026-03-30T22:00:00Z",
                Interval::Day,
                "Europe/Paris"
            ),
            [
                "2026-03-28T00:00:00+01:00",
                "2026-03-29T00:00:00+01:00",
                "2026-03-30T00:00:00+02:00",
            ]
        );
    }

    #[test]
    fn hours_skip_the_missing_hour_and_repeat_the_extra_one() {
        // 2026-03-29 02:00 does not exist in Paris; 2026-10-25 02:00 happens twice.
        assert_eq!(
            starts(
                "2026-03-29T00:30:00Z",
                "2026-03-29T02:00:00Z",
                Interval::Hour,
                "Europe/Paris"
            ),
            ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]
        );
        assert_eq!(
            starts(
                "2026-10-25T00:00:00Z",
                "2026-10-25T02:00:00Z",
                Interval::Hour,
                "Europe/Paris"
            ),
            ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        assert_eq!(
            starts(
                "2026-11-26T12:00:00Z",
                "2026-12-08T00:00:00Z",
                Interval::Week,
                "UTC"
            ),
            [
                "2026-11-23T00:00:00+00:00",
                "2026-11-30T00:00:00+00:00",
                "2026-12-07T00:00:00+00:00"
            ]
        );
        assert_eq!(
            starts(
                "2026-01-31T23:30:00Z",
                "2026-04-01T00:00:00Z",
                Interval::Month,
                "Asia/Kolkata"
            ),
            [
                "2026-02-01T00:00:00+05:30",
                "2026-03-01T00:00:00+05:30",
                "2026-04-01T00:00:00+05:30"
            ]
        );
    }

    #[test]
    fn half_hour_zones_floor_hours_locally() {
        assert_eq!(
            starts(
                "2026-11-26T10:10:00Z",
                "2026-11-26T11:00:00Z",
                Interval::Hour,
                "Asia/Kolkata"
            ),
            ["2026-11-26T15:00:00+05:30", "2026-11-26T16:00:00+05:30"]
        );
    }

    #[test]
    fn too_many_buckets_is_an_error() {
        let tz = TimeZone::UTC;
        let err = bucket_starts(
            ts("2000-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
            Interval::Hour,
            &tz,
        )
        .unwrap_err();
        assert!(err.contains("more than"), "{err}");
        assert!(
            bucket_starts(
                ts("2026-01-01T00:00:00Z"),
                ts("2026-01-01T00:00:00Z"),
                Interval::Day,
                &tz
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn quarters() {
        assert_eq!(quarter_of(ts("1970-01-01T00:14:59Z")), 0);
        assert_eq!(quarter_of(ts("1970-01-01T00:15:00Z")), 1);
        assert_eq!(quarter_of(ts("1969-12-31T23:59:59Z")), -1);
        assert_eq!(quarter_start(-1), ts("1969-12-31T23:45:00Z"));
    }

    #[test]
    fn names() {
        assert_eq!(
            "env".parse::<GroupField>().unwrap(),
            GroupField::Environment
        );
        assert_eq!("kind".parse::<GroupField>().unwrap(), GroupField::Kind);
        assert!("title".parse::<GroupField>().is_err());
        assert!("year".parse::<Interval>().is_err());
    }
}
