//! The event — a technical fact: what changed, who changed it, on what system, when.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// An event's identity: a UUIDv7, so ids sort by the time they were recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh id for an event recorded now.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for EventId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for EventId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text)
            .map(Self)
            .map_err(|_| format!("'{}' is not an event id (a UUID)", crate::clip(text)))
    }
}

/// A link attached to an event: a pull request, a build, a dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// An absolute http(s) URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// An event as submitted, after validation: everything the client said, nothing the server
/// adds. Its canonical JSON is what idempotency compares, so `occurred_at` stays `None` when
/// the client left it out (a retry seconds later is still the same content).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewEvent {
    pub occurred_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub title: String,
    pub system: String,
    pub author: String,
    pub kind: String,
    pub environment: Option<String>,
    pub team: Option<String>,
    pub source: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub diff: Option<String>,
    pub attributes: Option<Map<String, Value>>,
    pub idempotency_key: Option<String>,
}

impl NewEvent {
    /// A hex SHA-256 of the submitted content, the idempotency key itself excluded: two
    /// submissions with the same key are "the same" exactly when their digests are equal.
    ///
    /// What is hashed is the event's JSON as `serde_json` writes this struct with
    /// `idempotency_key` null; it is streamed into the hash, without a copy of the event or
    /// of its JSON (a diff can weigh a megabyte, and every submission is digested).
    pub fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};

        /// Feeds written bytes to the hash.
        struct Hashing(Sha256);
        impl std::io::Write for Hashing {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let mut hashing = Hashing(Sha256::new());
        // Writing a struct of strings, vectors and a BTreeMap-backed map into a hash cannot
        // fail.
        let _ = serde_json::to_writer(&mut hashing, &Canonical(self));
        let mut hex = String::with_capacity(64);
        for byte in hashing.0.finalize() {
            hex.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
        hex
    }

    /// Turns the submission into a stored fact: the server's id, clock and caller are added.
    pub fn into_event(self, recorded_at: Timestamp, submitted_by: &str) -> Event {
        let has_diff = self.diff.is_some();
        Event {
            id: EventId::new(),
            occurred_at: self.occurred_at.unwrap_or(recorded_at),
            ended_at: self.ended_at,
            recorded_at,
            title: self.title,
            system: self.system,
            author: self.author,
            kind: self.kind,
            environment: self.environment,
            team: self.team,
            source: self.source,
            version: self.version,
            description: self.description,
            tags: self.tags,
            links: self.links,
            has_diff,
            diff: self.diff,
            attributes: self.attributes,
            idempotency_key: self.idempotency_key,
            submitted_by: submitted_by.to_owned(),
        }
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// A [`NewEvent`] as its content digest sees it: serialized field for field as the struct
/// is, with `idempotency_key` null. The field names and their order are the digest's format:
/// they must follow `NewEvent`'s, which a test pins.
struct Canonical<'a>(&'a NewEvent);

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let event = self.0;
        let mut out = serializer.serialize_struct("NewEvent", 16)?;
        out.serialize_field("occurred_at", &event.occurred_at)?;
        out.serialize_field("ended_at", &event.ended_at)?;
        out.serialize_field("title", &event.title)?;
        out.serialize_field("system", &event.system)?;
        out.serialize_field("author", &event.author)?;
        out.serialize_field("kind", &event.kind)?;
        out.serialize_field("environment", &event.environment)?;
        out.serialize_field("team", &event.team)?;
        out.serialize_field("source", &event.source)?;
        out.serialize_field("version", &event.version)?;
        out.serialize_field("description", &event.description)?;
        out.serialize_field("tags", &event.tags)?;
        out.serialize_field("links", &event.links)?;
        out.serialize_field("diff", &event.diff)?;
        out.serialize_field("attributes", &event.attributes)?;
        out.serialize_field("idempotency_key", &None::<&str>)?;
        out.end()
    }
}

/// A stored fact, as the API returns it.
///
/// Lists leave `diff` out (it can weigh a megabyte) and say `has_diff`; the single-event
/// endpoint and the export include it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    #[schema(value_type = String)]
    pub id: EventId,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    pub title: String,
    pub system: String,
    pub author: String,
    pub kind: String,
    pub environment: Option<String>,
    pub team: Option<String>,
    pub source: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub has_diff: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    pub idempotency_key: Option<String>,
    pub submitted_by: String,
}

