//! `/api/v1/events`: record facts, one, many or a stream of them, and read them back.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tfr_core::time::{now, parse_duration, parse_timestamp};
use tfr_core::validate::{validate_new_event, validate_patch};
use tfr_core::{Event, EventId, ValidationError};
use tfr_store::{
    AroundRequest, BatchMode, DEFAULT_PAGE_SIZE, Deletion, InsertOutcome, InsertRecord, MAX_BATCH,
    PageRequest,
};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::params;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody, ItemError};
use crate::extract::{JsonBody, Params, check_content_type};
use crate::ndjson::{Line, LineSplitter};

/// Lines of a bulk request stored together...
const BULK_BATCH: usize = 500;
/// ...or fewer, when they weigh this much: memory stays bounded whatever the lines hold.
const BULK_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Per-line errors reported in full by a bulk request; the rest are only counted.
const MAX_BULK_ERRORS: usize = 1000;

/// The idempotency key sent as a header, if any.
/// The idempotency key sent as a header, if any (trimmed; empty counts as absent).
fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::InvalidEvent(ValidationError::new(
            "idempotency_key",
            "the Idempotency-Key header must be visible ASCII",
        ))
    })?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// The `idempotency_key` an event object carries, as validation will read it.
fn body_key(value: &Value) -> Option<&str> {
    value
        .get("idempotency_key")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

/// Gives an event object the header's key when it has none of its own, so the key is
/// validated like the field. With `must_agree` (a single event), a different key in the body
/// is an error; for batches, an item's own key wins.
fn apply_key(value: &mut Value, key: String, must_agree: bool) -> Result<(), ValidationError> {
    match body_key(value) {
        Some(existing) if existing == key || !must_agree => Ok(()),
        Some(_) => Err(ValidationError::new(
            "idempotency_key",
            "differs from the Idempotency-Key header; send one or make them equal",
        )),
        None => {
            if let Some(object) = value.as_object_mut() {
                object.insert("idempotency_key".into(), Value::String(key));
            }
            Ok(())
        }
    }
}

/// Validates a submitted event and makes it ready to store, as submitted by `caller`.
fn prepare(
    value: &Value,
    state: &AppState,
    caller: &Caller,
    now: Timestamp,
) -> Result<InsertRecord, ValidationError> {
    let new_event = validate_new_event(value, &state.config.limits, now)?;
    Ok(InsertRecord::new(new_event, now, caller.name()))
}

fn location(id: EventId) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/v1/events/{id}")).unwrap_or(HeaderValue::from_static("/"))
}

/// Events created by `POST /api/v1/events` with an array.
#[derive(Serialize, ToSchema)]
pub struct CreatedEvents {
    pub events: Vec<Event>,
}

/// The answer to `POST /api/v1/events`: the event, or `{"events": [...]}` for an array.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the answer in the OpenAPI document
pub enum CreateAnswer {
    One(Box<Event>),
    Many(CreatedEvents),
}

/// The body of `POST /api/v1/events`: one event, or an array of up to 1000 (all or nothing).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the body in the OpenAPI document; `validate_new_event` reads it
pub enum CreateBody {
    One(Box<NewEventBody>),
    Many(Vec<NewEventBody>),
}

/// A single line of text: not blank, no control characters (design §2).
const LINE_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// An event as a client sends it (design §2). Unknown fields are refused, and so are those the
/// server sets (`id`, `recorded_at`, `submitted_by`, `has_diff`). Text fields are single lines
/// (trimmed, not blank, no control characters); an empty optional one counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewEvent)]
#[allow(dead_code)] // describes the body in the OpenAPI document; `validate_new_event` reads it
pub struct NewEventBody {
    /// When it happened (RFC 3339 with an offset); the time of receipt when left out.
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    /// When it ended, for what lasts: not before `occurred_at`.
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    title: String,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    system: String,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    author: String,
    /// A lowercase slug (`deploy`, `config`, `feature_flag`); `change` when left out.
    #[schema(max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    kind: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    environment: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    team: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    source: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    version: Option<String>,
    /// Markdown, at most 64 KiB; no NUL.
    description: Option<String>,
    #[schema(schema_with = tags_schema)]
    tags: Option<Vec<String>>,
    #[schema(max_items = 32)]
    links: Option<Vec<NewLinkBody>>,
    /// A unified diff, at most 1 MiB unless the server says otherwise; no NUL.
    diff: Option<String>,
    /// Free-form JSON, at most 64 KiB serialized; no NUL.
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Map<String, Value>>,
    /// Makes retries safe: the same key with the same content is stored once.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    idempotency_key: Option<String>,
}

