//! Integrations (design §5): the native payloads of the tools already in place — GitHub and
//! GitLab webhooks, PagerDuty change events, Datadog events, Grafana annotations, Honeycomb
//! markers, CloudEvents — mapped onto events, answered the way each original service answers.
//!
//! Every integration builds a [`Draft`] from the payload and hands it to [`record`], which runs
//! the API's own path: `validate_new_event` on the JSON object the draft becomes, then
//! `InsertRecord::new`, then `Store::insert`. A mapping therefore cannot store anything the API
//! would refuse. One file per tool; the shared pieces live here.

pub mod cloudevents;
pub mod datadog;
pub mod github;
pub mod gitlab;
pub mod grafana;
pub mod honeycomb;
pub mod pagerduty;

use std::fmt;
use std::net::SocketAddr;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tfr_core::time::{now, parse_timestamp};
use tfr_core::validate::{
    MAX_ATTRIBUTES_BYTES, MAX_DESCRIPTION_BYTES, MAX_IDEMPOTENCY_KEY_CHARS, MAX_KIND_CHARS,
    MAX_LINKS, MAX_NAME_CHARS, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS, check_kind,
    validate_new_event,
};
use tfr_core::{Event, EventId, ValidationError};
use tfr_store::{BatchMode, InsertOutcome, InsertRecord};

use crate::AppState;
use crate::error::ApiError;

/// A secret from the configuration (a webhook secret, a shared token). Its `Debug` form hides
/// the value, so a configuration printed in a log never leaks it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// An empty secret is no secret: configured empty, it counts as not configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
/// Both are hashed first, so their lengths leak nothing either.
pub(crate) fn secret_matches(given: &[u8], expected: &Secret) -> bool {
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected.expose().as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// Who is writing through an integration: the name events record in `submitted_by`, or the
/// refusal (`401`, `403`, `429`) in tfr's error shape. `credential` is the tool's own (a
/// PagerDuty routing key, a Datadog API key, a Honeycomb key, a Grafana or CloudEvents bearer
/// token); an `Authorization: Bearer` header works for every tool. A credential without the
/// `tfr_` prefix is the tool's own key, which tfr does not know: the write is then anonymous,
/// and allowed only where anonymous writes are (see [`crate::auth::integration_writer`]).
pub(crate) async fn submitter(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    credential: Option<&str>,
) -> Result<String, Response> {
    crate::auth::integration_writer(state, headers, credential, peer)
        .await
        .map(|caller| caller.name().to_owned())
        .map_err(IntoResponse::into_response)
}

/// The event an integration makes of a payload, before the API's validation. Single-line
/// fields are cut to their limits when the draft becomes JSON: a vendor's fields can be longer
/// than ours (a 1024-character PagerDuty summary, a commit message of any length), and a fact
/// clipped is better than a delivery refused.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub title: String,
    pub system: String,
    pub author: String,
    pub kind: Option<String>,
    pub environment: Option<String>,
    pub team: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub occurred_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub tags: Vec<String>,
    pub links: Vec<DraftLink>,
    pub attributes: Map<String, Value>,
    pub idempotency_key: Option<String>,
}

/// A link as the vendor gave it; validation decides whether it is a URL.
#[derive(Debug)]
pub(crate) struct DraftLink {
    pub url: String,
    pub title: Option<String>,
}

impl Draft {
    pub fn tag(&mut self, tag: impl Into<String>) {
        self.tags.push(tag.into());
    }

    pub fn link(&mut self, url: impl Into<String>, title: &str) {
        self.links.push(DraftLink {
            url: url.into(),
            title: Some(title.to_owned()),
        });
    }

