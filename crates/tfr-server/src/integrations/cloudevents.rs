//! CloudEvents 1.0 over HTTP: `POST /integrations/cloudevents`, in the three modes of the HTTP
//! binding — structured (`application/cloudevents+json`: the event is the body), batch
//! (`application/cloudevents-batch+json`: an array of them, stored all or nothing) and binary
//! (the attributes in `ce-*` headers, the body is the data).
//!
//! `source` + `id` identify an event (the spec says so), and are its idempotency key: a
//! redelivered event is stored once.
//!
//! CDEvents (`dev.cdevents.<subject>.<predicate>.<version>`, CloudEvents of the CD Foundation)
//! are mapped to the right kind, system and environment: a service deployed, upgraded or
//! rolled back is a `deploy` of that service to that environment, a pipeline run finished is
//! `ci`, a change merged a `merge`, an artifact published a `release`, an incident an
//! `incident`. Any other type is kept, its kind made of the type; its data may carry tfr's
//! fields (`title`, `system`, `author`, `environment`, `version`, `team`, `kind`,
//! `description`, `tags`, `links`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use tfr_core::EventId;
use tfr_core::time::parse_timestamp;
use tfr_core::validate::check_kind;
use tfr_store::MAX_BATCH;

use super::{
    Draft, DraftLink, Recorded, Refused, bearer, idempotency_key, kind_from, media_type, one_line,
    read_body, record, record_all, submitter, text,
};
use crate::AppState;
use crate::api::events::CreatedEvents;
use crate::error::{ApiError, ErrorBody, ItemError};
use crate::extract::Peer;

const SOURCE: &str = "cloudevents";

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

/// Data kept in the event's attributes up to this size; larger data is summarised.
const MAX_KEPT_DATA: usize = 32 * 1024;

/// A CloudEvent, as read from any of the three modes.
#[derive(Debug, Default)]
struct CloudEvent {
    id: String,
    source: String,
    event_type: String,
    subject: Option<String>,
    time: Option<Timestamp>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    data: Option<Value>,
    extensions: Map<String, Value>,
}

/// Receive CloudEvents (structured, batch or binary mode).
#[utoipa::path(
    post,
    path = "/integrations/cloudevents",
    tag = "integrations",
    request_body(content = Object, description = "A CloudEvent (`application/cloudevents+json`), an array of them (`application/cloudevents-batch+json`), or the data of one whose attributes are `ce-*` headers", content_type = "application/cloudevents+json"),
    responses(
        (status = 201, description = "Recorded: the event, or `{\"events\": [...]}` for a batch"),
        (status = 200, description = "Already recorded (same source and id): the original"),
        (status = 400, description = "Not a valid CloudEvent; for a batch, every bad index", body = ErrorBody),
        (status = 409, description = "The same source and id were used for other content", body = ErrorBody),
        (status = 415, description = "Neither a CloudEvents media type nor `ce-*` headers", body = ErrorBody),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let submitted_by = match submitter(&state, &headers, peer, bearer(&headers)).await {
        Ok(name) => name,
        Err(refusal) => return refusal,
    };
    let body = match read_body(body, state.config.body_limit).await {
        Ok(body) => body,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let media = media_type(&headers).unwrap_or_default();
    if media == BATCH {
        return batch(&state, &body, &submitted_by).await;
    }
    let event = if media == STRUCTURED {
        parse_json(&body).and_then(|value| structured(&value))
    } else if headers.contains_key("ce-specversion") {
        binary(&headers, &media, &body)
    } else if media.is_empty() || media == "application/json" {
        // A structured event sent as plain JSON, as some producers do.
        match parse_json(&body) {
            Ok(value) if value.get("specversion").is_some() => structured(&value),
            Ok(_) | Err(_) => Err(not_a_cloudevent()),
        }
    } else {
        return ApiError::UnsupportedMediaType(format!(
            "'{}' is not a CloudEvents mode: send {STRUCTURED}, {BATCH}, or the data with ce-* headers",
            one_line(&media, 100)
        ))
        .into_response();
    };
    let event = match event {
        Ok(event) => event,
        Err(message) => return ApiError::InvalidBody(message).into_response(),
    };
    match record(&state, draft(&event), SOURCE, &submitted_by).await {
        Ok(recorded) => (recorded.status(), Json(recorded.event())).into_response(),
        Err(refused) => ApiError::from(refused).into_response(),
    }
}

/// The abuse-protection handshake of the CloudEvents webhook spec: a sender asks with
/// `OPTIONS` and `WebHook-Request-Origin` whether it may deliver; tfr allows any origin (the
/// deliveries themselves are authenticated like every write).
pub async fn handshake(headers: HeaderMap) -> Response {
    let origin = headers
        .get("webhook-request-origin")
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    let mut response = StatusCode::OK.into_response();
    let answer = response.headers_mut();
    answer.insert("webhook-allowed-origin", origin);
    answer.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
    answer.insert("allow", HeaderValue::from_static("POST, OPTIONS"));
    response
}

fn not_a_cloudevent() -> String {
    format!(
        "not a CloudEvent: send a structured event ({STRUCTURED}), a batch ({BATCH}), or the data with ce-specversion, ce-id, ce-source and ce-type headers"
    )
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))
}