/// A link as a client sends it (a bare URL string is accepted too).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLink)]
#[allow(dead_code)] // describes the body in the OpenAPI document
pub struct NewLinkBody {
    /// An absolute http(s) URL, without spaces or control characters.
    #[schema(
        max_length = 2048,
        pattern = "^https?://[A-Za-z0-9]+(\\.[A-Za-z0-9]+)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~%/?=&+-]*)?$"
    )]
    url: String,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    title: Option<String>,
}

/// The body of `PATCH /api/v1/events/{id}`: the only changes a recorded fact allows.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EventPatch, min_properties = 1)]
#[allow(dead_code)] // describes the body in the OpenAPI document; `validate_patch` reads it
pub struct PatchBody {
    /// Closes the event's time span: not before `occurred_at`.
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    #[schema(schema_with = tags_schema)]
    tags: Option<Vec<String>>,
    /// Links to add.
    #[schema(max_items = 32)]
    links: Option<Vec<NewLinkBody>>,
}

/// Tags: up to 64 single lines of up to 200 characters (duplicates are dropped).
fn tags_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .description(Some(
            "Tags such as `release:5.2`: up to 64 single lines of up to 200 characters",
        ))
        .max_items(Some(64))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200))
                .pattern(Some(LINE_PATTERN)),
        )
        .build()
}

/// Record one event (a JSON object) or several (an array of up to 1000, all or nothing).
///
/// An idempotency key (the `idempotency_key` field or the `Idempotency-Key` header) makes
/// retries safe: the same key with the same content answers `200` with the original event,
/// with other content `409`. With an array, the header key `K` gives item `i` the key `K:i`.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    request_body(content = CreateBody, description = "An event (design §2), or an array of up to 1000 events", content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Idempotency key for the event (or prefix, for an array)")),
    responses(
        (status = 201, description = "Created: the event (object) or `{\"events\": [...]}` (array)", body = CreateAnswer, headers(("Location" = String, description = "The new event's URL"))),
        (status = 200, description = "Already recorded with this idempotency key: the original (or `{\"events\": [...]}`, for an array)", body = CreateAnswer),
        (status = 400, description = "Invalid event: the error names the field (and index, for an array)", body = ErrorBody),
        (status = 409, description = "Idempotency key reused with different content", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let header_key = idempotency_header(&headers)?;
    let now = now();
    match body {
        Value::Array(items) => create_many(state, &caller, items, header_key, now).await,
        mut single => {
            if let Some(key) = header_key {
                apply_key(&mut single, key, true).map_err(ApiError::InvalidEvent)?;
            }
            let record = prepare(&single, &state, &caller, now).map_err(ApiError::InvalidEvent)?;
            let outcome = state
                .store
                .insert(vec![record], BatchMode::AllOrNothing)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::Internal("the store returned no outcome".into()))?;
            match outcome {
                InsertOutcome::Created(event) => {
                    state.metrics.events_created(1);
                    let mut response = (StatusCode::CREATED, Json(&event)).into_response();
                    response.headers_mut().insert(LOCATION, location(event.id));
                    Ok(response)
                }
                InsertOutcome::Duplicate(event) => {
                    let mut response = (StatusCode::OK, Json(&event)).into_response();
                    response.headers_mut().insert(LOCATION, location(event.id));
                    Ok(response)
                }
                InsertOutcome::Conflict {
                    idempotency_key,
                    existing,
                } => Err(ApiError::IdempotencyConflict {
                    key: idempotency_key,
                    existing,
                }),
            }
        }
    }
}

