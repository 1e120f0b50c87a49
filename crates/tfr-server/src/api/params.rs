//! Parsing of the query-string parameters shared by several endpoints.

use jiff::Timestamp;
use tfr_core::query;
use tfr_core::time::parse_time_bound;
use tfr_store::{Cursor, EventFilter, MAX_PAGE_SIZE};

use crate::error::{ApiError, ApiResult};

/// Builds the filter of `q`, `from` (inclusive) and `to` (exclusive), evaluated at `now`.
pub fn filter(
    q: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> ApiResult<EventFilter> {
    let query = query::parse(q.unwrap_or(""))?;
    let bound = |name: &str, value: Option<&str>| -> ApiResult<Option<Timestamp>> {
        value
            .filter(|text| !text.trim().is_empty())
            .map(|text| parse_time_bound(text).map_err(|m| ApiError::parameter(name, m)))
            .transpose()
    };
    let from = bound("from", from)?;
    let to = bound("to", to)?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::parameter("to", "must not be before 'from'"));
    }
    Ok(EventFilter {
        query,
        from,
        to,
        now,
    })
}

/// Checks a page size against `1..=500`.
pub fn page_limit(limit: Option<usize>, default: usize) -> ApiResult<usize> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::parameter(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// Parses an optional cursor.
pub fn cursor(text: Option<&str>) -> ApiResult<Option<Cursor>> {
    text.filter(|text| !text.is_empty())
        .map(|text| {
            text.parse::<Cursor>()
                .map_err(|m| ApiError::parameter("cursor", m))
        })
        .transpose()
}