async fn batch(state: &AppState, body: &[u8], submitted_by: &str) -> Response {
    let items = match parse_json(body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            return ApiError::InvalidBody("a CloudEvents batch is a JSON array".into())
                .into_response();
        }
        Err(message) => return ApiError::InvalidBody(message).into_response(),
    };
    let total = items.len();
    if total > MAX_BATCH {
        return ApiError::InvalidBody(format!(
            "the batch has {total} events; the limit is {MAX_BATCH}"
        ))
        .into_response();
    }
    let mut drafts = Vec::with_capacity(total);
    let mut invalid = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match structured(item) {
            Ok(event) => drafts.push(draft(&event)),
            Err(message) => invalid.push(ItemError {
                index,
                field: String::new(),
                message,
            }),
        }
    }
    if !invalid.is_empty() {
        return ApiError::InvalidBatch {
            items: invalid,
            total,
        }
        .into_response();
    }
    match record_all(state, drafts, SOURCE, submitted_by).await {
        Ok(recorded) => {
            let status = if recorded.iter().any(|r| matches!(r, Recorded::Created(_))) {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let events = recorded
                .into_iter()
                .map(|r| match r {
                    Recorded::Created(event) | Recorded::Duplicate(event) => event,
                })
                .collect();
            (status, Json(CreatedEvents { events })).into_response()
        }
        Err(refusals) => batch_refusal(refusals, total).into_response(),
    }
}

fn batch_refusal(refusals: Vec<(usize, Refused)>, total: usize) -> ApiError {
    let mut invalid = Vec::new();
    let mut conflicts: Vec<(usize, String, EventId)> = Vec::new();
    for (index, refused) in refusals {
        match refused {
            Refused::Invalid(error) => invalid.push(ItemError {
                index,
                field: error.field,
                message: error.message,
            }),
            Refused::Conflict { key, existing } => conflicts.push((index, key, existing)),
            Refused::Store(error) => return error,
        }
    }
    if invalid.is_empty() {
        ApiError::BatchConflict { conflicts, total }
    } else {
        ApiError::InvalidBatch {
            items: invalid,
            total,
        }
    }
}

/// The context attributes every CloudEvent must have, checked.
fn required(
    event: &mut CloudEvent,
    specversion: Option<&str>,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match specversion {
        Some("1.0") => {}
        Some(other) => {
            return Err(format!(
                "specversion '{}' is not supported; this endpoint speaks CloudEvents 1.0",
                one_line(other, 32)
            ));
        }
        None => return Err("specversion is required (1.0)".into()),
    }
    let mut missing = Vec::new();
    for (name, slot) in [
        ("id", &mut event.id),
        ("source", &mut event.source),
        ("type", &mut event.event_type),
    ] {
        match get(name) {
            Some(value) => *slot = value,
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "the CloudEvent lacks {}: id, source and type are required",
            missing.join(", ")
        ));
    }
    event.subject = get("subject");
    event.dataschema = get("dataschema");
    event.datacontenttype = get("datacontenttype");
    event.time = match get("time") {
        None => None,
        Some(time) => Some(parse_timestamp(&time).map_err(|problem| format!("time: {problem}"))?),
    };
    Ok(())
}

const CONTEXT_ATTRIBUTES: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

/// A structured-mode event: a JSON object with the attributes as members.
fn structured(value: &Value) -> Result<CloudEvent, String> {
    let object = value.as_object().ok_or("a CloudEvent is a JSON object")?;
    let mut event = CloudEvent::default();
    let get = |name: &str| -> Option<String> {
        object
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    required(
        &mut event,
        object.get("specversion").and_then(Value::as_str),
        get,
    )?;
    event.data = match (object.get("data"), object.get("data_base64")) {
        (Some(data), _) if !data.is_null() => Some(data.clone()),
        (_, Some(Value::String(encoded))) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("data_base64 is not base64: {e}"))?;
            data_from_bytes(event.datacontenttype.as_deref().unwrap_or(""), &bytes)?
        }
        _ => None,
    };
    for (name, value) in object {
        if !CONTEXT_ATTRIBUTES.contains(&name.as_str()) {
            event.extensions.insert(name.clone(), value.clone());
        }
    }
    Ok(event)
}

