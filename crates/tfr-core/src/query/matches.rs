//! Evaluating a query against one event in memory, for the live stream, where each new event
//! is checked as it is stored. The rules are those the stores implement in SQL: a term means
//! the same thing in a search and in a stream.
//!
//! Full text follows the SQLite FTS5 `unicode61` tokenizer with `remove_diacritics 2`: words
//! are runs of letters and digits, compared lowercased with accents removed (for the Latin
//! letters; other scripts compare as written), and a phrase must lie within one field.

use jiff::Timestamp;

use super::ast::{Field, Matcher, Query, TextPattern, ValuePattern};
use crate::Event;

impl Query {
    /// Whether `event` matches every term, with relative terms (`since:`) counted from `now`.
    pub fn matches(&self, event: &Event, now: Timestamp) -> bool {
        self.terms.iter().all(|term| {
            let matched = match &term.matcher {
                Matcher::Text(pattern) => text_matches(pattern, event),
                Matcher::Field { field, values } => field_matches(*field, values, event),
                Matcher::After(at) => event.occurred_at >= *at,
                Matcher::Before(at) => event.occurred_at < *at,
                Matcher::Since(duration) => now
                    .checked_sub(*duration)
                    .is_ok_and(|since| event.occurred_at >= since),
            };
            matched != term.negated
        })
    }
}

fn field_matches(field: Field, values: &[ValuePattern], event: &Event) -> bool {
    let test = |actual: &str| {
        values.iter().any(|value| match (field, value) {
            (Field::Id, ValuePattern::Exact(v)) => v.parse::<crate::EventId>().map_or_else(
                |_| actual.eq_ignore_ascii_case(v),
                |id| id.to_string() == actual,
            ),
            (Field::Id, ValuePattern::Prefix(v)) => actual.starts_with(&v.to_ascii_lowercase()),
            (_, ValuePattern::Exact(v)) => actual == v,
            (_, ValuePattern::Prefix(v)) => actual.starts_with(v.as_str()),
        })
    };
    match field {
        Field::System => test(&event.system),
        Field::Author => test(&event.author),
        Field::Kind => test(&event.kind),
        Field::Environment => event.environment.as_deref().is_some_and(test),
        Field::Team => event.team.as_deref().is_some_and(test),
        Field::Source => event.source.as_deref().is_some_and(test),
        Field::Version => event.version.as_deref().is_some_and(test),
        Field::Id => test(&event.id.to_string()),
        Field::Tag => event.tags.iter().any(|tag| test(tag)),
    }
}

fn text_matches(pattern: &TextPattern, event: &Event) -> bool {
    let tags = event.tags.join("\n");
    text_matches_fields(
        pattern,
        [
            Some(event.title.as_str()),
            event.description.as_deref(),
            Some(event.system.as_str()),
            Some(event.author.as_str()),
            Some(tags.as_str()),
            event.version.as_deref(),
        ],
    )
}

/// Whether a full-text pattern matches an event given by its indexed fields — title,
/// description, system, author, tags (joined by newlines) and version, as the stores index
/// them — by the index's rules. The SQLite store checks events its index does not hold yet
/// with this.
pub fn text_matches_fields(pattern: &TextPattern, fields: [Option<&str>; 6]) -> bool {
    let wanted = tokens(pattern.text());
    if wanted.is_empty() {
        return false;
    }
    let prefix = matches!(pattern, TextPattern::Prefix(_));
    fields
        .into_iter()
        .flatten()
        .any(|text| contains_phrase(&tokens(text), &wanted, prefix))
}

/// Whether `phrase` occurs as consecutive tokens of `text`; with `prefix`, its last token
/// need only start a token.
fn contains_phrase(text: &[String], phrase: &[String], prefix: bool) -> bool {
    let Some((last, leading)) = phrase.split_last() else {
        return false;
    };
    text.windows(phrase.len()).any(|window| {
        let (window_last, window_leading) = window.split_last().unwrap_or((last, &[]));
        window_leading == leading
            && if prefix {
                window_last.starts_with(last.as_str())
            } else {
                window_last == last
            }
    })
}

/// Splits text into lowercase, accent-free words.
pub fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                current.push(fold_diacritic(lower));
            }
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// The base letter of an accented lowercase Latin letter.
fn fold_diacritic(c: char) -> char {
    match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;
    use crate::validate::{Limits, validate_new_event};
    use serde_json::json;

    fn event() -> Event {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        validate_new_event(
            &json!({
                "title": "Déploiement du lecteur player-5.2",
                "system": "player",
                "author": "alice",
                "kind": "deploy",
                "environment": "production",
                "tags": ["release:5.2", "canary"],
                "version": "5.2.1",
                "description": "Faster start-up",
                "occurred_at": "2026-11-25T12:00:00Z",
                "diff": "+hidden"
            }),
            &Limits::default(),
            now,
        )
        .unwrap()
        .into_event(now, "test")
    }

    fn matches(query: &str) -> bool {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        parse(query).unwrap().matches(&event(), now)
    }

    #[test]
    fn text() {
        for yes in [
            "deploiement",
            "DÉPLOIEMENT",
            "player",
            "\"player 5 2\"",
            "player-5.2",
            "lect*",
            "start",
            "\"faster start\"",
            "release",
            "canary",
            "alice",
            "5.2.1",
            "\"5 2 1\"",
        ] {
            assert!(matches(yes), "{yes}");
        }
        for no in [
            "hidden",
            "lecteurs",
            "\"start faster\"",
            "\"canary release\"",
            "zzz",
        ] {
            assert!(!matches(no), "{no}");
        }
    }

    #[test]
    fn fields_and_negation() {
        assert!(matches("system:player kind:deploy,config env:prod*"));
        assert!(matches("tag:release:5.2 tag:can*"));
        assert!(!matches("tag:release"));
        assert!(!matches("system:Player"));
        assert!(matches("-team:video"), "no team is not team video");
        assert!(!matches("team:video"));
        assert!(!matches("-kind:deploy"));
        assert!(matches("-zzz"));
        let id = event().id.to_string();
        assert!(
            !matches(&format!("id:{}", id.to_uppercase())),
            "ids differ per event"
        );
    }

    #[test]
    fn time() {
        assert!(matches("after:2026-11-25 before:2026-11-26"));
        assert!(!matches("after:2026-11-25T12:00:01Z"));
        assert!(matches("since:2d"));
        assert!(!matches("since:12h"));
    }

    #[test]
    fn tokenizer() {
        assert_eq!(
            tokens("Player-5.2 ÉTÉ naïve_x"),
            ["player", "5", "2", "ete", "naive", "x"]
        );
        assert!(tokens("-- !").is_empty());
    }
}
