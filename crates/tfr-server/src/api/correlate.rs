//! `GET /api/v1/correlate`: do changes matching A tend to be followed by changes matching B?
//! The method is `tfr_core::correlate`, documented in `docs/correlation.md`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tfr_core::correlate::correlate as correlate_times;
use tfr_core::time::{now, parse_duration};
use tfr_core::{Event, EventId};
use tfr_store::EventFilter;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::params;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Params;

/// At most this many A events are analysed; a broader query is refused.
pub const MAX_A_EVENTS: usize = 100_000;
/// At most this many B events are analysed.
pub const MAX_B_EVENTS: usize = 1_000_000;
/// B events listed after each A event in `matches`.
const FOLLOWERS_LISTED: usize = 5;

/// Parameters of the correlation.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CorrelateParams {
    /// Query selecting the changes A (tfr query language).
    #[param(required = true)]
    pub a: Option<String>,
    /// Query selecting the effects B.
    #[param(required = true)]
    pub b: Option<String>,
    /// How soon after A a B event counts (default `1h`; units s m h d w).
    pub window: Option<String>,
    /// Start of the range (default: `to` minus 30 days).
    pub from: Option<String>,
    /// End of the range, exclusive (default: now).
    pub to: Option<String>,
    /// How many A events to list in `matches`, most recent first, 1..=500 (default 20).
    pub limit: Option<usize>,
}

/// An A event and the first B events that followed it within the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct Match {
    pub a: Event,
    pub b: Vec<Event>,
}

/// The correlation of A and B (design §6).
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrelationReport {
    pub a: String,
    pub b: String,
    pub window: String,
    pub window_seconds: i64,
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// A events followed by a B event within the window.
    pub hits: usize,
    pub a_count: usize,
    /// B events in the range.
    pub b_count: usize,
    /// `hits / a_count`; null without A events.
    pub hit_rate: Option<f64>,
    /// Fraction of the range from which a B event follows within the window: the hit rate
    /// expected by chance.
    pub baseline: f64,
    /// `hit_rate / baseline`; null when undefined.
    pub lift: Option<f64>,
    /// One-sided binomial p-value, P(X ≥ hits) for X ~ Binomial(a_count, baseline).
    pub p_value: f64,
    /// The finding in plain words.
    pub verdict: String,
    /// The most recent A events, each with the first B events that followed it.
    pub matches: Vec<Match>,
    /// Whether more A events exist than `matches` lists.
    pub matches_truncated: bool,
}

/// Do changes matching A tend to be followed, within a window, by changes matching B?
#[utoipa::path(
    get,
    path = "/api/v1/correlate",
    tag = "stats",
    params(CorrelateParams),
    responses(
        (status = 200, description = "The analysis", body = CorrelationReport),
        (status = 400, description = "Invalid parameter or query", body = ErrorBody),
    )
)]
pub async fn correlate(
    State(state): State<AppState>,
    Params(params): Params<CorrelateParams>,
) -> ApiResult<Json<CorrelationReport>> {
    analyse(&state, &params).await.map(Json)
}

