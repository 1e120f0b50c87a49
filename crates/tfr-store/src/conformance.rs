//! The conformance suite: the behaviour every [`Store`] must have, written once against the
//! trait so that SQLite and PostgreSQL are held to exactly the same contract.
//!
//! Each case is a `pub async fn` that takes a fresh, empty store and panics with a message
//! naming what went wrong. [`CASES`] lists them all by name, and [`run_all`] runs every case on
//! its own store and reports each failing case by name. A backend's test file only has to say
//! how to open an empty store:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     tfr_store::conformance::run_all(|| async {
//!         let dir = tempfile::tempdir().unwrap();
//!         let store = Arc::new(MyStore::open(dir.path()).unwrap()) as Arc<dyn Store>;
//!         (store, dir)
//!     })
//!     .await;
//! }
//! ```
//!
//! Events are built from JSON through the real validator (`validate_new_event`,
//! `NewEvent::into_event`, `NewEvent::content_digest`) and queries through the real parser, so
//! the suite exercises the code paths the server uses.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tfr_core::stats::{GroupField, quarter_of};
use tfr_core::validate::validate_new_event;
use tfr_core::{Event, EventId, EventPatch, Limits, Link, query};
use tokio::sync::broadcast;

use tfr_core::token::{Scope, hash_token};

use crate::{
    AroundRequest, AuditAction, AuditEntry, BatchMode, BucketCount, Cursor, Deletion, EventFilter,
    InsertOutcome, InsertRecord, MAX_BATCH, MAX_PAGE_SIZE, NewToken, Order, PageRequest,
    QuarterCount, STREAM_BUFFER, Store, StoreError, StoredEvent, StreamPosition, TimelineEntry,
    TokenInfo, ValueCount,
};

// ---------------------------------------------------------------------------------------------
// Running the suite
// ---------------------------------------------------------------------------------------------

/// The future of one running case.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One behaviour of the contract, by name.
pub struct Case {
    pub name: &'static str,
    pub run: fn(Arc<dyn Store>) -> CaseFuture,
}

/// A case stops being waited for after this long and is reported as hung.
const CASE_DEADLINE: Duration = Duration::from_secs(300);

/// Every case of the suite.
pub const CASES: &[Case] = &[
    Case {
        name: "insert_get_round_trip",
        run: |store| Box::pin(async move { insert_get_round_trip(&*store).await }),
    },
    Case {
        name: "minimal_event_round_trip",
        run: |store| Box::pin(async move { minimal_event_round_trip(&*store).await }),
    },
    Case {
        name: "events_at_the_limits_round_trip",
        run: |store| Box::pin(async move { events_at_the_limits_round_trip(&*store).await }),
    },
    Case {
        name: "list_is_newest_first_with_ties_broken_by_id",
        run: |store| {
            Box::pin(async move { list_is_newest_first_with_ties_broken_by_id(&*store).await })
        },
    },
    Case {
        name: "cursor_walk_visits_every_event_once",
        run: |store| Box::pin(async move { cursor_walk_visits_every_event_once(&*store).await }),
    },
    Case {
        name: "cursor_walk_with_a_query",
        run: |store| Box::pin(async move { cursor_walk_with_a_query(&*store).await }),
    },
    Case {
        name: "cursor_survives_inserts_between_pages",
        run: |store| Box::pin(async move { cursor_survives_inserts_between_pages(&*store).await }),
    },
    Case {
        name: "query_full_text",
        run: |store| Box::pin(async move { query_full_text(&*store).await }),
    },
    Case {
        name: "query_fields",
        run: |store| Box::pin(async move { query_fields(&*store).await }),
    },
    Case {
        name: "query_negation",
        run: |store| Box::pin(async move { query_negation(&*store).await }),
    },
    Case {
        name: "query_time_terms",
        run: |store| Box::pin(async move { query_time_terms(&*store).await }),
    },
    Case {
        name: "query_from_to_bounds",
        run: |store| Box::pin(async move { query_from_to_bounds(&*store).await }),
    },
    Case {
        name: "query_combinations",
        run: |store| Box::pin(async move { query_combinations(&*store).await }),
    },
    Case {
        name: "idempotent_retry_returns_the_original",
        run: |store| Box::pin(async move { idempotent_retry_returns_the_original(&*store).await }),
    },
    Case {
        name: "reimported_export_is_a_duplicate",
        run: |store| Box::pin(async move { reimported_export_is_a_duplicate(&*store).await }),
    },
    Case {
        name: "reimported_keyless_event_is_a_duplicate",
        run: |store| {
            Box::pin(async move { reimported_keyless_event_is_a_duplicate(&*store).await })
        },
    },
    Case {
        name: "idempotency_key_with_other_content_conflicts",
        run: |store| {
            Box::pin(async move { idempotency_key_with_other_content_conflicts(&*store).await })
        },
    },
    Case {
        name: "idempotency_keys_within_one_batch",
        run: |store| Box::pin(async move { idempotency_keys_within_one_batch(&*store).await }),
    },
    Case {
        name: "all_or_nothing_batch_with_a_conflict_stores_nothing",
        run: |store| {
            Box::pin(
                async move { all_or_nothing_batch_with_a_conflict_stores_nothing(&*store).await },
            )
        },
    },
    Case {
        name: "independent_batch_stores_the_rest",
        run: |store| Box::pin(async move { independent_batch_stores_the_rest(&*store).await }),
    },
    Case {
        name: "around_window_order_and_limit",
        run: |store| Box::pin(async move { around_window_order_and_limit(&*store).await }),
    },
    Case {
        name: "patch_sets_ended_at_and_adds_tags_and_links",
        run: |store| {
            Box::pin(async move { patch_sets_ended_at_and_adds_tags_and_links(&*store).await })
        },
    },
    Case {
        name: "patched_tags_are_searchable",
        run: |store| Box::pin(async move { patched_tags_are_searchable(&*store).await }),
    },
    Case {
        name: "patch_refuses_invalid_changes",
        run: |store| Box::pin(async move { patch_refuses_invalid_changes(&*store).await }),
    },
    Case {
        name: "patch_of_an_unknown_event_is_none",
        run: |store| Box::pin(async move { patch_of_an_unknown_event_is_none(&*store).await }),
    },
    Case {
        name: "count_follows_stored_events",
        run: |store| Box::pin(async move { count_follows_stored_events(&*store).await }),
    },
    Case {
        name: "concurrent_inserts_are_stored_exactly_once",
        run: |store| Box::pin(concurrent_inserts_are_stored_exactly_once(store)),
    },
    Case {
        name: "full_batches_are_stored_whole",
        run: |store| Box::pin(full_batches_are_stored_whole(store)),
    },
    Case {
        name: "concurrent_retries_of_one_key_create_one_event",
        run: |store| Box::pin(concurrent_retries_of_one_key_create_one_event(store)),
    },
    Case {
        name: "quarter_counts_floor_at_boundaries",
        run: |store| Box::pin(async move { quarter_counts_floor_at_boundaries(&*store).await }),
    },
    Case {
        name: "quarter_counts_group_by_each_field",
        run: |store| Box::pin(async move { quarter_counts_group_by_each_field(&*store).await }),
    },
    Case {
        name: "quarter_counts_honour_the_filter",
        run: |store| Box::pin(async move { quarter_counts_honour_the_filter(&*store).await }),
    },
    Case {
        name: "bucket_counts_equal_counts_of_the_events",
        run: |store| {
            Box::pin(async move { bucket_counts_equal_counts_of_the_events(&*store).await })
        },
    },
    Case {
        name: "top_values_order_limit_and_nulls",
        run: |store| Box::pin(async move { top_values_order_limit_and_nulls(&*store).await }),
    },
    Case {
        name: "top_values_honour_the_filter",
        run: |store| Box::pin(async move { top_values_honour_the_filter(&*store).await }),
    },
    Case {
        name: "timeline_is_oldest_first_with_limit_and_filter",
        run: |store| {
            Box::pin(async move { timeline_is_oldest_first_with_limit_and_filter(&*store).await })
        },
    },
    Case {
        name: "get_many_returns_exactly_the_known_ids",
        run: |store| Box::pin(async move { get_many_returns_exactly_the_known_ids(&*store).await }),
    },
    Case {
        name: "get_many_with_more_than_500_ids",
        run: |store| Box::pin(async move { get_many_with_more_than_500_ids(&*store).await }),
    },
    Case {
        name: "stream_publishes_each_created_event_once_in_commit_order",
        run: |store| {
            Box::pin(stream_publishes_each_created_event_once_in_commit_order(
                store,
            ))
        },
    },
    Case {
        name: "stream_lagging_subscriber_catches_up",
        run: |store| Box::pin(async move { stream_lagging_subscriber_catches_up(&*store).await }),
    },
    Case {
        name: "shutdown_makes_the_store_unavailable",
        run: |store| Box::pin(async move { shutdown_makes_the_store_unavailable(&*store).await }),
    },
    Case {
        name: "tokens_are_created_listed_and_named_once",
        run: |store| {
            Box::pin(async move { tokens_are_created_listed_and_named_once(&*store).await })
        },
    },
    Case {
        name: "tokens_are_found_by_hash_whatever_their_state",
        run: |store| {
            Box::pin(async move { tokens_are_found_by_hash_whatever_their_state(&*store).await })
        },
    },
    Case {
        name: "revoking_keeps_the_first_revocation",
        run: |store| Box::pin(async move { revoking_keeps_the_first_revocation(&*store).await }),
    },
    Case {
        name: "touch_moves_last_used_forward_only",
        run: |store| Box::pin(async move { touch_moves_last_used_forward_only(&*store).await }),
    },
    Case {
        name: "delete_removes_the_event_everywhere_and_audits_it",
        run: |store| {
            Box::pin(
                async move { delete_removes_the_event_everywhere_and_audits_it(&*store).await },
            )
        },
    },
    Case {
        name: "audit_log_is_newest_first_and_pages",
        run: |store| Box::pin(async move { audit_log_is_newest_first_and_pages(&*store).await }),
    },
];

/// Runs every case of [`CASES`], each on a store of its own; see [`run_cases`].
pub async fn run_all<Open, Opening, Guard>(open: Open)
where
    Open: Fn() -> Opening,
    Opening: Future<Output = (Arc<dyn Store>, Guard)>,
    Guard: Send + 'static,
{
    run_cases(CASES, open).await;
}