async fn create_many(
    state: AppState,
    caller: &Caller,
    mut items: Vec<Value>,
    header_key: Option<String>,
    now: Timestamp,
) -> ApiResult<Response> {
    let total = items.len();
    if total == 0 {
        return Err(ApiError::InvalidBody("the array is empty".into()));
    }
    if total > MAX_BATCH {
        return Err(ApiError::InvalidBody(format!(
            "the array has {total} events; the limit is {MAX_BATCH} (use /api/v1/events/bulk for more)"
        )));
    }
    let mut records = Vec::with_capacity(total);
    let mut invalid = Vec::new();
    for (index, item) in items.iter_mut().enumerate() {
        let prepared = match &header_key {
            Some(key) => apply_key(item, format!("{key}:{index}"), false),
            None => Ok(()),
        }
        .and_then(|()| prepare(item, &state, caller, now));
        match prepared {
            Ok(record) => records.push(record),
            Err(error) => invalid.push(ItemError {
                index,
                field: error.field,
                message: error.message,
            }),
        }
    }
    // A key used twice in one array with different content would conflict with an event
    // that is never stored (the array is all or nothing): refuse it here, naming both items.
    // (Indexes of `records` are the array's only when every item was valid.)
    let mut first_use: HashMap<&str, (usize, &str)> = HashMap::new();
    let checked = if invalid.is_empty() { records.len() } else { 0 };
    for (index, record) in records.iter().enumerate().take(checked) {
        let Some(key) = record.event.idempotency_key.as_deref() else {
            continue;
        };
        match first_use.get(key) {
            Some((first, digest)) if *digest != record.content_digest => {
                invalid.push(ItemError {
                    index,
                    field: "idempotency_key".into(),
                    message: format!(
                        "item {first} uses the same idempotency key with different content"
                    ),
                });
            }
            Some(_) => {}
            None => {
                first_use.insert(key, (index, &record.content_digest));
            }
        }
    }
    if !invalid.is_empty() {
        return Err(ApiError::InvalidBatch {
            items: invalid,
            total,
        });
    }
    let outcomes = state.store.insert(records, BatchMode::AllOrNothing).await?;
    let conflicts: Vec<(usize, String, EventId)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| match outcome {
            InsertOutcome::Conflict {
                idempotency_key,
                existing,
            } => Some((index, idempotency_key.clone(), *existing)),
            _ => None,
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(ApiError::BatchConflict { conflicts, total });
    }
    let mut created = 0;
    let events: Vec<Event> = outcomes
        .into_iter()
        .filter_map(|outcome| match outcome {
            InsertOutcome::Created(event) => {
                created += 1;
                Some(event)
            }
            InsertOutcome::Duplicate(event) => Some(event),
            InsertOutcome::Conflict { .. } => None,
        })
        .collect();
    state.metrics.events_created(created);
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(CreatedEvents { events })).into_response())
}

/// The outcome of a bulk request, line by line.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BulkOutcome {
    /// Lines read, blank ones included.
    pub lines: usize,
    pub created: usize,
    /// Lines whose idempotency key was already stored with the same content.
    pub duplicates: usize,
    pub errors: Vec<BulkLineError>,
    /// Errors beyond the first 1000, counted but not listed.
    pub errors_omitted: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkLineError {
    /// Line number in the request body, from 1.
    pub line: usize,
    #[schema(value_type = Object)]
    pub error: Value,
}

impl BulkOutcome {
    fn error(&mut self, line: usize, error: &ApiError) {
        if self.errors.len() < MAX_BULK_ERRORS {
            self.errors.push(BulkLineError {
                line,
                error: error.body(),
            });
        } else {
            self.errors_omitted += 1;
        }
    }
}

