//! Grafana, both ways.
//!
//! In: Grafana's annotation API — `POST /integrations/grafana/api/annotations` (`time`,
//! `timeEnd`, `text`, `tags`, `dashboardUID`, `panelId`) and the Graphite-format
//! `POST /integrations/grafana/api/annotations/graphite` (`what`, `tags`, `when`, `data`) —
//! answered `{"message": "Annotation added", "id": N}`, errors `{"message": "..."}`.
//!
//! Out: tfr events as Grafana annotations on Grafana's graphs —
//! `GET /integrations/grafana/api/annotations?from&to&tags&limit` in the shape of Grafana's
//! own annotation API (for JSON/Infinity data sources and scripts), and a SimpleJSON-protocol
//! data source root at `/integrations/grafana/simplejson/` (`GET /`, `POST /annotations` whose
//! query is in tfr's query language, CORS for browser access).
//!
//! Tags of the form `system:x`, `env:x`, `kind:x`, `version:x`, `team:x`, `author:x` name event
//! fields, both ways: posted, they fill the fields; read back, the fields come back as such
//! tags, and filtering by them filters by the fields.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};
use tfr_core::Event;
use tfr_core::query::{self, Field, Matcher, Query, Term, ValuePattern};
use tfr_core::time::{now, parse_timestamp};
use tfr_store::{EventFilter, MAX_PAGE_SIZE, PageRequest};

use super::{
    BodyError, Draft, bearer, from_millis, from_seconds, idempotency_header, integer, numeric_id,
    one_line, read_body, record, submitter, text,
};
use crate::AppState;
use crate::extract::Peer;

const SOURCE: &str = "grafana";

/// Annotations returned when the request names no limit (Grafana's default).
const DEFAULT_LIMIT: usize = 100;

/// Most tags a read-back request may filter on.
const MAX_FILTER_TAGS: usize = 32;

/// Grafana's error shape.
fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({"message": text.into()}))).into_response()
}

async fn read_json(state: &AppState, body: Body) -> Result<Value, Response> {
    let bytes = read_body(body, state.config.body_limit)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge(limit) => message(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large: the limit is {limit} bytes"),
            ),
            BodyError::Unreadable(detail) => message(StatusCode::BAD_REQUEST, detail),
        })?;
    serde_json::from_slice(&bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            message(
                StatusCode::BAD_REQUEST,
                "bad request data: expected a JSON object",
            )
        })
}

/// Create an annotation, as Grafana's `POST /api/annotations`.
#[utoipa::path(
    post,
    path = "/integrations/grafana/api/annotations",
    tag = "integrations",
    request_body(content = Object, description = "A Grafana annotation: `{text, time?, timeEnd?, tags?, dashboardUID?, panelId?}` (times in epoch milliseconds)", content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"message\": \"Annotation added\", \"id\": N}`"),
        (status = 400, description = "`{\"message\": \"...\"}`"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create_with(
        state,
        peer,
        headers,
        body,
        map_annotation,
        "Annotation added",
    )
    .await
}

/// Create an annotation in Graphite's event format, as Grafana's
/// `POST /api/annotations/graphite`.
#[utoipa::path(
    post,
    path = "/integrations/grafana/api/annotations/graphite",
    tag = "integrations",
    request_body(content = Object, description = "`{what, tags?, when?, data?}`: `when` in epoch seconds; `tags` an array or a space-separated string", content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"message\": \"Graphite annotation added\", \"id\": N}`"),
        (status = 400, description = "`{\"message\": \"...\"}`"),
    )
)]
pub async fn create_graphite(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create_with(
        state,
        peer,
        headers,
        body,
        map_graphite,
        "Graphite annotation added",
    )
    .await
}

/// Both annotation formats: authenticate, read, map with `map`, store, answer `added`.
async fn create_with(
    state: AppState,
    peer: Option<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
    map: fn(&Value) -> Result<Draft, String>,
    added: &str,
) -> Response {
    let submitted_by = match submitter(&state, &headers, peer, bearer(&headers)).await {
        Ok(name) => name,
        Err(refusal) => return refusal,
    };
    let payload = match read_json(&state, body).await {
        Ok(payload) => payload,
        Err(response) => return response,
    };
    let draft = match map(&payload) {
        Ok(draft) => draft,
        Err(problem) => return message(StatusCode::BAD_REQUEST, problem),
    };
    store(&state, &headers, &submitted_by, draft, added).await
}