/// Data given as bytes (binary mode, `data_base64`): JSON when the content type says so, text
/// when it is UTF-8, otherwise only its size is kept.
fn data_from_bytes(content_type: &str, bytes: &[u8]) -> Result<Option<Value>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") || media.is_empty() {
        match serde_json::from_slice(bytes) {
            Ok(value) => return Ok(Some(value)),
            Err(e) if !media.is_empty() => return Err(format!("the data is not valid JSON: {e}")),
            Err(_) => {}
        }
    }
    Ok(Some(match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => json!({"binary_data_bytes": bytes.len()}),
    }))
}

/// A binary-mode event: the attributes in `ce-*` headers (percent-encoded), the body the data.
fn binary(headers: &HeaderMap, media: &str, body: &[u8]) -> Result<CloudEvent, String> {
    let attribute = |name: &str| -> Option<String> {
        let value = headers.get(format!("ce-{name}"))?;
        let decoded = percent_encoding::percent_decode(value.as_bytes()).decode_utf8_lossy();
        let decoded = decoded.trim();
        (!decoded.is_empty()).then(|| decoded.to_owned())
    };
    let mut event = CloudEvent::default();
    let specversion = attribute("specversion");
    required(&mut event, specversion.as_deref(), attribute)?;
    if event.datacontenttype.is_none() && !media.is_empty() {
        event.datacontenttype = Some(media.to_owned());
    }
    event.data = data_from_bytes(media, body)?;
    for (name, value) in headers {
        if let Some(attribute_name) = name.as_str().strip_prefix("ce-")
            && !CONTEXT_ATTRIBUTES.contains(&attribute_name)
        {
            let decoded = percent_encoding::percent_decode(value.as_bytes()).decode_utf8_lossy();
            event
                .extensions
                .insert(attribute_name.to_owned(), json!(decoded));
        }
    }
    Ok(event)
}

/// The event a CloudEvent becomes.
fn draft(event: &CloudEvent) -> Draft {
    let mut draft = Draft {
        occurred_at: event.time,
        idempotency_key: Some(idempotency_key("ce", &[&event.source, &event.id])),
        ..Draft::default()
    };
    if event.event_type.starts_with("dev.cdevents.") {
        cdevent(event, &mut draft);
    } else {
        generic(event, &mut draft);
    }
    draft.fallback(SOURCE);
    let mut context = Map::new();
    context.insert("id".into(), json!(event.id));
    context.insert("source".into(), json!(event.source));
    context.insert("type".into(), json!(event.event_type));
    for (name, value) in [
        ("subject", &event.subject),
        ("datacontenttype", &event.datacontenttype),
        ("dataschema", &event.dataschema),
    ] {
        if let Some(value) = value {
            context.insert(name.into(), json!(value));
        }
    }
    for (name, value) in &event.extensions {
        context.insert(name.clone(), value.clone());
    }
    draft
        .attributes
        .insert("cloudevent".into(), Value::Object(context));
    if let Some(data) = &event.data {
        let size = serde_json::to_string(data).map_or(usize::MAX, |s| s.len());
        let kept = if size <= MAX_KEPT_DATA {
            data.clone()
        } else {
            json!({"omitted": format!("{size} bytes of data")})
        };
        draft.attributes.insert("data".into(), kept);
    }
    draft
}

/// A string member of the data, trimmed.
fn data_text<'a>(data: Option<&'a Value>, names: &[&str]) -> Option<&'a str> {
    let data = data?;
    names
        .iter()
        .find_map(|name| text(data, &format!("/{name}")))
}

