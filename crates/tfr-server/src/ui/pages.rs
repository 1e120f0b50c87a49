//! One handler per page. Each parses its parameters, asks the store, and renders a template;
//! a bad query is shown on the page, next to the search box, with a 400.

use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tfr_core::correlate::{format_p_value, percent};
use tfr_core::stats::{GroupField, Interval};
use tfr_core::time::now;
use tfr_core::{Event, EventId};
use tfr_store::{AroundRequest, EventFilter, PageRequest};

use super::diff::{self, DiffFile};
use super::markdown;
use super::svg::{self, StackedBar};
use super::views::{
    CardView, DayGroup, FeedParams, FilterOptions, SearchForm, by_day, offset_text, utc_text,
};
use crate::AppState;
use crate::api::correlate::{CorrelateParams, CorrelationReport, analyse};
use crate::api::params;
use crate::api::stats::compute_histogram;
use crate::error::ApiError;

/// Events per page of the feed.
const FEED_PAGE: usize = 50;

/// The kinds offered by the quick filter, before those seen in the data.
const SUGGESTED_KINDS: [&str; 10] = [
    "deploy",
    "config",
    "schema",
    "ab_test",
    "feature_flag",
    "infra",
    "os_update",
    "release",
    "merge",
    "incident",
];

#[derive(Template)]
#[template(path = "feed.html")]
struct FeedPage {
    nav: &'static str,
    nav_query: String,
    search: SearchForm,
    days: Vec<DayGroup>,
    next_href: Option<String>,
    next_fragment: String,
    empty: bool,
    stream_query: String,
}

#[derive(Template)]
#[template(path = "cards.html")]
struct CardsFragment {
    days: Vec<DayGroup>,
    next_href: Option<String>,
    next_fragment: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    nav: &'static str,
    nav_query: String,
    heading: String,
    message: String,
}

/// Renders a template, or a plain error if rendering itself fails (a bug).
fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => ApiError::Internal(format!("template: {error}")).into_response(),
    }
}

pub(super) fn message(status: StatusCode, heading: &str, message: String) -> Response {
    render(
        &MessagePage {
            nav: "",
            nav_query: String::new(),
            heading: heading.to_owned(),
            message,
        },
        status,
    )
}