    /// Sets the fields that `key:value` tags name (`system:`/`service:`, `env:`/`environment:`,
    /// `version:`, `team:`, `kind:`, `author:`/`user:`) when the draft has no value yet, and
    /// keeps every other tag. This is the convention tools without those fields use to say
    /// them; Datadog's unified service tags (`service`, `env`, `version`) follow it already.
    pub fn apply_tags(&mut self, tags: impl IntoIterator<Item = String>) {
        for tag in tags {
            let tag = tag.trim().to_owned();
            if tag.is_empty() {
                continue;
            }
            let Some((key, value)) = tag.split_once(':') else {
                self.tags.push(tag);
                continue;
            };
            let value = value.trim();
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "system" | "service" => Some(&mut self.system),
                "author" | "user" => Some(&mut self.author),
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.is_empty() && !value.is_empty() {
                    *slot = value.to_owned();
                    continue;
                }
                self.tags.push(tag);
                continue;
            }
            let optional = match key.trim().to_ascii_lowercase().as_str() {
                "env" | "environment" => Some(&mut self.environment),
                "version" => Some(&mut self.version),
                "team" => Some(&mut self.team),
                "kind" if check_kind(value).is_ok() => Some(&mut self.kind),
                _ => None,
            };
            match optional {
                Some(slot) if slot.is_none() && !value.is_empty() => {
                    *slot = Some(value.to_owned());
                }
                _ => self.tags.push(tag),
            }
        }
    }

    /// Fills the required fields still empty: the system and author fall back to the tool's
    /// name, so an event is never refused for lacking what the tool cannot say.
    pub fn fallback(&mut self, tool: &str) {
        if self.system.trim().is_empty() {
            tool.clone_into(&mut self.system);
        }
        if self.author.trim().is_empty() {
            tool.clone_into(&mut self.author);
        }
    }

    /// The event object submitted to validation, with `source` set to the tool.
    pub fn into_value(self, source: &str) -> Value {
        let mut object = Map::new();
        let mut put = |key: &str, value: Value| {
            object.insert(key.to_owned(), value);
        };
        put("title", json!(one_line(&self.title, MAX_TITLE_CHARS)));
        put("system", json!(one_line(&self.system, MAX_NAME_CHARS)));
        put("author", json!(one_line(&self.author, MAX_NAME_CHARS)));
        put("source", json!(source));
        if let Some(kind) = self.kind {
            put("kind", json!(kind));
        }
        for (key, value) in [
            ("environment", self.environment),
            ("team", self.team),
            ("version", self.version),
        ] {
            if let Some(value) = value {
                put(key, json!(one_line(&value, MAX_NAME_CHARS)));
            }
        }
        if let Some(description) = self.description.filter(|d| !d.trim().is_empty()) {
            put(
                "description",
                json!(clip_bytes(&description, MAX_DESCRIPTION_BYTES)),
            );
        }
        if let Some(at) = self.occurred_at {
            put("occurred_at", json!(at.to_string()));
        }
        if let Some(at) = self.ended_at {
            put("ended_at", json!(at.to_string()));
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in &self.tags {
            let tag = one_line(tag, MAX_TAG_CHARS);
            if !tag.is_empty() && !tags.contains(&tag) && tags.len() < MAX_TAGS {
                tags.push(tag);
            }
        }
        if !tags.is_empty() {
            put("tags", json!(tags));
        }
        let links: Vec<Value> = self
            .links
            .into_iter()
            .filter(|link| !link.url.trim().is_empty())
            .take(MAX_LINKS)
            .map(
                |link| match link.title.map(|t| one_line(&t, MAX_NAME_CHARS)) {
                    Some(title) if !title.is_empty() => json!({"url": link.url, "title": title}),
                    _ => json!({"url": link.url}),
                },
            )
            .collect();
        if !links.is_empty() {
            put("links", Value::Array(links));
        }
        if !self.attributes.is_empty() {
            let size = serde_json::to_string(&self.attributes).map_or(usize::MAX, |s| s.len());
            let attributes = if size <= MAX_ATTRIBUTES_BYTES {
                Value::Object(self.attributes)
            } else {
                json!({"omitted": format!("the payload's details weigh {size} bytes; the limit is {MAX_ATTRIBUTES_BYTES}")})
            };
            put("attributes", attributes);
        }
        if let Some(key) = self.idempotency_key {
            put("idempotency_key", json!(key));
        }
        Value::Object(object)
    }
}

