//! Validation of submitted events (design §2), shared by the API, the integrations and the CLI.
//!
//! Input is taken as a raw JSON value rather than through `serde(deny_unknown_fields)` so that
//! every refusal names the exact field (`links[2].url`), and so that a misspelt field is an
//! error instead of data silently dropped.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::event::{EventPatch, Link, NewEvent};
use crate::time::parse_timestamp;

pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_KIND_CHARS: usize = 64;
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_CHARS: usize = 200;
pub const MAX_LINKS: usize = 32;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
pub const DEFAULT_MAX_DIFF_BYTES: usize = 1024 * 1024;
pub const DEFAULT_KIND: &str = "change";

/// The fields a client may send when creating an event.
pub const EVENT_FIELDS: &[&str] = &[
    "occurred_at",
    "ended_at",
    "title",
    "system",
    "author",
    "kind",
    "environment",
    "team",
    "source",
    "version",
    "description",
    "tags",
    "links",
    "diff",
    "attributes",
    "idempotency_key",
];

/// Fields the server sets; sending them is refused rather than ignored.
const READ_ONLY_FIELDS: &[&str] = &["id", "recorded_at", "submitted_by", "has_diff"];

/// Limits that operators may change; the rest of design §2 is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_diff_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_diff_bytes: DEFAULT_MAX_DIFF_BYTES,
        }
    }
}

/// Why an event was refused, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, ValidationError>;

/// Validates a submitted event. `now` is the time of receipt, against which a missing
/// `occurred_at` is compared with `ended_at`.
pub fn validate_new_event(value: &Value, limits: &Limits, now: Timestamp) -> Result<NewEvent> {
    let object = value
        .as_object()
        .ok_or_else(|| ValidationError::new("", "an event must be a JSON object"))?;
    for key in object.keys() {
        if READ_ONLY_FIELDS.contains(&key.as_str()) {
            return Err(ValidationError::new(
                key.as_str(),
                "is set by the server and cannot be sent",
            ));
        }
        if !EVENT_FIELDS.contains(&key.as_str()) {
            return Err(ValidationError::new(
                crate::clip(key),
                unknown_field_message(key, EVENT_FIELDS),
            ));
        }
    }

    let occurred_at = optional_timestamp(object, "occurred_at")?;
    let ended_at = optional_timestamp(object, "ended_at")?;
    if let Some(ended_at) = ended_at
        && ended_at < occurred_at.unwrap_or(now)
    {
        return Err(ValidationError::new(
            "ended_at",
            "must not be before occurred_at",
        ));
    }
    let kind = match optional_string(object, "kind")? {
        None => DEFAULT_KIND.to_owned(),
        Some(kind) => {
            check_kind(&kind)?;
            kind
        }
    };
    let description = optional_string(object, "description")?;
    if let Some(description) = &description {
        check_bytes("description", description, MAX_DESCRIPTION_BYTES)?;
    }
    let diff = match object.get("diff") {
        None | Some(Value::Null) => None,
        Some(Value::String(diff)) if diff.is_empty() => None,
        Some(Value::String(diff)) => {
            check_bytes("diff", diff, limits.max_diff_bytes)?;
            Some(diff.clone())
        }
        Some(other) => return Err(wrong_type("diff", "a string", other)),
    };
    let attributes = match object.get("attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            let serialized = serde_json::to_string(map).unwrap_or_default();
            if map
                .iter()
                .any(|(key, value)| key.contains('\0') || contains_nul(value))
            {
                return Err(ValidationError::new(
                    "attributes",
                    "must not contain NUL characters",
                ));
            }
            let size = serialized.len();
            if size > MAX_ATTRIBUTES_BYTES {
                return Err(ValidationError::new(
                    "attributes",
                    format!("is {size} bytes serialized; the limit is {MAX_ATTRIBUTES_BYTES}"),
                ));
            }
            Some(map.clone())
        }
        Some(other) => return Err(wrong_type("attributes", "an object", other)),
    };

    Ok(NewEvent {
        occurred_at,
        ended_at,
        title: required_line(object, "title", MAX_TITLE_CHARS)?,
        system: required_line(object, "system", MAX_NAME_CHARS)?,
        author: required_line(object, "author", MAX_NAME_CHARS)?,
        kind,
        environment: optional_line(object, "environment", MAX_NAME_CHARS)?,
        team: optional_line(object, "team", MAX_NAME_CHARS)?,
        source: optional_line(object, "source", MAX_NAME_CHARS)?,
        version: optional_line(object, "version", MAX_NAME_CHARS)?,
        description,
        tags: tags(object.get("tags"), "tags", MAX_TAGS)?,
        links: links(object.get("links"), "links", MAX_LINKS)?,
        diff,
        attributes,
        idempotency_key: optional_line(object, "idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS)?,
    })
}