/// A store failure as a page: the detail stays in the log.
fn store_failure(error: ApiError) -> Response {
    let status = match &error {
        ApiError::Unavailable(_) | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    if let ApiError::Internal(detail) = &error {
        tracing::error!(%detail, "page failed");
    }
    let text = match error {
        ApiError::Internal(_) => "Something went wrong; it has been logged.".to_owned(),
        other => other.to_string(),
    };
    message(status, "Sorry", text)
}

/// The filter of the feed's parameters, or the message to show next to the search box.
fn feed_filter(params: &FeedParams) -> Result<EventFilter, String> {
    let query = params.effective_query();
    params::filter(
        Some(&query),
        Some(params.from.as_str()),
        Some(params.to.as_str()),
        now(),
    )
    .map_err(|error| error.to_string())
}

/// The quick filters' choices: kinds, the busiest systems and environments. Cached a minute.
async fn filter_options(state: &AppState) -> FilterOptions {
    if let Ok(cache) = state.filter_options.lock()
        && let Some((at, options)) = cache.as_ref()
        && at.elapsed() < Duration::from_secs(60)
    {
        return options.clone();
    }
    let all = EventFilter::all(now());
    let values = |field, limit| {
        let store = state.store.clone();
        let all = all.clone();
        async move {
            store
                .top_values(&all, field, limit)
                .await
                .map(|values| values.into_iter().map(|v| v.value).collect::<Vec<_>>())
                .unwrap_or_default()
        }
    };
    let mut kinds: Vec<String> = SUGGESTED_KINDS.iter().map(|k| (*k).to_owned()).collect();
    for kind in values(GroupField::Kind, 30).await {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let mut systems = values(GroupField::System, 40).await;
    systems.sort();
    let options = FilterOptions {
        kinds,
        systems,
        environments: values(GroupField::Environment, 10).await,
    };
    if let Ok(mut cache) = state.filter_options.lock() {
        *cache = Some((Instant::now(), options.clone()));
    }
    options
}

/// A page of the feed: the cards and the links to the next page.
async fn feed_page(
    state: &AppState,
    params: &FeedParams,
    filter: &EventFilter,
) -> Result<(Vec<DayGroup>, Option<String>, String, bool), ApiError> {
    let cursor = params::cursor(Some(params.cursor.as_str()))?;
    let page = state
        .store
        .list(
            filter,
            PageRequest {
                limit: FEED_PAGE,
                cursor,
                ..PageRequest::default()
            },
        )
        .await?;
    let empty = page.events.is_empty() && cursor.is_none();
    let days = by_day(
        &page.events,
        &state.config.monitoring,
        state.config.monitoring_window,
    );
    let base = params.query_string();
    let separator = if base.is_empty() { "" } else { "&" };
    let (next_href, next_fragment) = match page.next_cursor {
        Some(next) => (
            Some(format!("/?{base}{separator}cursor={next}")),
            format!("/ui/cards?{base}{separator}cursor={next}"),
        ),
        None => (None, String::new()),
    };
    Ok((days, next_href, next_fragment, empty))
}

/// `/`: the feed.
pub async fn feed(State(state): State<AppState>, Query(params): Query<FeedParams>) -> Response {
    let options = filter_options(&state).await;
    let mut search = SearchForm::new("/", &params, &options);
    let nav_query = nav_query(&params);
    let filter = match feed_filter(&params) {
        Ok(filter) => filter,
        Err(error) => {
            search.error = Some(error);
            let page = FeedPage {
                nav: "feed",
                nav_query,
                search,
                days: Vec::new(),
                next_href: None,
                next_fragment: String::new(),
                empty: false,
                stream_query: String::new(),
            };
            return render(&page, StatusCode::BAD_REQUEST);
        }
    };
    match feed_page(&state, &params, &filter).await {
        Ok((days, next_href, next_fragment, empty)) => render(
            &FeedPage {
                nav: "feed",
                nav_query,
                search,
                days,
                next_href,
                next_fragment,
                empty,
                // The live banner counts new events matching the query, without time terms'
                // upper bounds mattering (new events are newer than any page).
                stream_query: params.effective_query(),
            },
            StatusCode::OK,
        ),
        Err(error) => store_failure(error),
    }
}

/// `/ui/cards`: the next page of cards, as an HTML fragment for the infinite scroll.
pub async fn cards(State(state): State<AppState>, Query(params): Query<FeedParams>) -> Response {
    let filter = match feed_filter(&params) {
        Ok(filter) => filter,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    match feed_page(&state, &params, &filter).await {
        Ok((days, next_href, next_fragment, _)) => render(
            &CardsFragment {
                days,
                next_href,
                next_fragment,
            },
            StatusCode::OK,
        ),
        Err(error) => store_failure(error),
    }
}

fn nav_query(params: &FeedParams) -> String {
    let query = params.query_string();
    if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    }
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    nav: &'static str,
    nav_query: String,
    card: CardView,
    source: Option<String>,
    version: Option<String>,
    recorded_iso: String,
    recorded_text: String,
    submitted_by: String,
    description_html: Option<String>,
    files: Vec<DiffFile>,
    attributes_json: Option<String>,
    around: Vec<AroundItem>,
}

struct AroundItem {
    id: String,
    title: String,
    system: String,
    kind: String,
    offset: String,
    is_self: bool,
}

/// `/events/{id}`: one event, its description, diff and attributes, and what changed around.
pub async fn event(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<EventId>() else {
        return message(
            StatusCode::NOT_FOUND,
            "No such event",
            format!("'{}' is not an event id.", tfr_core::clip(&id)),
        );
    };
    let event = match state.store.get(id).await {
        Ok(Some(event)) => event,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                "No such event",
                format!("There is no event {id}."),
            );
        }
        Err(error) => return store_failure(error.into()),
    };
    let around = match state
        .store
        .around(
            &EventFilter::all(now()),
            &AroundRequest {
                time: event.occurred_at,
                before: SignedDuration::from_hours(1),
                after: SignedDuration::from_hours(1),
                limit: 50,
            },
        )
        .await
    {
        Ok(around) => around,
        Err(error) => return store_failure(error.into()),
    };
    render(&event_page(&state, event, &around), StatusCode::OK)
}