/// The first non-blank line of `text`, without control characters, cut to `max` characters
/// (the last one an ellipsis when cut).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    let line = line.trim();
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A kind made of free text (a CloudEvents type, a marker type): lowercased, every character
/// outside `a-z 0-9 _ -` replaced by `_`, cut to the kind's length limit. `None` if nothing is
/// left.
pub(crate) fn kind_from(text: &str) -> Option<String> {
    let mut slug: String = text
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    slug = slug.trim_matches('_').to_owned();
    slug.truncate(MAX_KIND_CHARS);
    let slug = slug.trim_end_matches('_').to_owned();
    check_kind(&slug).is_ok().then_some(slug)
}

/// A non-blank string found at a JSON pointer (`/deployment/environment`).
pub(crate) fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// A number (or a string holding one) found at a JSON pointer.
pub(crate) fn integer(value: &Value, pointer: &str) -> Option<i64> {
    match value.pointer(pointer)? {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|f| f as i64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A header's value as text, trimmed; `None` when absent, blank or not visible ASCII.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

/// The media type of the request, lowercased, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = header(headers, "content-type")?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Parses the timestamps vendors send: RFC 3339 (`2026-11-26T10:00:00Z`), ISO 8601 with a
/// colon-less offset (`2020-07-17T08:42:58.315+0000`, PagerDuty), and GitLab's
/// `2021-04-28 21:50:00 +0200` and `2020-11-02 12:55:12 UTC`.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(at) = parse_timestamp(text) {
        return Some(at);
    }
    let mut normalized = match text.strip_suffix(" UTC") {
        Some(rest) => format!("{rest}Z"),
        None => text.to_owned(),
    };
    if normalized.as_bytes().get(10) == Some(&b' ') {
        normalized.replace_range(10..11, "T");
    }
    normalized.retain(|c| c != ' ');
    // `+0200` → `+02:00`
    let bytes = normalized.as_bytes();
    let n = bytes.len();
    if n > 5 && matches!(bytes[n - 5], b'+' | b'-') && bytes[n - 4..].iter().all(u8::is_ascii_digit)
    {
        normalized.insert(n - 2, ':');
    }
    parse_timestamp(&normalized).ok()
}

/// A Unix time in seconds as a timestamp.
pub(crate) fn from_seconds(seconds: i64) -> Option<Timestamp> {
    Timestamp::from_second(seconds).ok()
}

/// A Unix time in milliseconds as a timestamp.
pub(crate) fn from_millis(millis: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(millis).ok()
}

/// An idempotency key `<prefix>:<parts joined by ':'>`, hashed when it would exceed the key
/// length limit (a long branch name, a long CloudEvents source).
pub(crate) fn idempotency_key(prefix: &str, parts: &[&str]) -> String {
    let key = format!("{prefix}:{}", parts.join(":"));
    if key.chars().count() <= MAX_IDEMPOTENCY_KEY_CHARS && !key.chars().any(char::is_control) {
        return key;
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}:sha256:{hex}")
}

/// The numeric id tools that expect one (Grafana, Datadog) are answered with: the low 53 bits
/// of the event's UUIDv7 (its random part), so it survives a JavaScript number. It names the
/// event in replies; the UUID remains the event's identity.
pub(crate) fn numeric_id(id: EventId) -> i64 {
    let low = id.as_uuid().as_u128() & ((1_u128 << 53) - 1);
    i64::try_from(low).unwrap_or(0)
}

/// Reading a request body failed.
pub(crate) enum BodyError {
    TooLarge(usize),
    Unreadable(String),
}

/// Reads the whole body, refusing more than `limit` bytes, and a body that stops arriving
/// for [`crate::DEFAULT_IDLE_TIMEOUT`].
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let Ok(next) = tokio::time::timeout(crate::DEFAULT_IDLE_TIMEOUT, stream.next()).await
        else {
            return Err(BodyError::Unreadable(format!(
                "no data for {} s",
                crate::DEFAULT_IDLE_TIMEOUT.as_secs()
            )));
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|error| BodyError::Unreadable(error.to_string()))?;
        if buffer.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(limit) => ApiError::PayloadTooLarge { limit },
            BodyError::Unreadable(detail) => {
                ApiError::InvalidBody(format!("cannot read the request body: {detail}"))
            }
        }
    }
}