const NDJSON_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
];

/// Record a stream of events: NDJSON, one event object per line, of any length.
///
/// Each line stands alone: valid lines are stored even when others are refused, and the answer
/// lists each refused line by number. Lines are limited to the body limit. With an
/// `Idempotency-Key: K` header, line `n` without its own key gets `K:n`, so the whole body can
/// be retried safely.
#[utoipa::path(
    post,
    path = "/api/v1/events/bulk",
    tag = "events",
    request_body(content = String, description = "NDJSON: one event object per line", content_type = "application/x-ndjson"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Key prefix: line n without its own key gets `K:n`")),
    responses(
        (status = 200, description = "Per-line outcome", body = BulkOutcome),
        (status = 400, description = "The body could not be read", body = ErrorBody),
        (status = 415, description = "Not NDJSON", body = ErrorBody),
        (status = 503, description = "Store unavailable; events of earlier lines may be stored, so retry with idempotency keys", body = ErrorBody),
    )
)]
pub async fn bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<BulkOutcome>> {
    check_content_type(&headers, NDJSON_TYPES, false).map_err(|_| {
        ApiError::UnsupportedMediaType(
            "send NDJSON (application/x-ndjson), one event per line; JSON arrays go to POST /api/v1/events".into(),
        )
    })?;
    let header_key = idempotency_header(&headers)?;
    let mut outcome = BulkOutcome::default();
    let mut splitter = LineSplitter::new(state.config.body_limit);
    let mut batch_bytes = 0;
    let mut stream = body.into_data_stream();
    let mut lines = Vec::new();
    let mut batch: Vec<(usize, InsertRecord)> = Vec::with_capacity(BULK_BATCH);
    // The batch being stored while the next one is parsed, so that parsing and storing run
    // side by side on different cores. At most one: its outcome is counted before the next
    // batch is handed over, so a failure reports exactly what was stored.
    let mut in_flight: Option<StoringBatch> = None;
    // Lines refused while reading, reported with the batch they precede, in line order.
    let mut refused: Vec<(usize, ApiError)> = Vec::new();
    let mut finished = false;
    let idle_timeout = state.config.idle_timeout;
    while !finished {
        let next = tokio::time::timeout(idle_timeout, stream.next()).await;
        match next {
            Err(_) => {
                finish_batch(in_flight.take(), &mut outcome).await?;
                return Err(ApiError::BodyTimeout(idle_timeout.as_secs()));
            }
            Ok(Some(Ok(chunk))) => splitter.push(&chunk, &mut lines),
            Ok(Some(Err(error))) => {
                finish_batch(in_flight.take(), &mut outcome).await?;
                return Err(ApiError::InvalidBody(format!(
                    "reading the body failed after {} lines ({} events stored): {error}",
                    splitter.count(),
                    outcome.created
                )));
            }
            Ok(None) => {
                splitter.finish(&mut lines);
                finished = true;
            }
        }
        let now = now();
        for line in lines.drain(..) {
            match line {
                Line::TooLong { number } => refused.push((
                    number,
                    ApiError::PayloadTooLarge {
                        limit: state.config.body_limit,
                    },
                )),
                Line::Text { bytes, .. } if bytes.iter().all(u8::is_ascii_whitespace) => {}
                Line::Text { number, bytes } => {
                    let parsed = serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                        ApiError::InvalidBody(format!("the line is not valid JSON: {e}"))
                    });
                    let prepared = parsed.and_then(|mut value| {
                        if let Some(key) = &header_key {
                            apply_key(&mut value, format!("{key}:{number}"), false)
                                .map_err(ApiError::InvalidEvent)?;
                        }
                        prepare(&value, &state, &caller, now).map_err(ApiError::InvalidEvent)
                    });
                    match prepared {
                        Ok(record) => {
                            batch_bytes += bytes.len();
                            batch.push((number, record));
                        }
                        Err(error) => refused.push((number, error)),
                    }
                }
            }
            if batch.len() >= BULK_BATCH || batch_bytes >= BULK_BATCH_BYTES {
                finish_batch(in_flight.take(), &mut outcome).await?;
                in_flight = Some(StoringBatch::start(&state, &mut batch, &mut refused));
                batch_bytes = 0;
            }
        }
    }
    finish_batch(in_flight.take(), &mut outcome).await?;
    if !batch.is_empty() || !refused.is_empty() {
        let last = StoringBatch::start(&state, &mut batch, &mut refused);
        finish_batch(Some(last), &mut outcome).await?;
    }
    outcome.lines = splitter.count();
    Ok(Json(outcome))
}

