//! Honeycomb markers: `POST /integrations/honeycomb/1/markers/{dataset}`.
//!
//! Honeycomb's marker body (`message`, `type`, `start_time`, `end_time`, `url`, every field
//! optional) answered like Honeycomb: `201` and the marker. The dataset is the system
//! (`__all__`, an environment-wide marker, names none: the system is then `honeycomb`); the
//! type is the kind when it is a slug (`deploy`). `X-Honeycomb-Team` is the credential.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    BodyError, Draft, from_seconds, header, idempotency_header, integer, kind_from, read_body,
    record, submitter, text,
};
use crate::AppState;
use crate::extract::Peer;

const SOURCE: &str = "honeycomb";

/// The dataset slug of environment-wide markers.
const ALL_DATASETS: &str = "__all__";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Create a marker, as Honeycomb's `POST /1/markers/{datasetSlug}`.
#[utoipa::path(
    post,
    path = "/integrations/honeycomb/1/markers/{dataset}",
    tag = "integrations",
    params(
        ("dataset" = String, Path, description = "The dataset slug: the event's system (`__all__`: none)"),
        ("X-Honeycomb-Team" = Option<String>, Header, description = "The Honeycomb API key: the credential"),
    ),
    request_body(content = Object, description = "`{message?, type?, start_time?, end_time?, url?}`: times in Unix seconds", content_type = "application/json"),
    responses(
        (status = 201, description = "The marker: `{id, created_at, updated_at, start_time, end_time?, message, type, url, color}`"),
        (status = 400, description = "`{\"error\": \"...\"}`"),
    )
)]
pub async fn create_marker(
    State(state): State<AppState>,
    Peer(peer): Peer,
    Path(dataset): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let key = header(&headers, "x-honeycomb-team");
    let submitted_by = match submitter(&state, &headers, peer, key).await {
        Ok(name) => name,
        Err(refusal) => return refusal,
    };
    let body = match read_body(body, state.config.body_limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(limit)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large: the limit is {limit} bytes"),
            );
        }
        Err(BodyError::Unreadable(detail)) => return error(StatusCode::BAD_REQUEST, detail),
    };
    let marker: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(marker @ Value::Object(_)) => marker,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "request body should be a JSON object",
                );
            }
        }
    };
    let mut draft = match map(&dataset, &marker) {
        Ok(draft) => draft,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    draft.idempotency_key = idempotency_header(&headers);
    match record(&state, draft, SOURCE, &submitted_by).await {
        Ok(recorded) => {
            let event = recorded.event();
            let mut reply = json!({
                "id": event.id,
                "created_at": event.recorded_at,
                "updated_at": event.recorded_at,
                "start_time": event.occurred_at.as_second(),
                "message": marker.get("message").cloned().unwrap_or(json!("")),
                "type": marker.get("type").cloned().unwrap_or(json!("")),
                "url": marker.get("url").cloned().unwrap_or(json!("")),
                "color": "",
            });
            if let Some(end) = event.ended_at {
                reply["end_time"] = json!(end.as_second());
            }
            (StatusCode::CREATED, Json(reply)).into_response()
        }
        Err(refused) if refused.is_client_error() => {
            error(StatusCode::BAD_REQUEST, refused.message())
        }
        Err(refused) => error(StatusCode::SERVICE_UNAVAILABLE, refused.message()),
    }
}

fn seconds(marker: &Value, field: &str) -> Result<Option<jiff::Timestamp>, String> {
    match marker.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => integer(marker, &format!("/{field}"))
            .and_then(from_seconds)
            .map(Some)
            .ok_or_else(|| format!("{field} must be a Unix time in seconds")),
    }
}

fn map(dataset: &str, marker: &Value) -> Result<Draft, String> {
    let message = text(marker, "/message");
    let marker_type = text(marker, "/type");
    let mut draft = Draft {
        title: message
            .map(str::to_owned)
            .or_else(|| marker_type.map(|t| format!("{t} marker")))
            .unwrap_or_else(|| "Marker".to_owned()),
        occurred_at: seconds(marker, "start_time")?,
        ..Draft::default()
    };
    if dataset != ALL_DATASETS {
        draft.system = dataset.to_owned();
    }
    if let Some(end) = seconds(marker, "end_time")?
        && draft.occurred_at.is_none_or(|start| end > start)
    {
        draft.ended_at = Some(end);
    }
    if let Some(marker_type) = marker_type {
        draft.kind = kind_from(marker_type);
        draft.tag(format!("marker_type:{marker_type}"));
    }
    if let Some(url) = text(marker, "/url") {
        draft.link(url, "Marker link");
    }
    draft.fallback(SOURCE);
    draft.attributes.insert("dataset".into(), json!(dataset));
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_marker_maps() {
        let draft = map(
            "backend",
            &json!({"start_time": 1_471_040_808, "end_time": 1_668_453_920, "message": "backend deploy #123", "type": "deploy", "url": "http://link-to-build.here"}),
        )
        .unwrap();
        assert_eq!(draft.system, "backend");
        assert_eq!(draft.kind.as_deref(), Some("deploy"));
        assert!(draft.ended_at.is_some());
        let everywhere = map(ALL_DATASETS, &json!({})).unwrap();
        assert_eq!(
            (everywhere.title.as_str(), everywhere.system.as_str()),
            ("Marker", "honeycomb")
        );
        assert!(map("d", &json!({"start_time": "soon"})).is_err());
    }
}