/// An event stored by an integration, or found already stored under its idempotency key.
#[derive(Debug)]
pub(crate) enum Recorded {
    Created(Event),
    Duplicate(Event),
}

impl Recorded {
    pub fn event(&self) -> &Event {
        match self {
            Self::Created(event) | Self::Duplicate(event) => event,
        }
    }

    /// `201` for a new event, `200` for a redelivery: the API's convention.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Created(_) => StatusCode::CREATED,
            Self::Duplicate(_) => StatusCode::OK,
        }
    }
}

/// Why an integration could not record an event.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The mapped event breaks a rule of the event model.
    Invalid(ValidationError),
    /// The idempotency key (a delivery id) was used for other content.
    Conflict { key: String, existing: EventId },
    /// The store failed; already logged.
    Store(ApiError),
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Invalid(invalid) => ApiError::InvalidEvent(invalid),
            Refused::Conflict { key, existing } => ApiError::IdempotencyConflict { key, existing },
            Refused::Store(error) => error,
        }
    }
}

impl Refused {
    /// A sentence for a vendor-shaped error body.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid(invalid) if invalid.field.is_empty() => invalid.message.clone(),
            Self::Invalid(invalid) => format!("{}: {}", invalid.field, invalid.message),
            Self::Conflict { key, existing } => format!(
                "idempotency key '{key}' was already used for event {existing} with different content"
            ),
            Self::Store(error) => store_failure(error),
        }
    }

    /// Whether the fault is the sender's (4xx) rather than the server's.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Store(_))
    }
}

/// What a tool is told when the store failed, in its own error shape: the generic message. The
/// detail of an internal error is logged here, once (`ApiError` logs it for answers in tfr's
/// shape).
pub(crate) fn store_failure(error: &ApiError) -> String {
    if let ApiError::Internal(detail) = error {
        tracing::error!(%detail, "internal error");
    }
    error.to_string()
}

/// Validates a draft exactly as the API validates an event, and makes it ready to store.
fn prepare(
    state: &AppState,
    draft: Draft,
    source: &str,
    submitted_by: &str,
    now: Timestamp,
) -> Result<InsertRecord, ValidationError> {
    let value = draft.into_value(source);
    let new_event = validate_new_event(&value, &state.config.limits, now)?;
    Ok(InsertRecord::new(new_event, now, submitted_by))
}

/// Records one event through the API's path: validation, then the store.
pub(crate) async fn record(
    state: &AppState,
    draft: Draft,
    source: &str,
    submitted_by: &str,
) -> Result<Recorded, Refused> {
    let mut recorded = record_all(state, vec![draft], source, submitted_by)
        .await
        .map_err(|mut refusals| {
            refusals
                .pop()
                .map_or_else(|| Refused::Store(internal()), |(_, refused)| refused)
        })?;
    recorded.pop().ok_or_else(|| Refused::Store(internal()))
}

fn internal() -> ApiError {
    ApiError::Internal("the store returned no outcome".into())
}

/// Records several events, all or nothing (a CloudEvents batch). Every invalid item is
/// reported, with its index, before anything is stored.
pub(crate) async fn record_all(
    state: &AppState,
    drafts: Vec<Draft>,
    source: &str,
    submitted_by: &str,
) -> Result<Vec<Recorded>, Vec<(usize, Refused)>> {
    let now = now();
    let mut records = Vec::with_capacity(drafts.len());
    let mut refused = Vec::new();
    for (index, draft) in drafts.into_iter().enumerate() {
        match prepare(state, draft, source, submitted_by, now) {
            Ok(record) => records.push(record),
            Err(invalid) => refused.push((index, Refused::Invalid(invalid))),
        }
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = state
        .store
        .insert(records, BatchMode::AllOrNothing)
        .await
        .map_err(|error| vec![(0, Refused::Store(ApiError::from(error)))])?;
    let mut recorded = Vec::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            InsertOutcome::Created(event) => recorded.push(Recorded::Created(event)),
            InsertOutcome::Duplicate(event) => recorded.push(Recorded::Duplicate(event)),
            InsertOutcome::Conflict {
                idempotency_key,
                existing,
            } => refused.push((
                index,
                Refused::Conflict {
                    key: idempotency_key,
                    existing,
                },
            )),
        }
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    let created = recorded
        .iter()
        .filter(|r| matches!(r, Recorded::Created(_)))
        .count();
    state.metrics.events_created(created);
    Ok(recorded)
}

