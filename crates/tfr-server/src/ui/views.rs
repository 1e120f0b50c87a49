//! What the templates show, prepared in Rust so templates stay simple: every value here is
//! plain text, escaped by the templates (only rendered Markdown and our own SVG are inserted
//! as HTML).

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde::Deserialize;
use tfr_core::Event;

use super::monitoring::MonitoringLink;

/// An event as a card of the feed.
pub struct CardView {
    pub id: String,
    pub title: String,
    pub system: String,
    /// The query showing this system's changes.
    pub system_query: String,
    pub author: String,
    pub kind: String,
    pub environment: Option<String>,
    pub team: Option<String>,
    pub time_iso: String,
    pub time_text: String,
    /// `(iso, text)` of `ended_at`.
    pub ended_text: Option<(String, String)>,
    /// `(tag, query showing that tag)`.
    pub tags: Vec<(String, String)>,
    /// `(url, label)`.
    pub links: Vec<(String, String)>,
    /// `(name, url)` of the monitoring buttons.
    pub monitoring: Vec<(String, String)>,
    pub has_diff: bool,
}

impl CardView {
    pub fn new(event: &Event, monitoring: &[MonitoringLink], window: SignedDuration) -> Self {
        Self {
            id: event.id.to_string(),
            title: event.title.clone(),
            system: event.system.clone(),
            system_query: format!("system:{}", quote(&event.system)),
            author: event.author.clone(),
            kind: event.kind.clone(),
            environment: event.environment.clone(),
            team: event.team.clone(),
            time_iso: event.occurred_at.to_string(),
            time_text: utc_text(event.occurred_at),
            ended_text: event.ended_at.map(|t| (t.to_string(), utc_text(t))),
            tags: event
                .tags
                .iter()
                .map(|tag| (tag.clone(), format!("tag:{}", quote(tag))))
                .collect(),
            links: event
                .links
                .iter()
                .map(|link| {
                    let label = link.title.clone().unwrap_or_else(|| short_url(&link.url));
                    (link.url.clone(), label)
                })
                .collect(),
            monitoring: monitoring
                .iter()
                .map(|link| (link.name.clone(), link.url_for(event, window)))
                .collect(),
            has_diff: event.has_diff,
        }
    }
}

/// Cards of one (UTC) day; the page's script regroups them by the viewer's day.
pub struct DayGroup {
    pub date: String,
    pub heading: String,
    pub cards: Vec<CardView>,
}

/// Groups cards (newest first) by day.
pub fn by_day(
    events: &[Event],
    monitoring: &[MonitoringLink],
    window: SignedDuration,
) -> Vec<DayGroup> {
    let mut days: Vec<DayGroup> = Vec::new();
    for event in events {
        let date = event.occurred_at.to_zoned_datetime(TimeZone::UTC).date();
        let key = date.to_string();
        if days.last().is_none_or(|day| day.date != key) {
            days.push(DayGroup {
                heading: date.strftime("%A %-d %B %Y").to_string(),
                date: key,
                cards: Vec::new(),
            });
        }
        if let Some(day) = days.last_mut() {
            day.cards.push(CardView::new(event, monitoring, window));
        }
    }
    days
}

/// `2026-11-26 14:05 UTC`: what pages show before the script turns it into local time.
pub fn utc_text(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A URL shortened for a link label: host and a hint of the path.
fn short_url(url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    tfr_core::clip(without_scheme)
}

/// A value as a query-language value: quoted when it holds spaces, commas or quotes.
pub fn quote(value: &str) -> String {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '"' || c == '*' || c == '\\')
    {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

/// The feed's (and stats') filters, as they come in the URL.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FeedParams {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub system: String,
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub cursor: String,
    #[serde(default)]
    pub tz: String,
}

impl FeedParams {
    /// The query the filters add up to: the text, then one term per filter.
    pub fn effective_query(&self) -> String {
        let mut query = self.q.trim().to_owned();
        for (field, value) in [
            ("kind", &self.kind),
            ("system", &self.system),
            ("env", &self.env),
        ] {
            if !value.is_empty() {
                query.push_str(&format!(" {field}:{}", quote(value)));
            }
        }
        if !self.since.is_empty() {
            query.push_str(&format!(" since:{}", self.since));
        }
        query.trim().to_owned()
    }

    /// The filters as a query string (without the cursor), for links that keep them.
    pub fn query_string(&self) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("kind", &self.kind),
            ("system", &self.system),
            ("env", &self.env),
            ("since", &self.since),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                serializer.append_pair(name, value);
            }
        }
        serializer.finish()
    }
}

/// The search form above the feed and the stats.
pub struct SearchForm {
    pub action: &'static str,
    pub q: String,
    pub kind: String,
    pub system: String,
    pub env: String,
    pub since: String,
    pub from: String,
    pub to: String,
    pub kinds: Vec<String>,
    pub systems: Vec<String>,
    pub environments: Vec<String>,
    pub ranges: Vec<(String, String)>,
    pub error: Option<String>,
}

impl SearchForm {
    pub fn new(action: &'static str, params: &FeedParams, options: &FilterOptions) -> Self {
        let with_current = |mut values: Vec<String>, current: &str| {
            if !current.is_empty() && !values.iter().any(|v| v == current) {
                values.push(current.to_owned());
            }
            values
        };
        Self {
            action,
            q: params.q.clone(),
            kind: params.kind.clone(),
            system: params.system.clone(),
            env: params.env.clone(),
            since: params.since.clone(),
            from: params.from.clone(),
            to: params.to.clone(),
            kinds: with_current(options.kinds.clone(), &params.kind),
            systems: with_current(options.systems.clone(), &params.system),
            environments: with_current(options.environments.clone(), &params.env),
            ranges: [
                ("", "any time"),
                ("1h", "last hour"),
                ("24h", "last 24 hours"),
                ("7d", "last 7 days"),
                ("30d", "last 30 days"),
                ("90d", "last 90 days"),
            ]
            .iter()
            .map(|(value, label)| ((*value).to_owned(), (*label).to_owned()))
            .collect(),
            error: None,
        }
    }
}

/// The values offered by the quick filters.
#[derive(Clone, Debug, Default)]
pub struct FilterOptions {
    pub kinds: Vec<String>,
    pub systems: Vec<String>,
    pub environments: Vec<String>,
}

/// `+5m`, `-1h 20m`: an offset from a moment, for "around this time".
pub fn offset_text(seconds: i64) -> String {
    let sign = if seconds < 0 { "−" } else { "+" };
    let s = seconds.unsigned_abs();
    match s {
        0..60 => format!("{sign}{s}s"),
        60..3600 => format!("{sign}{}m", s / 60),
        _ => format!("{sign}{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_values() {
        assert_eq!(quote("player"), "player");
        assert_eq!(quote("video core"), "\"video core\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote("release:5.2"), "release:5.2");
    }

    #[test]
    fn filters_add_terms() {
        let params = FeedParams {
            q: "rollback".into(),
            kind: "deploy".into(),
            system: "api gateway".into(),
            since: "7d".into(),
            ..FeedParams::default()
        };
        assert_eq!(
            params.effective_query(),
            "rollback kind:deploy system:\"api gateway\" since:7d"
        );
        // The generated query parses.
        assert!(tfr_core::query::parse(&params.effective_query()).is_ok());
        assert_eq!(
            params.query_string(),
            "q=rollback&kind=deploy&system=api+gateway&since=7d"
        );
    }

    #[test]
    fn offsets() {
        assert_eq!(offset_text(-300), "−5m");
        assert_eq!(offset_text(4_800), "+1h 20m");
        assert_eq!(offset_text(0), "+0s");
    }
}