/// Validates a `PATCH`: `ended_at`, and `tags`/`links` to add. Anything else is immutable.
pub fn validate_patch(value: &Value) -> Result<EventPatch> {
    const PATCH_FIELDS: &[&str] = &["ended_at", "tags", "links"];
    let object = value
        .as_object()
        .ok_or_else(|| ValidationError::new("", "a patch must be a JSON object"))?;
    for key in object.keys() {
        if !PATCH_FIELDS.contains(&key.as_str()) {
            let message = if EVENT_FIELDS.contains(&key.as_str())
                || READ_ONLY_FIELDS.contains(&key.as_str())
            {
                "events are immutable: only ended_at can be set and tags/links added".to_owned()
            } else {
                unknown_field_message(key, PATCH_FIELDS)
            };
            return Err(ValidationError::new(crate::clip(key), message));
        }
    }
    let patch = EventPatch {
        ended_at: optional_timestamp(object, "ended_at")?,
        add_tags: tags(object.get("tags"), "tags", MAX_TAGS)?,
        add_links: links(object.get("links"), "links", MAX_LINKS)?,
    };
    if patch == EventPatch::default() {
        return Err(ValidationError::new(
            "",
            "the patch changes nothing: send ended_at, tags or links",
        ));
    }
    Ok(patch)
}

/// Checks a kind: a lowercase slug such as `deploy` or `feature_flag`.
pub fn check_kind(kind: &str) -> Result<()> {
    let valid = !kind.is_empty()
        && kind.len() <= MAX_KIND_CHARS
        && kind.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new(
            "kind",
            format!(
                "'{}' is not a lowercase slug (a-z, 0-9, '_', '-'; at most {MAX_KIND_CHARS} chars), e.g. deploy, config, feature_flag",
                crate::clip(kind)
            ),
        ))
    }
}

/// Whether any string or key inside a JSON value holds a NUL character.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        _ => false,
    }
}

fn unknown_field_message(key: &str, known: &[&str]) -> String {
    match closest(key, known) {
        Some(suggestion) => format!("unknown field; did you mean '{suggestion}'?"),
        None => format!("unknown field; the fields are: {}", known.join(", ")),
    }
}

/// The known name within edit distance 2 of a misspelt one, if any.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &str, found: &Value) -> ValidationError {
    ValidationError::new(
        field,
        format!("must be {expected}, not {}", type_name(found)),
    )
}

/// A single-line text: trimmed, not blank, no control characters, at most `max` chars.
fn check_line(field: &str, text: &str, max: usize) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must be a single line without control characters",
        ));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(ValidationError::new(
            field,
            format!("is {chars} characters long; the limit is {max}"),
        ));
    }
    Ok(text.to_owned())
}

fn check_bytes(field: &str, text: &str, max: usize) -> Result<()> {
    // NUL has no business in text, and PostgreSQL cannot store it.
    if text.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL characters",
        ));
    }
    if text.len() > max {
        return Err(ValidationError::new(
            field,
            format!("is {} bytes; the limit is {max}", text.len()),
        ));
    }
    Ok(())
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn required_line(object: &Map<String, Value>, field: &str, max: usize) -> Result<String> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ValidationError::new(field, "is required")),
        Some(Value::String(text)) => check_line(field, text, max),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// Optional single-line text. An empty string counts as absent, so that a deploy script
