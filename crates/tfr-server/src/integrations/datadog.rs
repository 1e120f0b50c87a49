//! Datadog events (API v1): `POST /integrations/datadog/api/v1/events`.
//!
//! Datadog's event body — `title`, `text` (Markdown between `%%%` markers), `date_happened`,
//! `tags` (`key:value`), `host`, `aggregation_key`, `alert_type`, `priority`,
//! `source_type_name` — answered like Datadog: `202 {"status": "ok", "event": {...}}`, errors
//! `400 {"errors": [...]}`. The API key (`DD-API-KEY` header, or `api_key` in the query) is
//! the credential.
//!
//! Datadog's unified service tags say the system (`service:`), environment (`env:`) and
//! version (`version:`); `kind:`, `team:` and `author:`/`user:` tags fill those fields.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    BodyError, Draft, from_seconds, header, idempotency_header, integer, numeric_id, read_body,
    record, submitter, text,
};
use crate::AppState;
use crate::extract::Peer;

const SOURCE: &str = "datadog";

/// Record a Datadog event.
///
/// Point the Datadog client's API host at this server's `/integrations/datadog`.
#[utoipa::path(
    post,
    path = "/integrations/datadog/api/v1/events",
    tag = "integrations",
    request_body(content = Object, description = "A Datadog event: `{title, text, date_happened?, tags?, host?, aggregation_key?, alert_type?, priority?, source_type_name?}`", content_type = "application/json"),
    params(("DD-API-KEY" = Option<String>, Header, description = "The Datadog API key: the credential")),
    responses(
        (status = 202, description = "`{\"status\": \"ok\", \"event\": {...}}`, with the event's numeric id and its tfr URL"),
        (status = 400, description = "`{\"errors\": [...]}`"),
        (status = 503, description = "Store unavailable"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Peer(peer): Peer,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let api_key = header(&headers, "dd-api-key").or_else(|| query_api_key(&uri));
    let submitted_by = match submitter(&state, &headers, peer, api_key).await {
        Ok(name) => name,
        Err(refusal) => return refusal,
    };
    let body = match read_body(body, state.config.body_limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(limit)) => {
            return errors(
                StatusCode::PAYLOAD_TOO_LARGE,
                vec![format!("Payload too large: the limit is {limit} bytes")],
            );
        }
        Err(BodyError::Unreadable(detail)) => {
            return errors(StatusCode::BAD_REQUEST, vec![detail]);
        }
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return errors(
            StatusCode::BAD_REQUEST,
            vec!["Invalid JSON in request body".into()],
        );
    };
    let mut draft = match map(&event) {
        Ok(draft) => draft,
        Err(problems) => return errors(StatusCode::BAD_REQUEST, problems),
    };
    draft.idempotency_key = idempotency_header(&headers);
    match record(&state, draft, SOURCE, &submitted_by).await {
        Ok(recorded) => {
            let stored = recorded.event();
            let id = numeric_id(stored.id);
            let reply = json!({
                "status": "ok",
                "event": {
                    "id": id,
                    "id_str": id.to_string(),
                    "title": event.get("title").cloned().unwrap_or(Value::Null),
                    "text": event.get("text").cloned().unwrap_or(Value::Null),
                    "date_happened": stored.occurred_at.as_second(),
                    "handle": Value::Null,
                    "priority": event.get("priority").cloned().unwrap_or(json!("normal")),
                    "related_event_id": event.get("related_event_id").cloned().unwrap_or(Value::Null),
                    "tags": event.get("tags").cloned().unwrap_or(json!([])),
                    "url": format!("/events/{}", stored.id),
                    "tfr_id": stored.id,
                }
            });
            (StatusCode::ACCEPTED, Json(reply)).into_response()
        }
        Err(refused) if refused.is_client_error() => {
            errors(StatusCode::BAD_REQUEST, vec![refused.message()])
        }
        Err(refused) => errors(StatusCode::SERVICE_UNAVAILABLE, vec![refused.message()]),
    }
}

