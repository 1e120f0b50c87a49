//! The event validator (design §2) on arbitrary bytes taken as JSON.
//!
//! Properties: `validate_new_event` never panics; an accepted event's content digest (what
//! idempotency compares) is 64 hex digits, the same on every computation, independent of the
//! idempotency key, and unchanged when the accepted event is serialised and submitted again
//! (an export re-imported is "the same" event); `into_event` keeps what was submitted.

#![no_main]

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tfr_core::validate::{Limits, validate_new_event};

/// Whether a JSON value holds a floating-point number: serde_json's default float parser is
/// best-effort (the `float_roundtrip` feature is off), so such a number may come back one ULP
/// away after printing and parsing again.
fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().expect("a valid timestamp");
    // A small diff limit as well as the default, so that the limit's edge is reachable.
    for limits in [Limits::default(), Limits { max_diff_bytes: 16 }] {
        let Ok(event) = validate_new_event(&value, &limits, now) else {
            continue;
        };
        let digest = event.content_digest();
        assert_eq!(digest.len(), 64, "{digest}");
        assert!(
            digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_eq!(event.clone().content_digest(), digest, "digest not stable");

        // The same submission validates to the same event and digest.
        let again =
            validate_new_event(&value, &limits, now).expect("accepted once, accepted twice");
        assert_eq!(again, event);
        assert_eq!(again.content_digest(), digest);

        // The idempotency key is not part of the content.
        let mut rekeyed = event.clone();
        rekeyed.idempotency_key = Some("another-key".to_owned());
        assert_eq!(rekeyed.content_digest(), digest);

        // What was accepted, serialised, is accepted again as the same content.
        let resubmitted = serde_json::to_value(&event).expect("a NewEvent serialises");
        let reparsed = validate_new_event(&resubmitted, &limits, now)
            .unwrap_or_else(|e| panic!("a serialised accepted event is refused: {e}"));
        if !event
            .attributes
            .iter()
            .any(|map| map.values().any(has_float))
        {
            assert_eq!(reparsed, event);
            assert_eq!(reparsed.content_digest(), digest);
        }

        let submitted = event.clone();
        let stored = event.into_event(now, "fuzz");
        assert_eq!(stored.occurred_at, submitted.occurred_at.unwrap_or(now));
        assert_eq!(stored.recorded_at, now);
        assert_eq!(stored.has_diff, submitted.diff.is_some());
        assert_eq!(stored.title, submitted.title);
        assert_eq!(stored.tags, submitted.tags);
        assert_eq!(stored.links, submitted.links);
        assert_eq!(stored.submitted_by, "fuzz");
        assert!(stored.ended_at.is_none_or(|end| end >= stored.occurred_at));
        // The stored form serialises (the API answer) and a list's copy drops only the diff.
        serde_json::to_vec(&stored).expect("an Event serialises");
        let listed = stored.without_diff();
        assert!(listed.diff.is_none());
        assert_eq!(listed.has_diff, stored.has_diff);
    }
});