fn event_page(state: &AppState, event: Event, around: &[Event]) -> EventPage {
    let card = CardView::new(
        &event,
        &state.config.monitoring,
        state.config.monitoring_window,
    );
    let mut around: Vec<&Event> = around.iter().collect();
    around.sort_by_key(|e| (e.occurred_at, e.id));
    EventPage {
        nav: "",
        nav_query: String::new(),
        card,
        source: event.source.clone(),
        version: event.version.clone(),
        recorded_iso: event.recorded_at.to_string(),
        recorded_text: utc_text(event.recorded_at),
        submitted_by: event.submitted_by.clone(),
        description_html: event.description.as_deref().map(markdown::render),
        files: event.diff.as_deref().map(diff::parse).unwrap_or_default(),
        attributes_json: event
            .attributes
            .as_ref()
            .and_then(|attributes| serde_json::to_string_pretty(attributes).ok()),
        around: around
            .into_iter()
            .map(|other| AroundItem {
                id: other.id.to_string(),
                title: other.title.clone(),
                system: other.system.clone(),
                kind: other.kind.clone(),
                offset: offset_text(
                    (other.occurred_at.as_microsecond() - event.occurred_at.as_microsecond())
                        / 1_000_000,
                ),
                is_self: other.id == event.id,
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    nav: &'static str,
    nav_query: String,
    search: SearchForm,
    range_note: String,
    interval: &'static str,
    per_day_svg: String,
    legend: Vec<(String, u64)>,
    tops: Vec<TopView>,
    heatmap_svg: String,
    tz: String,
}

struct TopView {
    field: &'static str,
    title: &'static str,
    rows: Vec<TopRow>,
}

struct TopRow {
    value: String,
    query: String,
    count: u64,
    percent: u64,
}

/// `/stats`: events per day by kind, top systems, authors and teams, hour × weekday.
pub async fn stats(
    State(state): State<AppState>,
    Query(mut params): Query<FeedParams>,
) -> Response {
    if params.since.is_empty() && params.from.is_empty() {
        params.since = "30d".to_owned();
    }
    let options = filter_options(&state).await;
    let mut search = SearchForm::new("/stats", &params, &options);
    let tz_name = if params.tz.is_empty() {
        "UTC".to_owned()
    } else {
        params.tz.clone()
    };
    let Ok(tz) = TimeZone::get(&tz_name) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Unknown time zone",
            format!("'{}' is not an IANA time zone.", tfr_core::clip(&tz_name)),
        );
    };
    let now = now();
    let mut filter = match feed_filter(&params) {
        Ok(filter) => filter,
        Err(error) => {
            search.error = Some(error);
            return render(
                &StatsPage {
                    nav: "stats",
                    nav_query: nav_query(&params),
                    search,
                    range_note: String::new(),
                    interval: "day",
                    per_day_svg: String::new(),
                    legend: Vec::new(),
                    tops: Vec::new(),
                    heatmap_svg: String::new(),
                    tz: tz_name,
                },
                StatusCode::BAD_REQUEST,
            );
        }
    };
    // The range: explicit bounds, or what `since` says, ending now.
    let to = filter.to.unwrap_or(now);
    let from = match filter.from {
        Some(from) => from,
        None => tfr_core::time::parse_duration(&params.since)
            .ok()
            .and_then(|d| to.checked_sub(d).ok())
            .unwrap_or_else(|| {
                to.checked_sub(SignedDuration::from_hours(24 * 30))
                    .unwrap_or(to)
            }),
    };
    filter.from = Some(from);
    filter.to = Some(to);
    let span = to.duration_since(from);
    let interval = if span <= SignedDuration::from_hours(48) {
        Interval::Hour
    } else if span <= SignedDuration::from_hours(24 * 120) {
        Interval::Day
    } else if span <= SignedDuration::from_hours(24 * 730) {
        Interval::Week
    } else {
        Interval::Month
    };
    match stats_page(&state, filter, interval, &tz_name, &tz).await {
        Ok(mut page) => {
            page.search = search;
            page.nav_query = nav_query(&params);
            page.range_note = format!("{} to {} ({})", utc_text(from), utc_text(to), tz_name);
            render(&page, StatusCode::OK)
        }
        Err(error) => {
            if matches!(error, ApiError::InvalidParameter { .. }) {
                search.error = Some(error.to_string());
                return render(
                    &StatsPage {
                        nav: "stats",
                        nav_query: nav_query(&params),
                        search,
                        range_note: String::new(),
                        interval: interval.name(),
                        per_day_svg: String::new(),
                        legend: Vec::new(),
                        tops: Vec::new(),
                        heatmap_svg: String::new(),
                        tz: tz_name,
                    },
                    StatusCode::BAD_REQUEST,
                );
            }
            store_failure(error)
        }
    }
}

async fn stats_page(
    state: &AppState,
    filter: EventFilter,
    interval: Interval,
    tz_name: &str,
    tz: &TimeZone,
) -> Result<StatsPage, ApiError> {
    let histogram = compute_histogram(
        state,
        filter.clone(),
        interval,
        Some(GroupField::Kind),
        tz_name,
    )
    .await?;
    // Series: kinds by total, the largest first.
    let mut totals: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for bucket in &histogram.buckets {
        for (kind, count) in &bucket.groups {
            *totals.entry(kind.clone()).or_default() += count;
        }
    }
    let mut legend: Vec<(String, u64)> = totals.into_iter().collect();
    legend.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let series: Vec<String> = legend.iter().map(|(kind, _)| kind.clone()).collect();
    let bars: Vec<StackedBar> = histogram
        .buckets
        .iter()
        .map(|bucket| StackedBar {
            label: bucket
                .start
                .get(..if interval == Interval::Hour { 16 } else { 10 })
                .unwrap_or(&bucket.start)
                .replace('T', " "),
            segments: series
                .iter()
                .enumerate()
                .filter_map(|(index, kind)| bucket.groups.get(kind).map(|count| (index, *count)))
                .collect(),
        })
        .collect();
    let per_day_svg = svg::stacked_bars(&bars, &series, "Changes per interval, by kind");

    let mut tops = Vec::new();
    for (field, title) in [
        (GroupField::System, "systems"),
        (GroupField::Author, "authors"),
        (GroupField::Team, "teams"),
    ] {
        let values = state.store.top_values(&filter, field, 10).await?;
        let max = values.first().map_or(1, |v| v.count.max(1));
        tops.push(TopView {
            field: field.name(),
            title,
            rows: values
                .into_iter()
                .map(|value| TopRow {
                    query: format!(
                        "{}:{}",
                        query_field(field),
                        super::views::quote(&value.value)
                    ),
                    percent: value.count * 100 / max,
                    value: value.value,
                    count: value.count,
                })
                .collect(),
        });
    }

    // Hour × weekday, in the viewer's zone, from an hourly histogram of the same range.
    let hourly = compute_histogram(state, filter, Interval::Hour, None, tz_name).await;
    let mut counts = [[0u64; 24]; 7];
    if let Ok(hourly) = hourly {
        for bucket in &hourly.buckets {
            if bucket.total == 0 {
                continue;
            }
            if let Ok(start) = bucket.start.parse::<Timestamp>() {
                let local = start.to_zoned_datetime(tz.clone());
                let day = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0);
                let hour = usize::try_from(local.hour()).unwrap_or(0);
                if let Some(cell) = counts.get_mut(day).and_then(|row| row.get_mut(hour)) {
                    *cell += bucket.total;
                }
            }
        }
    }
    let heatmap_svg = svg::heat_map(&counts, "Changes per hour of the week");
    Ok(StatsPage {
        nav: "stats",
        nav_query: String::new(),
        search: SearchForm::new("/stats", &FeedParams::default(), &FilterOptions::default()),
        range_note: String::new(),
        interval: interval.name(),
        per_day_svg,
        legend,
        tops,
        heatmap_svg,
        tz: tz_name.to_owned(),
    })
}

