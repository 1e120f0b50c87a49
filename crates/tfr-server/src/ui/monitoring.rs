//! Links from an event into the monitoring systems, centred on the event's time.
//!
//! Each link is a URL template from the configuration, with `{from_ms}`, `{to_ms}`,
//! `{from_iso}`, `{to_iso}`, `{time_ms}`, `{system}` and `{environment}` filled in
//! (URL-encoded) for the window around the event.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tfr_core::Event;

/// A configured monitoring link: a name for the button and a URL template.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringLink {
    pub name: String,
    pub url: String,
}

impl MonitoringLink {
    /// Checks the template at start: an absolute http(s) URL, with only known placeholders.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a monitoring link needs a name".into());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "monitoring link '{}': the url must start with http:// or https://",
                self.name
            ));
        }
        let mut rest = self.url.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("monitoring link '{}': unclosed '{{'", self.name))?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "monitoring link '{}': unknown placeholder {{{name}}}; use {}",
                    self.name,
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                ));
            }
            rest = &after[close + 1..];
        }
        Ok(())
    }

    /// The URL for `event`, with a window of `half_window` either side of it.
    pub fn url_for(&self, event: &Event, half_window: SignedDuration) -> String {
        let time = event.occurred_at;
        let from = time.checked_sub(half_window).unwrap_or(Timestamp::MIN);
        // A change that spans time (an A/B test) is shown whole, plus the margin.
        let end = event.ended_at.unwrap_or(time);
        let to = end.checked_add(half_window).unwrap_or(Timestamp::MAX);
        let mut url = self.url.clone();
        for (name, value) in [
            ("from_ms", from.as_millisecond().to_string()),
            ("to_ms", to.as_millisecond().to_string()),
            ("from_iso", from.to_string()),
            ("to_iso", to.to_string()),
            ("time_ms", time.as_millisecond().to_string()),
            ("system", event.system.clone()),
            ("environment", event.environment.clone().unwrap_or_default()),
        ] {
            url = url.replace(&format!("{{{name}}}"), &encode(&value));
        }
        url
    }
}

const PLACEHOLDERS: [&str; 7] = [
    "from_ms",
    "to_ms",
    "from_iso",
    "to_iso",
    "time_ms",
    "system",
    "environment",
];

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfr_core::validate::{Limits, validate_new_event};

    fn event() -> Event {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        validate_new_event(
            &serde_json::json!({"title": "t", "system": "api gateway/eu", "author": "a",
                "environment": "prod&eu", "occurred_at": "2026-11-26T10:00:00Z"}),
            &Limits::default(),
            now,
        )
        .unwrap()
        .into_event(now, "test")
    }

    #[test]
    fn placeholders_are_filled_and_encoded() {
        let link = MonitoringLink {
            name: "Grafana".into(),
            url: "https://grafana.example.com/d/x?from={from_ms}&to={to_ms}&var-system={system}&var-env={environment}&t={time_ms}&f={from_iso}".into(),
        };
        link.validate().unwrap();
        let url = link.url_for(&event(), SignedDuration::from_mins(30));
        assert_eq!(
            url,
            "https://grafana.example.com/d/x?from=1795685400000&to=1795689000000&var-system=api%20gateway%2Feu&var-env=prod%26eu&t=1795687200000&f=2026-11-26T09%3A30%3A00Z"
        );
    }

    #[test]
    fn templates_are_checked() {
        let bad = |url: &str| {
            MonitoringLink {
                name: "x".into(),
                url: url.into(),
            }
            .validate()
        };
        assert!(bad("javascript:alert(1)").is_err());
        assert!(
            bad("https://x.example/{nope}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(bad("https://x.example/{from_ms").is_err());
        assert!(bad("https://x.example/?a={from_ms}").is_ok());
    }
}