/// An answer in tfr's own error shape, for the codes `ApiError` has no variant for.
pub(crate) fn tfr_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (status, Json(body)).into_response()
}

/// The `Idempotency-Key` header, which every integration honours like the API does, for
/// tools that can add a header but have no delivery id of their own.
pub(crate) fn idempotency_header(headers: &HeaderMap) -> Option<String> {
    header(headers, "idempotency-key").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_timestamps() {
        let expected: Timestamp = "2020-07-17T08:42:58.315Z".parse().unwrap();
        assert_eq!(parse_time("2020-07-17T08:42:58.315+0000"), Some(expected));
        assert_eq!(parse_time("2020-07-17T08:42:58.315Z"), Some(expected));
        let gitlab: Timestamp = "2021-04-28T19:50:00Z".parse().unwrap();
        assert_eq!(parse_time("2021-04-28 21:50:00 +0200"), Some(gitlab));
        let utc: Timestamp = "2020-11-02T12:55:12Z".parse().unwrap();
        assert_eq!(parse_time("2020-11-02 12:55:12 UTC"), Some(utc));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2020-11-02 12:55:12"), None);
    }

    #[test]
    fn lines_are_cut_to_their_limit() {
        assert_eq!(one_line("\n  first line \nsecond", 100), "first line");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("tab\there", 100), "tabhere");
        assert_eq!(clip_bytes("ééé", 5), "é…");
        assert_eq!(clip_bytes("abc", 5), "abc");
    }

    #[test]
    fn kinds_from_free_text() {
        assert_eq!(
            kind_from("com.example.Deploy.Finished").as_deref(),
            Some("com_example_deploy_finished")
        );
        assert_eq!(kind_from("deploy").as_deref(), Some("deploy"));
        assert_eq!(kind_from("..."), None);
        assert_eq!(kind_from(&"x".repeat(100)).map(|k| k.len()), Some(64));
    }

    #[test]
    fn field_tags_fill_fields_and_others_stay_tags() {
        let mut draft = Draft::default();
        draft.apply_tags(
            [
                "service:checkout",
                "env:production",
                "version:1.2.3",
                "kind:deploy",
                "kind:Not A Slug",
                "team:payments",
                "user:alice",
                "region:eu",
                "plain",
                "service:other",
            ]
            .map(String::from),
        );
        assert_eq!(draft.system, "checkout");
        assert_eq!(draft.environment.as_deref(), Some("production"));
        assert_eq!(draft.version.as_deref(), Some("1.2.3"));
        assert_eq!(draft.kind.as_deref(), Some("deploy"));
        assert_eq!(draft.team.as_deref(), Some("payments"));
        assert_eq!(draft.author, "alice");
        assert_eq!(
            draft.tags,
            ["kind:Not A Slug", "region:eu", "plain", "service:other"]
        );
    }

    #[test]
    fn long_keys_are_hashed() {
        assert_eq!(idempotency_key("github", &["abc"]), "github:abc");
        let long = idempotency_key("ce", &[&"s".repeat(300), "1"]);
        assert!(long.starts_with("ce:sha256:") && long.len() < 200, "{long}");
    }

    #[test]
    fn secrets_compare_and_never_print() {
        let secret = Secret::new("s3cret");
        assert!(secret_matches(b"s3cret", &secret));
        assert!(!secret_matches(b"s3creT", &secret));
        assert!(!secret_matches(b"", &secret));
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn numeric_ids_fit_a_javascript_number() {
        let id = EventId::new();
        let n = numeric_id(id);
        assert!((0..1_i64 << 53).contains(&n));
        assert_eq!(n, numeric_id(id));
    }
}