/// The query-language name of a grouping field.
fn query_field(field: GroupField) -> &'static str {
    match field {
        GroupField::Environment => "env",
        other => other.name(),
    }
}

#[derive(Template)]
#[template(path = "correlate.html")]
struct CorrelatePage {
    nav: &'static str,
    nav_query: String,
    form: CorrelateForm,
    error: Option<String>,
    report: Option<CorrelationReport>,
    hit_rate: String,
    baseline: String,
    lift: String,
    p_value: String,
    matches: Vec<MatchView>,
}

#[derive(Default, serde::Deserialize)]
pub struct CorrelateForm {
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

struct MatchView {
    a_id: String,
    a_time: String,
    a_title: String,
    a_system: String,
    b: Vec<FollowerView>,
}

struct FollowerView {
    id: String,
    title: String,
    system: String,
    offset: String,
}

/// `/correlate`: the form, and when filled, the verdict and the supporting events.
pub async fn correlate(
    State(state): State<AppState>,
    Query(form): Query<CorrelateForm>,
) -> Response {
    let mut page = CorrelatePage {
        nav: "correlate",
        nav_query: String::new(),
        form,
        error: None,
        report: None,
        hit_rate: String::new(),
        baseline: String::new(),
        lift: String::new(),
        p_value: String::new(),
        matches: Vec::new(),
    };
    if page.form.a.trim().is_empty() || page.form.b.trim().is_empty() {
        return render(&page, StatusCode::OK);
    }
    let optional = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
    let params = CorrelateParams {
        a: optional(&page.form.a),
        b: optional(&page.form.b),
        window: optional(&page.form.window),
        from: optional(&page.form.from),
        to: optional(&page.form.to),
        limit: Some(20),
    };
    match analyse(&state, &params).await {
        Ok(report) => {
            page.hit_rate = report.hit_rate.map_or("—".to_owned(), percent);
            page.baseline = percent(report.baseline);
            page.lift = report
                .lift
                .map_or("—".to_owned(), |lift| format!("{lift:.1}×"));
            page.p_value = format_p_value(report.p_value);
            page.matches = report
                .matches
                .iter()
                .map(|m| MatchView {
                    a_id: m.a.id.to_string(),
                    a_time: m.a.occurred_at.to_string(),
                    a_title: m.a.title.clone(),
                    a_system: m.a.system.clone(),
                    b: m.b
                        .iter()
                        .map(|b| FollowerView {
                            id: b.id.to_string(),
                            title: b.title.clone(),
                            system: b.system.clone(),
                            offset: offset_text(
                                (b.occurred_at.as_microsecond() - m.a.occurred_at.as_microsecond())
                                    / 1_000_000,
                            ),
                        })
                        .collect(),
                })
                .collect();
            page.report = Some(report);
            render(&page, StatusCode::OK)
        }
        Err(error @ (ApiError::InvalidParameter { .. } | ApiError::InvalidQuery(_))) => {
            page.error = Some(error.to_string());
            render(&page, StatusCode::BAD_REQUEST)
        }
        Err(error) => store_failure(error),
    }
}
