//! The query-language parser (design §3) on arbitrary text.
//!
//! Properties: `parse` never panics; an error points inside the text (or just past it) and
//! says something; a parsed query respects the documented caps, and matching it in memory
//! (the live stream's path) never panics, on a fixed event and on one made of the input itself,
//! with `now` anywhere from the first to the last representable instant.

#![no_main]

use std::sync::OnceLock;

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tfr_core::query::{MAX_TERMS, MAX_VALUES, Matcher, parse};
use tfr_core::validate::{Limits, validate_new_event};
use tfr_core::{Event, Link};

fn sample_event() -> &'static Event {
    static EVENT: OnceLock<Event> = OnceLock::new();
    EVENT.get_or_init(|| {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().expect("a valid timestamp");
        validate_new_event(
            &json!({
                "title": "Déploiement du lecteur player-5.2 (ÉTÉ naïve_x)",
                "system": "player",
                "author": "alice",
                "kind": "deploy",
                "environment": "production",
                "team": "video",
                "source": "github",
                "version": "5.2.1",
                "tags": ["release:5.2", "canary", "ﬁ ß İ"],
                "links": [{"url": "https://example.com/pr/1", "title": "PR"}],
                "description": "Faster start-up, \"quoted\" words and ΑΒΓ",
                "occurred_at": "2026-11-25T12:00:00Z",
                "diff": "+hidden",
                "attributes": {"k": [1, 2.5, null]}
            }),
            &Limits::default(),
            now,
        )
        .expect("the sample event is valid")
        .into_event(now, "fuzz")
    })
}

/// An event whose every searchable field is the fuzz input, so that phrase and prefix
/// matching run on text the fuzzer controls.
fn echo_event(text: &str) -> Event {
    let mut event = sample_event().clone();
    event.title = text.to_owned();
    event.system = text.to_owned();
    event.author = text.to_owned();
    event.kind = text.to_owned();
    event.environment = Some(text.to_owned());
    event.team = None;
    event.source = Some(text.to_owned());
    event.version = Some(text.to_owned());
    event.description = Some(text.to_owned());
    event.tags = text.split_whitespace().map(str::to_owned).collect();
    event.links = vec![Link {
        url: text.to_owned(),
        title: None,
    }];
    event.occurred_at = Timestamp::MIN;
    event
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chars = text.chars().count();
    match parse(text) {
        Err(error) => {
            assert!(
                error.position <= chars,
                "error position {} past the end ({chars} chars): {error}",
                error.position
            );
            assert!(!error.message.is_empty());
            // Error messages quote user text clipped: they never echo the whole input back.
            assert!(error.to_string().chars().count() <= 1024, "{error}");
        }
        Ok(query) => {
            // NUL never reaches a store (SQLite's full-text syntax and PostgreSQL refuse it).
            assert!(!text.contains('\0'), "a query with NUL was accepted");
            assert!(query.terms.len() <= MAX_TERMS);
            let mut values = 0;
            for term in &query.terms {
                assert!(term.position < chars.max(1), "term position past the end");
                if let Matcher::Field { values: v, .. } = &term.matcher {
                    assert!(!v.is_empty());
                    values += v.len();
                }
            }
            assert!(values <= MAX_VALUES);
            let sample = sample_event();
            let echo = echo_event(text);
            for now in [sample.occurred_at, Timestamp::MIN, Timestamp::MAX] {
                let _ = query.matches(sample, now);
                let _ = query.matches(&echo, now);
            }
            // Parsing is a pure function of the text.
            assert_eq!(parse(text).as_ref(), Ok(&query));
        }
    }
});