/// A batch of a bulk request handed to the store: its line numbers and the task storing it.
struct StoringBatch {
    numbers: Vec<usize>,
    task: tokio::task::JoinHandle<tfr_store::StoreResult<Vec<InsertOutcome>>>,
    /// The lines refused before it, reported with its conflicts, in line order.
    refused: Vec<(usize, ApiError)>,
}

impl StoringBatch {
    /// Starts storing the batch (emptying it) on a task of its own: it goes on even if the
    /// client goes away, as a request that was already handed over would.
    /// The task counts what it stored in the metrics itself, so that a batch stored after
    /// its client went away is counted too.
    fn start(
        state: &AppState,
        batch: &mut Vec<(usize, InsertRecord)>,
        refused: &mut Vec<(usize, ApiError)>,
    ) -> Self {
        let (numbers, records): (Vec<usize>, Vec<InsertRecord>) = batch.drain(..).unzip();
        let store = Arc::clone(&state.store);
        let metrics = Arc::clone(&state.metrics);
        let task = tokio::spawn(async move {
            if records.is_empty() {
                return Ok(Vec::new());
            }
            let outcomes = store.insert(records, BatchMode::Independent).await;
            match &outcomes {
                Ok(outcomes) => metrics.events_created(
                    outcomes
                        .iter()
                        .filter(|outcome| matches!(outcome, InsertOutcome::Created(_)))
                        .count(),
                ),
                Err(error) => tracing::warn!(%error, "storing a batch of a bulk request failed"),
            }
            outcomes
        });
        Self {
            numbers,
            task,
            refused: std::mem::take(refused),
        }
    }
}

/// Waits for a batch being stored and adds its outcomes to the request's.
async fn finish_batch(batch: Option<StoringBatch>, outcome: &mut BulkOutcome) -> ApiResult<()> {
    let Some(StoringBatch {
        numbers,
        task,
        mut refused,
    }) = batch
    else {
        return Ok(());
    };
    let outcomes = task
        .await
        .map_err(|error| ApiError::Internal(format!("storing a batch failed: {error}")))?
        .map_err(|error| match ApiError::from(error) {
            ApiError::Unavailable(message) => ApiError::Unavailable(format!(
                "{message}; {} events of this request were stored before the failure, so retry with idempotency keys (the CLI's import always sets them)",
                outcome.created
            )),
            other => other,
        })?;
    for (number, result) in numbers.into_iter().zip(outcomes) {
        match result {
            InsertOutcome::Created(_) => outcome.created += 1,
            InsertOutcome::Duplicate(_) => outcome.duplicates += 1,
            InsertOutcome::Conflict {
                idempotency_key,
                existing,
            } => refused.push((
                number,
                ApiError::IdempotencyConflict {
                    key: idempotency_key,
                    existing,
                },
            )),
        }
    }
    refused.sort_by_key(|(number, _)| *number);
    for (number, error) in &refused {
        outcome.error(*number, error);
    }
    Ok(())
}