fn query_api_key(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("api_key="))
        .filter(|key| !key.is_empty())
}

fn errors(status: StatusCode, messages: Vec<String>) -> Response {
    (status, Json(json!({"errors": messages}))).into_response()
}

/// The text without Datadog's `%%%` Markdown markers.
fn strip_markdown_markers(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed
        .strip_prefix("%%%")
        .and_then(|rest| rest.strip_suffix("%%%"))
    {
        Some(inner) => inner.trim().to_owned(),
        None => trimmed.to_owned(),
    }
}

fn map(event: &Value) -> Result<Draft, Vec<String>> {
    if !event.is_object() {
        return Err(vec!["The event must be a JSON object".into()]);
    }
    let mut problems = Vec::new();
    let title = text(event, "/title");
    if title.is_none() {
        problems.push("Event title is required".to_owned());
    }
    let body = match event.get("text") {
        Some(Value::String(body)) => Some(strip_markdown_markers(body)),
        None | Some(Value::Null) => {
            problems.push("Event text is required".to_owned());
            None
        }
        Some(_) => {
            problems.push("Event text must be a string".to_owned());
            None
        }
    };
    let tags: Vec<String> = match event.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(|tag| tag.as_str().map(str::to_owned))
            .collect(),
        Some(_) => {
            problems.push("Tags must be an array of strings".to_owned());
            Vec::new()
        }
    };
    let occurred_at = match event.get("date_happened") {
        None | Some(Value::Null) => None,
        Some(_) => match integer(event, "/date_happened").and_then(from_seconds) {
            Some(at) => Some(at),
            None => {
                problems.push("date_happened must be a POSIX timestamp in seconds".to_owned());
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut draft = Draft {
        title: title.unwrap_or("").to_owned(),
        description: body,
        occurred_at,
        ..Draft::default()
    };
    draft.apply_tags(tags);
    if draft.system.is_empty() {
        text(event, "/host")
            .or_else(|| text(event, "/device_name"))
            .unwrap_or("")
            .clone_into(&mut draft.system);
    }
    draft.fallback(SOURCE);
    if let Some(host) = text(event, "/host")
        && host != draft.system
    {
        draft.tag(format!("host:{host}"));
    }
    if let Some(source_type) = text(event, "/source_type_name") {
        draft.tag(format!("source_type:{source_type}"));
    }
    if let Some(alert_type) = text(event, "/alert_type")
        && alert_type != "info"
    {
        draft.tag(format!("alert_type:{alert_type}"));
    }
    for field in [
        "aggregation_key",
        "alert_type",
        "priority",
        "related_event_id",
        "source_type_name",
        "device_name",
        "host",
    ] {
        if let Some(value) = event.get(field).filter(|v| !v.is_null()) {
            draft.attributes.insert(field.into(), value.clone());
        }
    }
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_removed() {
        assert_eq!(strip_markdown_markers("%%% \n**bold**\n %%%"), "**bold**");
        assert_eq!(strip_markdown_markers("plain"), "plain");
    }

    #[test]
    fn unified_service_tags_fill_the_fields() {
        let draft = map(&json!({
            "title": "Deployed checkout 1.4.2",
            "text": "%%% \nRolled out by **alice**\n %%%",
            "date_happened": 1_700_000_000,
            "tags": ["service:checkout", "env:prod", "version:1.4.2", "team:payments", "canary"],
            "host": "web-1",
            "alert_type": "success"
        }))
        .unwrap();
        assert_eq!(draft.system, "checkout");
        assert_eq!(draft.environment.as_deref(), Some("prod"));
        assert_eq!(draft.version.as_deref(), Some("1.4.2"));
        assert_eq!(
            draft.description.as_deref(),
            Some("Rolled out by **alice**")
        );
        assert_eq!(draft.tags, ["canary", "host:web-1", "alert_type:success"]);
    }
}