async fn store(
    state: &AppState,
    headers: &HeaderMap,
    submitted_by: &str,
    draft: Draft,
    added: &str,
) -> Response {
    let mut draft = draft;
    draft.idempotency_key = idempotency_header(headers);
    match record(state, draft, SOURCE, submitted_by).await {
        Ok(recorded) => Json(json!({
            "message": added,
            "id": numeric_id(recorded.event().id),
            "tfr_id": recorded.event().id,
        }))
        .into_response(),
        Err(refused) if refused.is_client_error() => {
            message(StatusCode::BAD_REQUEST, refused.message())
        }
        Err(refused) => message(StatusCode::SERVICE_UNAVAILABLE, refused.message()),
    }
}

/// Strips HTML tags (Grafana annotation texts often hold a link) from a title.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn string_tags(value: Option<&Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|tag| {
                tag.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "tags must be strings".to_owned())
            })
            .collect(),
        // Graphite before 0.10: one string of space-separated tags.
        Some(Value::String(tags)) => Ok(tags.split_whitespace().map(str::to_owned).collect()),
        Some(_) => Err("tags must be an array of strings".into()),
    }
}

/// The draft's title and description from a text: its first line, without HTML, is the title;
/// the whole text is the description when it says more.
fn titled(draft: &mut Draft, text: &str) {
    draft.title = one_line(&strip_tags(text), 500);
    if text.trim() != draft.title {
        draft.description = Some(text.trim().to_owned());
    }
}

fn map_annotation(annotation: &Value) -> Result<Draft, String> {
    let body = text(annotation, "/text").ok_or("text is required")?;
    let mut draft = Draft::default();
    titled(&mut draft, body);
    let time = optional_millis(annotation, "time")?;
    let time_end = optional_millis(annotation, "timeEnd")?;
    draft.occurred_at = time;
    if let (Some(start), Some(end)) = (time.or_else(|| Some(now())), time_end)
        && end > start
    {
        draft.ended_at = Some(end);
    }
    draft.apply_tags(string_tags(annotation.get("tags"))?);
    draft.fallback(SOURCE);
    for field in ["dashboardUID", "dashboardId", "panelId"] {
        if let Some(value) = annotation.get(field).filter(|v| !v.is_null()) {
            draft.attributes.insert(field.into(), value.clone());
        }
    }
    Ok(draft)
}

fn optional_millis(object: &Value, field: &str) -> Result<Option<Timestamp>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(None),
        Some(_) => integer(object, &format!("/{field}"))
            .and_then(from_millis)
            .map(Some)
            .ok_or_else(|| format!("{field} must be epoch milliseconds")),
    }
}

fn map_graphite(event: &Value) -> Result<Draft, String> {
    let what = text(event, "/what").ok_or("what is required")?;
    let mut draft = Draft::default();
    titled(&mut draft, what);
    if let Some(data) = text(event, "/data") {
        draft.description = Some(data.to_owned());
    }
    draft.occurred_at = match event.get("when") {
        None | Some(Value::Null) => None,
        Some(_) => Some(
            integer(event, "/when")
                .and_then(from_seconds)
                .ok_or("when must be epoch seconds")?,
        ),
    };
    draft.apply_tags(string_tags(event.get("tags"))?);
    draft.fallback(SOURCE);
    Ok(draft)
}

// ---- read back ------------------------------------------------------------------------------

/// The tags an event shows in Grafana: its own, and its fields as `system:`, `kind:`, `env:`.
fn annotation_tags(event: &Event) -> Vec<String> {
    let mut tags = vec![
        format!("system:{}", event.system),
        format!("kind:{}", event.kind),
    ];
    if let Some(environment) = &event.environment {
        tags.push(format!("env:{environment}"));
    }
    tags.extend(event.tags.iter().cloned());
    tags
}

