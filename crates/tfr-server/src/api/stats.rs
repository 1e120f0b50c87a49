//! `/api/v1/stats`: how many changes, when, of what kind, on which systems.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use tfr_core::stats::{GroupField, Interval, bucket_starts};
use tfr_core::time::now;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::params;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Params;

/// The group name of events without a value for the grouping field.
pub const NO_VALUE: &str = "(none)";

/// Parameters of the histogram.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistogramParams {
    /// Query in the tfr query language.
    pub q: Option<String>,
    /// Start of the range (RFC 3339 or `YYYY-MM-DD`). Default: `to` minus 48 hours, 30 days,
    /// 26 weeks or 12 months, by interval.
    pub from: Option<String>,
    /// End of the range, exclusive. Default: now.
    pub to: Option<String>,
    /// `hour`, `day` (default), `week` (from Monday) or `month`.
    pub interval: Option<String>,
    /// Count separately per value of `kind`, `system`, `author`, `team`, `environment` or `source`.
    pub by: Option<String>,
    /// IANA time zone the buckets follow, DST included (default `UTC`).
    pub tz: Option<String>,
}

/// One bucket of the histogram.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// When the bucket starts, in the requested time zone.
    pub start: String,
    pub total: u64,
    /// Counts per value of `by` (events without a value count as `(none)`); empty without `by`.
    pub groups: BTreeMap<String, u64>,
}

/// Events per bucket of time, optionally per group.
#[derive(Debug, Serialize, ToSchema)]
pub struct Histogram {
    pub interval: String,
    pub tz: String,
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    pub by: Option<String>,
    /// Every bucket of the range, empty ones included, oldest first.
    pub buckets: Vec<Bucket>,
}

/// Events per hour, day, week or month in a time zone, optionally stacked by a field.
#[utoipa::path(
    get,
    path = "/api/v1/stats/histogram",
    tag = "stats",
    params(HistogramParams),
    responses(
        (status = 200, description = "Counts per bucket", body = Histogram),
        (status = 400, description = "Invalid parameter or query", body = ErrorBody),
    )
)]
pub async fn histogram(
    State(state): State<AppState>,
    Params(params): Params<HistogramParams>,
) -> ApiResult<Json<Histogram>> {
    let interval: Interval = params
        .interval
        .as_deref()
        .unwrap_or("day")
        .parse()
        .map_err(|m| ApiError::parameter("interval", m))?;
    let by: Option<GroupField> = params
        .by
        .as_deref()
        .map(|by| by.parse().map_err(|m| ApiError::parameter("by", m)))
        .transpose()?;
    let tz_name = params.tz.as_deref().unwrap_or("UTC");
    let filter = params::filter(
        params.q.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        now(),
    )?;
    compute_histogram(&state, filter, interval, by, tz_name)
        .await
        .map(Json)
}

/// The histogram of `filter` (a missing `to` is now; a missing `from` is chosen by interval).
pub async fn compute_histogram(
    state: &AppState,
    mut filter: tfr_store::EventFilter,
    interval: Interval,
    by: Option<GroupField>,
    tz_name: &str,
) -> ApiResult<Histogram> {
    let tz = TimeZone::get(tz_name).map_err(|_| {
        ApiError::parameter(
            "tz",
            format!(
                "'{}' is not an IANA time zone such as Europe/Paris",
                tfr_core::clip(tz_name)
            ),
        )
    })?;
    let to = filter.to.unwrap_or(filter.now);
    let from = match filter.from {
        Some(from) => from,
        None => default_from(to, interval, &tz)?,
    };
    filter.from = Some(from);
    filter.to = Some(to);
    let starts =
        bucket_starts(from, to, interval, &tz).map_err(|m| ApiError::parameter("from", m))?;
    let start_times: Vec<Timestamp> = starts.iter().map(|s| s.timestamp()).collect();
    let mut buckets: Vec<Bucket> = starts
        .iter()
        .map(|start| Bucket {
            start: start.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            total: 0,
            groups: BTreeMap::new(),
        })
        .collect();
    for count in state.store.bucket_counts(&filter, by, &start_times).await? {
        let Some(bucket) = buckets.get_mut(count.bucket) else {
            continue;
        };
        bucket.total += count.count;
        if by.is_some() {
            let group = count.group.unwrap_or_else(|| NO_VALUE.to_owned());
            *bucket.groups.entry(group).or_default() += count.count;
        }
    }
    Ok(Histogram {
        interval: interval.name().to_owned(),
        tz: tz_name.to_owned(),
        from,
        to,
        by: by.map(|by| by.name().to_owned()),
        buckets,
    })
}

fn default_from(to: Timestamp, interval: Interval, tz: &TimeZone) -> ApiResult<Timestamp> {
    let local = to.to_zoned_datetime(tz.clone());
    let back = match interval {
        Interval::Hour => local.checked_sub(48.hours()),
        Interval::Day => local.checked_sub(30.days()),
        Interval::Week => local.checked_sub(26.weeks()),
        Interval::Month => local.checked_sub(12.months()),
    };
    back.map(|start| start.timestamp())
        .map_err(|e| ApiError::parameter("to", format!("cannot count back from it: {e}")))
}

/// Parameters of the top values.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// `kind`, `system` (default), `author`, `team`, `environment` or `source`.
    pub field: Option<String>,
    /// Query in the tfr query language.
    pub q: Option<String>,
    /// Start of the range (inclusive).
    pub from: Option<String>,
    /// End of the range (exclusive).
    pub to: Option<String>,
    /// How many values, 1..=500 (default 10).
    pub limit: Option<usize>,
}

/// A value and how many matching events have it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopValue {
    pub value: String,
    pub count: u64,
}

/// The most frequent values of a field.
#[derive(Debug, Serialize, ToSchema)]
pub struct Top {
    pub field: String,
    pub values: Vec<TopValue>,
}

/// The most frequent systems, authors, teams... among matching events.
#[utoipa::path(
    get,
    path = "/api/v1/stats/top",
    tag = "stats",
    params(TopParams),
    responses(
        (status = 200, description = "Most frequent first", body = Top),
        (status = 400, description = "Invalid parameter or query", body = ErrorBody),
    )
)]
pub async fn top(
    State(state): State<AppState>,
    Params(params): Params<TopParams>,
) -> ApiResult<Json<Top>> {
    let field: GroupField = params
        .field
        .as_deref()
        .unwrap_or("system")
        .parse()
        .map_err(|m| ApiError::parameter("field", m))?;
    let filter = params::filter(
        params.q.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        now(),
    )?;
    let limit = params::page_limit(params.limit, 10)?;
    let values = state
        .store
        .top_values(&filter, field, limit)
        .await?
        .into_iter()
        .map(|value| TopValue {
            value: value.value,
            count: value.count,
        })
        .collect();
    Ok(Json(Top {
        field: field.name().to_owned(),
        values,
    }))
}