/// Any CloudEvent: tfr's fields when the data carries them, the CloudEvent's attributes
/// otherwise.
fn generic(event: &CloudEvent, draft: &mut Draft) {
    let data = event.data.as_ref().filter(|d| d.is_object());
    draft.title = data_text(data, &["title", "summary", "message"])
        .map(str::to_owned)
        .unwrap_or_else(|| match &event.subject {
            Some(subject) => format!("{}: {subject}", event.event_type),
            None => event.event_type.clone(),
        });
    draft.system = data_text(data, &["system", "service"])
        .unwrap_or(&event.source)
        .to_owned();
    draft.author = data_text(data, &["author", "user", "actor"])
        .or_else(|| event.extensions.get("author").and_then(Value::as_str))
        .unwrap_or("")
        .to_owned();
    draft.environment = data_text(data, &["environment", "env"]).map(str::to_owned);
    draft.version = data_text(data, &["version"]).map(str::to_owned);
    draft.team = data_text(data, &["team"]).map(str::to_owned);
    draft.kind = data_text(data, &["kind"])
        .filter(|kind| check_kind(kind).is_ok())
        .map(str::to_owned)
        .or_else(|| kind_from(&event.event_type));
    draft.description = match &event.data {
        Some(Value::String(text)) => Some(text.clone()),
        _ => data_text(data, &["description"]).map(str::to_owned),
    };
    if let Some(tags) = data.and_then(|d| d.get("tags")).and_then(Value::as_array) {
        draft.apply_tags(tags.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if let Some(url) = data_text(data, &["url", "link"]) {
        draft.link(url, "Details");
    }
    if let Some(links) = data.and_then(|d| d.get("links")).and_then(Value::as_array) {
        for link in links {
            let url = link
                .as_str()
                .or_else(|| text(link, "/url"))
                .or_else(|| text(link, "/href"));
            if let Some(url) = url {
                draft.links.push(DraftLink {
                    url: url.to_owned(),
                    title: text(link, "/title")
                        .or_else(|| text(link, "/text"))
                        .map(str::to_owned),
                });
            }
        }
    }
}

/// The name and version of a package URL (`pkg:oci/myapp@sha256%3A0b31...?repository_url=...`).
fn purl(text: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = text.strip_prefix("pkg:") else {
        return (None, None);
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (path, version) = match rest.rsplit_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (rest, None),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let name = path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(decode);
    (name, version.filter(|v| !v.is_empty()).map(decode))
}

/// CDEvents: `dev.cdevents.<subject>.<predicate>.<version>`, data `{context, subject: {id,
/// source, type, content}, customData}`.
fn cdevent(event: &CloudEvent, draft: &mut Draft) {
    let mut parts = event.event_type.split('.').skip(2);
    let subject_type = parts.next().unwrap_or("").to_ascii_lowercase();
    let predicate = parts.next().unwrap_or("").to_ascii_lowercase();
    let data = event.data.as_ref();
    let at = |pointer: &str| data.and_then(|d| text(d, pointer));
    let subject_id = at("/subject/id").unwrap_or("");
    let content = |name: &str| at(&format!("/subject/content/{name}"));
    let environment = content("environment/id").map(str::to_owned);
    let (artifact_name, artifact_version) = content("artifactId").map_or((None, None), purl);
    if draft.occurred_at.is_none() {
        draft.occurred_at = at("/context/timestamp").and_then(|t| parse_timestamp(t).ok());
    }
    draft.author = at("/customData/author")
        .or_else(|| at("/customData/user"))
        .unwrap_or("")
        .to_owned();
    draft.tag(format!("cdevent:{subject_type}.{predicate}"));
    if let Some(url) = content("url") {
        draft.link(url, "Details");
    }
    let name = |fallback: &str| -> String {
        if subject_id.is_empty() {
            fallback.to_owned()
        } else {
            subject_id.to_owned()
        }
    };
    match (subject_type.as_str(), predicate.as_str()) {
        ("service", "deployed" | "upgraded" | "rolledback" | "removed" | "published") => {
            let service = name(&event.source);
            let env = environment.as_deref().unwrap_or("?");
            let version = artifact_version.as_deref();
            draft.kind = Some("deploy".into());
            draft.title = match (predicate.as_str(), version) {
                ("deployed", Some(v)) => format!("Service {service} deployed to {env} ({v})"),
                ("deployed", None) => format!("Service {service} deployed to {env}"),
                ("upgraded", Some(v)) => format!("Service {service} upgraded in {env} to {v}"),
                ("rolledback", Some(v)) => {
                    format!("Service {service} rolled back in {env} to {v}")
                }
                ("rolledback", None) => format!("Service {service} rolled back in {env}"),
                ("removed", _) => format!("Service {service} removed from {env}"),
                (p, _) => format!("Service {service} {p} in {env}"),
            };
            draft.system = service;
            draft.environment = environment;
            draft.version = artifact_version;
            if predicate == "rolledback" {
                draft.tag("rollback");
            }
        }
        ("environment", _) => {
            let environment_name = content("name").unwrap_or(subject_id);
            draft.kind = Some("infra".into());
            draft.title = format!("Environment {environment_name} {predicate}");
            draft.system = name(&event.source);
            draft.environment = Some(environment_name.to_owned()).filter(|e| !e.is_empty());
        }
        ("pipelinerun" | "taskrun" | "build" | "testsuiterun" | "testcaserun", "finished") => {
            let run = content("pipelineName")
                .or_else(|| content("taskName"))
                .or_else(|| content("testSuite/name"))
                .or_else(|| content("testCase/name"))
                .map_or_else(|| name(&event.source), str::to_owned);
            let outcome = content("outcome");
            draft.kind = Some("ci".into());
            draft.title = match outcome {
                Some(outcome) => format!("{} {run} finished: {outcome}", label(&subject_type)),
                None => format!("{} {run} finished", label(&subject_type)),
            };
            draft.system = run;
            draft.environment = environment;
            draft.version = artifact_version;
            draft.description = content("errors").map(str::to_owned);
            if let Some(outcome) = outcome {
                draft.tag(format!("outcome:{outcome}"));
            }
        }
        ("change", "merged") => {
            let repository = content("repository/id").unwrap_or("");
            draft.kind = Some("merge".into());
            draft.title = format!("Change {} merged", name("?"));
            draft.system = repository
                .rsplit('/')
                .next()
                .filter(|r| !r.is_empty())
                .unwrap_or(&event.source)
                .to_owned();
            if !repository.is_empty() {
                draft.tag(format!("repo:{repository}"));
            }
        }
        ("artifact", "published") => {
            let artifact = artifact_name.clone().unwrap_or_else(|| name(&event.source));
            draft.kind = Some("release".into());
            draft.title = match &artifact_version {
                Some(v) => format!("Artifact {artifact} {v} published"),
                None => format!("Artifact {artifact} published"),
            };
            draft.system = artifact;
            draft.version = artifact_version;
        }
        ("incident", _) => {
            draft.kind = Some("incident".into());
            let description = content("description");
            draft.title = match description {
                Some(d) => format!("Incident {} {predicate}: {d}", name("?")),
                None => format!("Incident {} {predicate}", name("?")),
            };
            draft.system = content("service/id").map_or_else(|| name(&event.source), str::to_owned);
            draft.environment = environment;
            draft.version = artifact_version;
            draft.description = description.map(str::to_owned);
        }
        _ => {
            draft.kind = kind_from(&format!("{subject_type}_{predicate}"));
            draft.title = format!("{} {} {predicate}", label(&subject_type), name("?"));
            draft.system = content("name")
                .map(str::to_owned)
                .or(artifact_name)
                .unwrap_or_else(|| name(&event.source));
            draft.environment = environment;
            draft.version = artifact_version;
        }
    }
}

/// A CDEvents subject type as a word in a title.
fn label(subject_type: &str) -> &'static str {
    match subject_type {
        "pipelinerun" => "Pipeline",
        "taskrun" => "Task",
        "build" => "Build",
        "testsuiterun" => "Test suite",
        "testcaserun" => "Test case",
        "artifact" => "Artifact",
        "branch" => "Branch",
        "repository" => "Repository",
        "ticket" => "Ticket",
        "change" => "Change",
        "service" => "Service",
        _ => "CDEvent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls() {
        assert_eq!(
            purl("pkg:oci/myapp@sha256%3A0b31b1c0?repository_url=x"),
            (Some("myapp".into()), Some("sha256:0b31b1c0".into()))
        );
        assert_eq!(
            purl("pkg:maven/org.example/app@1.2.3"),
            (Some("app".into()), Some("1.2.3".into()))
        );
        assert_eq!(purl("pkg:npm/left-pad"), (Some("left-pad".into()), None));
        assert_eq!(purl("docker.io/x"), (None, None));
    }

    #[test]
    fn structured_events_need_their_attributes() {
        let missing = structured(&json!({"specversion": "1.0", "id": "1"})).unwrap_err();
        assert!(missing.contains("source, type"), "{missing}");
        let version =
            structured(&json!({"specversion": "0.3", "id": "1", "source": "s", "type": "t"}))
                .unwrap_err();
        assert!(version.contains("0.3"), "{version}");
        let time = structured(&json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "yesterday"}))
            .unwrap_err();
        assert!(time.starts_with("time:"), "{time}");
    }

    #[test]
    fn base64_data_is_decoded() {
        let event = structured(&json!({
            "specversion": "1.0", "id": "1", "source": "/s", "type": "com.example.deploy",
            "datacontenttype": "application/json",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(br#"{"title":"Deploy api","system":"api"}"#)
        }))
        .unwrap();
        let draft = draft(&event);
        assert_eq!(
            (draft.title.as_str(), draft.system.as_str()),
            ("Deploy api", "api")
        );
        assert_eq!(draft.kind.as_deref(), Some("com_example_deploy"));
    }
}