/// The field a filter tag names: a field tag (`system:x`) its field and value, any other tag
/// the tags.
fn tag_field(tag: &str) -> (Field, String) {
    let field_value = tag.split_once(':').and_then(|(key, value)| {
        let field = match key.to_ascii_lowercase().as_str() {
            "system" | "service" => Field::System,
            "env" | "environment" => Field::Environment,
            "kind" => Field::Kind,
            "version" => Field::Version,
            "team" => Field::Team,
            "author" | "user" => Field::Author,
            "source" => Field::Source,
            _ => return None,
        };
        Some((field, value.to_owned()))
    });
    field_value.unwrap_or_else(|| (Field::Tag, tag.to_owned()))
}

fn field_term(field: Field, values: Vec<ValuePattern>) -> Term {
    Term {
        negated: false,
        matcher: Matcher::Field { field, values },
        position: 0,
    }
}

/// The terms of filter tags: every tag must match; with `match_any`, any tag of each field
/// (tags of different fields cannot be OR'ed, so each field must still match).
fn tag_terms(tags: &[String], match_any: bool) -> Vec<Term> {
    if !match_any {
        return tags
            .iter()
            .map(|tag| {
                let (field, value) = tag_field(tag);
                field_term(field, vec![ValuePattern::Exact(value)])
            })
            .collect();
    }
    let mut grouped: Vec<(Field, Vec<ValuePattern>)> = Vec::new();
    for tag in tags {
        let (field, value) = tag_field(tag);
        match grouped.iter_mut().find(|(f, _)| *f == field) {
            Some((_, values)) => values.push(ValuePattern::Exact(value)),
            None => grouped.push((field, vec![ValuePattern::Exact(value)])),
        }
    }
    grouped
        .into_iter()
        .map(|(field, values)| field_term(field, values))
        .collect()
}

/// The parameters of the read-back, as Grafana's `GET /api/annotations` takes them.
#[derive(Debug, Default)]
struct FindParams {
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
    tags: Vec<String>,
    match_any: bool,
    alerts_only: bool,
    q: Option<String>,
}

fn find_params(uri: &Uri) -> Result<FindParams, String> {
    let mut params = FindParams {
        limit: DEFAULT_LIMIT,
        ..FindParams::default()
    };
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let millis = |value: &str| {
            value
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(from_millis)
                .ok_or_else(|| format!("{name} must be epoch milliseconds"))
        };
        match name.as_ref() {
            "from" => params.from = Some(millis(&value)?),
            "to" => params.to = Some(millis(&value)?),
            "limit" => {
                let limit: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| "limit must be a number".to_owned())?;
                params.limit = limit.clamp(1, MAX_PAGE_SIZE);
            }
            "tags" | "tags[]" => {
                // Tags become query terms without the query parser, which refuses NUL: refuse
                // it here too (PostgreSQL cannot compare text holding it).
                if value.contains('\0') {
                    return Err("tags must not contain NUL characters".to_owned());
                }
                if !value.trim().is_empty() {
                    params.tags.push(value.trim().to_owned());
                }
            }
            "matchAny" => params.match_any = value == "true" || value == "1",
            "type" => params.alerts_only = value == "alert",
            "q" => params.q = Some(value.into_owned()),
            // Grafana's scoping parameters: tfr events belong to no dashboard, panel or user.
            "dashboardUID" | "dashboardId" | "panelId" | "userId" | "alertId" => {}
            other => {
                return Err(format!(
                    "unknown parameter '{}'; the parameters are from, to, limit, tags, matchAny, type, q",
                    one_line(other, 64)
                ));
            }
        }
    }
    if params.tags.len() > MAX_FILTER_TAGS {
        return Err(format!("at most {MAX_FILTER_TAGS} tags"));
    }
    Ok(params)
}