/// Parameters of the feed.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Query in the tfr query language, e.g. `system:player kind:deploy since:7d`.
    pub q: Option<String>,
    /// Only events that occurred at or after this time (RFC 3339, or `YYYY-MM-DD` = midnight UTC).
    pub from: Option<String>,
    /// Only events that occurred before this time (exclusive).
    pub to: Option<String>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the feed.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    /// Newest first, by (`occurred_at`, `id`); without diffs (see `has_diff`).
    pub events: Vec<Event>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The feed: matching events, newest first, a page at a time (keyset cursor).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(ListParams),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Invalid query or parameter; a query error gives its `position`", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<EventPage>> {
    let filter = params::filter(
        params.q.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        now(),
    )?;
    let request = PageRequest {
        limit: params::page_limit(params.limit, DEFAULT_PAGE_SIZE)?,
        cursor: params::cursor(params.cursor.as_deref())?,
        ..PageRequest::default()
    };
    let page = state.store.list(&filter, request).await?;
    Ok(Json(EventPage {
        events: page.events,
        next_cursor: page.next_cursor.map(|cursor| cursor.to_string()),
    }))
}

fn event_id(text: &str) -> ApiResult<EventId> {
    text.parse().map_err(|m| ApiError::parameter("id", m))
}

/// One event, with its diff.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 400, description = "Not an event id", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Event>> {
    let id = event_id(&id)?;
    state
        .store
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no event has the id {id}")))
}

/// Set `ended_at`, add `tags` or `links`. Everything else about a fact is immutable.
#[utoipa::path(
    patch,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    request_body(content = PatchBody, description = "`{\"ended_at\": ..., \"tags\": [...], \"links\": [...]}`: tags and links are added", content_type = "application/json"),
    responses(
        (status = 200, description = "The updated event", body = Event),
        (status = 400, description = "Invalid patch", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Event>> {
    let id = event_id(&id)?;
    let patch = validate_patch(&body).map_err(ApiError::InvalidEvent)?;
    state
        .store
        .patch(id, patch)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no event has the id {id}")))
}

/// Parameters of `DELETE /api/v1/events/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Why the event is deleted (kept in the audit log): one line, up to 500 characters.
    pub reason: Option<String>,
}

/// The longest deletion reason.
const MAX_REASON_CHARS: usize = 500;

/// Delete an event — redaction, e.g. of a secret pasted into a diff. Needs the `admin` scope.
/// The deletion is recorded in the audit log (`GET /api/v1/audit`): who, when, which event
/// (id, title, system) and why. The event's idempotency key is freed with it.
#[utoipa::path(
    delete,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event's id"), DeleteParams),
    responses(
        (status = 204, description = "Deleted, and audited"),
        (status = 400, description = "Not an event id, or a bad reason", body = ErrorBody),
        (status = 401, description = "No token, or a token that is unknown, revoked or expired", body = ErrorBody),
        (status = 403, description = "The token's scope is not admin", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Params(params): Params<DeleteParams>,
) -> ApiResult<StatusCode> {
    let id = event_id(&id)?;
    let reason = params
        .reason
        .map(|reason| reason.trim().to_owned())
        .filter(|reason| !reason.is_empty());
    if let Some(reason) = &reason {
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ApiError::parameter(
                "reason",
                format!("is longer than {MAX_REASON_CHARS} characters"),
            ));
        }
        if reason.chars().any(char::is_control) {
            return Err(ApiError::parameter(
                "reason",
                "must be one line, without control characters",
            ));
        }
    }
    let deletion = Deletion {
        id,
        actor: caller.name().to_owned(),
        at: now(),
        reason,
    };
    let entry = state
        .store
        .delete_event(deletion)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event has the id {id}")))?;
    tracing::warn!(
        event = %entry.event_id,
        actor = %entry.actor,
        audit_id = entry.id,
        "event deleted (audited)"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Parameters of `last`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LastParams {
    /// Query in the tfr query language.
    pub q: Option<String>,
}

/// The most recent matching event, and how long ago it occurred.
#[derive(Serialize, ToSchema)]
pub struct LastEvent {
    #[serde(flatten)]
    pub event: Event,
    /// Seconds since `occurred_at` (negative for an event planned in the future).
    pub age_seconds: i64,
}

/// When did this last happen? The most recent event matching `q` that occurred by now.
#[utoipa::path(
    get,
    path = "/api/v1/events/last",
    tag = "events",
    params(LastParams),
    responses(
        (status = 200, description = "The most recent match", body = LastEvent),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 404, description = "Nothing matches", body = ErrorBody),
    )
)]
pub async fn last(
    State(state): State<AppState>,
    Params(params): Params<LastParams>,
) -> ApiResult<Json<LastEvent>> {
    let now = now();
    let mut filter = params::filter(params.q.as_deref(), None, None, now)?;
    // The last change that happened: planned ones (occurred_at in the future) don't count.
    filter.to = Some(
        now.checked_add(jiff::SignedDuration::from_micros(1))
            .unwrap_or(now),
    );
    let request = PageRequest {
        limit: 1,
        ..PageRequest::default()
    };
    let event = state
        .store
        .list(&filter, request)
        .await?
        .events
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound("no event matches the query".into()))?;
    let age_seconds = now.as_second() - event.occurred_at.as_second();
    Ok(Json(LastEvent { event, age_seconds }))
}