/// The correlation asked for by `params` (shared by the API and the web page).
pub async fn analyse(state: &AppState, params: &CorrelateParams) -> ApiResult<CorrelationReport> {
    let now = now();
    let required = |name: &str, value: &Option<String>| -> ApiResult<String> {
        value
            .clone()
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| {
                ApiError::parameter(name, "is required: a query in the tfr query language")
            })
    };
    let a_text = required("a", &params.a)?;
    let b_text = required("b", &params.b)?;
    let window_text = params.window.clone().unwrap_or_else(|| "1h".to_owned());
    let window = parse_duration(&window_text).map_err(|m| ApiError::parameter("window", m))?;
    if window == SignedDuration::ZERO {
        return Err(ApiError::parameter("window", "must be longer than zero"));
    }
    let range = params::filter(None, params.from.as_deref(), params.to.as_deref(), now)?;
    let to = range.to.unwrap_or(now);
    let from = match range.from {
        Some(from) => from,
        None => to
            .checked_sub(SignedDuration::from_hours(30 * 24))
            .map_err(|e| ApiError::parameter("to", e.to_string()))?,
    };
    let limit = params::page_limit(params.limit, 20)?;

    let a_filter = params::filter(Some(&a_text), None, None, now)
        .map_err(|error| rename_query_error(error, "a"))?;
    let b_filter = params::filter(Some(&b_text), None, None, now)
        .map_err(|error| rename_query_error(error, "b"))?;
    let a_filter = EventFilter {
        from: Some(from),
        to: Some(to),
        ..a_filter
    };
    let b_filter = EventFilter {
        from: Some(from),
        // B events up to the window after the range can follow its last A events.
        to: Some(to.checked_add(window).unwrap_or(Timestamp::MAX)),
        ..b_filter
    };
    let a_events = state.store.timeline(&a_filter, MAX_A_EVENTS + 1).await?;
    if a_events.len() > MAX_A_EVENTS {
        return Err(ApiError::parameter(
            "a",
            format!(
                "matches more than {MAX_A_EVENTS} events in the range; narrow the query or the range"
            ),
        ));
    }
    let b_events = state.store.timeline(&b_filter, MAX_B_EVENTS + 1).await?;
    if b_events.len() > MAX_B_EVENTS {
        return Err(ApiError::parameter(
            "b",
            format!(
                "matches more than {MAX_B_EVENTS} events in the range; narrow the query or the range"
            ),
        ));
    }
    let a_times: Vec<Timestamp> = a_events.iter().map(|e| e.occurred_at).collect();
    let b_times: Vec<Timestamp> = b_events.iter().map(|e| e.occurred_at).collect();
    let result = correlate_times(&a_times, &b_times, window, from, to);

    // The most recent A events, each with the first B events within the window.
    let window_micros = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    let listed: Vec<(EventId, Vec<EventId>)> = a_events
        .iter()
        .zip(&result.first_follower)
        .rev()
        .take(limit)
        .map(|(a, first)| {
            let followers = first
                .map(|start| {
                    b_events[start..]
                        .iter()
                        .take_while(|b| {
                            b.occurred_at.as_microsecond() - a.occurred_at.as_microsecond()
                                <= window_micros
                        })
                        .take(FOLLOWERS_LISTED)
                        .map(|b| b.id)
                        .collect()
                })
                .unwrap_or_default();
            (a.id, followers)
        })
        .collect();
    let mut wanted: Vec<EventId> = listed
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .collect();
    wanted.sort();
    wanted.dedup();
    let events: HashMap<EventId, Event> = state
        .store
        .get_many(&wanted)
        .await?
        .into_iter()
        .map(|event| (event.id, event))
        .collect();
    let matches = listed
        .into_iter()
        .filter_map(|(a, bs)| {
            Some(Match {
                a: events.get(&a)?.clone(),
                b: bs.iter().filter_map(|b| events.get(b).cloned()).collect(),
            })
        })
        .collect();

    Ok(CorrelationReport {
        verdict: result.verdict(&window_text),
        a: a_text,
        b: b_text,
        window: window_text,
        window_seconds: window.as_secs(),
        from,
        to,
        hits: result.hits,
        a_count: result.a_count,
        b_count: result.b_count,
        hit_rate: result.hit_rate,
        baseline: result.baseline,
        lift: result.lift,
        p_value: result.p_value,
        matches,
        matches_truncated: result.a_count > limit,
    })
}

/// A query error in `a` or `b` names the parameter it came from.
fn rename_query_error(error: ApiError, parameter: &str) -> ApiError {
    match error {
        ApiError::InvalidQuery(query) => ApiError::InvalidParameter {
            parameter: parameter.to_owned(),
            message: format!("invalid query {query}"),
        },
        other => other,
    }
}