/// Reads the events of a query and time range, newest first.
async fn events(
    state: &AppState,
    q: &str,
    tags: &[String],
    match_any: bool,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<Event>, Response> {
    let mut query: Query =
        query::parse(q).map_err(|error| message(StatusCode::BAD_REQUEST, error.to_string()))?;
    query.terms.extend(tag_terms(tags, match_any));
    let filter = EventFilter {
        query,
        from,
        to,
        now: now(),
    };
    let request = PageRequest {
        limit,
        ..PageRequest::default()
    };
    match state.store.list(&filter, request).await {
        Ok(page) => Ok(page.events),
        Err(error) => {
            let error = crate::error::ApiError::from(error);
            Err(message(
                StatusCode::SERVICE_UNAVAILABLE,
                super::store_failure(&error),
            ))
        }
    }
}

fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// An event in the shape of Grafana's annotation API.
fn grafana_annotation(event: &Event) -> Value {
    let time = millis(event.occurred_at);
    json!({
        "id": numeric_id(event.id),
        "alertId": 0,
        "dashboardId": 0,
        "dashboardUID": "",
        "panelId": 0,
        "userId": 0,
        "userName": "",
        "login": event.author,
        "email": "",
        "avatarUrl": "",
        "newState": "",
        "prevState": "",
        "time": time,
        "timeEnd": event.ended_at.map_or(time, millis),
        "text": event.title,
        "metric": "",
        "tags": annotation_tags(event),
        "data": {
            "tfr_id": event.id,
            "system": event.system,
            "author": event.author,
            "kind": event.kind,
            "environment": event.environment,
            "version": event.version,
            "links": event.links,
        },
    })
}

fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// Find events as Grafana annotations, as Grafana's `GET /api/annotations`.
#[utoipa::path(
    get,
    path = "/integrations/grafana/api/annotations",
    tag = "integrations",
    params(
        ("from" = Option<i64>, Query, description = "Epoch milliseconds, inclusive"),
        ("to" = Option<i64>, Query, description = "Epoch milliseconds, exclusive"),
        ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 500)"),
        ("tags" = Option<Vec<String>>, Query, description = "Repeatable; every tag must match (any, with `matchAny=true`). `system:x`, `env:x`, `kind:x`, `version:x`, `team:x`, `author:x` filter those fields"),
        ("matchAny" = Option<bool>, Query, description = "Match any of the tags"),
        ("type" = Option<String>, Query, description = "`alert` returns nothing (tfr records no alerts); `annotation` is the default"),
        ("q" = Option<String>, Query, description = "A query in tfr's query language, e.g. `kind:deploy env:production`"),
    ),
    responses(
        (status = 200, description = "An array of Grafana annotations, newest first"),
        (status = 400, description = "`{\"message\": \"...\"}`"),
    )
)]
pub async fn find(State(state): State<AppState>, uri: Uri) -> Response {
    let params = match find_params(&uri) {
        Ok(params) => params,
        Err(problem) => return with_cors(message(StatusCode::BAD_REQUEST, problem)),
    };
    if params.alerts_only {
        return with_cors(Json(json!([])).into_response());
    }
    let found = events(
        &state,
        params.q.as_deref().unwrap_or(""),
        &params.tags,
        params.match_any,
        params.from,
        params.to,
        params.limit,
    )
    .await;
    with_cors(match found {
        Ok(events) => {
            Json(events.iter().map(grafana_annotation).collect::<Vec<_>>()).into_response()
        }
        Err(response) => response,
    })
}

/// The CORS preflight of the read-back endpoints, for data sources in browser access mode.
pub async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("accept, authorization, content-type"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// The SimpleJSON data source's connection test.
#[utoipa::path(
    get,
    path = "/integrations/grafana/simplejson/",
    tag = "integrations",
    responses((status = 200, description = "The data source answers"))
)]
pub async fn simplejson_root() -> Response {
    with_cors(
        Json(json!({"status": "ok", "message": "tfr: annotations for Grafana"})).into_response(),
    )
}

/// What the SimpleJSON data source asks for metrics: tfr serves annotations only.
pub async fn simplejson_empty() -> Response {
    with_cors(Json(json!([])).into_response())
}

