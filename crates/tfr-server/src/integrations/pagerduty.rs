//! PagerDuty Change Events (Events API v2): `POST /integrations/pagerduty/v2/change/enqueue`.
//!
//! The body PagerDuty documents — `routing_key`, `payload.summary`, `payload.source`,
//! `payload.timestamp`, `payload.custom_details`, `links[]` — answered like PagerDuty:
//! `202 {"status": "success", "message": "Change event processed"}`, and
//! `400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`.
//!
//! `custom_details` may say what PagerDuty has no field for: `system` (or `service`),
//! `author` (or `user`), `environment`, `version` (or `revision`), `kind`, `team`; the rest is
//! kept in the event's attributes.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tfr_core::validate::check_kind;

use super::{
    BodyError, Draft, idempotency_header, one_line, parse_time, read_body, record, submitter, text,
};
use crate::AppState;
use crate::extract::Peer;

const SOURCE: &str = "pagerduty";

/// Record a PagerDuty change event.
///
/// Point the tool's PagerDuty Events API host at this server's `/integrations/pagerduty`
/// (the path `/v2/change/enqueue` is PagerDuty's). The routing key is required, as by
/// PagerDuty.
#[utoipa::path(
    post,
    path = "/integrations/pagerduty/v2/change/enqueue",
    tag = "integrations",
    request_body(content = Object, description = "A PagerDuty change event: `{routing_key, payload: {summary, source?, timestamp?, custom_details?}, links?}`", content_type = "application/json"),
    responses(
        (status = 202, description = "`{\"status\": \"success\", \"message\": \"Change event processed\"}`"),
        (status = 400, description = "`{\"status\": \"invalid event\", \"message\": \"Event object is invalid\", \"errors\": [...]}`"),
        (status = 413, description = "Body too large, PagerDuty-shaped"),
        (status = 503, description = "Store unavailable: retry, as PagerDuty clients do on 5xx"),
    )
)]
pub async fn enqueue(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(body, state.config.body_limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(limit)) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large",
                "The event is too large",
                vec![format!("the body exceeds {limit} bytes")],
            );
        }
        Err(BodyError::Unreadable(detail)) => {
            return invalid(vec![format!("cannot read the body: {detail}")]);
        }
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "Unrecognized object",
            "Event object format is unrecognized",
            vec!["JSON parse error".into()],
        );
    };
    // The routing key is in the body: the caller is known once it is parsed.
    let submitted_by = match submitter(&state, &headers, peer, text(&event, "/routing_key")).await {
        Ok(name) => name,
        Err(refusal) => return refusal,
    };
    let draft = match map(&event) {
        Ok(draft) => draft,
        Err(errors) => return invalid(errors),
    };
    let mut draft = draft;
    draft.idempotency_key = idempotency_header(&headers);
    match record(&state, draft, SOURCE, &submitted_by).await {
        Ok(_) => answer(
            StatusCode::ACCEPTED,
            "success",
            "Change event processed",
            Vec::new(),
        ),
        Err(refused) if refused.is_client_error() => invalid(vec![refused.message()]),
        Err(refused) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The event could not be stored; retry",
            vec![refused.message()],
        ),
    }
}

/// PagerDuty's answer shape.
fn answer(status: StatusCode, summary: &str, message: &str, errors: Vec<String>) -> Response {
    let mut body = json!({"status": summary, "message": message});
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    (status, Json(body)).into_response()
}

fn invalid(errors: Vec<String>) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        "invalid event",
        "Event object is invalid",
        errors,
    )
}

/// Maps a change event, or lists what is wrong with it, PagerDuty-style.
fn map(event: &Value) -> Result<Draft, Vec<String>> {
    let mut errors = Vec::new();
    if !event.is_object() {
        return Err(vec!["the event must be a JSON object".into()]);
    }
    if text(event, "/routing_key").is_none() {
        errors.push("'routing_key' is missing or blank".to_owned());
    }
    let summary = text(event, "/payload/summary");
    if summary.is_none() {
        errors.push("'payload.summary' is missing or blank".to_owned());
    }
    let occurred_at = match event.pointer("/payload/timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(stamp)) => match parse_time(stamp) {
            Some(at) => Some(at),
            None => {
                errors.push(format!(
                    "'payload.timestamp' is not an ISO 8601 timestamp: '{}'",
                    one_line(stamp, 64)
                ));
                None
            }
        },
        Some(_) => {
            errors.push("'payload.timestamp' must be a string".to_owned());
            None
        }
    };
    let details = match event.pointer("/payload/custom_details") {
        None | Some(Value::Null) => None,
        Some(Value::Object(details)) => Some(details),
        Some(_) => {
            errors.push("'payload.custom_details' must be an object".to_owned());
            None
        }
    };
    let links = match event.get("links") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(links)) => links.as_slice(),
        Some(_) => {
            errors.push("'links' must be an array".to_owned());
            &[][..]
        }
    };
    for (index, link) in links.iter().enumerate() {
        if text(link, "/href").is_none() {
            errors.push(format!("'links[{index}].href' is missing or blank"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let detail = |names: &[&str]| -> Option<String> {
        let details = details?;
        names.iter().find_map(|name| match details.get(*name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    let mut draft = Draft {
        title: summary.unwrap_or("").to_owned(),
        system: detail(&["system", "service"])
            .or_else(|| text(event, "/payload/source").map(str::to_owned))
            .unwrap_or_default(),
        author: detail(&["author", "user", "username", "triggered_by"]).unwrap_or_default(),
        kind: detail(&["kind"]).filter(|kind| check_kind(kind).is_ok()),
        environment: detail(&["environment", "env"]),
        team: detail(&["team"]),
        version: detail(&["version", "revision"]),
        occurred_at,
        ..Draft::default()
    };
    draft.fallback(SOURCE);
    if let Some(source) = text(event, "/payload/source")
        && source != draft.system
    {
        draft.tag(format!("pagerduty_source:{source}"));
    }
    for link in links {
        if let Some(href) = text(link, "/href") {
            draft.links.push(super::DraftLink {
                url: href.to_owned(),
                title: text(link, "/text").map(str::to_owned),
            });
        }
    }
    if let Some(details) = details {
        draft
            .attributes
            .insert("custom_details".into(), Value::Object(details.clone()));
    }
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_maps() {
        let event = json!({
            "routing_key": "samplekeyhere",
            "payload": {
                "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
                "timestamp": "2020-07-17T08:42:58.315+0000",
                "source": "acme-build-pipeline-tool-default-i-9999",
                "custom_details": {"build_state": "passed", "build_number": "2", "run_time": "1236s"}
            },
            "links": [{"href": "https://acme.pagerduty.dev/build/2", "text": "View more details in Acme!"}]
        });
        let draft = map(&event).unwrap();
        assert_eq!(draft.system, "acme-build-pipeline-tool-default-i-9999");
        assert_eq!(draft.author, "pagerduty");
        assert_eq!(
            draft.occurred_at,
            Some("2020-07-17T08:42:58.315Z".parse().unwrap())
        );
        assert_eq!(draft.links.len(), 1);
    }

    #[test]
    fn errors_are_listed() {
        let errors = map(&json!({"payload": {"timestamp": "soon"}, "links": [{}]})).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
