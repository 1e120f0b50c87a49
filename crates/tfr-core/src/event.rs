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
    pub fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut canonical = self.clone();
        canonical.idempotency_key = None;
        // Serializing a struct of strings, vectors and a BTreeMap-backed map cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        digest.iter().map(|b| format!("{b:02x}")).collect()
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