/// Runs `cases` concurrently, each on a fresh empty store from `open` (the guard it returns,
/// such as a temporary directory, lives until the case and the store's shutdown are over).
/// Panics at the end with the name and message of every case that failed.
pub async fn run_cases<Open, Opening, Guard>(cases: &'static [Case], open: Open)
where
    Open: Fn() -> Opening,
    Opening: Future<Output = (Arc<dyn Store>, Guard)>,
    Guard: Send + 'static,
{
    let mut running = Vec::with_capacity(cases.len());
    for case in cases {
        let (store, guard) = open().await;
        let task = tokio::spawn(async move {
            (case.run)(Arc::clone(&store)).await;
            store
                .shutdown()
                .await
                .unwrap_or_else(|error| panic!("shutdown after the case failed: {error}"));
            drop(store);
            drop(guard);
        });
        running.push((case.name, task));
    }
    let mut failures = Vec::new();
    for (name, task) in running {
        match tokio::time::timeout(CASE_DEADLINE, task).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) if error.is_panic() => {
                failures.push(format!("{name}: {}", panic_message(error.into_panic())));
            }
            Ok(Err(error)) => failures.push(format!("{name}: {error}")),
            Err(_) => failures.push(format!("{name}: still running after {CASE_DEADLINE:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else {
        "panicked with a non-text payload".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers: building records, reading pages
// ---------------------------------------------------------------------------------------------

/// Parses a timestamp literal of the suite.
pub fn ts(text: &str) -> Timestamp {
    tfr_core::time::parse_timestamp(text)
        .unwrap_or_else(|error| panic!("bad timestamp literal {text:?}: {error}"))
}

/// An id chosen by the test, to control how ties on `occurred_at` are broken.
pub fn fixed_id(n: u64) -> EventId {
    format!("00000000-0000-7000-8000-{n:012x}")
        .parse()
        .unwrap_or_else(|error| panic!("bad fixed id {n}: {error}"))
}

/// An insert record from submitted JSON, through the real validator, as received now from
/// the token `conformance`.
pub fn record(submitted: &Value) -> InsertRecord {
    record_at(submitted, tfr_core::time::now(), "conformance")
}

/// An insert record from submitted JSON, received at `recorded_at` from `submitted_by`.
pub fn record_at(submitted: &Value, recorded_at: Timestamp, submitted_by: &str) -> InsertRecord {
    let new_event = validate_new_event(submitted, &Limits::default(), recorded_at)
        .unwrap_or_else(|error| panic!("fixture {submitted} is refused: {error}"));
    InsertRecord::new(new_event, recorded_at, submitted_by)
}

/// The smallest valid submission: a title, a system, an author and a time.
pub fn minimal(title: &str, occurred_at: Timestamp) -> Value {
    json!({
        "title": title,
        "system": "conformance",
        "author": "suite",
        "occurred_at": occurred_at.to_string(),
    })
}

/// The created event of an outcome; panics on anything else.
pub fn created(outcome: &InsertOutcome) -> &Event {
    match outcome {
        InsertOutcome::Created(event) => event,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// Inserts records (in batches of at most [`MAX_BATCH`]), asserting each is created.
pub async fn create_all(store: &dyn Store, records: Vec<InsertRecord>) -> Vec<Event> {
    let mut events = Vec::with_capacity(records.len());
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let batch: Vec<InsertRecord> = records.by_ref().take(MAX_BATCH).collect();
        let sent: Vec<Event> = batch.iter().map(|r| r.event.clone()).collect();
        let outcomes = store
            .insert(batch, BatchMode::Independent)
            .await
            .unwrap_or_else(|error| panic!("insert failed: {error}"));
        assert_eq!(outcomes.len(), sent.len(), "one outcome per record");
        for (outcome, sent) in outcomes.iter().zip(sent) {
            assert_eq!(
                created(outcome),
                &sent.without_diff(),
                "Created carries the event as stored, without its diff"
            );
            events.push(sent);
        }
    }
    events
}

/// Inserts one record, asserting it is created.
pub async fn create(store: &dyn Store, record: InsertRecord) -> Event {
    create_all(store, vec![record]).await.remove(0)
}

/// Inserts one record alone and returns its outcome.
pub async fn insert_one(store: &dyn Store, record: InsertRecord) -> InsertOutcome {
    let mut outcomes = store
        .insert(vec![record], BatchMode::AllOrNothing)
        .await
        .unwrap_or_else(|error| panic!("insert failed: {error}"));
    assert_eq!(outcomes.len(), 1, "one outcome per record");
    outcomes.remove(0)
}

/// A filter from query text, as the API builds it.
pub fn filter(query_text: &str, now: Timestamp) -> EventFilter {
    EventFilter {
        query: query::parse(query_text)
            .unwrap_or_else(|error| panic!("query {query_text:?} does not parse: {error}")),
        from: None,
        to: None,
        now,
    }
}

/// Walks every page of `filter` with the page size, order and diff choice of `page`, passing
/// each cursor through its text form as the API does. Checks that a page holds `limit` events
/// whenever another follows, and that the cursor is the last event's position.
pub async fn list_all(store: &dyn Store, filter: &EventFilter, page: PageRequest) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut request = PageRequest {
        cursor: None,
        ..page
    };
    loop {
        let got = store
            .list(filter, request)
            .await
            .unwrap_or_else(|error| panic!("list failed: {error}"));
        assert!(
            got.events.len() <= page.limit,
            "a page of limit {} holds {} events",
            page.limit,
            got.events.len()
        );
        let Some(cursor) = got.next_cursor else {
            events.extend(got.events);
            return events;
        };
        assert_eq!(
            got.events.len(),
            page.limit,
            "a page followed by another must be full"
        );
        assert_eq!(
            Some(cursor),
            got.events.last().map(Cursor::after),
            "next_cursor is the position of the page's last event"
        );
        if let Some(previous) = request.cursor {
            let position = |c: Cursor| (c.occurred_at, c.id);
            let advanced = match page.order {
                Order::NewestFirst => position(cursor) < position(previous),
                Order::OldestFirst => position(cursor) > position(previous),
            };
            assert!(
                advanced,
                "the cursor does not advance: {previous} then {cursor}"
            );
        }
        events.extend(got.events);
        let cursor: Cursor = cursor
            .to_string()
            .parse()
            .unwrap_or_else(|error| panic!("cursor {cursor} does not parse back: {error}"));
        request.cursor = Some(cursor);
    }
}

/// Every matching event, newest first, without diffs.
pub async fn search(store: &dyn Store, filter: &EventFilter) -> Vec<Event> {
    let page = PageRequest {
        limit: MAX_PAGE_SIZE,
        ..PageRequest::default()
    };
    list_all(store, filter, page).await
}

/// The titles of the events matching `query_text`, newest first.
pub async fn titles(store: &dyn Store, query_text: &str, now: Timestamp) -> Vec<String> {
    titles_of(&search(store, &filter(query_text, now)).await)
}

fn titles_of(events: &[Event]) -> Vec<String> {
    events.iter().map(|event| event.title.clone()).collect()
}

/// Sorts events into feed order: newest first by `(occurred_at, id)`.
pub fn sort_newest_first(events: &mut [Event]) {
    events.sort_by_key(|event| std::cmp::Reverse((event.occurred_at, event.id)));
}

fn in_order(events: &[Event], order: Order) -> Vec<Event> {
    let mut events = events.to_vec();
    sort_newest_first(&mut events);
    if order == Order::OldestFirst {
        events.reverse();
    }
    events
}

fn without_diff(event: &Event) -> Event {
    Event {
        diff: None,
        ..event.clone()
    }
}

/// Whether `event` comes strictly after the cursor in `order`.
fn is_after(event: &Event, cursor: Cursor, order: Order) -> bool {
    let position = (event.occurred_at, event.id);
    let cursor = (cursor.occurred_at, cursor.id);
    match order {
        Order::NewestFirst => position < cursor,
        Order::OldestFirst => position > cursor,
    }
}

/// Runs each `(query, expected titles newest first)` and reports every mismatch at once.
async fn expect_queries(store: &dyn Store, checks: &[(EventFilter, String, Vec<&str>)]) {
    let mut mismatches = Vec::new();
    for (filter, label, expected) in checks {
        let found = titles_of(&search(store, filter).await);
        if found != *expected {
            mismatches.push(format!(
                "  {label}\n    expected {expected:?}\n    found    {found:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} queries answered wrongly:\n{}",
        mismatches.len(),
        checks.len(),
        mismatches.join("\n")
    );
}

/// Shorthand for a check of query text alone, at `now`.
fn check<'a>(
    query_text: &str,
    now: Timestamp,
    expected: &[&'a str],
) -> (EventFilter, String, Vec<&'a str>) {
    (
        filter(query_text, now),
        format!("q={query_text:?}"),
        expected.to_vec(),
    )
}

// ---------------------------------------------------------------------------------------------
// Insert and get
// ---------------------------------------------------------------------------------------------

/// Every field survives insert and get exactly: microsecond timestamps given with an offset,
/// unicode, tags in submitted order, links with and without titles, attributes of every JSON
/// type, the diff (on get, and on lists only when asked).
pub async fn insert_get_round_trip(store: &dyn Store) {
    let submitted = json!({
        "occurred_at": "2026-11-02T14:05:06.123456+02:00",
        "ended_at": "2026-11-02T13:00:00.000001Z",
        "title": "Déploiement du lecteur 5.2 — 🚀 ünïcödé 日本語",
        "system": "player-api",
        "author": "Zoë O'Brien",
        "kind": "deploy",
        "environment": "production",
        "team": "vidéo",
        "source": "github",
        "version": "5.2.0-rc.1+build.7",
        "description": "# Notes\n\nMulti-line *Markdown* with `code`, quotes \" ' and a tab\t, emoji 🎉.\n",
        "tags": ["zeta", "alpha", "release:5.2", "ключ:значение"],
        "links": [
            {"url": "https://github.com/acme/player/pull/42", "title": "PR #42"},
            {"url": "https://ci.example.com/build/7"}
        ],
        "diff": "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new ✓\n",
        "attributes": {
            "build": {"number": 7, "green": true, "ratio": 0.25, "stages": ["test", "deploy"], "none": null},
            "big": 9_007_199_254_740_993_u64,
            "negative": -12,
            "text": "ü"
        },
        "idempotency_key": "round-trip-1"
    });
    let recorded_at = ts("2026-11-02T12:06:00.654321Z");
    let record = record_at(&submitted, recorded_at, "deploy-token");
    let sent = record.event.clone();
    assert_eq!(
        store.count().await.expect("count"),
        0,
        "a new store is empty"
    );

    let stored = create(store, record).await;
    assert_eq!(stored, sent);

    let got = store
        .get(sent.id)
        .await
        .expect("get")
        .expect("the event just stored is found");
    // Field by field first, so a failure names the field.
    assert_eq!(got.id, sent.id);
    assert_eq!(
        got.occurred_at.as_microsecond(),
        ts("2026-11-02T12:05:06.123456Z").as_microsecond()
    );
    assert_eq!(got.ended_at, Some(ts("2026-11-02T13:00:00.000001Z")));
    assert_eq!(got.recorded_at, recorded_at);
    assert_eq!(got.title, "Déploiement du lecteur 5.2 — 🚀 ünïcödé 日本語");
    assert_eq!(got.author, "Zoë O'Brien");
    assert_eq!(got.team.as_deref(), Some("vidéo"));
    assert_eq!(got.version.as_deref(), Some("5.2.0-rc.1+build.7"));
    assert_eq!(got.description, sent.description);
    assert_eq!(
        got.tags,
        ["zeta", "alpha", "release:5.2", "ключ:значение"],
        "tags keep their submitted order"
    );
    assert_eq!(
        got.links,
        [
            Link {
                url: "https://github.com/acme/player/pull/42".into(),
                title: Some("PR #42".into()),
            },
            Link {
                url: "https://ci.example.com/build/7".into(),
                title: None,
            },
        ]
    );
    assert!(got.has_diff);
    assert_eq!(got.diff, sent.diff, "get returns the diff");
    assert_eq!(got.attributes, sent.attributes);
    assert_eq!(
        got.attributes.as_ref().and_then(|a| a.get("big")),
        Some(&json!(9_007_199_254_740_993_u64)),
        "integers beyond 2^53 are kept exactly"
    );
    assert_eq!(got.idempotency_key.as_deref(), Some("round-trip-1"));
    assert_eq!(got.submitted_by, "deploy-token");
    assert_eq!(got, sent, "every field round-trips");

    let now = ts("2026-11-03T00:00:00Z");
    let listed = store
        .list(&EventFilter::all(now), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(
        listed.events,
        [without_diff(&sent)],
        "lists leave the diff out and keep has_diff"
    );
    assert_eq!(listed.next_cursor, None);
    let with_diffs = PageRequest {
        include_diffs: true,
        ..PageRequest::default()
    };
    let listed = store
        .list(&EventFilter::all(now), with_diffs)
        .await
        .expect("list");
    assert_eq!(
        listed.events,
        std::slice::from_ref(&sent),
        "include_diffs lists the diff"
    );

    assert_eq!(
        store.get(EventId::new()).await.expect("get"),
        None,
        "an unknown id is None"
    );
    assert_eq!(
        store
            .insert(Vec::new(), BatchMode::AllOrNothing)
            .await
            .expect("empty insert"),
        [],
        "an empty batch stores nothing"
    );
    assert_eq!(store.count().await.expect("count"), 1);
    store.ping().await.expect("ping");
}

/// An event with only the required fields comes back with its defaults and nothing invented.
pub async fn minimal_event_round_trip(store: &dyn Store) {
    let submitted = json!({"title": "Restart workers", "system": "queue", "author": "frank"});
    let recorded_at = ts("2026-11-05T10:00:00.000007Z");
    let sent = create(store, record_at(&submitted, recorded_at, "anonymous")).await;
    let got = store.get(sent.id).await.expect("get").expect("found");
    assert_eq!(got, sent);
    assert_eq!(
        got.occurred_at, recorded_at,
        "occurred_at defaults to receipt"
    );
    assert_eq!(got.kind, "change");
    assert_eq!(
        (
            &got.ended_at,
            &got.environment,
            &got.team,
            &got.source,
            &got.version,
            &got.description
        ),
        (&None, &None, &None, &None, &None, &None)
    );
    assert!(got.tags.is_empty() && got.links.is_empty());
    assert!(!got.has_diff);
    assert_eq!(got.diff, None);
    assert_eq!(got.attributes, None);
    assert_eq!(got.idempotency_key, None);
    assert_eq!(got.submitted_by, "anonymous");

    // An instant before the Unix epoch is a valid occurred_at too.
    let old = create(
        store,
        record(&minimal("Moon landing", ts("1969-07-20T20:17:40.000001Z"))),
    )
    .await;
    assert_eq!(store.get(old.id).await.expect("get"), Some(old));
}

/// An event with every field at its limit (title, names, 64 tags, 32 long links, 64 KiB of
/// description and attributes, a 1 MiB diff) is stored whole and searchable.
pub async fn events_at_the_limits_round_trip(store: &dyn Store) {
    use tfr_core::validate::{
        DEFAULT_MAX_DIFF_BYTES, MAX_ATTRIBUTES_BYTES, MAX_DESCRIPTION_BYTES,
        MAX_IDEMPOTENCY_KEY_CHARS, MAX_LINKS, MAX_NAME_CHARS, MAX_TAGS,
    };
    let title = format!("{}final", "wörd ".repeat(99));
    let tags: Vec<String> = (0..MAX_TAGS)
        .map(|n| format!("t{n:02}:{}", "v".repeat(196)))
        .collect();
    let links: Vec<Value> = (0..MAX_LINKS)
        .map(|n| {
            json!({
                "url": format!("https://example.com/{n:02}/{}", "p".repeat(2000)),
                "title": "l".repeat(MAX_NAME_CHARS),
            })
        })
        .collect();
    let tail = " needleword";
    let mut description = "lorem ".repeat((MAX_DESCRIPTION_BYTES - tail.len()) / 6);
    description.push_str(&"x".repeat(MAX_DESCRIPTION_BYTES - tail.len() - description.len()));
    description.push_str(tail);
    let mut diff = "+line\n".repeat(DEFAULT_MAX_DIFF_BYTES / 6);
    diff.push_str(&"-".repeat(DEFAULT_MAX_DIFF_BYTES - diff.len()));
    let submitted = json!({
        "title": title,
        "system": "s".repeat(MAX_NAME_CHARS),
        "author": "a".repeat(MAX_NAME_CHARS),
        "occurred_at": "2026-11-01T10:00:00Z",
        "description": description,
        "tags": tags,
        "links": links,
        "diff": diff,
        "attributes": {"blob": "b".repeat(MAX_ATTRIBUTES_BYTES - 11)},
        "idempotency_key": "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS),
    });
    let sent = create(store, record(&submitted)).await;
    assert_eq!(
        sent.description.as_ref().map(String::len),
        Some(MAX_DESCRIPTION_BYTES)
    );
    assert_eq!(
        sent.diff.as_ref().map(String::len),
        Some(DEFAULT_MAX_DIFF_BYTES)
    );
    let got = store.get(sent.id).await.expect("get").expect("found");
    assert!(got == sent, "an event at the limits round-trips");
    let now = query_now();
    for query_text in [
        "needleword".to_owned(),
        "final".to_owned(),
        format!("tag:{}", tags[MAX_TAGS - 1]),
        format!("author:{}", "a".repeat(MAX_NAME_CHARS)),
    ] {
        assert_eq!(
            titles(store, &query_text, now).await,
            std::slice::from_ref(&title),
            "{}",
            &query_text[..20]
        );
    }
    assert_eq!(
        insert_one(store, record(&submitted)).await,
        InsertOutcome::Duplicate(sent.without_diff()),
        "a 200-character idempotency key works"
    );
}

// ---------------------------------------------------------------------------------------------
// Order and cursors
// ---------------------------------------------------------------------------------------------

/// The feed is newest first by `(occurred_at, id)`: equal times are ordered by id, not by
/// insertion; one microsecond apart is apart; oldest first is the exact reverse.
pub async fn list_is_newest_first_with_ties_broken_by_id(store: &dyn Store) {
    let tie = ts("2026-11-01T10:00:00Z");
    let one_micro = SignedDuration::from_micros(1);
    let mut records = vec![
        record(&minimal("tie id 2", tie)),
        record(&minimal("tie id 3", tie)),
        record(&minimal("just before", tie - one_micro)),
        record(&minimal("tie id 1", tie)),
        record(&minimal("far future", ts("2100-01-01T00:00:00Z"))),
        record(&minimal("just after", tie + one_micro)),
        record(&minimal(
            "before the epoch",
            ts("1969-12-31T23:59:59.999999Z"),
        )),
        record(&minimal("first instant", ts("0001-01-01T00:00:00Z"))),
        record(&minimal("last instant", ts("9999-12-30T00:00:00Z"))),
    ];
    // Ids chosen so that insertion order, id order and time order all differ.
    records[0].event.id = fixed_id(2);
    records[1].event.id = fixed_id(3);
    records[3].event.id = fixed_id(1);
    create_all(store, records).await;

    let expected = [
        "last instant",
        "far future",
        "just after",
        "tie id 3",
        "tie id 2",
        "tie id 1",
        "just before",
        "before the epoch",
        "first instant",
    ];
    let now = ts("2026-11-06T00:00:00Z");
    for limit in [1, 2, 3, 50] {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let page = PageRequest {
                limit,
                order,
                ..PageRequest::default()
            };
            let found = titles_of(&list_all(store, &EventFilter::all(now), page).await);
            let mut wanted = expected.to_vec();
            if order == Order::OldestFirst {
                wanted.reverse();
            }
            assert_eq!(found, wanted, "page size {limit}, {order:?}");
        }
    }
}

/// A history of a few hundred events, inserted out of time order, with many ties on
/// `occurred_at`.
async fn walk_history(store: &dyn Store) -> Vec<Event> {
    const EVENTS: usize = 300;
    let base = ts("2026-10-01T00:00:00Z");
    let mut records = Vec::with_capacity(EVENTS);
    for step in 0..EVENTS {
        // A permutation of 0..300, so that insertion order is not time order.
        let n = (step * 7) % EVENTS;
        let seconds = i64::try_from(n / 4).expect("small");
        let mut submitted = json!({
            "title": format!("event {n}"),
            "system": format!("system-{}", n % 5),
            "author": "walker",
            "occurred_at": (base + SignedDuration::from_secs(seconds)).to_string(),
        });
        if n.is_multiple_of(3) {
            submitted["tags"] = json!(["third"]);
        }
        if n.is_multiple_of(5) {
            submitted["diff"] = json!(format!("--- a\n+++ b\n+line {n}\n"));
        }
        records.push(record(&submitted));
    }
    create_all(store, records).await
}

/// Walking the whole feed page by page (sizes 1, 7, 50; both orders; with and without diffs)
/// yields every event exactly once, in order.
pub async fn cursor_walk_visits_every_event_once(store: &dyn Store) {
    let events = walk_history(store).await;
    let now = ts("2026-11-06T00:00:00Z");
    for limit in [1, 7, 50] {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            for include_diffs in [false, true] {
                let page = PageRequest {
                    limit,
                    cursor: None,
                    order,
                    include_diffs,
                };
                let walked = list_all(store, &EventFilter::all(now), page).await;
                let mut expected = in_order(&events, order);
                if !include_diffs {
                    expected = expected.iter().map(without_diff).collect();
                }
                let ids: BTreeSet<EventId> = walked.iter().map(|event| event.id).collect();
                assert_eq!(
                    ids.len(),
                    walked.len(),
                    "an event was listed twice (page size {limit}, {order:?})"
                );
                assert_eq!(
                    walked.len(),
                    events.len(),
                    "events missing (page size {limit}, {order:?}, diffs {include_diffs})"
                );
                assert!(
                    walked == expected,
                    "wrong order or content (page size {limit}, {order:?}, diffs {include_diffs})"
                );
            }
        }
    }
}

/// The cursor composes with a query: pages of a filtered feed hold exactly its events.
pub async fn cursor_walk_with_a_query(store: &dyn Store) {
    let events = walk_history(store).await;
    let now = ts("2026-11-06T00:00:00Z");
    let third: Vec<Event> = events
        .iter()
        .filter(|event| event.tags.iter().any(|tag| tag == "third"))
        .map(without_diff)
        .collect();
    assert_eq!(third.len(), 100);
    let system_two: Vec<Event> = events
        .iter()
        .filter(|event| event.system == "system-2")
        .map(without_diff)
        .collect();
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let page = PageRequest {
            limit: 7,
            order,
            ..PageRequest::default()
        };
        let walked = list_all(store, &filter("tag:third", now), page).await;
        assert!(walked == in_order(&third, order), "tag:third, {order:?}");
        let walked = list_all(store, &filter("system:system-2 -tag:third", now), page).await;
        let expected: Vec<Event> = system_two
            .iter()
            .filter(|event| event.tags.is_empty())
            .cloned()
            .collect();
        assert!(
            walked == in_order(&expected, order),
            "system:system-2 -tag:third, {order:?}"
        );
    }
}

/// Events inserted between two page loads cause neither gaps nor duplicates: the walk
/// resumes strictly after the cursor, and new events on the far side of it (including one at
/// the cursor's very time with a smaller id) are found, those already passed are not.
pub async fn cursor_survives_inserts_between_pages(store: &dyn Store) {
    let base = ts("2026-11-01T00:00:00Z");
    let minutes = |n: i64| base + SignedDuration::from_mins(n);
    let records = (0..50)
        .map(|n| record(&minimal(&format!("initial {n}"), minutes(n))))
        .collect();
    let mut all = create_all(store, records).await;
    let now = ts("2026-11-06T00:00:00Z");

    for order in [Order::NewestFirst, Order::OldestFirst] {
        let page = PageRequest {
            limit: 10,
            order,
            ..PageRequest::default()
        };
        let first = store
            .list(&EventFilter::all(now), page)
            .await
            .expect("list");
        assert_eq!(
            first.events,
            in_order(&all, order)[..10]
                .iter()
                .map(without_diff)
                .collect::<Vec<_>>()
        );
        let cursor = first.next_cursor.expect("more pages follow");
        let label = format!("{order:?}");

        // New events everywhere: far on both sides, near the cursor, and tied with it.
        let mut tied_small = record(&minimal(
            &format!("{label} tied, small id"),
            cursor.occurred_at,
        ));
        tied_small.event.id = fixed_id(match order {
            Order::NewestFirst => 1,
            Order::OldestFirst => 2,
        });
        let mut tied_large = record(&minimal(
            &format!("{label} tied, large id"),
            cursor.occurred_at,
        ));
        tied_large.event.id = format!("ffffffff-ffff-7fff-bfff-ffffffffff{:02x}", order as u8)
            .parse()
            .expect("a valid id");
        let added = create_all(
            store,
            vec![
                record(&minimal(&format!("{label} newest"), minutes(1000))),
                record(&minimal(&format!("{label} oldest"), minutes(-1000))),
                record(&minimal(&format!("{label} middle"), minutes(25))),
                tied_small,
                tied_large,
            ],
        )
        .await;
        all.extend(added.iter().cloned());

        let mut rest = Vec::new();
        let mut request = PageRequest {
            cursor: Some(cursor.to_string().parse().expect("cursor text")),
            ..page
        };
        loop {
            let got = store
                .list(&EventFilter::all(now), request)
                .await
                .expect("list");
            rest.extend(got.events);
            match got.next_cursor {
                Some(next) => request.cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<Event> = in_order(&all, order)
            .iter()
            .filter(|event| is_after(event, cursor, order))
            .map(without_diff)
            .collect();
        assert_eq!(
            titles_of(&rest),
            titles_of(&expected),
            "{label}: the rest of the walk after inserts"
        );
        let mut seen: Vec<String> = titles_of(&first.events);
        seen.extend(titles_of(&rest));
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{label}: an event was listed twice"
        );
        for event in &added {
            let listed = seen.contains(&event.title);
            assert_eq!(
                listed,
                is_after(event, cursor, order),
                "{label}: {:?} listed = {listed}",
                event.title
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The query language
// ---------------------------------------------------------------------------------------------

const A: &str = "Deploy player 5.2 to production";
const B: &str = "Raise connection pool size";
const C: &str = "Add index on orders";
const D: &str = "Enable dark mode flag";
const E: &str = "Mise à jour du noyau — déploiement";
const F: &str = "A/B test new player UI";
const G: &str = "Rotate TLS certificates";
const H: &str = "Restart workers";
/// Everything, newest first.
const ALL: [&str; 8] = [H, G, F, E, D, C, B, A];

/// The instant the query fixture is searched at.
fn query_now() -> Timestamp {
    ts("2026-11-06T00:00:00Z")
}

/// Eight events with distinct times (A oldest, H newest) and varied fields; returns them by
/// title.
async fn query_fixture(store: &dyn Store) -> BTreeMap<&'static str, Event> {
    let submitted = [
        json!({
            "title": A, "occurred_at": "2026-11-01T08:00:00Z",
            "system": "player-api", "author": "alice", "kind": "deploy",
            "environment": "production", "team": "video", "source": "github",
            "version": "5.2.0",
            "description": "Rolls out the new UI for the player. Fixes buffering.",
            "tags": ["release:5.2", "canary"],
            "links": [{"url": "https://github.com/acme/player/pull/1"}],
            "diff": "--- a/player.conf\n+++ b/player.conf\n-zebrafish=1\n+zebrafish=2\n",
        }),
        json!({
            "title": B, "occurred_at": "2026-11-01T09:00:00Z",
            "system": "payments-db", "author": "bob", "kind": "config",
            "environment": "staging", "team": "payments", "source": "ansible",
            "description": "Tuning after incident INC-42",
            "tags": ["db", "pool"],
        }),
        json!({
            "title": C, "occurred_at": "2026-11-01T10:00:00Z",
            "system": "payments-db", "author": "carol", "kind": "schema",
            "environment": "production", "team": "payments", "source": "cli",
            "version": "m0042",
            "tags": ["db", "migration:m0042"],
        }),
        json!({
            "title": D, "occurred_at": "2026-11-02T09:00:00Z",
            "system": "web-frontend", "author": "deploy-bot", "kind": "feature_flag",
            "team": "web", "source": "launchdarkly",
            "tags": ["flag:dark_mode"],
        }),
        json!({
            "title": E, "occurred_at": "2026-11-02T15:30:00Z",
            "system": "web-frontend", "author": "Zoë", "kind": "os_update",
            "environment": "production", "source": "ansible",
        }),
        json!({
            "title": F, "occurred_at": "2026-11-03T12:00:00Z",
            "ended_at": "2026-11-10T12:00:00Z",
            "system": "player-web", "author": "dave", "kind": "ab_test",
            "environment": "production", "team": "video", "source": "optimizely",
            "tags": ["experiment:ui-v2", "canary"],
        }),
        json!({
            "title": G, "occurred_at": "2026-11-04T07:00:00Z",
            "system": "edge proxy", "author": "erin", "kind": "infra",
            "environment": "prod-eu", "source": "cli", "version": "2026.11",
            "tags": ["team:core"],
        }),
        json!({
            "title": H, "occurred_at": "2026-11-05T23:59:59.999999Z",
            "system": "queue", "author": "frank",
        }),
    ];
    let events = create_all(store, submitted.iter().map(record).collect()).await;
    [A, B, C, D, E, F, G, H].into_iter().zip(events).collect()
}

/// Words, prefixes and phrases search title, description, system, author, tags and version,
/// case-insensitively and in any script; diffs are not searched.
pub async fn query_full_text(store: &dyn Store) {
    query_fixture(store).await;
    let now = query_now();
    expect_queries(
        store,
        &[
            check("", now, &ALL),
            check("player", now, &[F, A]),
            check("PLAYER", now, &[F, A]),
            check("play*", now, &[F, A]),
            check("deploy*", now, &[D, A]),
            check("\"new ui\"", now, &[A]),
            check("\"new pl\"*", now, &[F]),
            check("new ui", now, &[F, A]),
            // One field each.
            check("certificates", now, &[G]),
            check("buffering", now, &[A]),
            check("proxy", now, &[G]),
            check("frank", now, &[H]),
            check("migration", now, &[C]),
            check("experiment", now, &[F]),
            check("2026.11", now, &[G]),
            check("5.2.0", now, &[A]),
            check("5.2", now, &[A]),
            check("db", now, &[C, B]),
            check("INC-42", now, &[B]),
            // Every word counts: no stop words, no stemming (`roll*` is how to widen).
            check("to", now, &[A]),
            check("after", now, &[B]),
            check("rolls", now, &[A]),
            check("roll", now, &[]),
            check("roll*", now, &[A]),
            // Words of the full-text engine's own syntax are plain words.
            check("AND", now, &[]),
            check("OR", now, &[]),
            check("NOT", now, &[]),
            check("NEAR", now, &[]),
            // Unicode.
            check("déploiement", now, &[E]),
            check("Zoë", now, &[E]),
            // Diffs are shown, not searched.
            check("zebrafish", now, &[]),
            check("nothing-like-this", now, &[]),
        ],
    )
    .await;
}

/// Every `field:` term, exact, any-of, prefix and quoted.
pub async fn query_fields(store: &dyn Store) {
    let events = query_fixture(store).await;
    let now = query_now();
    let a = events[A].id.to_string();
    let c = events[C].id.to_string();
    expect_queries(
        store,
        &[
            check("system:payments-db", now, &[C, B]),
            check("system:payments", now, &[]),
            check("system:payments*", now, &[C, B]),
            check("system:player-api,queue", now, &[H, A]),
            check("system:player*,edge*", now, &[G, F, A]),
            check("system:\"edge proxy\"", now, &[G]),
            check("author:alice", now, &[A]),
            check("author:Zoë", now, &[E]),
            check("author:Zo*", now, &[E]),
            check("author:Zoë*", now, &[E]),
            check("system:\"a\\\"b\"", now, &[]),
            check("kind:deploy", now, &[A]),
            check("kind:change", now, &[H]),
            check("kind:config,schema", now, &[C, B]),
            check("kind:feature*", now, &[D]),
            check("env:production", now, &[F, E, C, A]),
            check("environment:staging", now, &[B]),
            check("env:prod*", now, &[G, F, E, C, A]),
            check("team:payments", now, &[C, B]),
            check("team:video,web", now, &[F, D, A]),
            check("source:ansible", now, &[E, B]),
            check("source:cli", now, &[G, C]),
            check("source:launch*", now, &[D]),
            check("tag:canary", now, &[F, A]),
            check("tag:db", now, &[C, B]),
            check("tag:release:5.2", now, &[A]),
            check("tag:\"team:core\"", now, &[G]),
            check("tag:release*", now, &[A]),
            check("tag:experiment:*", now, &[F]),
            check("tag:flag:dark_mode", now, &[D]),
            check("tag:canary,pool", now, &[F, B, A]),
            check("tag:can", now, &[]),
            check("version:5.2.0", now, &[A]),
            check("version:5.2", now, &[]),
            check("version:5*", now, &[A]),
            check("version:m0042,2026.11", now, &[G, C]),
            check(&format!("id:{a}"), now, &[A]),
            check(&format!("id:{}", a.to_uppercase()), now, &[A]),
            check(&format!("id:{a},{c}"), now, &[C, A]),
            check(&format!("id:{}*", &a[..32]), now, &[A]),
            check("id:not-a-uuid", now, &[]),
        ],
    )
    .await;
}

/// `-term` negates every kind of term; a negated field keeps the events without that field.
pub async fn query_negation(store: &dyn Store) {
    let events = query_fixture(store).await;
    let now = query_now();
    let a = events[A].id.to_string();
    let all_but = |excluded: &[&str]| -> Vec<&'static str> {
        ALL.into_iter()
            .filter(|title| !excluded.contains(title))
            .collect()
    };
    expect_queries(
        store,
        &[
            check("-player", now, &all_but(&[F, A])),
            check("-play*", now, &all_but(&[F, A])),
            check("-\"new ui\"", now, &all_but(&[A])),
            check("-zebrafish", now, &ALL),
            check("-system:payments-db", now, &all_but(&[C, B])),
            check("-system:payments*", now, &all_but(&[C, B])),
            check("-author:alice", now, &all_but(&[A])),
            check("-kind:deploy,ab_test", now, &all_but(&[F, A])),
            check("-env:production", now, &[H, G, D, B]),
            check("-env:prod*", now, &[H, D, B]),
            check("-team:video", now, &all_but(&[F, A])),
            check("-source:cli", now, &all_but(&[G, C])),
            check("-tag:canary", now, &all_but(&[F, A])),
            check("-tag:db,canary", now, &[H, G, E, D]),
            check("-tag:release*", now, &all_but(&[A])),
            check("-version:5.2.0", now, &all_but(&[A])),
            check("-version:m*", now, &all_but(&[C])),
            check(&format!("-id:{a}"), now, &all_but(&[A])),
            check("-after:2026-11-03", now, &[E, D, C, B, A]),
            check("-before:2026-11-02", now, &[H, G, F, E, D]),
            check("-since:1d", now, &all_but(&[H])),
        ],
    )
    .await;
}

/// `after:` is inclusive, `before:` exclusive, both take dates and offsets; `since:` counts
/// back from the filter's `now`, never from the wall clock.
pub async fn query_time_terms(store: &dyn Store) {
    query_fixture(store).await;
    let now = query_now();
    let earlier = ts("2026-11-02T12:00:00Z");
    expect_queries(
        store,
        &[
            check("after:2026-11-03", now, &[H, G, F]),
            check("after:2026-11-03T12:00:00Z", now, &[H, G, F]),
            check("after:2026-11-03T12:00:00.000001Z", now, &[H, G]),
            check("after:2026-11-02T10:00:00+02:00", now, &[H, G, F, E, D]),
            check("before:2026-11-03T12:00:00Z", now, &[E, D, C, B, A]),
            check(
                "before:2026-11-03T12:00:00.000001Z",
                now,
                &[F, E, D, C, B, A],
            ),
            check("after:2026-11-02 before:2026-11-03", now, &[E, D]),
            check("since:1m", now, &[H]),
            check("since:3h", now, &[H]),
            check("since:1d", now, &[H]),
            check("since:2d", now, &[H, G]),
            check("since:1w", now, &ALL),
            check("since:1d", earlier, &[H, G, F, E, D]),
            check("since:1h", earlier, &[H, G, F, E]),
            // Exactly 28 hours before `earlier` is A's instant: since is inclusive.
            check("since:28h", earlier, &ALL),
        ],
    )
    .await;
}

/// The filter's `from` is inclusive and `to` exclusive, and they combine with the query.
pub async fn query_from_to_bounds(store: &dyn Store) {
    query_fixture(store).await;
    let now = query_now();
    let bounded = |query_text: &str, from: Option<&str>, to: Option<&str>| EventFilter {
        from: from.map(ts),
        to: to.map(ts),
        ..filter(query_text, now)
    };
    let d_time = "2026-11-02T09:00:00Z";
    let g_time = "2026-11-04T07:00:00Z";
    let labelled =
        |query_text: &str, from: Option<&str>, to: Option<&str>, expected: &[&'static str]| {
            (
                bounded(query_text, from, to),
                format!("q={query_text:?} from={from:?} to={to:?}"),
                expected.to_vec(),
            )
        };
    expect_queries(
        store,
        &[
            labelled("", Some(d_time), Some(g_time), &[F, E, D]),
            labelled("", Some(g_time), None, &[H, G]),
            labelled("", None, Some("2026-11-01T09:00:00Z"), &[A]),
            labelled("", None, Some("2026-11-01T09:00:00.000001Z"), &[B, A]),
            labelled("", Some(d_time), Some(d_time), &[]),
            labelled(
                "system:payments-db",
                Some("2026-11-01T09:00:00Z"),
                None,
                &[C, B],
            ),
            labelled("-env:production", Some(d_time), Some(g_time), &[D]),
            labelled("after:2026-11-01T09:30:00Z", None, Some(d_time), &[C]),
        ],
    )
    .await;
}

/// Terms of every kind combine: all must match.
pub async fn query_combinations(store: &dyn Store) {
    query_fixture(store).await;
    let now = query_now();
    expect_queries(
        store,
        &[
            check("player -kind:ab_test", now, &[A]),
            check("db env:production", now, &[C]),
            check("tag:canary env:production -author:dave", now, &[A]),
            check("system:web-frontend,queue -env:production", now, &[H, D]),
            check("canary after:2026-11-02", now, &[F]),
            check("\"new ui\" version:5*", now, &[A]),
            check("payments* tag:db -\"connection pool\"", now, &[C]),
            check(
                "-player -payments -tag:canary before:2026-11-05",
                now,
                &[G, E, D],
            ),
            check("player player", now, &[F, A]),
            check("player -player", now, &[]),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Idempotency and batches
// ---------------------------------------------------------------------------------------------

fn keyed(title: &str, key: &str) -> Value {
    json!({
        "title": title,
        "system": "deployer",
        "author": "ci",
        "occurred_at": "2026-11-01T10:00:00Z",
        "diff": "--- a\n+++ b\n+x\n",
        "idempotency_key": key,
    })
}

/// A retry (same key, same content) returns the original event, diff included, and stores
/// nothing new, even when the client let `occurred_at` default and retries later.
pub async fn idempotent_retry_returns_the_original(store: &dyn Store) {
    let submitted = keyed("Deploy api 1.0", "key-1");
    let original = create(store, record(&submitted)).await;

    let retry = record_at(&submitted, ts("2026-11-05T00:00:00Z"), "other-token");
    assert_ne!(retry.event.id, original.id);
    assert_eq!(
        insert_one(store, retry).await,
        InsertOutcome::Duplicate(original.without_diff())
    );
    assert_eq!(store.count().await.expect("count"), 1);

    // No occurred_at: it defaults to receipt, yet the retry is the same content.
    let untimed =
        json!({"title": "Untimed", "system": "s", "author": "a", "idempotency_key": "key-2"});
    let first = create(
        store,
        record_at(&untimed, ts("2026-11-02T10:00:00Z"), "conformance"),
    )
    .await;
    let again = record_at(&untimed, ts("2026-11-02T10:00:30Z"), "conformance");
    assert_eq!(
        insert_one(store, again).await,
        InsertOutcome::Duplicate(first.without_diff())
    );
    assert_eq!(store.count().await.expect("count"), 2);
    let all = search(store, &EventFilter::all(query_now())).await;
    assert_eq!(all.len(), 2, "retries are not listed");
}

/// An exported event sent back (what `tfr import` does with an export) is recognised as the
/// stored event: its `occurred_at` was filled in by the server and it may carry tags, links and
/// `ended_at` added later, yet it is a duplicate, not a conflict.
pub async fn reimported_export_is_a_duplicate(store: &dyn Store) {
    let untimed = json!({"title": "Untimed", "system": "s", "author": "a",
                         "tags": ["b", "a"], "idempotency_key": "export-1"});
    let stored = create(
        store,
        record_at(&untimed, ts("2026-11-02T10:00:00Z"), "conformance"),
    )
    .await;
    let patch = EventPatch {
        ended_at: Some(ts("2026-11-02T11:00:00Z")),
        add_tags: vec!["later".into()],
        add_links: Vec::new(),
    };
    let patched = store
        .patch(stored.id, patch)
        .await
        .expect("patch")
        .expect("the event exists");
    // The export form: every field as stored, read-only ones removed (as `tfr import` does).
    let mut exported = serde_json::to_value(&patched).expect("serialize");
    let object = exported.as_object_mut().expect("an object");
    for read_only in ["id", "recorded_at", "submitted_by", "has_diff"] {
        object.remove(read_only);
    }
    let reimport = record_at(&exported, ts("2026-11-20T00:00:00Z"), "importer");
    assert_eq!(
        insert_one(store, reimport).await,
        InsertOutcome::Duplicate(patched.without_diff())
    );
    // The original submission retried after the patch is still a duplicate too.
    assert_eq!(
        insert_one(
            store,
            record_at(&untimed, ts("2026-11-03T00:00:00Z"), "conformance")
        )
        .await,
        InsertOutcome::Duplicate(patched.without_diff())
    );
    // But an export whose content was changed is a conflict.
    exported["title"] = json!("Edited");
    assert_eq!(
        insert_one(store, record(&exported)).await,
        InsertOutcome::Conflict {
            idempotency_key: "export-1".into(),
            existing: patched.id,
        }
    );
    assert_eq!(store.count().await.expect("count"), 1);
}

/// An event stored without a key, exported and imported back into the same store, comes with
/// the key `import:<its id>`: the store recognises it as that event.
pub async fn reimported_keyless_event_is_a_duplicate(store: &dyn Store) {
    let keyless = json!({"title": "No key", "system": "s", "author": "a",
                         "occurred_at": "2026-11-02T10:00:00Z"});
    let stored = create(store, record(&keyless)).await;
    let mut exported = serde_json::to_value(&stored).expect("serialize");
    let object = exported.as_object_mut().expect("an object");
    for read_only in ["id", "recorded_at", "submitted_by", "has_diff"] {
        object.remove(read_only);
    }
    exported["idempotency_key"] = json!(format!("import:{}", stored.id));
    assert_eq!(
        insert_one(store, record(&exported)).await,
        InsertOutcome::Duplicate(stored.without_diff())
    );
    exported["title"] = json!("Edited");
    assert_eq!(
        insert_one(store, record(&exported)).await,
        InsertOutcome::Conflict {
            idempotency_key: format!("import:{}", stored.id),
            existing: stored.id,
        }
    );
    // An import key naming an event this store does not have is an ordinary new key.
    let foreign = json!({"title": "From elsewhere", "system": "s", "author": "a",
                         "idempotency_key": format!("import:{}", EventId::new())});
    assert!(matches!(
        insert_one(store, record(&foreign)).await,
        InsertOutcome::Created(_)
    ));
    assert!(matches!(
        insert_one(store, record(&foreign)).await,
        InsertOutcome::Duplicate(_)
    ));
    assert_eq!(store.count().await.expect("count"), 2);
}

/// The same key with other content is a conflict naming the existing event; nothing is stored.
pub async fn idempotency_key_with_other_content_conflicts(store: &dyn Store) {
    let original = create(store, record(&keyed("Deploy api 1.0", "key-1"))).await;
    for changed in [
        keyed("Deploy api 1.1", "key-1"),
        json!({"title": "Deploy api 1.0", "system": "deployer", "author": "ci",
               "occurred_at": "2026-11-01T10:00:00Z", "idempotency_key": "key-1"}),
    ] {
        assert_eq!(
            insert_one(store, record(&changed)).await,
            InsertOutcome::Conflict {
                idempotency_key: "key-1".into(),
                existing: original.id,
            },
            "{changed}"
        );
    }
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(
        store.get(original.id).await.expect("get"),
        Some(original.clone())
    );
    // The key still answers retries of the original content.
    assert_eq!(
        insert_one(store, record(&keyed("Deploy api 1.0", "key-1"))).await,
        InsertOutcome::Duplicate(original.without_diff())
    );
}

/// Keys repeat within one batch: the first item is created, a same-content repeat is its
/// duplicate, an other-content repeat conflicts with it.
pub async fn idempotency_keys_within_one_batch(store: &dyn Store) {
    let batch = vec![
        record(&keyed("first", "batch-key")),
        record(&keyed("first", "batch-key")),
        record(&keyed("other", "other-key")),
        record(&keyed("changed", "batch-key")),
        record(&minimal("no key", ts("2026-11-01T11:00:00Z"))),
    ];
    let outcomes = store
        .insert(batch, BatchMode::Independent)
        .await
        .expect("insert");
    assert_eq!(outcomes.len(), 5);
    let first = created(&outcomes[0]).clone();
    assert_eq!(outcomes[1], InsertOutcome::Duplicate(first.without_diff()));
    let other = created(&outcomes[2]).clone();
    assert_eq!(
        outcomes[3],
        InsertOutcome::Conflict {
            idempotency_key: "batch-key".into(),
            existing: first.id,
        }
    );
    let no_key = created(&outcomes[4]).clone();
    assert_eq!(store.count().await.expect("count"), 3);
    for event in [first, other, no_key] {
        let stored = store.get(event.id).await.expect("get");
        assert_eq!(stored.map(|e| e.without_diff()), Some(event.without_diff()));
    }

    // In an all-or-nothing batch, a repeat with other content rolls the whole batch back.
    let batch = vec![
        record(&keyed("third", "aon-key")),
        record(&keyed("third, changed", "aon-key")),
    ];
    let ids: Vec<EventId> = batch.iter().map(|r| r.event.id).collect();
    let outcomes = store
        .insert(batch, BatchMode::AllOrNothing)
        .await
        .expect("insert");
    assert!(
        matches!(&outcomes[1], InsertOutcome::Conflict { idempotency_key, .. } if idempotency_key == "aon-key"),
        "{outcomes:?}"
    );
    for id in ids {
        assert_eq!(store.get(id).await.expect("get"), None);
    }
    assert_eq!(store.count().await.expect("count"), 3);
    // The key was not taken: it can be used now.
    created(&insert_one(store, record(&keyed("third", "aon-key"))).await);
}

/// An all-or-nothing batch with one conflict stores none of its items, and leaves their keys
/// free; a duplicate alone does not fail such a batch.
pub async fn all_or_nothing_batch_with_a_conflict_stores_nothing(store: &dyn Store) {
    let original = create(store, record(&keyed("Deploy api 1.0", "key-1"))).await;
    let batch = vec![
        record(&keyed("new with key", "key-new")),
        record(&minimal("new without key", ts("2026-11-01T12:00:00Z"))),
        record(&keyed("Deploy api 1.1", "key-1")),
    ];
    let ids: Vec<EventId> = batch.iter().map(|r| r.event.id).collect();
    let outcomes = store
        .insert(batch, BatchMode::AllOrNothing)
        .await
        .expect("insert");
    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        outcomes[2],
        InsertOutcome::Conflict {
            idempotency_key: "key-1".into(),
            existing: original.id,
        }
    );
    for id in &ids {
        assert_eq!(store.get(*id).await.expect("get"), None, "nothing stored");
    }
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(
        titles(store, "", query_now()).await,
        ["Deploy api 1.0"],
        "nothing listed"
    );
    created(&insert_one(store, record(&keyed("new with key", "key-new"))).await);

    let batch = vec![
        record(&keyed("Deploy api 1.0", "key-1")),
        record(&minimal("stored", ts("2026-11-01T13:00:00Z"))),
    ];
    let outcomes = store
        .insert(batch, BatchMode::AllOrNothing)
        .await
        .expect("insert");
    assert_eq!(
        outcomes[0],
        InsertOutcome::Duplicate(original.without_diff())
    );
    let stored = created(&outcomes[1]).clone();
    assert_eq!(store.get(stored.id).await.expect("get"), Some(stored));
    assert_eq!(store.count().await.expect("count"), 3);
}

/// An independent batch stores every item that does not conflict.
pub async fn independent_batch_stores_the_rest(store: &dyn Store) {
    let original = create(store, record(&keyed("Deploy api 1.0", "key-1"))).await;
    let batch = vec![
        record(&keyed("new with key", "key-new")),
        record(&keyed("Deploy api 1.1", "key-1")),
        record(&minimal("new without key", ts("2026-11-01T12:00:00Z"))),
        record(&keyed("Deploy api 1.0", "key-1")),
    ];
    let outcomes = store
        .insert(batch, BatchMode::Independent)
        .await
        .expect("insert");
    assert_eq!(outcomes.len(), 4);
    let with_key = created(&outcomes[0]).clone();
    assert_eq!(
        outcomes[1],
        InsertOutcome::Conflict {
            idempotency_key: "key-1".into(),
            existing: original.id,
        }
    );
    let without_key = created(&outcomes[2]).clone();
    assert_eq!(
        outcomes[3],
        InsertOutcome::Duplicate(original.without_diff())
    );
    for event in [with_key, without_key] {
        let stored = store.get(event.id).await.expect("get");
        assert_eq!(stored.map(|e| e.without_diff()), Some(event.without_diff()));
    }
    assert_eq!(store.count().await.expect("count"), 3);
}

// ---------------------------------------------------------------------------------------------
// Around
// ---------------------------------------------------------------------------------------------

/// `around` keeps `[time - before, time + after]` (both ends inclusive), orders by distance
/// to `time`, applies the query and the limit.
pub async fn around_window_order_and_limit(store: &dyn Store) {
    let time = ts("2026-11-10T12:00:00Z");
    let at = |offset: SignedDuration, title: &str, system: &str| {
        let mut submitted = minimal(title, time + offset);
        submitted["system"] = json!(system);
        record(&submitted)
    };
    let mins = SignedDuration::from_mins;
    let micro = SignedDuration::from_micros(1);
    create_all(
        store,
        vec![
            at(mins(-180), "-3h", "app"),
            at(mins(-120) - micro, "-2h-1us", "app"),
            at(mins(-120), "-2h", "app"),
            at(mins(-90), "-90m", "app"),
            at(mins(-10), "-10m", "db"),
            at(mins(0), "0", "app"),
            at(mins(5), "+5m", "db"),
            at(mins(30), "+30m", "app"),
            at(mins(30) + micro, "+30m+1us", "app"),
            at(mins(31), "+31m", "app"),
            at(mins(24 * 60), "+1d", "app"),
        ],
    )
    .await;
    let now = ts("2026-11-20T00:00:00Z");
    let around = |before: i64, after: i64, limit: usize| AroundRequest {
        time,
        before: mins(before),
        after: mins(after),
        limit,
    };
    let run = |query_text: &str, request: AroundRequest| {
        let filter = filter(query_text, now);
        async move {
            titles_of(
                &store
                    .around(&filter, &request)
                    .await
                    .unwrap_or_else(|error| panic!("around failed: {error}")),
            )
        }
    };
    assert_eq!(
        run("", around(120, 30, 50)).await,
        ["0", "+5m", "-10m", "+30m", "-90m", "-2h"]
    );
    assert_eq!(run("", around(120, 30, 3)).await, ["0", "+5m", "-10m"]);
    assert_eq!(run("", around(120, 30, 1)).await, ["0"]);
    assert_eq!(run("", around(0, 0, 50)).await, ["0"]);
    assert_eq!(run("system:db", around(120, 30, 50)).await, ["+5m", "-10m"]);
    assert_eq!(run("-system:db", around(120, 30, 2)).await, ["0", "+30m"]);
    assert_eq!(
        run("", around(180, 0, 4)).await,
        ["0", "-10m", "-90m", "-2h"],
        "a one-sided window"
    );
    let bounded = EventFilter {
        from: Some(time),
        ..filter("", now)
    };
    let found = store
        .around(&bounded, &around(120, 30, 50))
        .await
        .expect("around");
    assert_eq!(
        titles_of(&found),
        ["0", "+5m", "+30m"],
        "the filter's from applies"
    );
    assert!(found.iter().all(|event| event.diff.is_none()));

    // Equal distances on both sides: both are there, after every closer event.
    create(store, at(mins(10), "+10m", "app")).await;
    let found = run("", around(120, 30, 50)).await;
    assert_eq!(found[..2], ["0", "+5m"]);
    let tied: BTreeSet<&str> = found[2..4].iter().map(String::as_str).collect();
    assert_eq!(tied, BTreeSet::from(["-10m", "+10m"]));
    assert_eq!(found[4..], ["+30m", "-90m", "-2h"]);
}

// ---------------------------------------------------------------------------------------------
// Patch
// ---------------------------------------------------------------------------------------------

fn experiment() -> Value {
    json!({
        "title": "Start A/B test checkout-v2",
        "system": "checkout",
        "author": "alice",
        "kind": "ab_test",
        "occurred_at": "2026-11-01T10:00:00Z",
        "description": "Half the traffic sees the new checkout.",
        "tags": ["ab:checkout-v2"],
        "links": [{"url": "https://exp.example.com/1", "title": "Experiment"}],
        "diff": "--- a/flags\n+++ b/flags\n+checkout_v2=50%\n",
        "idempotency_key": "exp-1",
    })
}

/// A patch sets `ended_at` and adds tags and links, never twice; nothing else changes, and a
/// repeated patch changes nothing more.
pub async fn patch_sets_ended_at_and_adds_tags_and_links(store: &dyn Store) {
    let original = create(store, record(&experiment())).await;
    let neighbour = create(
        store,
        record(&minimal("neighbour", ts("2026-11-01T11:00:00Z"))),
    )
    .await;
    let patch = EventPatch {
        ended_at: Some(ts("2026-11-08T10:00:00.000001Z")),
        add_tags: vec![
            "ab:checkout-v2".into(),
            "result:winner".into(),
            "owner:zed".into(),
        ],
        add_links: vec![
            Link {
                url: "https://exp.example.com/1".into(),
                title: Some("Same URL, other title".into()),
            },
            Link {
                url: "https://dash.example.com/2".into(),
                title: None,
            },
        ],
    };
    let mut expected = original.clone();
    expected.ended_at = Some(ts("2026-11-08T10:00:00.000001Z"));
    expected.tags = vec![
        "ab:checkout-v2".into(),
        "result:winner".into(),
        "owner:zed".into(),
    ];
    expected.links.push(Link {
        url: "https://dash.example.com/2".into(),
        title: None,
    });

    let patched = store
        .patch(original.id, patch.clone())
        .await
        .expect("patch")
        .expect("the event exists");
    assert_eq!(patched, expected);
    assert_eq!(
        store.get(original.id).await.expect("get"),
        Some(expected.clone())
    );
    let again = store
        .patch(original.id, patch)
        .await
        .expect("patch")
        .expect("the event exists");
    assert_eq!(again, expected, "a repeated patch adds nothing twice");
    assert_eq!(
        store.get(original.id).await.expect("get"),
        Some(expected.clone())
    );

    // Only ended_at: tags and links stay.
    let later = ts("2026-11-09T00:00:00Z");
    let patched = store
        .patch(
            original.id,
            EventPatch {
                ended_at: Some(later),
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    expected.ended_at = Some(later);
    assert_eq!(patched, expected);

    // ended_at equal to occurred_at is allowed.
    let patched = store
        .patch(
            original.id,
            EventPatch {
                ended_at: Some(original.occurred_at),
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    expected.ended_at = Some(original.occurred_at);
    assert_eq!(patched, expected);

    assert_eq!(
        store.count().await.expect("count"),
        2,
        "a patch adds no event"
    );
    assert_eq!(
        store.get(neighbour.id).await.expect("get"),
        Some(neighbour),
        "other events are untouched"
    );
    assert_eq!(
        titles(store, "", query_now()).await,
        ["neighbour", "Start A/B test checkout-v2"],
        "a patch does not move an event in the feed"
    );
    assert_eq!(
        insert_one(store, record(&experiment())).await,
        InsertOutcome::Duplicate(expected.without_diff()),
        "a retry of the original submission returns the event as patched"
    );
}

/// Tags added by a patch are found by `tag:` and by full text; the old ones still are.
pub async fn patched_tags_are_searchable(store: &dyn Store) {
    let original = create(store, record(&experiment())).await;
    let now = query_now();
    let title = "Start A/B test checkout-v2";
    for query_text in ["zed", "winner", "tag:owner:zed", "tag:result*"] {
        assert!(
            titles(store, query_text, now).await.is_empty(),
            "{query_text} before the patch"
        );
    }
    store
        .patch(
            original.id,
            EventPatch {
                add_tags: vec!["result:winner".into(), "owner:zed".into()],
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    for query_text in [
        "zed",
        "winner",
        "tag:owner:zed",
        "tag:result*",
        "tag:ab:checkout-v2",
        "checkout",
        "zed tag:ab:checkout-v2",
    ] {
        assert_eq!(
            titles(store, query_text, now).await,
            [title],
            "{query_text}"
        );
    }
    for query_text in ["-zed", "-tag:owner:zed", "-tag:ab:checkout-v2"] {
        assert!(
            titles(store, query_text, now).await.is_empty(),
            "{query_text}"
        );
    }
}

/// `ended_at` before `occurred_at`, or more tags than allowed, is refused as invalid and
/// leaves the event as it was.
pub async fn patch_refuses_invalid_changes(store: &dyn Store) {
    let original = create(store, record(&experiment())).await;
    let just_before = original.occurred_at - SignedDuration::from_micros(1);
    let refused = store
        .patch(
            original.id,
            EventPatch {
                ended_at: Some(just_before),
                add_tags: vec!["not-added".into()],
                ..EventPatch::default()
            },
        )
        .await;
    match refused {
        Err(StoreError::Invalid(error)) => assert_eq!(error.field, "ended_at"),
        other => panic!("expected StoreError::Invalid for ended_at, got {other:?}"),
    }
    assert_eq!(
        store.get(original.id).await.expect("get"),
        Some(original.clone())
    );

    let too_many = EventPatch {
        add_tags: (0..tfr_core::validate::MAX_TAGS)
            .map(|n| format!("tag-{n}"))
            .collect(),
        ..EventPatch::default()
    };
    match store.patch(original.id, too_many).await {
        Err(StoreError::Invalid(error)) => assert_eq!(error.field, "tags"),
        other => panic!("expected StoreError::Invalid for tags, got {other:?}"),
    }
    assert_eq!(store.get(original.id).await.expect("get"), Some(original));
    assert!(titles(store, "tag:tag-0", query_now()).await.is_empty());
}

/// Patching an id that is not stored answers `None` and stores nothing.
pub async fn patch_of_an_unknown_event_is_none(store: &dyn Store) {
    let patch = EventPatch {
        ended_at: Some(ts("2026-11-08T10:00:00Z")),
        add_tags: vec!["x".into()],
        ..EventPatch::default()
    };
    assert_eq!(
        store.patch(EventId::new(), patch).await.expect("patch"),
        None
    );
    assert_eq!(store.count().await.expect("count"), 0);
}

// ---------------------------------------------------------------------------------------------
// Count, concurrency, shutdown
// ---------------------------------------------------------------------------------------------

/// `count` follows the events stored: not duplicates, conflicts, rolled-back batches, patches.
pub async fn count_follows_stored_events(store: &dyn Store) {
    let count = || async { store.count().await.expect("count") };
    assert_eq!(count().await, 0);
    let at = ts("2026-11-01T10:00:00Z");
    let three: Vec<InsertRecord> = (0..3)
        .map(|n| record(&minimal(&format!("e{n}"), at)))
        .collect();
    let events = create_all(store, three).await;
    assert_eq!(count().await, 3);
    create(store, record(&keyed("keyed", "k"))).await;
    assert_eq!(count().await, 4);
    insert_one(store, record(&keyed("keyed", "k"))).await;
    assert_eq!(count().await, 4, "a duplicate is not counted");
    insert_one(store, record(&keyed("changed", "k"))).await;
    assert_eq!(count().await, 4, "a conflict is not counted");
    store
        .insert(
            vec![
                record(&minimal("rolled back 1", at)),
                record(&minimal("rolled back 2", at)),
                record(&keyed("changed", "k")),
            ],
            BatchMode::AllOrNothing,
        )
        .await
        .expect("insert");
    assert_eq!(count().await, 4, "a rolled-back batch is not counted");
    store
        .insert(
            vec![
                record(&minimal("kept 1", at)),
                record(&keyed("changed", "k")),
                record(&minimal("kept 2", at)),
            ],
            BatchMode::Independent,
        )
        .await
        .expect("insert");
    assert_eq!(count().await, 6);
    store
        .patch(
            events[0].id,
            EventPatch {
                add_tags: vec!["t".into()],
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch");
    store
        .insert(Vec::new(), BatchMode::Independent)
        .await
        .expect("empty insert");
    assert_eq!(count().await, 6);
    assert_eq!(
        search(store, &EventFilter::all(query_now())).await.len(),
        6,
        "count agrees with the feed"
    );
}

/// Many tasks inserting at once (32 × 50 single inserts, then the same again as retries):
/// every event is stored exactly once, and every retry is a duplicate.
pub async fn concurrent_inserts_are_stored_exactly_once(store: Arc<dyn Store>) {
    const TASKS: usize = 32;
    const EACH: usize = 50;
    let base = ts("2026-11-01T00:00:00Z");
    let submission = move |task: usize, n: usize| {
        let seconds = i64::try_from(n).expect("small");
        json!({
            "title": format!("task {task} event {n}"),
            "system": format!("system-{task}"),
            "author": "load",
            "occurred_at": (base + SignedDuration::from_secs(seconds)).to_string(),
            "idempotency_key": format!("task-{task}-{n}"),
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut events = Vec::with_capacity(EACH);
            for n in 0..EACH {
                let outcome = insert_one(&*store, record(&submission(task, n))).await;
                events.push(created(&outcome).clone());
            }
            events
        });
    }
    let mut stored: Vec<Event> = Vec::with_capacity(TASKS * EACH);
    while let Some(result) = tasks.join_next().await {
        stored.extend(result.unwrap_or_else(|error| panic!("an inserting task failed: {error}")));
    }
    assert_eq!(stored.len(), TASKS * EACH);
    assert_eq!(
        store.count().await.expect("count"),
        u64::try_from(TASKS * EACH).expect("small")
    );
    let mut listed = search(&*store, &EventFilter::all(query_now())).await;
    let mut expected: Vec<Event> = stored.iter().map(without_diff).collect();
    listed.sort_by_key(|event| event.id);
    expected.sort_by_key(|event| event.id);
    assert!(
        listed == expected,
        "the feed holds exactly the stored events"
    );

    let by_key: BTreeMap<String, Event> = stored
        .into_iter()
        .map(|event| (event.idempotency_key.clone().expect("keyed"), event))
        .collect();
    let by_key = Arc::new(by_key);
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let by_key = Arc::clone(&by_key);
        tasks.spawn(async move {
            for n in 0..EACH {
                let outcome = insert_one(&*store, record(&submission(task, n))).await;
                let original = &by_key[&format!("task-{task}-{n}")];
                assert_eq!(outcome, InsertOutcome::Duplicate(original.without_diff()));
            }
            Vec::new()
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap_or_else(|error| panic!("a retrying task failed: {error}"));
    }
    assert_eq!(
        store.count().await.expect("count"),
        u64::try_from(TASKS * EACH).expect("small")
    );
}

/// A batch of [`MAX_BATCH`] items is stored whole, all-or-nothing or not, and several such
/// batches at once (more than one group commit holds) are all stored.
pub async fn full_batches_are_stored_whole(store: Arc<dyn Store>) {
    const BATCHES: usize = 6;
    let base = ts("2026-11-01T00:00:00Z");
    let batch = move |label: String| -> Vec<InsertRecord> {
        (0..MAX_BATCH)
            .map(|n| {
                let seconds = i64::try_from(n).expect("small");
                record(&minimal(
                    &format!("{label} {n}"),
                    base + SignedDuration::from_secs(seconds),
                ))
            })
            .collect()
    };
    let outcomes = store
        .insert(batch("all-or-nothing".into()), BatchMode::AllOrNothing)
        .await
        .expect("insert");
    assert_eq!(outcomes.len(), MAX_BATCH);
    let mut stored: Vec<Event> = outcomes.iter().map(|o| created(o).clone()).collect();

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..BATCHES {
        let store = Arc::clone(&store);
        let records = batch(format!("batch {task}"));
        tasks.spawn(async move {
            let mode = if task % 2 == 0 {
                BatchMode::Independent
            } else {
                BatchMode::AllOrNothing
            };
            store.insert(records, mode).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        let outcomes = result
            .unwrap_or_else(|error| panic!("a task failed: {error}"))
            .unwrap_or_else(|error| panic!("a full batch failed: {error}"));
        assert_eq!(outcomes.len(), MAX_BATCH);
        stored.extend(outcomes.iter().map(|o| created(o).clone()));
    }
    let total = (BATCHES + 1) * MAX_BATCH;
    assert_eq!(
        store.count().await.expect("count"),
        u64::try_from(total).expect("small")
    );
    let listed = search(&*store, &EventFilter::all(query_now())).await;
    assert!(
        listed == in_order(&stored, Order::NewestFirst),
        "the feed holds exactly the stored events, in order"
    );
}

/// The same key sent by many tasks at once creates one event: the others get it back as a
/// duplicate, or a conflict naming it when their content differs.
pub async fn concurrent_retries_of_one_key_create_one_event(store: Arc<dyn Store>) {
    const TASKS: usize = 24;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let title = if task % 2 == 0 {
                "version a"
            } else {
                "version b"
            };
            insert_one(&*store, record(&keyed(title, "shared-key"))).await
        });
    }
    let mut outcomes = Vec::with_capacity(TASKS);
    while let Some(result) = tasks.join_next().await {
        outcomes.push(result.unwrap_or_else(|error| panic!("an inserting task failed: {error}")));
    }
    let winners: Vec<&Event> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            InsertOutcome::Created(event) => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one is created: {outcomes:?}");
    let winner = winners[0].clone();
    let (mut duplicates, mut conflicts) = (0, 0);
    for outcome in &outcomes {
        match outcome {
            InsertOutcome::Created(_) => {}
            InsertOutcome::Duplicate(event) => {
                assert_eq!(event, &winner);
                duplicates += 1;
            }
            InsertOutcome::Conflict {
                idempotency_key,
                existing,
            } => {
                assert_eq!(
                    (idempotency_key.as_str(), *existing),
                    ("shared-key", winner.id)
                );
                conflicts += 1;
            }
        }
    }
    assert_eq!(
        (duplicates, conflicts),
        (TASKS / 2 - 1, TASKS / 2),
        "same content duplicates, other content conflicts"
    );
    assert_eq!(store.count().await.expect("count"), 1);
    let stored = store.get(winner.id).await.expect("get");
    assert_eq!(stored.map(|e| e.without_diff()), Some(winner));
}

fn assert_unavailable<T: std::fmt::Debug>(call: &str, result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{call} after shutdown: expected StoreError::Unavailable, got {other:?}"),
    }
}

/// After `shutdown`, every call fails as unavailable (a second shutdown is harmless), and
/// what was stored before is kept.
pub async fn shutdown_makes_the_store_unavailable(store: &dyn Store) {
    let event = create(store, record(&experiment())).await;
    store.ping().await.expect("ping before shutdown");
    store.shutdown().await.expect("shutdown");
    let now = query_now();
    assert_unavailable(
        "insert",
        store
            .insert(
                vec![record(&minimal("late", ts("2026-11-01T10:00:00Z")))],
                BatchMode::Independent,
            )
            .await,
    );
    assert_unavailable(
        "an empty insert",
        store.insert(Vec::new(), BatchMode::Independent).await,
    );
    assert_unavailable("get", store.get(event.id).await);
    assert_unavailable(
        "list",
        store
            .list(&EventFilter::all(now), PageRequest::default())
            .await,
    );
    assert_unavailable(
        "around",
        store
            .around(
                &EventFilter::all(now),
                &AroundRequest {
                    time: event.occurred_at,
                    before: SignedDuration::from_hours(1),
                    after: SignedDuration::from_hours(1),
                    limit: 10,
                },
            )
            .await,
    );
    assert_unavailable(
        "patch",
        store
            .patch(
                event.id,
                EventPatch {
                    add_tags: vec!["late".into()],
                    ..EventPatch::default()
                },
            )
            .await,
    );
    assert_unavailable("count", store.count().await);
    assert_unavailable("ping", store.ping().await);
    let all = EventFilter::all(now);
    assert_unavailable("quarter_counts", store.quarter_counts(&all, None).await);
    assert_unavailable(
        "top_values",
        store.top_values(&all, GroupField::System, 10).await,
    );
    assert_unavailable("timeline", store.timeline(&all, 10).await);
    assert_unavailable("get_many", store.get_many(&[event.id]).await);
    assert_unavailable(
        "stored_since",
        store.stored_since(StreamPosition(0), 10).await,
    );
    assert_unavailable("stream_head", store.stream_head().await);
    assert_unavailable(
        "delete_event",
        store
            .delete_event(Deletion {
                id: event.id,
                actor: "admin".into(),
                at: now,
                reason: None,
            })
            .await,
    );
    assert_unavailable("audit_log", store.audit_log(None, 10).await);
    assert_unavailable(
        "create_token",
        store
            .create_token(new_token("late", Scope::Read, None))
            .await,
    );
    assert_unavailable("list_tokens", store.list_tokens().await);
    assert_unavailable("revoke_token", store.revoke_token("late", now).await);
    assert_unavailable(
        "token_by_hash",
        store.token_by_hash(&hash_token("tfr_late")).await,
    );
    assert_unavailable("touch_token", store.touch_token("late", now).await);
    store
        .shutdown()
        .await
        .expect("a second shutdown is harmless");
}

// ---------------------------------------------------------------------------------------------
// Statistics: quarter counts, top values, timeline
// ---------------------------------------------------------------------------------------------

/// The quarter-hour `2026-11-01T10:00:00Z` falls in.
const Q_2026_11_01_10H: i64 = 1_992_808;

/// Fourteen events spread over quarter boundaries, before 1970 and far apart, with values
/// whose order differs between byte order and natural-language collations (`B` < `a`,
/// `z` < `é`), and without team, environment or source (or with them empty, which is the
/// same). Inserted out of time order; `s6` and `s7` share a time and `s7` has the smaller id.
async fn stats_fixture(store: &dyn Store) -> BTreeMap<String, Event> {
    #[allow(clippy::type_complexity)]
    let rows: [(&str, &str, &str, &str, &str, &str, &str, &str, &[&str]); 14] = [
        // title, occurred_at, system, author, kind, environment, team, source, tags
        (
            "s14",
            "9999-12-30T00:00:00Z",
            "far",
            "frank",
            "",
            "",
            "",
            "",
            &[],
        ),
        (
            "s1",
            "2026-11-01T10:00:00Z",
            "api",
            "alice",
            "deploy",
            "production",
            "video",
            "github",
            &["release"],
        ),
        (
            "s8",
            "1969-12-31T23:59:59.999999Z",
            "é",
            "dave",
            "",
            "",
            "",
            "",
            &[],
        ),
        (
            "s2",
            "2026-11-01T10:14:59.999999Z",
            "api",
            "alice",
            "deploy",
            "production",
            "video",
            "github",
            &[],
        ),
        (
            "s3",
            "2026-11-01T10:15:00Z",
            "api",
            "bob",
            "config",
            "staging",
            "core",
            "cli",
            &[],
        ),
        (
            "s13",
            "0001-01-01T00:00:00Z",
            "legacy",
            "frank",
            "",
            "",
            "",
            "",
            &[],
        ),
        (
            "s4",
            "2026-11-01T10:29:59.999999Z",
            "B",
            "bob",
            "config",
            "",
            "core",
            "",
            &[],
        ),
        (
            "s6",
            "2026-11-01T11:07:30Z",
            "a",
            "carol",
            "flag",
            "production",
            "",
            "",
            &[],
        ),
        (
            "s5",
            "2026-11-01T11:00:00Z",
            "B",
            "carol",
            "",
            "",
            "",
            "webhook",
            &["release"],
        ),
        (
            "s7",
            "2026-11-01T11:07:30Z",
            "a",
            "dave",
            "flag",
            "production",
            "video",
            "cli",
            &[],
        ),
        (
            "s9",
            "1969-12-31T23:45:00Z",
            "é",
            "erin",
            "deploy",
            "staging",
            "core",
            "github",
            &[],
        ),
        (
            "s10",
            "1969-12-31T23:44:59.999999Z",
            "z",
            "erin",
            "deploy",
            "",
            "",
            "",
            &[],
        ),
        (
            "s11",
            "1970-01-01T00:00:00Z",
            "z",
            "frank",
            "infra",
            "",
            "ops",
            "cli",
            &[],
        ),
        (
            "s12",
            "1969-07-20T20:17:40Z",
            "db",
            "frank",
            "infra",
            "",
            "",
            "",
            &[],
        ),
    ];
    let records = rows
        .iter()
        .map(
            |(title, at, system, author, kind, environment, team, source, tags)| {
                let mut submitted = json!({
                    "title": title, "occurred_at": at, "system": system, "author": author,
                    "environment": environment, "team": team, "source": source, "tags": tags,
                    "diff": format!("--- a\n+++ b\n+{title}\n"),
                });
                if !kind.is_empty() {
                    submitted["kind"] = json!(kind);
                }
                let mut record = record(&submitted);
                match *title {
                    "s6" => record.event.id = fixed_id(9),
                    "s7" => record.event.id = fixed_id(3),
                    _ => {}
                }
                record
            },
        )
        .collect();
    let events = create_all(store, records).await;
    let team = |title: &str| {
        events
            .iter()
            .find(|event| event.title == title)
            .and_then(|event| event.team.clone())
    };
    assert_eq!(
        (team("s4"), team("s5")),
        (Some("core".into()), None),
        "an empty team is no team"
    );
    events
        .into_iter()
        .map(|event| (event.title.clone(), event))
        .collect()
}

/// Quarter counts in a canonical order (the contract gives none).
fn sorted_quarters(mut counts: Vec<QuarterCount>) -> Vec<QuarterCount> {
    counts.sort_by(|a, b| (a.quarter, &a.group).cmp(&(b.quarter, &b.group)));
    counts
}

/// The quarter counts of `events`, computed here from the definition.
fn tally_quarters<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    group: Option<GroupField>,
) -> Vec<QuarterCount> {
    let mut counts: BTreeMap<(i64, Option<String>), u64> = BTreeMap::new();
    for event in events {
        let value = group.and_then(|field| field.value_of(event).map(str::to_owned));
        *counts
            .entry((quarter_of(event.occurred_at), value))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((quarter, group), count)| QuarterCount {
            quarter,
            group,
            count,
        })
        .collect()
}

/// The top values of `events`, computed here from the definition: count descending, then
/// value in byte order, events without a value left out.
fn tally_values<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    field: GroupField,
) -> Vec<ValueCount> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for event in events {
        if let Some(value) = field.value_of(event) {
            *counts.entry(value).or_default() += 1;
        }
    }
    let mut values: Vec<ValueCount> = counts
        .into_iter()
        .map(|(value, count)| ValueCount {
            value: value.to_owned(),
            count,
        })
        .collect();
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    values
}

fn quarter(quarter: i64, group: Option<&str>, count: u64) -> QuarterCount {
    QuarterCount {
        quarter,
        group: group.map(str::to_owned),
        count,
    }
}

fn value_count(value: &str, count: u64) -> ValueCount {
    ValueCount {
        value: value.to_owned(),
        count,
    }
}

async fn quarter_counts_of(
    store: &dyn Store,
    filter: &EventFilter,
    group: Option<GroupField>,
) -> Vec<QuarterCount> {
    sorted_quarters(
        store
            .quarter_counts(filter, group)
            .await
            .unwrap_or_else(|error| panic!("quarter_counts failed: {error}")),
    )
}

async fn top_values_of(
    store: &dyn Store,
    filter: &EventFilter,
    field: GroupField,
    limit: usize,
) -> Vec<ValueCount> {
    store
        .top_values(filter, field, limit)
        .await
        .unwrap_or_else(|error| panic!("top_values failed: {error}"))
}

async fn timeline_of(store: &dyn Store, filter: &EventFilter, limit: usize) -> Vec<TimelineEntry> {
    store
        .timeline(filter, limit)
        .await
        .unwrap_or_else(|error| panic!("timeline failed: {error}"))
}

/// The instant the statistics filters count `since:` from.
fn stats_now() -> Timestamp {
    ts("2026-11-01T11:30:00Z")
}

/// Filters over [`stats_fixture`] and the titles each selects (in no order): query terms,
/// `from`/`to` on and inside quarter boundaries, relative time, nothing at all.
fn stats_filters() -> Vec<(String, EventFilter, Vec<&'static str>)> {
    let now = stats_now();
    let ranged = |from: Option<&str>, to: Option<&str>| EventFilter {
        from: from.map(ts),
        to: to.map(ts),
        ..EventFilter::all(now)
    };
    let mut filters: Vec<(String, EventFilter, Vec<&'static str>)> = [
        ("system:api", vec!["s1", "s2", "s3"]),
        ("release", vec!["s1", "s5"]),
        (
            "-env:production",
            vec![
                "s3", "s4", "s5", "s8", "s9", "s10", "s11", "s12", "s13", "s14",
            ],
        ),
        ("team:video,core kind:deploy", vec!["s1", "s2", "s9"]),
        ("since:1h", vec!["s5", "s6", "s7", "s14"]),
        ("no-event-has-this-word", vec![]),
    ]
    .into_iter()
    .map(|(text, titles)| (format!("q={text:?}"), filter(text, now), titles))
    .collect();
    filters.extend([
        (
            "from=10:15 to=11:07:30 (to excluded)".to_owned(),
            ranged(Some("2026-11-01T10:15:00Z"), Some("2026-11-01T11:07:30Z")),
            vec!["s3", "s4", "s5"],
        ),
        (
            "from=10:05 (inside a quarter)".to_owned(),
            ranged(Some("2026-11-01T10:05:00Z"), None),
            vec!["s2", "s3", "s4", "s5", "s6", "s7", "s14"],
        ),
        (
            "to=1970".to_owned(),
            ranged(None, Some("1970-01-01T00:00:00Z")),
            vec!["s8", "s9", "s10", "s12", "s13"],
        ),
        (
            "from=1969-12-31T23:45 to=1970 plus 1µs".to_owned(),
            ranged(
                Some("1969-12-31T23:45:00Z"),
                Some("1970-01-01T00:00:00.000001Z"),
            ),
            vec!["s8", "s9", "s11"],
        ),
        (
            "system:api with from and to".to_owned(),
            EventFilter {
                from: Some(ts("2026-11-01T10:14:59.999999Z")),
                to: Some(ts("2026-11-01T10:15:00.000001Z")),
                ..filter("system:api", now)
            },
            vec!["s2", "s3"],
        ),
    ]);
    filters
}

/// The events a filter of [`stats_filters`] selects, checked against the feed first, so the
/// aggregates below are held to the same selection as `list`.
async fn selected<'a>(
    store: &dyn Store,
    fixture: &'a BTreeMap<String, Event>,
    label: &str,
    filter: &EventFilter,
    titles: &[&str],
) -> Vec<&'a Event> {
    let mut listed = titles_of(&search(store, filter).await);
    listed.sort();
    let mut wanted: Vec<String> = titles.iter().map(|title| (*title).to_owned()).collect();
    wanted.sort();
    assert_eq!(listed, wanted, "{label}: the feed selects these events");
    titles.iter().map(|title| &fixture[*title]).collect()
}

/// Quarters are floored, not truncated: `xx:14:59.999999` and `xx:15:00` fall in adjacent
/// quarters, and instants before 1970 fall in negative quarters (`23:44:59.999999` on the last
/// day of 1969 is quarter -2, not -1). Without grouping every group is `None`; the counts add
/// up to the events.
pub async fn quarter_counts_floor_at_boundaries(store: &dyn Store) {
    let now = query_now();
    let all = EventFilter::all(now);
    assert_eq!(
        quarter_counts_of(store, &all, None).await,
        [],
        "an empty store counts nothing"
    );
    let fixture = stats_fixture(store).await;
    let q = Q_2026_11_01_10H;
    assert_eq!(quarter_of(ts("2026-11-01T10:00:00Z")), q);
    let expected = vec![
        quarter(-69_039_552, None, 1), // s13, 0001-01-01
        quarter(-15_759, None, 1),     // s12, 1969-07-20T20:17:40
        quarter(-2, None, 1),          // s10, 1969-12-31T23:44:59.999999
        quarter(-1, None, 2),          // s9 at 23:45:00, s8 at 23:59:59.999999
        quarter(0, None, 1),           // s11, the epoch
        quarter(q, None, 2),           // s1 at 10:00, s2 at 10:14:59.999999
        quarter(q + 1, None, 2),       // s3 at 10:15, s4 at 10:29:59.999999
        quarter(q + 4, None, 3),       // s5 at 11:00, s6 and s7 at 11:07:30
        quarter(281_557_920, None, 1), // s14, 9999-12-30
    ];
    assert_eq!(quarter_counts_of(store, &all, None).await, expected);
    assert_eq!(expected, tally_quarters(fixture.values(), None));
    let total: u64 = expected.iter().map(|count| count.count).sum();
    assert_eq!(total, 14, "the counts add up to the events");
}

/// Grouping by each field: one count per (quarter, value), and events without a value (no
/// team, environment or source, or an empty one) in the group `None`.
pub async fn quarter_counts_group_by_each_field(store: &dyn Store) {
    let fixture = stats_fixture(store).await;
    let all = EventFilter::all(query_now());
    let q = Q_2026_11_01_10H;
    assert_eq!(
        quarter_counts_of(store, &all, Some(GroupField::Team)).await,
        [
            quarter(-69_039_552, None, 1),
            quarter(-15_759, None, 1),
            quarter(-2, None, 1),
            quarter(-1, None, 1),
            quarter(-1, Some("core"), 1),
            quarter(0, Some("ops"), 1),
            quarter(q, Some("video"), 2),
            quarter(q + 1, Some("core"), 2),
            quarter(q + 4, None, 2),
            quarter(q + 4, Some("video"), 1),
            quarter(281_557_920, None, 1),
        ],
        "by team"
    );
    assert_eq!(
        quarter_counts_of(store, &all, Some(GroupField::Kind)).await,
        [
            quarter(-69_039_552, Some("change"), 1),
            quarter(-15_759, Some("infra"), 1),
            quarter(-2, Some("deploy"), 1),
            quarter(-1, Some("change"), 1),
            quarter(-1, Some("deploy"), 1),
            quarter(0, Some("infra"), 1),
            quarter(q, Some("deploy"), 2),
            quarter(q + 1, Some("config"), 2),
            quarter(q + 4, Some("change"), 1),
            quarter(q + 4, Some("flag"), 2),
            quarter(281_557_920, Some("change"), 1),
        ],
        "by kind"
    );
    for field in GroupField::ALL {
        let counts = quarter_counts_of(store, &all, Some(field)).await;
        assert_eq!(
            counts,
            tally_quarters(fixture.values(), Some(field)),
            "by {field}"
        );
        let total: u64 = counts.iter().map(|count| count.count).sum();
        assert_eq!(total, 14, "by {field}: the counts add up to the events");
    }
    let by_source = quarter_counts_of(store, &all, Some(GroupField::Source)).await;
    assert_eq!(
        by_source
            .iter()
            .filter(|count| count.group.is_none())
            .map(|count| count.count)
            .sum::<u64>(),
        7,
        "seven events have no source (one of them an empty one)"
    );
}

/// Quarter counts hold exactly the events the same filter lists: query terms, `from`
/// (inclusive) and `to` (exclusive) on and inside quarter boundaries, relative time; with and
/// without grouping.
pub async fn quarter_counts_honour_the_filter(store: &dyn Store) {
    let fixture = stats_fixture(store).await;
    for (label, filter, titles) in stats_filters() {
        let events = selected(store, &fixture, &label, &filter, &titles).await;
        for group in std::iter::once(None).chain(GroupField::ALL.map(Some)) {
            let counts = quarter_counts_of(store, &filter, group).await;
            assert_eq!(
                counts,
                tally_quarters(events.iter().copied(), group),
                "{label}, group {group:?}"
            );
            let total: u64 = counts.iter().map(|count| count.count).sum();
            assert_eq!(
                total,
                titles.len() as u64,
                "{label}, group {group:?}: total"
            );
        }
    }
    // A range starting inside a quarter counts only the part of it inside the range.
    let from_inside = EventFilter {
        from: Some(ts("2026-11-01T10:05:00Z")),
        to: Some(ts("2026-11-01T10:15:00Z")),
        ..EventFilter::all(stats_now())
    };
    assert_eq!(
        quarter_counts_of(store, &from_inside, None).await,
        [quarter(Q_2026_11_01_10H, None, 1)]
    );
}

/// Events at awkward times for [`bucket_counts_equal_counts_of_the_events`]: inside
/// quarters, on both sides of midnight UTC and of local midnights at +05:30 (18:30 UTC) and in
/// Paris, before 1970, across the 2026 DST changes, one a month over two years, and one
/// before every bucket set starts.
fn bucket_fixture() -> Vec<Value> {
    let kinds = ["deploy", "config", "flag", "incident"];
    let mut times: Vec<String> = [
        "1960-02-29T12:00:00Z",
        "1969-06-15T12:00:00Z",
        "1969-12-31T18:29:59.999999Z",
        "1969-12-31T18:30:00Z",
        "1969-12-31T23:52:00Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:07:30Z",
        "2026-03-28T22:59:59.999999Z",
        "2026-03-28T23:00:00Z",
        "2026-03-28T23:59:59.999999Z",
        "2026-03-29T00:00:00Z",
        "2026-03-29T00:07:13Z",
        "2026-03-29T00:44:59.999999Z",
        "2026-03-29T01:30:00Z",
        "2026-03-29T21:59:59.999999Z",
        "2026-03-29T22:00:00Z",
        "2026-04-01T18:29:59.999999Z",
        "2026-04-01T18:30:00Z",
        "2026-10-24T22:30:00Z",
        "2026-10-25T00:59:59.999999Z",
        "2026-10-25T01:30:00Z",
        "2026-10-25T23:00:00Z",
        "2026-12-20T08:15:00Z",
    ]
    .map(str::to_owned)
    .to_vec();
    for month in 0..24_i64 {
        times.push(format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            2025 + month / 12,
            month % 12 + 1,
            1 + (month * 7) % 28,
            (month * 5) % 24,
            (month * 13) % 60,
            (month * 17) % 60,
            month * 31_337,
        ));
    }
    times
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let mut event = json!({"title": format!("b{i}"), "system": "api",
                "author": "alice", "kind": kinds[i % kinds.len()], "occurred_at": at});
            if i % 3 != 0 {
                event["team"] = json!(["video", "core"][i % 2]);
            }
            event
        })
        .collect()
}

/// `bucket_counts` computed here from its definition, event by event: the events the filter
/// selects (its query term, `kind:<kind>` when `kind` is given) in `[from, to)` go to the last bucket starting at or
/// before them. Every start is on a quarter-hour, as those of real histograms are, so counting
/// by event and by quarter agree.
fn tally_buckets<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    filter: &EventFilter,
    kind: Option<&str>,
    group: Option<GroupField>,
    starts: &[Timestamp],
) -> Vec<BucketCount> {
    let quarter_micros = tfr_core::stats::QUARTER_MICROS;
    for start in starts {
        assert_eq!(
            start.as_microsecond().rem_euclid(quarter_micros),
            0,
            "{start} is on a quarter-hour"
        );
    }
    let mut counts: BTreeMap<(usize, Option<String>), u64> = BTreeMap::new();
    for event in events {
        let at = event.occurred_at;
        if filter.from.is_some_and(|from| at < from)
            || filter.to.is_some_and(|to| at >= to)
            || kind.is_some_and(|kind| event.kind != kind)
        {
            continue;
        }
        let Some(bucket) = starts.partition_point(|start| *start <= at).checked_sub(1) else {
            continue;
        };
        let value = group.and_then(|field| field.value_of(event).map(str::to_owned));
        *counts.entry((bucket, value)).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((bucket, group), count)| BucketCount {
            bucket,
            group,
            count,
        })
        .collect()
}

/// Histogram buckets (`bucket_counts`) hold exactly the events in them, counted here from the
/// events: UTC days, days at +05:30 and in Paris across both DST changes, weeks, months,
/// hours, ranges starting and ending inside quarters, no range at all, a query term; with and
/// without grouping; and again after deletions. Each result also equals the definition
/// (`bucket_counts_from_quarters` of `quarter_counts`), which stores that read coarser
/// rollups must keep to.
pub async fn bucket_counts_equal_counts_of_the_events(store: &dyn Store) {
    use jiff::tz::{Offset, TimeZone};
    use tfr_core::stats::{Interval, bucket_starts};

    let now = ts("2027-01-01T00:00:00Z");
    let empty = store
        .bucket_counts(&EventFilter::all(now), None, &[ts("2026-01-01T00:00:00Z")])
        .await
        .unwrap_or_else(|error| panic!("bucket_counts failed: {error}"));
    assert_eq!(empty, [], "an empty store counts nothing");
    let mut events = create_all(store, bucket_fixture().iter().map(record).collect()).await;

    let utc = TimeZone::UTC;
    let india = TimeZone::fixed(
        Offset::from_seconds(5 * 3600 + 30 * 60).unwrap_or_else(|error| panic!("{error}")),
    );
    let paris = TimeZone::get("Europe/Paris")
        .unwrap_or_else(|error| panic!("the time zone database has no Europe/Paris: {error}"));
    let range = |from: Option<&str>, to: Option<&str>| EventFilter {
        from: from.map(ts),
        to: to.map(ts),
        ..EventFilter::all(now)
    };
    let any: Option<&str> = None;
    let deploys = Some("deploy");
    // (label, filter, the kind its query selects, interval, zone, buckets from, buckets to)
    #[allow(clippy::type_complexity)]
    let sets: Vec<(
        &str,
        EventFilter,
        Option<&str>,
        Interval,
        &TimeZone,
        &str,
        &str,
    )> = vec![
        (
            "UTC days, from and to inside quarters",
            range(Some("2025-01-03T10:07:30Z"), Some("2026-12-20T17:52:10Z")),
            any,
            Interval::Day,
            &utc,
            "2025-01-03T10:07:30Z",
            "2026-12-20T17:52:10Z",
        ),
        (
            "UTC days around 1970",
            range(Some("1969-06-01T00:00:00Z"), Some("1970-02-01T00:00:00Z")),
            any,
            Interval::Day,
            &utc,
            "1969-06-01T00:00:00Z",
            "1970-02-01T00:00:00Z",
        ),
        (
            "+05:30 days",
            range(Some("2025-01-03T10:07:30Z"), Some("2026-12-20T17:52:10Z")),
            any,
            Interval::Day,
            &india,
            "2025-01-03T10:07:30Z",
            "2026-12-20T17:52:10Z",
        ),
        (
            "+05:30 days around 1970",
            range(Some("1969-12-01T00:00:00Z"), Some("1970-01-10T00:00:00Z")),
            any,
            Interval::Day,
            &india,
            "1969-12-01T00:00:00Z",
            "1970-01-10T00:00:00Z",
        ),
        (
            "Europe/Paris days across both DST changes",
            range(Some("2026-03-01T00:00:00Z"), Some("2026-11-15T00:00:00Z")),
            any,
            Interval::Day,
            &paris,
            "2026-03-01T00:00:00Z",
            "2026-11-15T00:00:00Z",
        ),
        (
            "Europe/Paris weeks since 1969",
            range(Some("1969-06-01T00:00:00Z"), Some("2027-01-01T00:00:00Z")),
            any,
            Interval::Week,
            &paris,
            "1969-06-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "+05:30 months since 1969",
            range(Some("1969-01-01T00:00:00Z"), Some("2027-01-01T00:00:00Z")),
            any,
            Interval::Month,
            &india,
            "1969-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "UTC months, no range: the first bucket is after some events, the last is open",
            range(None, None),
            any,
            Interval::Month,
            &utc,
            "1969-12-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        ),
        (
            "Europe/Paris hours over the spring DST change",
            range(Some("2026-03-28T20:07:00Z"), Some("2026-03-30T03:00:00Z")),
            any,
            Interval::Hour,
            &paris,
            "2026-03-28T20:07:00Z",
            "2026-03-30T03:00:00Z",
        ),
        (
            "+05:30 hours around 1970",
            range(Some("1969-12-31T12:00:00Z"), Some("1970-01-01T12:00:00Z")),
            any,
            Interval::Hour,
            &india,
            "1969-12-31T12:00:00Z",
            "1970-01-01T12:00:00Z",
        ),
        (
            "a range inside one quarter",
            range(Some("2026-03-29T00:03:00Z"), Some("2026-03-29T00:11:00Z")),
            any,
            Interval::Day,
            &utc,
            "2026-03-29T00:03:00Z",
            "2026-03-29T00:11:00Z",
        ),
        (
            "a range from and to inside quarters across midnight",
            range(
                Some("2026-03-28T23:59:59.999999Z"),
                Some("2026-03-29T00:44:59.999999Z"),
            ),
            any,
            Interval::Hour,
            &utc,
            "2026-03-28T23:59:59.999999Z",
            "2026-03-29T00:44:59.999999Z",
        ),
        (
            "UTC days with a query term",
            EventFilter {
                from: Some(ts("2025-01-03T10:07:30Z")),
                to: Some(ts("2026-12-20T17:52:10Z")),
                ..filter("kind:deploy", now)
            },
            deploys,
            Interval::Day,
            &utc,
            "2025-01-03T10:07:30Z",
            "2026-12-20T17:52:10Z",
        ),
    ];
    let deletions = [
        "2026-03-29T00:00:00Z",
        "1969-12-31T23:52:00Z",
        "2025-01-01T00:00:00.000000Z",
    ];
    for round in 0..=deletions.len() {
        for (label, filter, kind, interval, tz, first, last) in &sets {
            let starts: Vec<Timestamp> = bucket_starts(ts(first), ts(last), *interval, tz)
                .unwrap_or_else(|error| panic!("{label}: bucket starts: {error}"))
                .iter()
                .map(|start| start.timestamp())
                .collect();
            let mut groups = vec![None, Some(GroupField::Kind), Some(GroupField::Team)];
            if round == 0 {
                groups.extend([GroupField::System, GroupField::Source].map(Some));
            }
            for group in groups {
                let counts = store
                    .bucket_counts(filter, group, &starts)
                    .await
                    .unwrap_or_else(|error| panic!("{label}: bucket_counts failed: {error}"));
                let expected = tally_buckets(&events, filter, *kind, group, &starts);
                assert!(
                    !expected.is_empty(),
                    "{label}: the fixture has events in these buckets"
                );
                assert_eq!(
                    counts, expected,
                    "{label}, group {group:?}, after {round} deletions"
                );
                let quarters = store
                    .quarter_counts(filter, group)
                    .await
                    .unwrap_or_else(|error| panic!("{label}: quarter_counts failed: {error}"));
                assert_eq!(
                    counts,
                    crate::bucket_counts_from_quarters(quarters, &starts),
                    "{label}, group {group:?}: the definition, after {round} deletions"
                );
            }
        }
        let Some(at) = deletions.get(round) else {
            break;
        };
        let at = ts(at);
        let position = events
            .iter()
            .position(|event| event.occurred_at == at)
            .unwrap_or_else(|| panic!("the fixture has an event at {at}"));
        let gone = events.remove(position);
        store
            .delete_event(Deletion {
                id: gone.id,
                actor: "conformance".into(),
                at: now,
                reason: None,
            })
            .await
            .unwrap_or_else(|error| panic!("delete_event failed: {error}"))
            .unwrap_or_else(|| panic!("the event at {at} existed"));
    }
}

/// Top values: count descending, ties by value in byte order (`B` before `a`, `z` before
/// `é`), cut at the limit, events without a value not counted.
pub async fn top_values_order_limit_and_nulls(store: &dyn Store) {
    let all = EventFilter::all(query_now());
    for field in GroupField::ALL {
        assert_eq!(
            top_values_of(store, &all, field, 10).await,
            [],
            "an empty store has no {field} values"
        );
    }
    let fixture = stats_fixture(store).await;
    let systems = [
        value_count("api", 3),
        value_count("B", 2),
        value_count("a", 2),
        value_count("z", 2),
        value_count("é", 2),
        value_count("db", 1),
        value_count("far", 1),
        value_count("legacy", 1),
    ];
    for limit in [1, 2, 4, 5, 7, 8, 9, 100] {
        assert_eq!(
            top_values_of(store, &all, GroupField::System, limit).await,
            systems[..limit.min(systems.len())],
            "systems, limit {limit}"
        );
    }
    assert_eq!(
        top_values_of(store, &all, GroupField::System, 0).await,
        [],
        "limit 0"
    );
    assert_eq!(
        top_values_of(store, &all, GroupField::System, usize::MAX).await,
        systems,
        "the largest limit"
    );
    assert_eq!(
        top_values_of(store, &all, GroupField::Team, 10).await,
        [
            value_count("core", 3),
            value_count("video", 3),
            value_count("ops", 1)
        ],
        "teams: the seven events without one are not counted"
    );
    assert_eq!(
        top_values_of(store, &all, GroupField::Environment, 10).await,
        [value_count("production", 4), value_count("staging", 2)],
        "environments"
    );
    assert_eq!(
        top_values_of(store, &all, GroupField::Kind, 2).await,
        [value_count("change", 4), value_count("deploy", 4)],
        "kinds, limit 2"
    );
    for field in GroupField::ALL {
        assert_eq!(
            top_values_of(store, &all, field, 100).await,
            tally_values(fixture.values(), field),
            "{field}"
        );
    }
}

/// Top values count exactly the events the same filter lists.
pub async fn top_values_honour_the_filter(store: &dyn Store) {
    let fixture = stats_fixture(store).await;
    for (label, filter, titles) in stats_filters() {
        let events = selected(store, &fixture, &label, &filter, &titles).await;
        for field in GroupField::ALL {
            let expected = tally_values(events.iter().copied(), field);
            assert_eq!(
                top_values_of(store, &filter, field, 100).await,
                expected,
                "{label}, {field}"
            );
            assert_eq!(
                top_values_of(store, &filter, field, 1).await,
                expected[..expected.len().min(1)],
                "{label}, {field}, limit 1"
            );
        }
    }
    assert_eq!(
        top_values_of(
            store,
            &filter("system:api", stats_now()),
            GroupField::Author,
            10
        )
        .await,
        [value_count("alice", 2), value_count("bob", 1)]
    );
}

/// The timeline is oldest first by `(occurred_at, id)` (equal times by id, not by insertion),
/// cut at the limit, and holds exactly the events the same filter lists.
pub async fn timeline_is_oldest_first_with_limit_and_filter(store: &dyn Store) {
    let all = EventFilter::all(query_now());
    assert_eq!(timeline_of(store, &all, 10).await, [], "an empty store");
    let fixture = stats_fixture(store).await;
    let order = [
        "s13", "s12", "s10", "s9", "s8", "s11", "s1", "s2", "s3", "s4", "s5", "s7", "s6", "s14",
    ];
    let entry = |title: &str| TimelineEntry {
        occurred_at: fixture[title].occurred_at,
        id: fixture[title].id,
    };
    let expected: Vec<TimelineEntry> = order.iter().map(|title| entry(title)).collect();
    for limit in [0, 1, 5, 11, 12, 13, 14, 15, 1000, usize::MAX] {
        assert_eq!(
            timeline_of(store, &all, limit).await,
            expected[..limit.min(expected.len())],
            "limit {limit}"
        );
    }
    for (label, filter, titles) in stats_filters() {
        let events = selected(store, &fixture, &label, &filter, &titles).await;
        let mut wanted: Vec<TimelineEntry> = events
            .iter()
            .map(|event| TimelineEntry {
                occurred_at: event.occurred_at,
                id: event.id,
            })
            .collect();
        wanted.sort_by_key(|entry| (entry.occurred_at, entry.id));
        assert_eq!(timeline_of(store, &filter, 1000).await, wanted, "{label}");
        assert_eq!(
            timeline_of(store, &filter, 2).await,
            wanted[..wanted.len().min(2)],
            "{label}, limit 2"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Many events by id
// ---------------------------------------------------------------------------------------------

async fn get_many_sorted(store: &dyn Store, ids: &[EventId]) -> Vec<Event> {
    let mut events = store
        .get_many(ids)
        .await
        .unwrap_or_else(|error| panic!("get_many of {} ids failed: {error}", ids.len()));
    events.sort_by_key(|event| event.id);
    events
}

fn sorted_without_diffs<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<Event> {
    let mut events: Vec<Event> = events.into_iter().map(without_diff).collect();
    events.sort_by_key(|event| event.id);
    events
}

/// `get_many` returns exactly the stored events among the ids, without diffs but with
/// `has_diff`, and skips unknown ids; an empty list gives nothing.
pub async fn get_many_returns_exactly_the_known_ids(store: &dyn Store) {
    assert_eq!(get_many_sorted(store, &[]).await, [], "no ids");
    assert_eq!(
        get_many_sorted(store, &[EventId::new(), EventId::new()]).await,
        [],
        "an empty store"
    );
    let at = ts("2026-11-01T10:00:00Z");
    let mut with_diff = minimal("with a diff", at);
    with_diff["diff"] = json!("--- a\n+++ b\n+x\n");
    let events = create_all(
        store,
        vec![
            record(&with_diff),
            record(&minimal("plain", at)),
            record(&experiment()),
            record(&minimal("not asked for", at)),
        ],
    )
    .await;
    let unknown = EventId::new();
    let got = get_many_sorted(store, &[events[2].id, unknown, events[0].id, events[1].id]).await;
    assert_eq!(got, sorted_without_diffs(&events[..3]));
    for event in &got {
        assert_eq!(event.diff, None, "{}: no diff", event.title);
        let sent = events
            .iter()
            .find(|sent| sent.id == event.id)
            .expect("sent");
        assert!(sent.diff.is_some() || event.title == "plain");
        assert_eq!(
            event.has_diff,
            sent.diff.is_some(),
            "{}: has_diff",
            event.title
        );
    }
    assert_eq!(
        get_many_sorted(store, &[events[3].id]).await,
        [without_diff(&events[3])]
    );
    assert_eq!(get_many_sorted(store, &[unknown]).await, [], "only unknown");
}

/// More ids than any backend's natural chunk (500, 501, 1203, with unknown ids among them)
/// are all answered.
pub async fn get_many_with_more_than_500_ids(store: &dyn Store) {
    let base = ts("2026-11-01T00:00:00Z");
    let records = (0..1203)
        .map(|n| {
            let mut submitted = minimal(
                &format!("many {n}"),
                base + SignedDuration::from_secs(i64::from(n)),
            );
            if n % 10 == 0 {
                submitted["diff"] = json!(format!("+{n}\n"));
            }
            record(&submitted)
        })
        .collect();
    let events = create_all(store, records).await;
    for size in [500, 501, 1000, 1203] {
        let ids: Vec<EventId> = events[..size].iter().map(|event| event.id).collect();
        let got = get_many_sorted(store, &ids).await;
        assert!(
            got == sorted_without_diffs(&events[..size]),
            "{size} ids: exactly those events, without diffs"
        );
    }
    let mut ids: Vec<EventId> = Vec::new();
    for (n, event) in events.iter().enumerate().rev() {
        ids.push(event.id);
        if n % 100 == 0 {
            ids.push(EventId::new());
        }
    }
    assert_eq!(ids.len(), 1203 + 13);
    let got = get_many_sorted(store, &ids).await;
    assert_eq!(got.len(), 1203, "the unknown ids are skipped");
    assert!(got == sorted_without_diffs(&events), "every known id, once");
    assert_eq!(got.iter().filter(|event| event.has_diff).count(), 121);
}

// ---------------------------------------------------------------------------------------------
// The live stream
// ---------------------------------------------------------------------------------------------

/// How long a published event may take to reach a subscriber before the case fails.
const RECEIVE_DEADLINE: Duration = Duration::from_secs(30);

/// The next published event; fails (instead of hanging) if none comes in time, the receiver
/// lagged, or the stream closed.
async fn next_published(receiver: &mut broadcast::Receiver<Arc<StoredEvent>>) -> Arc<StoredEvent> {
    match tokio::time::timeout(RECEIVE_DEADLINE, receiver.recv()).await {
        Ok(Ok(stored)) => stored,
        Ok(Err(error)) => panic!("the stream failed: {error}"),
        Err(_) => panic!("no event was published within {RECEIVE_DEADLINE:?}"),
    }
}

/// Receives the next published event and checks it is durable by now: a read finds it.
async fn receive_durable(
    store: &dyn Store,
    receiver: &mut broadcast::Receiver<Arc<StoredEvent>>,
) -> StoredEvent {
    let stored = next_published(receiver).await;
    let got = store.get(stored.event.id).await.expect("get");
    assert!(
        got.is_some(),
        "{:?} was published before a read could see it",
        stored.event.title
    );
    StoredEvent::clone(&stored)
}

async fn stored_since_of(
    store: &dyn Store,
    after: StreamPosition,
    limit: usize,
) -> Vec<StoredEvent> {
    store
        .stored_since(after, limit)
        .await
        .unwrap_or_else(|error| panic!("stored_since({after}, {limit}) failed: {error}"))
}

async fn head_of(store: &dyn Store) -> StreamPosition {
    store
        .stream_head()
        .await
        .unwrap_or_else(|error| panic!("stream_head failed: {error}"))
}

fn assert_increasing(published: &[StoredEvent]) {
    for pair in published.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions must increase: {} ({:?}) then {} ({:?})",
            pair[0].position,
            pair[0].event.title,
            pair[1].position,
            pair[1].event.title
        );
    }
}

/// A subscriber receives every created event exactly once, in commit order (a batch in its
/// order), with increasing positions, only once a read sees it; duplicates, conflicts,
/// rolled-back all-or-nothing batches, patches and empty inserts publish nothing.
/// `stored_since` replays the same events with the same positions; `stream_head` is 0 on an
/// empty store and then the last position.
pub async fn stream_publishes_each_created_event_once_in_commit_order(store: Arc<dyn Store>) {
    let store_ref = &*store;
    assert_eq!(
        head_of(store_ref).await,
        StreamPosition(0),
        "an empty store"
    );
    assert_eq!(stored_since_of(store_ref, StreamPosition(0), 10).await, []);
    let mut receiver = store.subscribe();
    let at = ts("2026-11-01T10:00:00Z");
    let numbered = move |label: &str, n: usize| {
        let mut submitted = minimal(&format!("{label} {n}"), at);
        if n.is_multiple_of(2) {
            submitted["diff"] = json!(format!("+{label} {n}\n"));
        }
        record(&submitted)
    };

    // One at a time: the order of the calls is the commit order.
    let mut sequential = vec![create(store_ref, numbered("single", 0)).await];
    sequential.extend(create_all(store_ref, (1..4).map(|n| numbered("batch", n)).collect()).await);
    sequential.push(create(store_ref, record(&keyed("keyed", "stream-key"))).await);
    assert!(matches!(
        insert_one(store_ref, record(&keyed("keyed", "stream-key"))).await,
        InsertOutcome::Duplicate(_)
    ));
    assert!(matches!(
        insert_one(store_ref, record(&keyed("changed", "stream-key"))).await,
        InsertOutcome::Conflict { .. }
    ));
    let rolled_back = store
        .insert(
            vec![
                numbered("rolled back", 1),
                record(&keyed("changed", "stream-key")),
                numbered("rolled back", 2),
            ],
            BatchMode::AllOrNothing,
        )
        .await
        .expect("insert");
    assert!(has_conflict(&rolled_back));
    let mixed = store
        .insert(
            vec![
                numbered("kept", 1),
                record(&keyed("changed", "stream-key")),
                record(&keyed("keyed", "stream-key")),
                record(&keyed("new key", "stream-key-2")),
                record(&keyed("new key", "stream-key-2")),
                numbered("kept", 2),
            ],
            BatchMode::Independent,
        )
        .await
        .expect("insert");
    assert_eq!(mixed.len(), 6);
    for index in [0, 3, 5] {
        sequential.push(created(&mixed[index]).clone());
    }
    for index in [1, 2, 4] {
        assert!(
            !matches!(mixed[index], InsertOutcome::Created(_)),
            "item {index} of the mixed batch is not created: {:?}",
            mixed[index]
        );
    }
    store
        .patch(
            sequential[0].id,
            EventPatch {
                add_tags: vec!["patched".into()],
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    store
        .insert(Vec::new(), BatchMode::Independent)
        .await
        .expect("empty insert");

    let mut published = Vec::new();
    for event in &sequential {
        let stored = receive_durable(store_ref, &mut receiver).await;
        assert_eq!(
            stored.event.id, event.id,
            "expected {:?}, received {:?}: events are published once each, in commit order",
            event.title, stored.event.title
        );
        assert_eq!(
            stored.event,
            without_diff(event),
            "the event is published as created, without its diff (as lists and stored_since)"
        );
        published.push(stored);
    }
    assert_increasing(&published);

    // Many writers at once, and the subscriber reading while they write, so that its read
    // right after receiving shows each event was durable when published. Positions still
    // increase in the order events are received, and each writer's events arrive in the order
    // it stored them.
    let mut late = store.subscribe();
    let sentinel_id = fixed_id(0x5e47);
    let consumer = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            let mut received = Vec::new();
            loop {
                let stored = receive_durable(&*store, &mut receiver).await;
                let done = stored.event.id == sentinel_id;
                received.push(stored);
                if done {
                    return (received, receiver);
                }
            }
        }
    });
    const TASKS: usize = 8;
    const EACH: usize = 20;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut events = Vec::new();
            for n in 0..EACH {
                let label = format!("task {task}");
                if n % 4 == 3 {
                    let batch = vec![numbered(&label, 100 + n), numbered(&label, 200 + n)];
                    events.extend(create_all(&*store, batch).await);
                } else {
                    events.push(create(&*store, numbered(&label, n)).await);
                }
            }
            (task, events)
        });
    }
    let mut by_task: BTreeMap<usize, Vec<EventId>> = BTreeMap::new();
    let mut by_id: BTreeMap<EventId, Event> = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (task, events) = result.unwrap_or_else(|error| panic!("a writer failed: {error}"));
        by_task.insert(task, events.iter().map(|event| event.id).collect());
        by_id.extend(events.into_iter().map(|event| (event.id, event)));
    }
    let concurrent_total: usize = by_task.values().map(Vec::len).sum();
    assert_eq!(concurrent_total, TASKS * EACH * 5 / 4);
    // Stored after every writer was answered, so published after all of their events.
    let mut sentinel = record(&minimal("sentinel", at));
    sentinel.event.id = sentinel_id;
    let sentinel = create(store_ref, sentinel).await;
    by_id.insert(sentinel.id, sentinel.clone());
    let (concurrent, mut receiver) = match consumer.await {
        Ok(done) => done,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("the subscriber failed: {error}"),
    };
    assert_eq!(
        concurrent.len(),
        concurrent_total + 1,
        "every concurrent event once, then the sentinel"
    );
    let mut seen = BTreeSet::new();
    for stored in &concurrent {
        assert!(
            seen.insert(stored.event.id),
            "{:?} was published twice",
            stored.event.title
        );
        let sent = by_id
            .get(&stored.event.id)
            .unwrap_or_else(|| panic!("{:?} was never created", stored.event.title));
        assert_eq!(stored.event, without_diff(sent), "published as created");
    }
    for (task, ids) in &by_task {
        let received: Vec<EventId> = concurrent
            .iter()
            .map(|stored| stored.event.id)
            .filter(|id| ids.contains(id))
            .collect();
        assert_eq!(&received, ids, "task {task}: its events, in its order");
    }
    published.extend(concurrent.iter().cloned());
    assert_increasing(&published);
    assert!(
        matches!(
            receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "nothing is published after the sentinel"
    );
    // A subscriber from later on receives exactly what was stored after it subscribed.
    for expected in &concurrent {
        let stored = receive_durable(store_ref, &mut late).await;
        assert_eq!(&stored, expected, "the late subscriber");
    }

    // The store replays the same events with the same positions, as they are now (the first
    // one was patched since it was published).
    let ids: Vec<EventId> = published.iter().map(|stored| stored.event.id).collect();
    let now: BTreeMap<EventId, Event> = store
        .get_many(&ids)
        .await
        .expect("get_many")
        .into_iter()
        .map(|event| (event.id, event))
        .collect();
    let published: Vec<StoredEvent> = published
        .iter()
        .map(|stored| StoredEvent {
            position: stored.position,
            event: now[&stored.event.id].clone(),
        })
        .collect();
    assert_eq!(published[0].event.tags, ["patched"]);
    let head = published.last().expect("published").position;
    assert_eq!(
        head_of(store_ref).await,
        head,
        "the head is the last position"
    );
    assert!(stored_since_of(store_ref, StreamPosition(0), 10_000).await == published);
    assert!(
        stored_since_of(store_ref, StreamPosition(0), usize::MAX).await == published,
        "the largest limit"
    );
    for (start, limit) in [(0, 1), (0, 5), (3, 4), (7, 100), (150, 30), (190, 1000)] {
        let after = published[start].position;
        let end = (start + 1 + limit).min(published.len());
        assert!(
            stored_since_of(store_ref, after, limit).await == published[start + 1..end],
            "stored_since(position of event {start}, {limit})"
        );
    }
    assert_eq!(stored_since_of(store_ref, StreamPosition(0), 0).await, []);
    assert_eq!(
        stored_since_of(store_ref, head, 10).await,
        [],
        "after the head"
    );
    assert_eq!(
        stored_since_of(store_ref, StreamPosition(u64::MAX), 10).await,
        [],
        "beyond the head"
    );

    // What stores nothing moves nothing.
    insert_one(store_ref, record(&keyed("keyed", "stream-key"))).await;
    store
        .insert(
            vec![
                numbered("rolled back", 3),
                record(&keyed("changed", "stream-key")),
            ],
            BatchMode::AllOrNothing,
        )
        .await
        .expect("insert");
    assert_eq!(
        head_of(store_ref).await,
        head,
        "the head after a duplicate and a rollback"
    );
    assert_eq!(stored_since_of(store_ref, head, 10).await, []);
    let last = create(store_ref, record(&minimal("last", at))).await;
    let stored = receive_durable(store_ref, &mut receiver).await;
    assert_eq!(stored.event.id, last.id, "the next event published");
    assert!(stored.position > head);
    assert_eq!(head_of(store_ref).await, stored.position);
    assert_eq!(stored_since_of(store_ref, head, 10).await, [stored]);
}

fn has_conflict(outcomes: &[InsertOutcome]) -> bool {
    outcomes
        .iter()
        .any(|outcome| matches!(outcome, InsertOutcome::Conflict { .. }))
}

/// A subscriber that falls more than [`STREAM_BUFFER`] events behind is told it lagged, and
/// catches up without gaps or repeats from `stored_since`.
pub async fn stream_lagging_subscriber_catches_up(store: &dyn Store) {
    let mut receiver = store.subscribe();
    let base = ts("2026-11-01T00:00:00Z");
    let total = STREAM_BUFFER + 2 * MAX_BATCH + 7;
    let records = (0..total)
        .map(|n| {
            let seconds = i64::try_from(n).expect("small");
            record(&minimal(
                &format!("lag {n}"),
                base + SignedDuration::from_secs(seconds),
            ))
        })
        .collect();
    let events = create_all(store, records).await;
    let last = events.last().expect("events").id;
    let mut lagged = false;
    let mut received: Vec<StoredEvent> = Vec::new();
    loop {
        match tokio::time::timeout(RECEIVE_DEADLINE, receiver.recv()).await {
            Ok(Ok(stored)) => {
                let done = stored.event.id == last;
                received.push(StoredEvent::clone(&stored));
                if done {
                    break;
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => lagged = true,
            Ok(Err(error)) => panic!("the stream failed: {error}"),
            Err(_) => panic!("no event was published within {RECEIVE_DEADLINE:?}"),
        }
    }
    assert!(
        lagged,
        "a subscriber {total} events behind is told it lagged"
    );
    assert!(received.len() < total, "some events were skipped");
    assert_increasing(&received);
    // Catching up: everything from the start, in pages.
    let mut replayed: Vec<StoredEvent> = Vec::new();
    let mut after = StreamPosition(0);
    loop {
        let page = stored_since_of(store, after, 1000).await;
        let Some(tail) = page.last() else { break };
        after = tail.position;
        replayed.extend(page);
    }
    assert_eq!(replayed.len(), total, "stored_since replays every event");
    assert_increasing(&replayed);
    let ids: Vec<EventId> = replayed.iter().map(|stored| stored.event.id).collect();
    let expected: Vec<EventId> = events.iter().map(|event| event.id).collect();
    assert!(ids == expected, "in the order they were stored");
    let by_position: BTreeMap<StreamPosition, &StoredEvent> = replayed
        .iter()
        .map(|stored| (stored.position, stored))
        .collect();
    for stored in &received {
        assert_eq!(
            by_position.get(&stored.position).copied(),
            Some(stored),
            "what was received live is what is replayed, positions included"
        );
    }
    assert_eq!(head_of(store).await, replayed[total - 1].position);
}

// ---------------------------------------------------------------------------------------------
// API tokens and the audit log
// ---------------------------------------------------------------------------------------------

/// A token to store, named `name`, whose secret is `tfr_<name>` (tests only need it unique).
pub fn new_token(name: &str, scope: Scope, expires_at: Option<Timestamp>) -> NewToken {
    NewToken {
        name: name.to_owned(),
        scope,
        hash: hash_token(&format!("tfr_{name}")),
        created_at: ts("2026-11-01T09:00:00.000001Z"),
        expires_at,
    }
}

async fn create_token_ok(store: &dyn Store, token: NewToken) -> TokenInfo {
    let name = token.name.clone();
    store
        .create_token(token)
        .await
        .unwrap_or_else(|error| panic!("create_token failed: {error}"))
        .unwrap_or_else(|| panic!("the name {name} was free, yet the token was not created"))
}

async fn tokens_of(store: &dyn Store) -> Vec<TokenInfo> {
    store
        .list_tokens()
        .await
        .unwrap_or_else(|error| panic!("list_tokens failed: {error}"))
}

async fn by_hash(store: &dyn Store, secret: &str) -> Option<TokenInfo> {
    store
        .token_by_hash(&hash_token(secret))
        .await
        .unwrap_or_else(|error| panic!("token_by_hash failed: {error}"))
}

/// Tokens keep every field to the microsecond, are listed by name, and a name is taken once:
/// a second token of the same name (another hash, another scope) is refused.
pub async fn tokens_are_created_listed_and_named_once(store: &dyn Store) {
    assert_eq!(tokens_of(store).await, [], "a new store has no token");
    let expires = ts("2027-02-01T09:00:00.123456Z");
    let jenkins =
        create_token_ok(store, new_token("ci-jenkins", Scope::Write, Some(expires))).await;
    assert_eq!(
        jenkins,
        TokenInfo {
            name: "ci-jenkins".into(),
            scope: Scope::Write,
            created_at: ts("2026-11-01T09:00:00.000001Z"),
            expires_at: Some(expires),
            last_used_at: None,
            revoked_at: None,
        }
    );
    let admin = create_token_ok(store, new_token("Admin", Scope::Admin, None)).await;
    let grafana = create_token_ok(store, new_token("grafana", Scope::Read, None)).await;
    assert_eq!(
        tokens_of(store).await,
        [admin.clone(), jenkins.clone(), grafana.clone()],
        "listed by name, in byte order"
    );
    let mut again = new_token("ci-jenkins", Scope::Admin, None);
    again.hash = hash_token("tfr_another-secret");
    assert_eq!(
        store.create_token(again).await.expect("create_token"),
        None,
        "a name is taken once"
    );
    assert_eq!(by_hash(store, "tfr_another-secret").await, None);
    assert_eq!(tokens_of(store).await, [admin, jenkins, grafana]);
}

/// A token is found by the hash of its secret, revoked or expired alike (the caller decides
/// what the state means); an unknown hash finds nothing.
pub async fn tokens_are_found_by_hash_whatever_their_state(store: &dyn Store) {
    let expires = ts("2026-12-01T00:00:00Z");
    let created = create_token_ok(store, new_token("deployer", Scope::Write, Some(expires))).await;
    assert_eq!(by_hash(store, "tfr_deployer").await, Some(created.clone()));
    assert!(created.is_active(ts("2026-11-30T23:59:59.999999Z")));
    assert!(
        !created.is_active(expires),
        "a token has expired at its expiry time"
    );
    assert_eq!(by_hash(store, "tfr_nobody").await, None);
    assert_eq!(
        by_hash(store, "deployer").await,
        None,
        "the hash, not the name"
    );

    let revoked_at = ts("2026-11-02T10:00:00Z");
    let revoked = store
        .revoke_token("deployer", revoked_at)
        .await
        .expect("revoke_token")
        .expect("the token exists");
    assert_eq!(revoked.revoked_at, Some(revoked_at));
    let found = by_hash(store, "tfr_deployer")
        .await
        .expect("a revoked token is still found");
    assert_eq!(found, revoked);
    assert!(!found.is_active(ts("2026-11-01T10:00:00Z")));
}

/// Revoking twice keeps the first time; an unknown name is `None`; a revoked token's name
/// stays taken.
pub async fn revoking_keeps_the_first_revocation(store: &dyn Store) {
    create_token_ok(store, new_token("old-ci", Scope::Write, None)).await;
    let first = ts("2026-11-03T10:00:00.000007Z");
    let revoked = store
        .revoke_token("old-ci", first)
        .await
        .expect("revoke_token")
        .expect("found");
    assert_eq!(revoked.revoked_at, Some(first));
    let again = store
        .revoke_token("old-ci", ts("2026-11-04T10:00:00Z"))
        .await
        .expect("revoke_token")
        .expect("found");
    assert_eq!(again.revoked_at, Some(first), "the first revocation stands");
    assert_eq!(
        store
            .revoke_token("nobody", first)
            .await
            .expect("revoke_token"),
        None
    );
    assert_eq!(
        store
            .create_token(new_token("old-ci", Scope::Write, None))
            .await
            .expect("create_token"),
        None,
        "a revoked token's name is not reused"
    );
    assert_eq!(tokens_of(store).await, [again]);
}

/// `touch_token` sets `last_used_at`, and never moves it back (two nodes may touch out of
/// order); touching an unknown name does nothing.
pub async fn touch_moves_last_used_forward_only(store: &dyn Store) {
    create_token_ok(store, new_token("grafana", Scope::Read, None)).await;
    let touch = |at: &str| {
        let at = ts(at);
        async move {
            store
                .touch_token("grafana", at)
                .await
                .unwrap_or_else(|error| panic!("touch_token failed: {error}"));
        }
    };
    let last_used = || async {
        by_hash(store, "tfr_grafana")
            .await
            .and_then(|t| t.last_used_at)
    };
    touch("2026-11-05T10:00:00.000001Z").await;
    assert_eq!(last_used().await, Some(ts("2026-11-05T10:00:00.000001Z")));
    touch("2026-11-05T09:00:00Z").await;
    assert_eq!(
        last_used().await,
        Some(ts("2026-11-05T10:00:00.000001Z")),
        "never back"
    );
    touch("2026-11-05T11:00:00Z").await;
    assert_eq!(last_used().await, Some(ts("2026-11-05T11:00:00Z")));
    store
        .touch_token("nobody", ts("2026-11-05T11:00:00Z"))
        .await
        .expect("touching an unknown token is not an error");
}

/// A deleted event is gone from every read — get, lists, full text, tags, counts, statistics,
/// `get_many`, the stream's catch-up — its idempotency key is free again, and the deletion is
/// in the audit log with who, when, why and what the event was. Deleting it again is `None`.
pub async fn delete_removes_the_event_everywhere_and_audits_it(store: &dyn Store) {
    let now = query_now();
    let keep = create(
        store,
        record(
            &json!({"title": "Deploy player 5.2", "system": "player", "author": "alice",
               "occurred_at": "2026-11-01T10:00:00Z", "tags": ["release:5.2"]}),
        ),
    )
    .await;
    let secret = json!({"title": "Rotate the zanzibar password", "system": "vault",
        "author": "bob", "occurred_at": "2026-11-01T10:05:00Z", "kind": "config",
        "tags": ["release:5.2", "leaked"], "description": "oops: hunter2",
        "diff": "--- a/cfg\n+++ b/cfg\n+password=hunter2\n", "idempotency_key": "rotate-1"});
    let gone = create(store, record(&secret)).await;
    let head_before = head_of(store).await;
    let at = ts("2026-11-02T08:00:00.000042Z");
    let entry = store
        .delete_event(Deletion {
            id: gone.id,
            actor: "ops-admin".into(),
            at,
            reason: Some("a password in the diff".into()),
        })
        .await
        .expect("delete_event")
        .expect("the event existed");
    assert_eq!(
        entry,
        AuditEntry {
            id: entry.id,
            at,
            actor: "ops-admin".into(),
            action: AuditAction::EventDeleted,
            event_id: gone.id,
            title: "Rotate the zanzibar password".into(),
            system: "vault".into(),
            reason: Some("a password in the diff".into()),
        }
    );
    assert_eq!(store.get(gone.id).await.expect("get"), None);
    assert_eq!(store.get(keep.id).await.expect("get"), Some(keep.clone()));
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(titles(store, "", now).await, ["Deploy player 5.2"]);
    assert_eq!(titles(store, "zanzibar", now).await, Vec::<String>::new());
    assert_eq!(titles(store, "hunter2", now).await, Vec::<String>::new());
    assert_eq!(titles(store, "tag:leaked", now).await, Vec::<String>::new());
    assert_eq!(
        titles(store, "tag:release:5.2", now).await,
        ["Deploy player 5.2"]
    );
    let all = EventFilter::all(now);
    let quarters = quarter_counts_of(store, &all, None).await;
    assert_eq!(
        quarters.iter().map(|q| q.count).sum::<u64>(),
        1,
        "rollups: {quarters:?}"
    );
    let by_kind = quarter_counts_of(store, &filter("kind:config", now), None).await;
    assert!(by_kind.is_empty(), "{by_kind:?}");
    assert_eq!(
        top_values_of(store, &all, GroupField::System, 10).await,
        [value_count("player", 1)]
    );
    assert_eq!(
        store.get_many(&[gone.id, keep.id]).await.expect("get_many"),
        [keep.without_diff()]
    );
    let replayed = stored_since_of(store, StreamPosition(0), 100).await;
    assert_eq!(
        replayed.iter().map(|s| s.event.id).collect::<Vec<_>>(),
        [keep.id],
        "the stream's catch-up skips what was deleted"
    );
    assert_eq!(
        head_of(store).await,
        head_before,
        "positions are not reused"
    );

    let again = store
        .delete_event(Deletion {
            id: gone.id,
            actor: "ops-admin".into(),
            at,
            reason: None,
        })
        .await
        .expect("delete_event");
    assert_eq!(again, None, "an event is deleted once");
    assert_eq!(
        store.audit_log(None, 10).await.expect("audit_log"),
        [entry],
        "a deletion of nothing is not audited"
    );
    // The key was the deleted event's: the same submission creates the event anew.
    let recreated = created(&insert_one(store, record(&secret)).await).clone();
    assert_ne!(recreated.id, gone.id);
    assert_eq!(store.count().await.expect("count"), 2);
}

/// The audit log reads newest first and pages with `before`.
pub async fn audit_log_is_newest_first_and_pages(store: &dyn Store) {
    let events = create_all(
        store,
        (0..3)
            .map(|n| {
                record(&minimal(
                    &format!("event {n}"),
                    ts("2026-11-01T10:00:00Z") + SignedDuration::from_mins(n),
                ))
            })
            .collect(),
    )
    .await;
    for (n, event) in events.iter().enumerate() {
        store
            .delete_event(Deletion {
                id: event.id,
                actor: format!("admin-{n}"),
                at: ts("2026-11-02T10:00:00Z") + SignedDuration::from_mins(n as i64),
                reason: None,
            })
            .await
            .expect("delete_event")
            .expect("found");
    }
    let log = store.audit_log(None, 10).await.expect("audit_log");
    assert_eq!(
        log.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        ["admin-2", "admin-1", "admin-0"]
    );
    assert!(
        log.windows(2).all(|pair| pair[0].id > pair[1].id),
        "{log:?}"
    );
    assert_eq!(
        log.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
        ["event 2", "event 1", "event 0"]
    );
    let first = store.audit_log(None, 2).await.expect("audit_log");
    assert_eq!(first, log[..2]);
    let rest = store
        .audit_log(Some(first[1].id), 2)
        .await
        .expect("audit_log");
    assert_eq!(rest, log[2..]);
    let none = store
        .audit_log(Some(log[2].id), 2)
        .await
        .expect("audit_log");
    assert_eq!(none, []);
}