/// Parameters of `around`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AroundParams {
    /// The moment of interest (RFC 3339), e.g. when an incident started.
    #[param(required = true, format = DateTime)]
    pub time: Option<String>,
    /// How far back to look (default `1h`; units s m h d w).
    pub before: Option<String>,
    /// How far forward to look (default `1h`).
    pub after: Option<String>,
    /// Query in the tfr query language.
    pub q: Option<String>,
    /// At most this many events, 1..=500 (default 100).
    pub limit: Option<usize>,
}

/// An event and where it stands relative to the moment asked about.
#[derive(Serialize, ToSchema)]
pub struct AroundEvent {
    #[serde(flatten)]
    pub event: Event,
    /// `occurred_at` minus `time`, in seconds: negative before, positive after.
    pub offset_seconds: i64,
}

/// What changed around a moment.
#[derive(Serialize, ToSchema)]
pub struct AroundResponse {
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Closest to `time` first.
    pub events: Vec<AroundEvent>,
}

/// Incident triage: what changed around a moment, closest first.
#[utoipa::path(
    get,
    path = "/api/v1/events/around",
    tag = "events",
    params(AroundParams),
    responses(
        (status = 200, description = "Events in [time - before, time + after], closest first", body = AroundResponse),
        (status = 400, description = "Invalid parameter or query", body = ErrorBody),
    )
)]
pub async fn around(
    State(state): State<AppState>,
    Params(params): Params<AroundParams>,
) -> ApiResult<Json<AroundResponse>> {
    let time = params
        .time
        .as_deref()
        .ok_or_else(|| {
            ApiError::parameter("time", "is required (RFC 3339, e.g. 2026-11-02T14:05:00Z)")
        })
        .and_then(|text| parse_timestamp(text).map_err(|m| ApiError::parameter("time", m)))?;
    let window = |name: &str, value: Option<&str>| {
        parse_duration(value.unwrap_or("1h")).map_err(|m| ApiError::parameter(name, m))
    };
    let before = window("before", params.before.as_deref())?;
    let after = window("after", params.after.as_deref())?;
    let filter = params::filter(params.q.as_deref(), None, None, now())?;
    let request = AroundRequest {
        time,
        before,
        after,
        limit: params::page_limit(params.limit, 100)?,
    };
    let events = state.store.around(&filter, &request).await?;
    let time_micros = time.as_microsecond();
    Ok(Json(AroundResponse {
        time,
        from: time.checked_sub(before).unwrap_or(Timestamp::MIN),
        to: time.checked_add(after).unwrap_or(Timestamp::MAX),
        events: events
            .into_iter()
            .map(|event| {
                let offset_seconds = (event.occurred_at.as_microsecond() - time_micros) / 1_000_000;
                AroundEvent {
                    event,
                    offset_seconds,
                }
            })
            .collect(),
    }))
}