impl Event {
    /// A copy without the diff (which can weigh a megabyte), as lists and write answers carry
    /// it; `has_diff` still tells whether there is one.
    pub fn without_diff(&self) -> Event {
        Event {
            id: self.id,
            occurred_at: self.occurred_at,
            ended_at: self.ended_at,
            recorded_at: self.recorded_at,
            title: self.title.clone(),
            system: self.system.clone(),
            author: self.author.clone(),
            kind: self.kind.clone(),
            environment: self.environment.clone(),
            team: self.team.clone(),
            source: self.source.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            links: self.links.clone(),
            has_diff: self.has_diff,
            diff: None,
            attributes: self.attributes.clone(),
            idempotency_key: self.idempotency_key.clone(),
            submitted_by: self.submitted_by.clone(),
        }
    }
}

/// The only changes a fact allows once recorded: closing its time span and adding links or tags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventPatch {
    pub ended_at: Option<Timestamp>,
    pub add_tags: Vec<String>,
    pub add_links: Vec<Link>,
}

impl EventPatch {
    /// Applies the patch to an event, keeping the limits of design §2. Tags and links already
    /// present are not added twice.
    pub fn apply(&self, event: &mut Event) -> Result<(), crate::ValidationError> {
        use crate::validate::{MAX_LINKS, MAX_TAGS};
        if let Some(ended_at) = self.ended_at {
            if ended_at < event.occurred_at {
                return Err(crate::ValidationError::new(
                    "ended_at",
                    "must not be before occurred_at",
                ));
            }
            event.ended_at = Some(ended_at);
        }
        for tag in &self.add_tags {
            if !event.tags.contains(tag) {
                event.tags.push(tag.clone());
            }
        }
        for link in &self.add_links {
            if !event.links.iter().any(|l| l.url == link.url) {
                event.links.push(link.clone());
            }
        }
        if event.tags.len() > MAX_TAGS {
            return Err(crate::ValidationError::new(
                "tags",
                format!("an event holds at most {MAX_TAGS} tags"),
            ));
        }
        if event.links.len() > MAX_LINKS {
            return Err(crate::ValidationError::new(
                "links",
                format!("an event holds at most {MAX_LINKS} links"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event using every field, with text that JSON must escape.
    fn everything() -> NewEvent {
        let attributes =
            serde_json::json!({"build": 42, "nested": {"b": [1, 2.5, null], "a": "x"}});
        NewEvent {
            occurred_at: Some("2026-11-26T10:00:00.123456Z".parse().unwrap()),
            ended_at: Some("2026-11-26T10:05:00Z".parse().unwrap()),
            title: "Deploy \"player\" 5.2 — ünïcødé \\ back".into(),
            system: "player".into(),
            author: "jane.doe".into(),
            kind: "deploy".into(),
            environment: Some("prod".into()),
            team: None,
            source: Some("ci".into()),
            version: Some("5.2.0".into()),
            description: Some("Line one\nline\ttwo\u{1}".into()),
            tags: vec!["release:5.2".into(), "region:eu".into()],
            links: vec![
                Link {
                    url: "https://ci.example.com/1".into(),
                    title: None,
                },
                Link {
                    url: "https://git.example.com/pr/2".into(),
                    title: Some("pull request".into()),
                },
            ],
            diff: Some("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n".into()),
            attributes: attributes.as_object().cloned(),
            idempotency_key: Some("deploy-1".into()),
        }
    }

    /// The digest's JSON is `NewEvent`'s own, key left out: a field added to `NewEvent` must
    /// be added to `Canonical` too (and changes every digest: stored events would no longer
    /// match their retries).
    #[test]
    fn the_digest_hashes_the_events_own_json_without_its_key() {
        let event = everything();
        let mut keyless = event.clone();
        keyless.idempotency_key = None;
        assert_eq!(
            serde_json::to_string(&Canonical(&event)).unwrap(),
            serde_json::to_string(&keyless).unwrap()
        );
    }

    /// Stored digests are compared with new submissions' for as long as the events are kept:
    /// the digest of a given content must never change between versions.
    #[test]
    fn the_content_digest_is_stable() {
        assert_eq!(
            everything().content_digest(),
            "6f43e67e3e4e6140645394d3daeed5c19668f5bc11ea4bb84d59d78896ec49f9"
        );
        let mut minimal = everything();
        minimal.occurred_at = None;
        minimal.ended_at = None;
        minimal.environment = None;
        minimal.source = None;
        minimal.version = None;
        minimal.description = None;
        minimal.tags.clear();
        minimal.links.clear();
        minimal.diff = None;
        minimal.attributes = None;
        minimal.idempotency_key = None;
        assert_eq!(
            minimal.content_digest(),
            "83d9d0c8bf0f95c3a8f34ffe6490c6c380ec11899b7b4efc83bdef3120c55498"
        );
    }
}
