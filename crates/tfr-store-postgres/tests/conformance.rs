//! The shared conformance suite on PostgreSQL, each case on a fresh database of its own (see
//! `tfr_store_postgres::testing`), and the promises only a shared database makes: several
//! stores (nodes) on one database migrate once, share one stream in commit order, and store a
//! retried event once.
//!
//! Without a reachable server these tests print `skipped: ...` and pass, unless `CI` is set.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx_core::connection::Connection;
use sqlx_core::executor::Executor;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::PgConnection;
use tfr_store::conformance::{self, create, create_all, insert_one, minimal, record, ts};
use tfr_store::{BatchMode, InsertOutcome, InsertRecord, Store, StoredEvent, StreamPosition};
use tfr_store_postgres::testing::TestDatabase;
use tfr_store_postgres::{ImportReport, MigrationError, OpenError, PostgresOptions, PostgresStore};
use tokio::sync::broadcast;

/// Cases run this many at a time, so that the suite stays well within the server's
/// `max_connections` (each store holds up to `pool_size` + 1 connections).
const CASES_AT_ONCE: usize = 8;

fn options() -> PostgresOptions {
    PostgresOptions {
        pool_size: 3,
        ..PostgresOptions::default()
    }
}

async fn open(database: &TestDatabase) -> PostgresStore {
    PostgresStore::open(database.url(), &options())
        .await
        .unwrap_or_else(|error| panic!("cannot open the store: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    // One probe, so an unreachable server is reported (or skipped) once.
    if TestDatabase::create().await.is_none() {
        return;
    }
    for cases in conformance::CASES.chunks(CASES_AT_ONCE) {
        conformance::run_cases(cases, || async {
            let database = TestDatabase::create()
                .await
                .expect("the server answered a moment ago");
            let store: Arc<dyn Store> = Arc::new(open(&database).await);
            (store, database)
        })
        .await;
    }
}

async fn admin_connection(database: &TestDatabase) -> PgConnection {
    PgConnection::connect(database.url())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test database: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let opening = (0..4).map(|_| open(&database));
    let stores = futures_util::future::join_all(opening).await;
    let mut connection = admin_connection(&database).await;
    let applied: Vec<i64> = query_scalar("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut connection)
        .await
        .expect("schema_migrations");
    assert_eq!(applied, [1, 2, 3, 4, 5, 6], "each migration applied once");
    for store in &stores {
        store.ping().await.expect("ping");
    }
    create(
        &stores[0],
        record(&minimal("after start", ts("2026-11-01T10:00:00Z"))),
    )
    .await;
    for store in &stores {
        assert_eq!(store.count().await.expect("count"), 1);
        store.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn a_database_newer_than_this_build_is_refused() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let store = open(&database).await;
    store.shutdown().await.expect("shutdown");
    let mut connection = admin_connection(&database).await;
    connection
        .execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')")
        .await
        .expect("insert");
    match PostgresStore::open(database.url(), &options()).await {
        Err(OpenError::Migration(MigrationError::TooNew { found: 999, known })) => {
            assert!(known < 999);
        }
        Err(other) => panic!("expected TooNew, got {other}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

/// Migration 0002 counts the events stored before it in the rollups, exactly as its triggers
/// count those stored after.
#[tokio::test]
async fn rollups_count_events_stored_before_their_migration() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let mut connection = admin_connection(&database).await;
    connection
        .execute(include_str!("../migrations/0001_events.sql"))
        .await
        .expect("migration 0001 alone");
    connection
        .execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO schema_migrations (version, name) VALUES (1, 'events');
             INSERT INTO events (seq, id, occurred_at, recorded_at, title, system, author, kind,
                                 team, content_digest, submitted_by, search)
             VALUES (1, gen_random_uuid(), '2026-11-01T10:00:00Z', now(), 'a', 'api', 'x',
                     'deploy', 'video', '', 'test', ''),
                    (2, gen_random_uuid(), '2026-11-01T10:14:59.999999Z', now(), 'b', 'api',
                     'x', 'deploy', NULL, '', 'test', ''),
                    (3, gen_random_uuid(), '1969-12-31T23:59:59.999999Z', now(), 'c', 'db',
                     'x', 'config', NULL, '', 'test', '');
             UPDATE counters SET value = 3;",
        )
        .await
        .expect("events stored at version 1");
    let store = open(&database).await;
    create(
        &store,
        record(&minimal("after", ts("2026-11-01T10:20:00Z"))),
    )
    .await;
    let all = tfr_store::EventFilter::all(ts("2026-11-06T00:00:00Z"));
    let mut by_team = store
        .quarter_counts(&all, Some(tfr_core::stats::GroupField::Team))
        .await
        .expect("quarter counts");
    by_team.sort_by_key(|count| (count.quarter, count.group.clone()));
    let quarter = |at: &str| tfr_core::stats::quarter_of(ts(at));
    let count = |at: &str, group: Option<&str>, count: u64| tfr_store::QuarterCount {
        quarter: quarter(at),
        group: group.map(str::to_owned),
        count,
    };
    assert_eq!(
        by_team,
        [
            count("1969-12-31T23:59:59Z", None, 1),
            count("2026-11-01T10:00:00Z", None, 1),
            count("2026-11-01T10:00:00Z", Some("video"), 1),
            count("2026-11-01T10:15:00Z", None, 1),
        ]
    );
    // The hourly and daily rollups of migration 5 start from what the quarters counted: days
    // from 1969-12-31, from 1970 to the day of the events, and that day.
    let starts = [
        ts("1969-12-31T00:00:00Z"),
        ts("1970-01-01T00:00:00Z"),
        ts("2026-11-01T00:00:00Z"),
    ];
    let by_day = store
        .bucket_counts(&all, Some(tfr_core::stats::GroupField::Team), &starts)
        .await
        .expect("bucket counts");
    let bucket = |bucket: usize, group: Option<&str>, count: u64| tfr_store::BucketCount {
        bucket,
        group: group.map(str::to_owned),
        count,
    };
    assert_eq!(
        by_day,
        [
            bucket(0, None, 1),
            bucket(2, None, 2),
            bucket(2, Some("video"), 1)
        ]
    );
    store.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_bad_url_names_no_password() {
    for url in [
        "postgres://user:s3cret@[::1:5432/db",
        "mysql://user:s3cret@host/db",
    ] {
        match PostgresStore::open(url, &options()).await {
            Err(error) => assert!(!error.to_string().contains("s3cret"), "{error}"),
            Ok(_) => panic!("{url} was opened"),
        }
    }
}

/// Receives `count` events, failing instead of hanging.
async fn receive(
    receiver: &mut broadcast::Receiver<Arc<StoredEvent>>,
    count: usize,
) -> Vec<StoredEvent> {
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        match tokio::time::timeout(Duration::from_secs(30), receiver.recv()).await {
            Ok(Ok(stored)) => received.push(StoredEvent::clone(&stored)),
            Ok(Err(error)) => panic!("the stream failed: {error}"),
            Err(_) => panic!("only {} of {count} events arrived", received.len()),
        }
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_streams_what_any_node_stores_in_commit_order() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let a = Arc::new(open(&database).await);
    let b = Arc::new(open(&database).await);
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();

    const EACH: usize = 40;
    let at = ts("2026-11-01T10:00:00Z");
    let mut writers = tokio::task::JoinSet::new();
    for (name, store) in [("a", Arc::clone(&a)), ("b", Arc::clone(&b))] {
        writers.spawn(async move {
            let mut ids = Vec::new();
            for n in 0..EACH {
                let event = create(&*store, record(&minimal(&format!("{name} {n}"), at))).await;
                ids.push(event.id);
            }
            ids
        });
    }
    let mut written = BTreeSet::new();
    while let Some(ids) = writers.join_next().await {
        written.extend(ids.expect("a writer"));
    }
    let seen_on_a = receive(&mut on_a, 2 * EACH).await;
    let seen_on_b = receive(&mut on_b, 2 * EACH).await;
    assert!(
        seen_on_a == seen_on_b,
        "both nodes stream the same events, in the same order"
    );
    for pair in seen_on_b.windows(2) {
        assert!(pair[0].position < pair[1].position, "positions increase");
    }
    let ids: BTreeSet<_> = seen_on_b.iter().map(|stored| stored.event.id).collect();
    assert_eq!(ids, written, "every event of both nodes, once");
    let replayed = b
        .stored_since(StreamPosition(0), 1000)
        .await
        .expect("stored_since");
    assert!(
        replayed == seen_on_b,
        "the stream is what stored_since replays"
    );
    assert_eq!(
        a.stream_head().await.expect("head"),
        seen_on_b[2 * EACH - 1].position
    );
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_to_two_nodes_at_once_is_stored_once() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let a = Arc::new(open(&database).await);
    let b = Arc::new(open(&database).await);
    let submitted = json!({"title": "Deploy api 2.0", "system": "api", "author": "ci",
                           "occurred_at": "2026-11-01T10:00:00Z", "idempotency_key": "both"});
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = if n % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        let submitted = submitted.clone();
        tasks.spawn(async move { insert_one(&*store, record(&submitted)).await });
    }
    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("a task") {
            InsertOutcome::Created(event) => created.push(event),
            InsertOutcome::Duplicate(event) => duplicates.push(event),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one is created");
    assert_eq!(duplicates.len(), 15);
    assert!(duplicates.iter().all(|event| event.id == created[0].id));
    assert_eq!(b.count().await.expect("count"), 1);
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

/// A writer that does not take the write lock (an older tfr, a hand-made import) can still
/// race on a key: the unique index stops the second insert, which is then answered from the
/// stored event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_violation_is_answered_from_the_stored_event() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let store = Arc::new(open(&database).await);
    let original = create(
        &*store,
        record(&json!({"title": "Original", "system": "s", "author": "a",
                       "occurred_at": "2026-11-01T10:00:00Z", "idempotency_key": "first"})),
    )
    .await;
    // Another writer takes the key "race" for the stored event, and has not committed yet.
    let mut other = admin_connection(&database).await;
    other.execute("BEGIN").await.expect("begin");
    query("UPDATE events SET idempotency_key = 'race' WHERE id = $1")
        .bind(original.id.as_uuid())
        .execute(&mut other)
        .await
        .expect("update");
    let racing = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            let submitted = json!({"title": "Racing", "system": "s", "author": "a",
                                   "idempotency_key": "race"});
            insert_one(&*store, record(&submitted)).await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.execute("COMMIT").await.expect("commit");
    assert_eq!(
        racing.await.expect("the racing insert"),
        InsertOutcome::Conflict {
            idempotency_key: "race".into(),
            existing: original.id,
        }
    );
    assert_eq!(store.count().await.expect("count"), 1);
    store.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_keeps_ids_and_stores_nothing_twice() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let store = open(&database).await;
    let mut keyed = record(&json!({"title": "Keyed", "system": "s", "author": "a",
                                   "occurred_at": "2026-11-01T10:00:00Z",
                                   "diff": "+x\n", "idempotency_key": "k"}));
    keyed.event.recorded_at = ts("2026-11-01T10:00:01.5Z");
    keyed.event.submitted_by = "deploy-token".into();
    let keyless = record(&minimal("Keyless", ts("2026-11-02T10:00:00Z")));
    let records: Vec<InsertRecord> = vec![keyed.clone(), keyless.clone()];
    assert_eq!(
        store.import(records.clone()).await.expect("import"),
        ImportReport {
            stored: 2,
            skipped: 0
        }
    );
    assert_eq!(
        store.import(records).await.expect("import again"),
        ImportReport {
            stored: 0,
            skipped: 2
        }
    );
    for sent in [&keyed.event, &keyless.event] {
        assert_eq!(store.get(sent.id).await.expect("get").as_ref(), Some(sent));
    }
    // The digest came along: a retry of the original submission is a duplicate.
    let retry = record(&json!({"title": "Keyed", "system": "s", "author": "a",
                               "occurred_at": "2026-11-01T10:00:00Z",
                               "diff": "+x\n", "idempotency_key": "k"}));
    assert!(matches!(
        insert_one(&store, retry).await,
        InsertOutcome::Duplicate(_)
    ));
    assert_eq!(store.count().await.expect("count"), 2);
    let stored = create_all(
        &store,
        vec![record(&minimal("after", ts("2026-11-03T10:00:00Z")))],
    )
    .await;
    let replayed = store
        .stored_since(StreamPosition(0), 10)
        .await
        .expect("stored_since");
    let titles: Vec<&str> = replayed.iter().map(|s| s.event.title.as_str()).collect();
    assert_eq!(titles, ["Keyed", "Keyless", "after"]);
    assert_eq!(replayed[2].event.id, stored[0].id);
    store
        .insert(Vec::new(), BatchMode::Independent)
        .await
        .expect("empty insert");
    store.shutdown().await.expect("shutdown");
}

/// A history loaded faster than autovacuum looks gets planner statistics all the same: the
/// writer analyses `events` once the stream head passes 1,000 (and each time it doubles).
#[tokio::test]
async fn a_fast_growing_history_is_analysed() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let store = open(&database).await;
    let mut connection = admin_connection(&database).await;
    let analysed = "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables \
                    WHERE relname = 'events'";
    let base = ts("2026-11-01T00:00:00Z");
    let batch = |from: i64| -> Vec<InsertRecord> {
        (from..from + 500)
            .map(|n| {
                let at = base + jiff::SignedDuration::from_secs(n);
                record(&minimal(&format!("event {n}"), at))
            })
            .collect()
    };
    store
        .insert(batch(0), BatchMode::Independent)
        .await
        .expect("insert");
    let before: bool = query_scalar(analysed)
        .fetch_one(&mut connection)
        .await
        .expect("pg_stat_user_tables");
    assert!(!before, "500 events are not analysed");
    for from in [500, 1000] {
        store
            .insert(batch(from), BatchMode::Independent)
            .await
            .expect("insert");
    }
    let mut done = false;
    for _ in 0..100 {
        done = query_scalar(analysed)
            .fetch_one(&mut connection)
            .await
            .expect("pg_stat_user_tables");
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "1,500 events were never analysed");
    store.shutdown().await.expect("shutdown");
}