/// Annotations for the SimpleJSON data source: the events of the dashboard's time range that
/// match the annotation's query (tfr's query language; empty: every event).
#[utoipa::path(
    post,
    path = "/integrations/grafana/simplejson/annotations",
    tag = "integrations",
    request_body(content = Object, description = "`{range: {from, to}, annotation: {name, query, ...}}`, as Grafana sends it", content_type = "application/json"),
    responses(
        (status = 200, description = "`[{annotation, time, timeEnd?, isRegion, title, tags, text}]`, newest first"),
        (status = 400, description = "`{\"message\": \"...\"}`: a bad range or query"),
    )
)]
pub async fn simplejson_annotations(State(state): State<AppState>, body: Body) -> Response {
    let request = match read_json(&state, body).await {
        Ok(request) => request,
        Err(response) => return with_cors(response),
    };
    let bound = |pointer: &str| -> Result<Option<Timestamp>, String> {
        text(&request, pointer)
            .map(|stamp| parse_timestamp(stamp).map_err(|problem| format!("range: {problem}")))
            .transpose()
    };
    let (from, to) = match (bound("/range/from"), bound("/range/to")) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(problem), _) | (_, Err(problem)) => {
            return with_cors(message(StatusCode::BAD_REQUEST, problem));
        }
    };
    let q = text(&request, "/annotation/query").unwrap_or("");
    let limit = integer(&request, "/annotation/limit")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(MAX_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let annotation = request.get("annotation").cloned().unwrap_or(json!({}));
    let found = events(&state, q, &[], false, from, to, limit).await;
    with_cors(match found {
        Ok(events) => {
            let items: Vec<Value> = events
                .iter()
                .map(|event| {
                    let time = millis(event.occurred_at);
                    let mut item = json!({
                        "annotation": annotation,
                        "time": time,
                        "title": event.title,
                        "tags": annotation_tags(event),
                        "text": simplejson_text(event),
                        "isRegion": false,
                    });
                    if let Some(end) = event.ended_at {
                        item["timeEnd"] = json!(millis(end));
                        item["isRegion"] = json!(true);
                    }
                    item
                })
                .collect();
            Json(items).into_response()
        }
        Err(response) => response,
    })
}

/// The tooltip text: who changed what, where.
fn simplejson_text(event: &Event) -> String {
    let mut text = format!("{} on {} by {}", event.kind, event.system, event.author);
    if let Some(environment) = &event.environment {
        text.push_str(&format!(" in {environment}"));
    }
    if let Some(version) = &event.version {
        text.push_str(&format!(" ({version})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_map() {
        let draft = map_annotation(&json!({
            "dashboardUID": "jcIIG-07z",
            "panelId": 1,
            "time": 1_507_037_197_339_i64,
            "timeEnd": 1_507_180_805_056_i64,
            "tags": ["system:checkout", "env:production", "deploy"],
            "text": "<b>Deploy</b> checkout 1.2\nby the release train"
        }))
        .unwrap();
        assert_eq!(draft.title, "Deploy checkout 1.2");
        assert_eq!(draft.system, "checkout");
        assert_eq!(draft.author, "grafana");
        assert_eq!(draft.tags, ["deploy"]);
        assert!(draft.ended_at > draft.occurred_at);
        assert_eq!(
            map_annotation(&json!({"tags": []})).unwrap_err(),
            "text is required"
        );
    }

    #[test]
    fn graphite_tags_may_be_one_string() {
        let draft = map_graphite(&json!({"what": "Event - deploy", "tags": "deploy production", "when": 1_467_844_481, "data": "deploy of main"})).unwrap();
        assert_eq!(draft.tags, ["deploy", "production"]);
        assert_eq!(draft.description.as_deref(), Some("deploy of main"));
    }

    #[test]
    fn read_back_parameters() {
        let uri: Uri =
            "/x?from=1506676478816&to=1507281278816&tags=a&tags=system:b&limit=1000&dashboardUID=z"
                .parse()
                .unwrap();
        let params = find_params(&uri).unwrap();
        assert_eq!(params.tags, ["a", "system:b"]);
        assert_eq!(params.limit, MAX_PAGE_SIZE);
        assert!(params.from < params.to);
        let bad: Uri = "/x?form=1".parse().unwrap();
        assert!(find_params(&bad).unwrap_err().contains("form"));
        // Found by the OpenAPI fuzz on PostgreSQL: a NUL in a tag reached the database (503).
        let nul: Uri = "/x?tags=a%00b".parse().unwrap();
        assert!(find_params(&nul).unwrap_err().contains("NUL"));
        assert_eq!(tag_field("system:b"), (Field::System, "b".to_owned()));
        assert_eq!(
            tag_field("release:5.2"),
            (Field::Tag, "release:5.2".to_owned())
        );
        let tags = ["a", "b", "env:x"].map(String::from);
        assert_eq!(tag_terms(&tags, false).len(), 3);
        assert_eq!(tag_terms(&tags, true).len(), 2);
    }
}
