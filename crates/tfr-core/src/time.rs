//! Parsing of the time forms users type: RFC 3339 instants (always with an offset), calendar
//! dates, and short durations such as `30m`, `2h`, `7d`, `1w`.
//!
//! Every instant tfr keeps is truncated to the microsecond, the precision both stores hold, so
//! a value read back equals the value written.

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};

use crate::clip;

/// Parses an RFC 3339 timestamp. An offset (`Z` or `+02:00`) is required: a wall-clock time
/// without one names no instant, and guessing would record the wrong moment.
pub fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    match text.parse::<Timestamp>() {
        Ok(ts) => Ok(truncate_to_micros(ts)),
        Err(_) if looks_offsetless(text) => Err(format!(
            "timestamp '{}' has no UTC offset; add 'Z' or an offset such as '+02:00'",
            clip(text)
        )),
        Err(_) => Err(format!(
            "'{}' is not an RFC 3339 timestamp (e.g. 2026-11-02T14:05:00Z)",
            clip(text)
        )),
    }
}

/// Parses a time bound as used by `from`/`to` and `after:`/`before:`: an RFC 3339 timestamp or
/// a calendar date `YYYY-MM-DD`, which means midnight UTC of that day.
pub fn parse_time_bound(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    if text.len() == 10
        && let Ok(date) = text.parse::<Date>()
    {
        return date
            .to_zoned_datetime(TimeZone::UTC)
            .map(|zoned| zoned.timestamp())
            .map_err(|e| format!("date '{text}' is out of range: {e}"));
    }
    parse_timestamp(text).map_err(|_| {
        format!(
            "'{}' is neither a date (2026-11-01) nor an RFC 3339 timestamp (2026-11-01T14:05:00Z)",
            clip(text)
        )
    })
}

/// Parses a duration such as `90s`, `30m`, `2h`, `7d` or `1w` (a positive integer and a unit).
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let text = text.trim();
    let expected = || {
        format!(
            "'{}' is not a duration; expected a number and a unit s, m, h, d or w (e.g. 30m, 7d)",
            clip(text)
        )
    };
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(unit_at);
    let count: i64 = number.parse().map_err(|_| expected())?;
    let seconds_per_unit: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    // Ten thousand years is more history than any platform has; beyond that is a typo.
    const MAX_SECONDS: i64 = 10_000 * 366 * 86_400;
    count
        .checked_mul(seconds_per_unit)
        .filter(|seconds| *seconds <= MAX_SECONDS)
        .map(SignedDuration::from_secs)
        .ok_or_else(|| format!("duration '{}' is too long", clip(text)))
}

/// Drops sub-microsecond precision.
pub fn truncate_to_micros(ts: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(ts.as_microsecond()).unwrap_or(ts)
}

/// The current instant, at the precision tfr keeps.
pub fn now() -> Timestamp {
    truncate_to_micros(Timestamp::now())
}

/// Formats an age in seconds the way people say it: `45s`, `12m`, `3h`, `5d`, `8w`.
pub fn humanize_seconds(seconds: i64) -> String {
    let s = seconds.abs();
    let text = match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        86_400..1_209_600 => format!("{}d", s / 86_400),
        _ => format!("{}w", s / 604_800),
    };
    if seconds < 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn looks_offsetless(text: &str) -> bool {
    let with_zone = format!("{text}Z");
    with_zone.parse::<Timestamp>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_need_an_offset() {
        assert_eq!(
            parse_timestamp("2026-11-02T14:05:00Z").unwrap().to_string(),
            "2026-11-02T14:05:00Z"
        );
        assert_eq!(
            parse_timestamp("2026-11-02T15:05:00+01:00")
                .unwrap()
                .to_string(),
            "2026-11-02T14:05:00Z"
        );
        let err = parse_timestamp("2026-11-02T14:05:00").unwrap_err();
        assert!(err.contains("no UTC offset"), "{err}");
        let err = parse_timestamp("yesterday").unwrap_err();
        assert!(err.contains("not an RFC 3339"), "{err}");
    }

    #[test]
    fn timestamps_are_kept_to_the_microsecond() {
        let ts = parse_timestamp("2026-11-02T14:05:00.123456789Z").unwrap();
        assert_eq!(ts.to_string(), "2026-11-02T14:05:00.123456Z");
    }

    #[test]
    fn bounds_accept_dates_and_timestamps() {
        assert_eq!(
            parse_time_bound("2026-11-01").unwrap().to_string(),
            "2026-11-01T00:00:00Z"
        );
        assert_eq!(
            parse_time_bound("2026-11-01T10:00:00+02:00")
                .unwrap()
                .to_string(),
            "2026-11-01T08:00:00Z"
        );
        assert!(parse_time_bound("2026-13-01").is_err());
        assert!(parse_time_bound("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90s").unwrap(),
            SignedDuration::from_secs(90)
        );
        assert_eq!(
            parse_duration("30m").unwrap(),
            SignedDuration::from_mins(30)
        );
        assert_eq!(parse_duration("2h").unwrap(), SignedDuration::from_hours(2));
        assert_eq!(
            parse_duration("7d").unwrap(),
            SignedDuration::from_hours(168)
        );
        assert_eq!(
            parse_duration("1w").unwrap(),
            SignedDuration::from_hours(168)
        );
        for bad in [
            "",
            "d",
            "7",
            "7y",
            "-7d",
            "7 d",
            "99999999999999999999d",
            "9999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn humanized_ages() {
        assert_eq!(humanize_seconds(5), "5s ago");
        assert_eq!(humanize_seconds(125), "2m ago");
        assert_eq!(humanize_seconds(7_300), "2h ago");
        assert_eq!(humanize_seconds(3 * 86_400), "3d ago");
        assert_eq!(humanize_seconds(30 * 86_400), "4w ago");
        assert_eq!(humanize_seconds(-60), "in 1m");
    }
}