/// sending `"team": "$TEAM"` with `TEAM` unset still records its event.
fn optional_line(object: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>> {
    optional_string(object, field)?
        .map(|text| check_line(field, &text, max))
        .transpose()
}

fn optional_timestamp(object: &Map<String, Value>, field: &str) -> Result<Option<Timestamp>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_timestamp(text)
            .map(Some)
            .map_err(|message| ValidationError::new(field, message)),
        Some(other) => Err(wrong_type(field, "an RFC 3339 timestamp string", other)),
    }
}

fn tags(value: Option<&Value>, field: &str, max: usize) -> Result<Vec<String>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type(field, "an array of strings", other)),
    };
    if items.len() > max {
        return Err(ValidationError::new(
            field,
            format!("has {} items; the limit is {max}", items.len()),
        ));
    }
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let tag = match item {
            Value::String(text) => check_line(&item_field, text, MAX_TAG_CHARS)?,
            other => return Err(wrong_type(&item_field, "a string", other)),
        };
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

fn links(value: Option<&Value>, field: &str, max: usize) -> Result<Vec<Link>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type(field, "an array of {url, title} objects", other)),
    };
    if items.len() > max {
        return Err(ValidationError::new(
            field,
            format!("has {} items; the limit is {max}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| link(item, &format!("{field}[{index}]")))
        .collect()
}

fn link(value: &Value, field: &str) -> Result<Link> {
    let object = match value {
        Value::Object(object) => object,
        // A bare URL string is what people write first; accept it as {"url": ...}.
        Value::String(url) => {
            return Ok(Link {
                url: check_url(&format!("{field}.url"), url)?,
                title: None,
            });
        }
        other => return Err(wrong_type(field, "an object {url, title}", other)),
    };
    for key in object.keys() {
        if key != "url" && key != "title" {
            return Err(ValidationError::new(
                format!("{field}.{key}"),
                "unknown field; a link has 'url' and 'title'",
            ));
        }
    }
    let url_field = format!("{field}.url");
    let url = match object.get("url") {
        Some(Value::String(url)) => check_url(&url_field, url)?,
        None | Some(Value::Null) => return Err(ValidationError::new(url_field, "is required")),
        Some(other) => return Err(wrong_type(&url_field, "a string", other)),
    };
    let title = optional_line(object, "title", MAX_NAME_CHARS)
        .map_err(|e| ValidationError::new(format!("{field}.title"), e.message))?;
    Ok(Link { url, title })
}

/// Only absolute http(s) URLs: anything else (`javascript:`, `data:`) has no business in a
/// link a colleague will click.
fn check_url(field: &str, text: &str) -> Result<String> {
    let text = text.trim();
    if text.chars().count() > MAX_URL_CHARS {
        return Err(ValidationError::new(
            field,
            format!("is longer than {MAX_URL_CHARS} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValidationError::new(
            field,
            "must not contain spaces or control characters (percent-encode them)",
        ));
    }
    let parsed = url::Url::parse(text).map_err(|e| {
        ValidationError::new(field, format!("'{}' is not a URL: {e}", crate::clip(text)))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ValidationError::new(
            field,
            "must be an absolute http:// or https:// URL",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn valid(value: Value) -> NewEvent {
        validate_new_event(&value, &Limits::default(), now()).unwrap()
    }

    fn refused(value: Value) -> ValidationError {
        validate_new_event(&value, &Limits::default(), now()).unwrap_err()
    }

    fn minimal() -> Value {
        json!({"title": "deploy player 5.2", "system": "player", "author": "alice"})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut event = minimal();
        event[field] = value;
        event
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let event = valid(minimal());
        assert_eq!(event.kind, "change");
        assert_eq!(event.occurred_at, None);
        assert!(event.tags.is_empty() && event.links.is_empty());
    }

    #[test]
    fn full_event_is_accepted() {
        let event = valid(json!({
            "occurred_at": "2026-11-26T10:00:00+01:00",
            "ended_at": "2026-11-26T11:00:00+01:00",
            "title": "A/B test new player",
            "system": "player",
            "author": "alice",
            "kind": "ab_test",
            "environment": "production",
            "team": "video",
            "source": "cli",
            "version": "5.2.0",
            "description": "# Why\nfaster start",
            "tags": ["release:5.2", "release:5.2", "ab"],
            "links": [{"url": "https://ci.example.com/1", "title": "build"}, "http://x.example/"],
            "diff": "--- a\n+++ b\n",
            "attributes": {"ticket": 42},
            "idempotency_key": "deploy-42"
        }));
        assert_eq!(
            event.tags,
            vec!["release:5.2", "ab"],
            "duplicate tags dropped"
        );
        assert_eq!(event.links.len(), 2);
        assert_eq!(
            event.occurred_at.unwrap().to_string(),
            "2026-11-26T09:00:00Z"
        );
    }

    #[test]
    fn required_fields() {
        for field in ["title", "system", "author"] {
            let mut event = minimal();
            event.as_object_mut().unwrap().remove(field);
            assert_eq!(refused(event).field, field);
            let err = refused(with(field, json!("   ")));
            assert_eq!(
                (err.field.as_str(), err.message.as_str()),
                (field, "must not be empty")
            );
            assert_eq!(refused(with(field, json!(7))).field, field);
        }
    }

    #[test]
    fn unknown_and_read_only_fields_are_refused() {
        let mut event = minimal();
        event["sytem"] = json!("x");
        let err = refused(event);
        assert_eq!(err.field, "sytem");
        assert!(
            err.message.contains("did you mean 'system'"),
            "{}",
            err.message
        );
        let err = refused(with("id", json!("x")));
        assert_eq!(err.field, "id");
        assert!(
            refused(with("frobnicate", json!(1)))
                .message
                .contains("the fields are")
        );
        assert_eq!(refused(json!([1])).field, "");
    }

    #[test]
    fn limits_are_enforced() {
        assert!(valid(with("title", json!("x".repeat(500)))).title.len() == 500);
        assert_eq!(
            refused(with("title", json!("x".repeat(501)))).field,
            "title"
        );
        assert_eq!(refused(with("title", json!("two\nlines"))).field, "title");
        assert_eq!(
            refused(with("system", json!("s".repeat(201)))).field,
            "system"
        );
        assert_eq!(
            refused(with("description", json!("d".repeat(64 * 1024 + 1)))).field,
            "description"
        );
        let tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        assert_eq!(refused(with("tags", json!(tags))).field, "tags");
        assert_eq!(
            refused(with("tags", json!(["ok", "x".repeat(201)]))).field,
            "tags[1]"
        );
        assert_eq!(refused(with("tags", json!(["ok", 3]))).field, "tags[1]");
        let links: Vec<Value> = (0..33)
            .map(|i| json!(format!("https://e.example/{i}")))
            .collect();
        assert_eq!(refused(with("links", json!(links))).field, "links");
        assert_eq!(
            refused(with("attributes", json!({"big": "a".repeat(64 * 1024)}))).field,
            "attributes"
        );
        assert_eq!(refused(with("attributes", json!([1]))).field, "attributes");
        assert_eq!(
            refused(with("idempotency_key", json!("k".repeat(201)))).field,
            "idempotency_key"
        );
    }

    #[test]
    fn echoed_input_is_clipped() {
        let long = "K".repeat(100_000);
        let err = refused(with("kind", json!(long)));
        assert!(err.message.len() < 300, "{}", err.message.len());
        let mut event = minimal();
        event[long.as_str()] = json!(1);
        let err = refused(event);
        assert!(err.field.chars().count() <= 65);
        let err = refused(with("occurred_at", json!("x".repeat(100_000))));
        assert!(err.message.len() < 300);
    }

    #[test]
    fn link_urls_without_spaces_or_control_characters() {
        for bad in [
            "https://ex\nample.com/",
            "https://example.com/a b",
            "https://example.com/\u{7}",
        ] {
            assert_eq!(
                refused(with("links", json!([bad]))).field,
                "links[0].url",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_literal_backslash_u0000_in_attributes_is_fine() {
        assert!(
            valid(with("attributes", json!({"k": "\\u0000"})))
                .attributes
                .is_some()
        );
    }

    #[test]
    fn digest_does_not_depend_on_attribute_order() {
        let a: Value = serde_json::from_str(
            r#"{"title":"t","system":"s","author":"a","attributes":{"x":1,"y":{"b":2,"a":1}}}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"title":"t","system":"s","author":"a","attributes":{"y":{"a":1,"b":2},"x":1}}"#,
        )
        .unwrap();
        assert_eq!(valid(a).content_digest(), valid(b).content_digest());
    }

    #[test]
    fn nul_characters_are_refused() {
        assert_eq!(
            refused(with("description", json!("a\u{0}b"))).field,
            "description"
        );
        assert_eq!(refused(with("diff", json!("+a\u{0}\n"))).field, "diff");
        assert_eq!(
            refused(with("attributes", json!({"k": "a\u{0}"}))).field,
            "attributes"
        );
        assert_eq!(
            refused(with("attributes", json!({"k\u{0}": 1}))).field,
            "attributes"
        );
        assert_eq!(refused(with("title", json!("a\u{0}"))).field, "title");
    }

    #[test]
    fn diff_limit_is_configurable() {
        let small = Limits { max_diff_bytes: 10 };
        let event = with("diff", json!("01234567890"));
        let err = validate_new_event(&event, &small, now()).unwrap_err();
        assert_eq!(err.field, "diff");
        assert!(validate_new_event(&event, &Limits::default(), now()).is_ok());
    }

    #[test]
    fn links_must_be_http() {
        for bad in [
            "javascript:alert(1)",
            "ftp://x.example/",
            "not a url",
            "data:text/html,x",
        ] {
            let err = refused(with("links", json!([{"url": bad}])));
            assert_eq!(err.field, "links[0].url", "{bad}");
        }
        assert_eq!(
            refused(with("links", json!([{"title": "t"}]))).field,
            "links[0].url"
        );
        assert_eq!(
            refused(with(
                "links",
                json!([{"url": "https://a.example", "rel": "x"}])
            ))
            .field,
            "links[0].rel"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            refused(with("occurred_at", json!("2026-11-26T10:00:00"))).field,
            "occurred_at"
        );
        assert_eq!(
            refused(with("occurred_at", json!(1700000000))).field,
            "occurred_at"
        );
        let mut event = with("occurred_at", json!("2026-11-26T10:00:00Z"));
        event["ended_at"] = json!("2026-11-26T09:00:00Z");
        assert_eq!(refused(event).field, "ended_at");
        // Without occurred_at, ended_at is compared with the time of receipt.
        assert_eq!(
            refused(with("ended_at", json!("2026-11-26T11:00:00Z"))).field,
            "ended_at"
        );
        assert!(
            valid(with("ended_at", json!("2026-11-26T13:00:00Z")))
                .ended_at
                .is_some()
        );
    }

    #[test]
    fn kinds_are_slugs() {
        assert_eq!(
            valid(with("kind", json!("feature_flag"))).kind,
            "feature_flag"
        );
        for bad in ["Deploy", "de ploy", "_x", "déploiement"] {
            assert_eq!(refused(with("kind", json!(bad))).field, "kind", "{bad}");
        }
    }

    #[test]
    fn empty_optional_strings_are_absent() {
        let event = valid(with("team", json!("")));
        assert_eq!(event.team, None);
    }

    #[test]
    fn digest_ignores_the_key_but_not_the_content() {
        let a = valid(with("idempotency_key", json!("k1")));
        let b = valid(with("idempotency_key", json!("k2")));
        let c = valid(with("team", json!("video")));
        assert_eq!(a.content_digest(), b.content_digest());
        assert_ne!(a.content_digest(), c.content_digest());
    }

    #[test]
    fn patches() {
        let patch =
            validate_patch(&json!({"ended_at": "2026-11-26T13:00:00Z", "tags": ["x"]})).unwrap();
        assert_eq!(patch.add_tags, vec!["x"]);
        assert_eq!(
            validate_patch(&json!({"title": "x"})).unwrap_err().field,
            "title"
        );
        assert_eq!(
            validate_patch(&json!({"bogus": 1})).unwrap_err().field,
            "bogus"
        );
        assert!(validate_patch(&json!({})).is_err());
    }
}
