//! The shared conformance suite on a fresh SQLite file per case, and the SQLite-specific
//! promises: durability across reopen, repeatable migrations, WAL and `synchronous=FULL`.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::json;
use tempfile::TempDir;
use tfr_core::{Event, EventPatch};
use tfr_store::conformance::{self, create_all, insert_one, record, titles, ts};
use tfr_store::{BatchMode, InsertOutcome, InsertRecord, Store, StoreError};
use tfr_store_sqlite::{DATABASE_FILE, SqliteStore};

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir).unwrap_or_else(|error| panic!("cannot open the store: {error}"))
}

/// Undoes migration 8 on a closed database: the full-text index back in `tfr.db` (as
/// migration 1 made it, filled from the events), without the change queue. Tests that take a
/// database back to an older version start with this.
const UNDO_VERSION_8: &str = "
    DROP TRIGGER fts_stale_delete; DROP TRIGGER fts_stale_update; DROP TABLE fts_stale;
    DROP TABLE store_identity;
    DELETE FROM schema_migrations WHERE version >= 8;
    CREATE VIRTUAL TABLE events_fts USING fts5 (
        title, description, system, author, tags_text, version,
        content = 'events', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO events_fts (events_fts) VALUES ('rebuild');
    CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
        INSERT INTO events_fts (events_fts, rowid, title, description, system, author, tags_text, version)
        VALUES ('delete', old.seq, old.title, old.description, old.system, old.author, old.tags_text, old.version);
    END;
    CREATE TRIGGER events_fts_update AFTER UPDATE OF title, description, system, author, tags_text, version ON events BEGIN
        INSERT INTO events_fts (events_fts, rowid, title, description, system, author, tags_text, version)
        VALUES ('delete', old.seq, old.title, old.description, old.system, old.author, old.tags_text, old.version);
        INSERT INTO events_fts (rowid, title, description, system, author, tags_text, version)
        VALUES (new.seq, new.title, new.description, new.system, new.author, new.tags_text, new.version);
    END;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    conformance::run_all(|| async {
        let dir = TempDir::new().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(open(dir.path()));
        (store, dir)
    })
    .await;
}

/// Numbers below a bound from a small linear congruential generator seeded with `seed`: the
/// same cases on every run.
fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |below| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) % below
    }
}

fn now() -> Timestamp {
    ts("2026-11-06T00:00:00Z")
}

#[tokio::test]
async fn data_persists_across_shutdown_and_reopen() {
    let dir = TempDir::new().expect("a temporary directory");
    let submitted = [
        json!({"title": "Deploy api 1.0", "system": "api", "author": "ci",
               "occurred_at": "2026-11-01T10:00:00.000001Z", "tags": ["release:1.0"],
               "diff": "--- a\n+++ b\n+x\n", "idempotency_key": "deploy-1"}),
        json!({"title": "Config push", "system": "edge", "author": "ops",
               "occurred_at": "2026-11-02T10:00:00Z"}),
    ];
    let store = open(dir.path());
    let events = create_all(&store, submitted.iter().map(record).collect()).await;
    let patched = store
        .patch(
            events[1].id,
            EventPatch {
                add_tags: vec!["owner:zed".into()],
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    store.shutdown().await.expect("shutdown");
    drop(store);
    let wal = dir.path().join(format!("{DATABASE_FILE}-wal"));
    if let Ok(metadata) = std::fs::metadata(&wal) {
        assert_eq!(
            metadata.len(),
            0,
            "shutdown checkpoints and truncates the WAL"
        );
    }

    let store = open(dir.path());
    assert_eq!(store.count().await.expect("count"), 2);
    assert_eq!(
        store.get(events[0].id).await.expect("get"),
        Some(events[0].clone())
    );
    assert_eq!(
        store.get(events[1].id).await.expect("get"),
        Some(patched.clone())
    );
    assert_eq!(
        titles(&store, "", now()).await,
        ["Config push", "Deploy api 1.0"]
    );
    assert_eq!(titles(&store, "zed", now()).await, ["Config push"]);
    assert_eq!(
        titles(&store, "tag:release:1.0", now()).await,
        ["Deploy api 1.0"]
    );
    assert_eq!(
        insert_one(&store, record(&submitted[0])).await,
        InsertOutcome::Duplicate(events[0].without_diff()),
        "idempotency keys survive a restart"
    );
    store.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn reopening_migrates_once() {
    let dir = TempDir::new().expect("a temporary directory");
    for _ in 0..3 {
        let store = open(dir.path());
        store.ping().await.expect("ping");
        store.shutdown().await.expect("shutdown");
    }
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).expect("open");
    let versions: Vec<i64> = connection
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        versions,
        [1, 2, 3, 4, 5, 6, 7, 8],
        "each migration is recorded once"
    );
    let in_main: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'events_fts'",
            [],
            |row| row.get(0),
        )
        .expect("the schema");
    assert_eq!(
        in_main, 0,
        "migration 8 moves the full-text index out of tfr.db"
    );
    let index = Connection::open(dir.path().join("tfr-fts.db")).expect("the index's own file");
    let automerge: i64 = index
        .query_row(
            "SELECT v FROM events_fts_config WHERE k = 'automerge'",
            [],
            |row| row.get(0),
        )
        .expect("the full-text index's automerge setting");
    assert_eq!(automerge, 8, "segments are merged 8 at a time");
}

#[tokio::test]
async fn a_database_newer_than_this_build_is_refused() {
    let dir = TempDir::new().expect("a temporary directory");
    open(dir.path()).shutdown().await.expect("shutdown");
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).expect("open");
    connection
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '')",
            [],
        )
        .expect("insert");
    drop(connection);
    let error = SqliteStore::open(dir.path())
        .err()
        .expect("a newer schema is refused");
    assert!(error.to_string().contains("newer"), "{error}");
}

#[tokio::test]
async fn the_writer_uses_wal_and_full_sync() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    let pragmas = store.writer_pragmas().await.expect("pragmas");
    assert_eq!(pragmas.journal_mode, "wal");
    assert_eq!(pragmas.synchronous, 2, "synchronous=FULL");
    store.shutdown().await.expect("shutdown");
    assert!(store.writer_pragmas().await.is_err());
}

/// Inserts racing a shutdown either succeed, and are then on disk, or fail as unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_insert_survives_a_shutdown() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = Arc::new(open(dir.path()));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            // Insert until the store refuses: every task is still writing at shutdown.
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let submitted = conformance::minimal(&format!("{task}-{n}"), now());
                match insert_one_raw(&*store, record(&submitted)).await {
                    Ok(event) => acknowledged.push(event),
                    Err(StoreError::Unavailable(_)) => break,
                    Err(other) => panic!("insert failed with {other:?}"),
                }
            }
            acknowledged
        });
    }
    while store.count().await.expect("count") < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store.shutdown().await.expect("shutdown");
    let mut acknowledged = Vec::new();
    while let Some(result) = tasks.join_next().await {
        acknowledged.extend(result.expect("task"));
    }
    drop(store);

    let store = open(dir.path());
    assert_eq!(
        store.count().await.expect("count"),
        u64::try_from(acknowledged.len()).expect("small")
    );
    for event in acknowledged {
        assert_eq!(store.get(event.id).await.expect("get"), Some(event));
    }
    store.shutdown().await.expect("shutdown");
}

async fn insert_one_raw(store: &dyn Store, record: InsertRecord) -> Result<Event, StoreError> {
    let outcomes = store.insert(vec![record], BatchMode::Independent).await?;
    match outcomes.into_iter().next() {
        Some(InsertOutcome::Created(event)) => Ok(event),
        other => panic!("expected Created, got {other:?}"),
    }
}

/// A store dropped without shutdown can be opened again at once (its writer thread may still
/// be finishing).
#[tokio::test]
async fn reopening_right_after_a_drop() {
    let dir = TempDir::new().expect("a temporary directory");
    for round in 0..5_u64 {
        let store = open(dir.path());
        assert_eq!(store.count().await.expect("count"), round);
        create_all(&store, vec![record(&conformance::minimal("e", now()))]).await;
        drop(store);
    }
    let store = open(dir.path());
    assert_eq!(store.count().await.expect("count"), 5);
    store.shutdown().await.expect("shutdown");
}

/// Migration 2 fills the rollups from the events already stored: a database upgraded from
/// version 1 gives the same histograms as one that always had them.
#[tokio::test]
async fn rollups_are_backfilled_by_their_migration() {
    use tfr_core::stats::GroupField;
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    let mut records = Vec::new();
    for i in 0..300_i64 {
        let system = ["player", "api", "cdn"][usize::try_from(i % 3).unwrap_or(0)];
        let at = jiff::Timestamp::from_second(1_700_000_000 + i * 997).expect("a time");
        let mut event = serde_json::json!({"title": format!("e{i}"), "system": system,
            "author": "a", "occurred_at": at.to_string()});
        if i % 4 == 0 {
            event["team"] = serde_json::json!("video");
        }
        records.push(record(&event));
    }
    create_all(&store, records).await;
    store.shutdown().await.expect("shutdown");
    // Back to schema version 1.
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).expect("open");
    connection
        .execute_batch(UNDO_VERSION_8)
        .expect("undo migration 8");
    connection
        .execute_batch(
            "DROP TRIGGER IF EXISTS rollups_insert; DROP TRIGGER rollups_delete; DROP TABLE rollups;
             DROP TABLE rollups_hour; DROP TABLE rollups_day; DROP TABLE seq_blocks;
             DROP TABLE api_tokens; DROP TABLE audit_log;
             DELETE FROM schema_migrations WHERE version >= 2;
             CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
                 INSERT INTO events_fts (rowid, title, description, system, author, tags_text,
                     version)
                 VALUES (new.seq, new.title, new.description, new.system, new.author,
                     new.tags_text, new.version);
             END;",
        )
        .expect("downgrade");
    drop(connection);
    let store = open(dir.path());
    let range = |query: &str| tfr_store::EventFilter {
        query: tfr_core::query::parse(query).expect("a query"),
        from: Some(jiff::Timestamp::from_second(1_700_000_123).expect("a time")),
        to: Some(jiff::Timestamp::from_second(1_700_250_000).expect("a time")),
        now: now(),
    };
    for group in [None, Some(GroupField::System), Some(GroupField::Team)] {
        // No query: whole quarters from the rollups. A query term that matches everything
        // forces a scan of the events.
        let mut rolled = store
            .quarter_counts(&range(""), group)
            .await
            .expect("counts");
        let mut scanned = store
            .quarter_counts(&range("after:1900-01-01"), group)
            .await
            .expect("counts");
        let key = |c: &tfr_store::QuarterCount| (c.quarter, c.group.clone());
        rolled.sort_by_key(key);
        scanned.sort_by_key(key);
        let merge = |counts: Vec<tfr_store::QuarterCount>| {
            let mut merged: std::collections::BTreeMap<(i64, Option<String>), u64> =
                std::collections::BTreeMap::new();
            for c in counts {
                *merged.entry((c.quarter, c.group)).or_default() += c.count;
            }
            merged
        };
        let rolled = merge(rolled);
        assert!(!rolled.is_empty());
        assert_eq!(rolled, merge(scanned), "{group:?}");
    }
    store.shutdown().await.expect("shutdown");
}

/// Histograms from the rollups equal those counted from the events themselves, per quarter,
/// in total and grouped by system and team.
async fn assert_rollups_match_events(store: &SqliteStore) {
    use tfr_core::stats::GroupField;
    let range = |query: &str| tfr_store::EventFilter {
        query: tfr_core::query::parse(query).expect("a query"),
        from: Some(Timestamp::from_second(1_699_000_000).expect("a time")),
        to: Some(Timestamp::from_second(1_701_000_000).expect("a time")),
        now: now(),
    };
    let merge = |counts: Vec<tfr_store::QuarterCount>| {
        let mut merged = std::collections::BTreeMap::<(i64, Option<String>), u64>::new();
        for c in counts {
            *merged.entry((c.quarter, c.group)).or_default() += c.count;
        }
        merged
    };
    for group in [None, Some(GroupField::System), Some(GroupField::Team)] {
        let rolled = merge(
            store
                .quarter_counts(&range(""), group)
                .await
                .expect("counts"),
        );
        let scanned = merge(
            store
                .quarter_counts(&range("after:1900-01-01"), group)
                .await
                .expect("counts"),
        );
        assert!(!rolled.is_empty());
        assert_eq!(rolled, scanned, "{group:?}");
    }
}

/// Migration 4 replaces the per-row indexing triggers with bulk statements in the writer: a
/// database upgraded from version 3 keeps what it had indexed, and indexes and counts the
/// events stored after the upgrade once each, through patches and deletions.
#[tokio::test]
async fn a_database_from_version_3_indexes_new_events_in_bulk() {
    let dir = TempDir::new().expect("a temporary directory");
    let event = |word: &str, i: i64| {
        let system = ["player", "api", "cdn"][usize::try_from(i % 3).unwrap_or(0)];
        let at = Timestamp::from_second(1_700_000_000 + i * 997).expect("a time");
        let mut event = json!({"title": format!("{word} {i}"), "system": system,
            "author": "a", "occurred_at": at.to_string()});
        if i % 4 == 0 {
            event["team"] = json!("video");
        }
        record(&event)
    };
    let store = open(dir.path());
    create_all(&store, (0..30).map(|i| event("old", i)).collect()).await;
    store.shutdown().await.expect("shutdown");
    drop(store);
    // Back to schema version 3, with the per-row triggers of migrations 1 and 2.
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).expect("open");
    connection
        .execute_batch(UNDO_VERSION_8)
        .expect("undo migration 8");
    connection
        .execute_batch(
            "DELETE FROM schema_migrations WHERE version >= 4;
             DROP TABLE rollups_hour; DROP TABLE rollups_day; DROP TABLE seq_blocks;
             CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
                 INSERT INTO events_fts (rowid, title, description, system, author, tags_text,
                     version)
                 VALUES (new.seq, new.title, new.description, new.system, new.author,
                     new.tags_text, new.version);
             END;
             CREATE TRIGGER rollups_insert AFTER INSERT ON events BEGIN
                 INSERT INTO rollups (dimension, quarter, value, count)
                 SELECT d.dimension, q.quarter, d.value, 1
                 FROM (SELECT CASE WHEN new.occurred_at >= 0 THEN new.occurred_at / 900000000
                                   ELSE (new.occurred_at + 1) / 900000000 - 1 END AS quarter) AS q,
                      (SELECT '' AS dimension, '' AS value
                       UNION ALL SELECT 'kind', new.kind
                       UNION ALL SELECT 'system', new.system
                       UNION ALL SELECT 'author', new.author
                       UNION ALL SELECT 'team', COALESCE(new.team, '')
                       UNION ALL SELECT 'environment', COALESCE(new.environment, '')
                       UNION ALL SELECT 'source', COALESCE(new.source, '')) AS d
                 WHERE true
                 ON CONFLICT (dimension, quarter, value) DO UPDATE SET count = count + 1;
             END;",
        )
        .expect("downgrade");
    drop(connection);

    let store = open(dir.path());
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).expect("open");
    let triggers: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'
             AND name IN ('events_fts_insert', 'rollups_insert')",
            [],
            |row| row.get(0),
        )
        .expect("triggers");
    assert_eq!(triggers, 0, "migration 4 drops the insert triggers");
    drop(connection);
    // Several requests, in the same quarters as the old events (the upsert's update path).
    let mut created = Vec::new();
    for chunk in (0..30).collect::<Vec<i64>>().chunks(7) {
        created.extend(create_all(&store, chunk.iter().map(|&i| event("new", i)).collect()).await);
    }
    assert_eq!(store.count().await.expect("count"), 60);
    assert_eq!(titles(&store, "old", now()).await.len(), 30);
    assert_eq!(titles(&store, "new", now()).await.len(), 30);
    assert_eq!(titles(&store, "new 7", now()).await, ["new 7"]);
    assert_rollups_match_events(&store).await;

    // The update and delete triggers find the new rows indexed.
    store
        .patch(
            created[3].id,
            EventPatch {
                add_tags: vec!["hotfix".into()],
                ..EventPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    assert_eq!(titles(&store, "hotfix", now()).await, ["new 3"]);
    store
        .delete_event(tfr_store::Deletion {
            id: created[5].id,
            actor: "admin".into(),
            at: now(),
            reason: None,
        })
        .await
        .expect("delete")
        .expect("found");
    assert_eq!(titles(&store, "new", now()).await.len(), 29);
    assert!(titles(&store, "new 5", now()).await.is_empty());
    assert_eq!(store.count().await.expect("count"), 59);
    assert_rollups_match_events(&store).await;
    store.shutdown().await.expect("shutdown");
}

/// A word in more events than the lookup cap switches pages to walking the time index and
/// probing the matches: the pages must be exactly those of the other plan (newest first, each
/// event once, filters and cursors honoured).
#[tokio::test]
async fn common_words_page_like_rare_ones() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    let total = 6_200_i64;
    let mut records = Vec::new();
    for i in 0..total {
        // Times out of insertion order, with ties, so order comes from the index alone.
        let second = 1_700_000_000 + (i * 7_919) % 50_000;
        let at = Timestamp::from_second(second).expect("a time");
        let system = if i % 3 == 0 { "player" } else { "api" };
        let title = if i % 10 == 0 {
            format!("common rare {i}")
        } else {
            format!("common {i}")
        };
        records.push(record(
            &json!({"title": title, "system": system, "author": "a",
            "occurred_at": at.to_string()}),
        ));
    }
    create_all(&store, records).await;
    for (query, expected) in [
        ("common", total),
        (
            "common system:player",
            (0..total).filter(|i| i % 3 == 0).count() as i64,
        ),
        (
            "common -rare",
            (0..total).filter(|i| i % 10 != 0).count() as i64,
        ),
        ("rare", (0..total).filter(|i| i % 10 == 0).count() as i64),
    ] {
        let filter = tfr_store::EventFilter {
            query: tfr_core::query::parse(query).expect("a query"),
            from: None,
            to: None,
            now: now(),
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list(
                    &filter,
                    tfr_store::PageRequest {
                        limit: 500,
                        cursor,
                        ..tfr_store::PageRequest::default()
                    },
                )
                .await
                .expect("a page");
            seen.extend(page.events.iter().map(|e| (e.occurred_at, e.id)));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len() as i64, expected, "{query}");
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(seen, sorted, "{query}: newest first, each once");
    }
    store.shutdown().await.expect("shutdown");
}

/// Every `(dimension, unit, value)` count above zero of a rollup table.
type Counts = std::collections::BTreeMap<(String, i64, String), i64>;

fn rollup_rows(connection: &Connection, table: &str, unit: &str) -> Counts {
    connection
        .prepare(&format!(
            "SELECT dimension, {unit}, value, count FROM {table} WHERE count <> 0"
        ))
        .expect("prepare")
        .query_map([], |row| {
            Ok(((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The hourly and daily rollups hold exactly the quarter-hour rollups summed per hour and per
/// day (floored, computed here rather than in SQL), and each dimension adds up to the events.
fn assert_levels_match_quarters(dir: &Path, events: i64) {
    let connection = Connection::open(dir.join(DATABASE_FILE)).expect("open");
    let quarters = rollup_rows(&connection, "rollups", "quarter");
    assert!(!quarters.is_empty(), "the quarters count the events");
    for (table, unit, per) in [("rollups_hour", "hour", 4_i64), ("rollups_day", "day", 96)] {
        let mut expected = Counts::new();
        for ((dimension, quarter, value), count) in &quarters {
            *expected
                .entry((dimension.clone(), quarter.div_euclid(per), value.clone()))
                .or_default() += count;
        }
        expected.retain(|_, count| *count != 0);
        let found = rollup_rows(&connection, table, unit);
        assert_eq!(found, expected, "{table} sums the quarters per {unit}");
        for dimension in [
            "",
            "kind",
            "system",
            "author",
            "team",
            "environment",
            "source",
        ] {
            let total: i64 = found
                .iter()
                .filter(|((d, _, _), _)| d == dimension)
                .map(|(_, count)| count)
                .sum();
            assert_eq!(
                total, events,
                "{table}, dimension {dimension:?}: every event"
            );
        }
    }
}

/// Daily buckets from the rollups equal the definition over quarters, in total and grouped.
async fn assert_buckets_match_quarters(
    store: &SqliteStore,
    filter: &tfr_store::EventFilter,
    days: &[Timestamp],
) {
    use tfr_core::stats::GroupField;
    for group in [None, Some(GroupField::Kind), Some(GroupField::Team)] {
        let counts = store
            .bucket_counts(filter, group, days)
            .await
            .expect("bucket counts");
        let quarters = store.quarter_counts(filter, group).await.expect("counts");
        assert!(counts.len() > 80, "{group:?}: {counts:?}");
        assert_eq!(
            counts,
            tfr_store::bucket_counts_from_quarters(quarters, days),
            "{group:?}"
        );
    }
}

/// Migration 5 fills the hourly and daily rollups from the quarter-hours of a database at
/// version 4, before 1970 included; then stored and deleted events keep all three levels
/// equal, and histograms from them equal the definition over quarters.
#[tokio::test]
async fn rollup_levels_are_filled_by_their_migration() {
    let dir = TempDir::new().expect("a temporary directory");
    let event = |i: i64| {
        let system = ["player", "api", "cdn"][usize::try_from(i % 3).unwrap_or(0)];
        // Every 7,777 s (not a whole number of quarters) from 1969-12-20 on, for ~90 days.
        let at = Timestamp::from_second(-1_000_000 + i * 7_777 + i % 5).expect("a time");
        let kind = ["deploy", "config"][usize::try_from(i % 2).unwrap_or(0)];
        let mut event = json!({"title": format!("e{i}"), "system": system,
            "author": "a", "kind": kind, "occurred_at": at.to_string()});
        if i % 4 == 0 {
            event["team"] = json!("video");
        }
        record(&event)
    };
    let store = open(dir.path());
    let events = create_all(&store, (0..1000).map(event).collect()).await;
    // A deletion leaves rows counting zero in the quarters.
    for gone in [&events[10], &events[11]] {
        store
            .delete_event(tfr_store::Deletion {
                id: gone.id,
                actor: "admin".into(),
                at: now(),
                reason: None,
            })
            .await
            .expect("delete")
            .expect("found");
    }
    store.shutdown().await.expect("shutdown");
    drop(store);
    // Back to schema version 4, with the delete trigger of migration 2.
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).expect("open");
    connection
        .execute_batch(UNDO_VERSION_8)
        .expect("undo migration 8");
    connection
        .execute_batch(
            "DELETE FROM schema_migrations WHERE version >= 5;
             DROP TABLE rollups_hour; DROP TABLE rollups_day; DROP TABLE seq_blocks;
             DROP TRIGGER rollups_delete;
             CREATE TRIGGER rollups_delete AFTER DELETE ON events BEGIN
                 UPDATE rollups SET count = count - 1
                 WHERE quarter = CASE WHEN old.occurred_at >= 0 THEN old.occurred_at / 900000000
                                      ELSE (old.occurred_at + 1) / 900000000 - 1 END
                   AND ((dimension = '' AND value = '')
                     OR (dimension = 'kind' AND value = old.kind)
                     OR (dimension = 'system' AND value = old.system)
                     OR (dimension = 'author' AND value = old.author)
                     OR (dimension = 'team' AND value = COALESCE(old.team, ''))
                     OR (dimension = 'environment' AND value = COALESCE(old.environment, ''))
                     OR (dimension = 'source' AND value = COALESCE(old.source, '')));
             END;",
        )
        .expect("downgrade");
    drop(connection);

    let store = open(dir.path());
    assert_levels_match_quarters(dir.path(), 998);
    assert_seq_blocks_match_events(dir.path());
    let filter = tfr_store::EventFilter {
        query: tfr_core::query::Query::all(),
        from: Some(ts("1969-12-20T03:07:00Z")),
        to: Some(ts("1970-03-15T17:52:30Z")),
        now: now(),
    };
    let days: Vec<Timestamp> = (0..86)
        .map(|day| ts("1969-12-20T00:00:00Z") + jiff::SignedDuration::from_hours(24 * day))
        .collect();
    assert_buckets_match_quarters(&store, &filter, &days).await;
    // New events, in the units of the old ones (the upserts' update path) and in new ones.
    let created = create_all(&store, (500..1500).map(event).collect()).await;
    assert_levels_match_quarters(dir.path(), 1998);
    assert_seq_blocks_match_events(dir.path());
    for gone in [&created[0], &created[999], &events[500]] {
        store
            .delete_event(tfr_store::Deletion {
                id: gone.id,
                actor: "admin".into(),
                at: now(),
                reason: None,
            })
            .await
            .expect("delete")
            .expect("found");
    }
    assert_levels_match_quarters(dir.path(), 1995);
    assert_buckets_match_quarters(&store, &filter, &days).await;
    store.shutdown().await.expect("shutdown");
}

/// `seq_blocks` (migration 7) holds the time range of every block of 4,096 row numbers, as
/// counted from the events: filled by the migration, then kept by each insert.
fn assert_seq_blocks_match_events(dir: &std::path::Path) {
    let connection = Connection::open(dir.join(DATABASE_FILE)).expect("open");
    let query = |sql: &str| -> Vec<(i64, i64, i64)> {
        connection
            .prepare(sql)
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let kept = query("SELECT block, min_occurred_at, max_occurred_at FROM seq_blocks ORDER BY 1");
    let counted = query(
        "SELECT seq >> 12, min(occurred_at), max(occurred_at) FROM events GROUP BY 1 ORDER BY 1",
    );
    assert!(!counted.is_empty());
    assert_eq!(kept, counted, "block ranges as the events say");
}

/// The SQLite store reads buckets from daily, hourly and quarter-hour rollups; whatever the
/// boundaries (inside quarters, before the range, repeated, around 1970) and the range (inside
/// quarters, open at either end), the result is the definition's: quarter counts summed into
/// the buckets.
#[tokio::test]
async fn bucket_counts_equal_the_definition_for_any_boundaries() {
    use tfr_core::stats::GroupField;
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    let mut draw = numbers(0x2545_f491_4f6c_dd1d);
    let mut next =
        move |below: i64| i64::try_from(draw(u64::try_from(below).unwrap_or(1))).unwrap_or(0);
    let origin = -3 * 86_400_000_000_i64; // 1969-12-29
    let span = 40 * 86_400_000_000_i64;
    let mut records = Vec::new();
    for i in 0..2000 {
        // Times on whole quarters, whole hours and whole days as well as anywhere.
        let unit = [1_i64, 900_000_000, 3_600_000_000, 86_400_000_000]
            [usize::try_from(i % 4).unwrap_or(0)];
        let at = origin + (next(span) / unit) * unit;
        let at = Timestamp::from_microsecond(at).expect("a time");
        let kind = ["deploy", "config", "flag"][usize::try_from(i % 3).unwrap_or(0)];
        let mut event = json!({"title": format!("r{i}"), "system": "s",
            "author": "a", "kind": kind, "occurred_at": at.to_string()});
        if i % 5 != 0 {
            event["team"] = json!("core");
        }
        records.push(record(&event));
    }
    create_all(&store, records).await;
    let instant = |micros: i64| Timestamp::from_microsecond(micros).expect("a time");
    let mut nonempty = 0;
    for case in 0..300 {
        // A range, sometimes open, on or off quarters.
        let mut point = |aligned: bool| {
            let micros = origin - 86_400_000_000 + next(span + 2 * 86_400_000_000);
            if aligned {
                micros.div_euclid(900_000_000) * 900_000_000
            } else {
                micros
            }
        };
        let mut ends = [point(case % 3 == 0), point(case % 2 == 0)];
        ends.sort_unstable();
        let from = (case % 7 != 0).then(|| instant(ends[0]));
        let to = (case % 11 != 0).then(|| instant(ends[1]));
        // Boundaries: ascending, some inside quarters, some repeated, the first anywhere.
        let step = [
            900_000_000_i64,
            3_600_000_000,
            86_400_000_000,
            7 * 86_400_000_000,
            5_400_000_000, // 1 h 30: off the UTC hours
            1_234_567_891, // off every quarter
        ][usize::try_from(case % 6).unwrap_or(0)];
        let mut at = ends[0] - next(3 * step);
        if case % 4 == 0 {
            at = at.div_euclid(step.min(86_400_000_000)) * step.min(86_400_000_000);
        }
        let mut starts = Vec::new();
        for _ in 0..1 + next(60) {
            starts.push(instant(at));
            if next(10) != 0 {
                at += step;
            }
        }
        let filter = tfr_store::EventFilter {
            query: tfr_core::query::Query::all(),
            from,
            to,
            now: now(),
        };
        for group in [None, Some(GroupField::Kind), Some(GroupField::Team)] {
            let counts = store
                .bucket_counts(&filter, group, &starts)
                .await
                .expect("bucket counts");
            let quarters = store.quarter_counts(&filter, group).await.expect("counts");
            assert_eq!(
                counts,
                tfr_store::bucket_counts_from_quarters(quarters, &starts),
                "case {case}: from {from:?}, to {to:?}, group {group:?}, starts {starts:?}"
            );
            nonempty += usize::from(!counts.is_empty());
        }
    }
    assert!(nonempty > 600, "most cases count something: {nonempty}");
    store.shutdown().await.expect("shutdown");
}

/// Newest-first pages filtered by words walk the matches in storage order and stop early
/// (`text_walk`); oldest-first pages never do. Over a history whose storage order is often not
/// its time order — backfills far in the past, events in the future, runs of events at the
/// same microsecond — every query paged newest first must give exactly the oldest-first pages
/// reversed, with and without a `to` bound and other terms.
#[tokio::test]
async fn text_pages_newest_first_equal_oldest_first_reversed() {
    use tfr_store::{EventFilter, Order, PageRequest};
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    let mut next = numbers(0x9e37_79b9_7f4a_7c15);
    let start = ts("2026-01-01T00:00:00Z").as_microsecond();
    let mut records = Vec::new();
    for i in 0..9_000_i64 {
        let roll = next(100);
        let at = match (i, roll) {
            // Stored early, newer than everything: no page is done before it is found.
            (100, _) => start + 100_000 * 60_000_000,
            // Backfilled, anywhere in the year before, in the first blocks only.
            (..3_000, 0..=9) => start - i64::try_from(next(365 * 86_400_000_000)).unwrap_or(0),
            // Reported ahead of time, in the last block only: newer than the blocks below.
            (8_192.., 10..=39) => start + (i + 20_000) * 60_000_000,
            // Runs of events at the same microsecond.
            (_, 40..=54) => start + (i / 10) * 60_000_000,
            _ => start + i * 60_000_000 + i64::try_from(next(120_000_000)).unwrap_or(0),
        };
        let mut words = vec![format!("n{i}")];
        if i == 100 || next(2) == 0 {
            words.push("alpha".into());
        }
        if next(50) == 0 {
            words.push("beta".into());
        }
        if i % 900 == 7 {
            words.push("gamma".into());
        }
        let at = Timestamp::from_microsecond(at).expect("a time");
        records.push(record(&json!({
            "title": words.join(" "), "system": format!("s{}", i % 5), "author": "a",
            "occurred_at": at.to_string()})));
    }
    for chunk in records.chunks(1000) {
        create_all(&store, chunk.to_vec()).await;
    }
    let pages = |q: &str, to: Option<&str>, order: Order| {
        let filter = EventFilter {
            query: tfr_core::query::parse(q).expect("a query"),
            from: None,
            to: to.map(ts),
            now: now(),
        };
        let store = &store;
        async move {
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = store
                    .list(
                        &filter,
                        PageRequest {
                            limit: 37,
                            cursor,
                            order,
                            include_diffs: false,
                        },
                    )
                    .await
                    .expect("a page");
                all.extend(page.events.into_iter().map(|event| event.id));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return all,
                }
            }
        }
    };
    let mut walked_any = false;
    for q in [
        "alpha",
        "beta",
        "gamma",
        "alpha system:s1",
        "alpha -beta",
        "n12*",
        "zzz",
    ] {
        for to in [
            None,
            Some("2026-01-03T00:00:00Z"),
            Some("2025-06-01T00:00:00Z"),
        ] {
            let newest = pages(q, to, Order::NewestFirst).await;
            let mut oldest = pages(q, to, Order::OldestFirst).await;
            oldest.reverse();
            assert_eq!(newest, oldest, "q={q} to={to:?}");
            walked_any |= newest.len() > 37;
        }
    }
    assert!(walked_any, "some queries span several pages");
}

/// Waits until the full-text index has caught up with every commit (at most 30 s).
async fn caught_up(store: &SqliteStore) {
    assert!(
        store
            .wait_for_full_text(std::time::Duration::from_secs(30))
            .await
            .expect("wait"),
        "the full-text index caught up"
    );
}

/// Stores `count` minimal events titled `"{prefix} {i}"`, all at `at`.
async fn create_titled(
    store: &SqliteStore,
    prefix: &str,
    count: usize,
    at: Timestamp,
) -> Vec<Event> {
    create_all(
        store,
        (0..count)
            .map(|i| record(&conformance::minimal(&format!("{prefix} {i}"), at)))
            .collect(),
    )
    .await
}

/// Removes the full-text index's file and those beside it with these suffixes.
fn remove_index_files(dir: &Path, suffixes: &[&str]) {
    for suffix in suffixes {
        let _ = std::fs::remove_file(dir.join(format!("tfr-fts.db{suffix}")));
    }
}

/// Full text reads the index for the events it holds and checks the others one by one: new
/// events past its mark, and events patched or deleted since it took them (`fts.rs`). Every
/// search must give the same events whichever way each event is read, and the same as the
/// in-memory rules of the live stream (`Query::matches`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_text_is_the_same_from_the_index_and_from_the_tail() {
    let dir = TempDir::new().expect("a temporary directory");
    let words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "café",
        "Cafe",
        "rollback",
        "v1.2.3",
        "naïve",
        "deploy-api",
        "über",
        "x",
        "kubernetes",
        "kube",
    ];
    let mut state = 7_u64;
    let mut pick = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        usize::try_from(state >> 33).unwrap_or(0) % n
    };
    let mut corpus = |count: usize, offset: usize| -> Vec<InsertRecord> {
        (0..count)
            .map(|i| {
                let mut phrase = |length: usize| {
                    (0..length)
                        .map(|_| words[pick(words.len())])
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let title = format!("{} #{}", phrase(3), i + offset);
                let description = phrase(8);
                let tags = vec![format!("tag:{}", words[pick(words.len())])];
                let version = format!("{}.{}", pick(3), pick(10));
                let system = ["api", "player"][pick(2)];
                let at = Timestamp::from_second(
                    1_700_000_000 + i64::try_from(i + offset).unwrap_or(0) * 60,
                )
                .expect("a time");
                record(
                    &json!({"title": title, "description": description, "tags": tags,
                    "version": version, "system": system, "author": "a",
                    "occurred_at": at.to_string()}),
                )
            })
            .collect()
    };
    let queries = [
        "alpha",
        "alp*",
        "\"alpha beta\"",
        "cafe",
        "café",
        "naive",
        "uber",
        "rollback -gamma",
        "kube*",
        "kube",
        "\"1.2\"",
        "v1",
        "tag",
        "api",
        "deploy",
        "\"deploy api\"",
        "-alpha",
        "-\"beta gamma\" delta",
        "system:api alpha",
        "delta beta* -x",
        "zzz",
        "\"x\" \"x x\"",
    ];
    let check = |store: Arc<SqliteStore>, when: &'static str| async move {
        let all = conformance::search(store.as_ref(), &conformance::filter("", now())).await;
        for query_text in queries {
            let filter = conformance::filter(query_text, now());
            let expected: Vec<String> = all
                .iter()
                .filter(|event| filter.query.matches(event, now()))
                .map(|event| event.title.clone())
                .collect();
            assert_eq!(
                titles(store.as_ref(), query_text, now()).await,
                expected,
                "{query_text} ({when})"
            );
        }
    };

    let store = Arc::new(open(dir.path()));
    let created = create_all(store.as_ref(), corpus(300, 0)).await;
    caught_up(&store).await;
    check(Arc::clone(&store), "all indexed").await;

    // With the indexer stopped: new events, and changes to events the index holds.
    store.stop_full_text_indexer();
    create_all(store.as_ref(), corpus(100, 300)).await;
    for event in created.iter().step_by(7) {
        let patch = EventPatch {
            ended_at: None,
            add_tags: vec![format!("kube {}", words[pick(words.len())])],
            add_links: Vec::new(),
        };
        store
            .patch(event.id, patch)
            .await
            .expect("patch")
            .expect("the event");
    }
    for event in created.iter().skip(3).step_by(11) {
        store
            .delete_event(tfr_store::Deletion {
                id: event.id,
                actor: "test".into(),
                at: now(),
                reason: None,
            })
            .await
            .expect("delete")
            .expect("the event");
    }
    assert!(
        !store
            .wait_for_full_text(std::time::Duration::ZERO)
            .await
            .expect("wait"),
        "the index is behind"
    );
    check(Arc::clone(&store), "tail and changes").await;
    store.shutdown().await.expect("shutdown");
    drop(store);

    // Opened again, the indexer catches up with both.
    let store = Arc::new(open(dir.path()));
    caught_up(&store).await;
    check(Arc::clone(&store), "caught up").await;
    store.shutdown().await.expect("shutdown");
}

/// The index file holds nothing the events cannot give again: removed, or older or newer than
/// the events (a restored backup of `tfr.db`), it is rebuilt or brought up to date at open.
#[tokio::test]
async fn the_full_text_index_is_rebuilt_from_the_events() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    create_titled(&store, "kept", 50, ts("2026-01-01T00:00:00Z")).await;
    caught_up(&store).await;
    store.shutdown().await.expect("shutdown");
    drop(store);
    let backup = dir.path().join("backup.db");
    std::fs::copy(dir.path().join(DATABASE_FILE), &backup).expect("copy");

    // Removed: made again.
    remove_index_files(dir.path(), &["", "-wal", "-shm"]);
    let store = open(dir.path());
    caught_up(&store).await;
    assert_eq!(titles(&store, "kept", now()).await.len(), 50);
    create_titled(&store, "later", 20, ts("2026-01-02T00:00:00Z")).await;
    caught_up(&store).await;
    store.shutdown().await.expect("shutdown");
    drop(store);

    // The events restored from before the last 20: the index, newer, starts over.
    std::fs::copy(&backup, dir.path().join(DATABASE_FILE)).expect("restore");
    let _ = std::fs::remove_file(dir.path().join(format!("{DATABASE_FILE}-wal")));
    let store = open(dir.path());
    caught_up(&store).await;
    assert_eq!(titles(&store, "kept", now()).await.len(), 50);
    assert!(titles(&store, "later", now()).await.is_empty());
    create_titled(&store, "later", 5, ts("2026-01-02T00:00:00Z")).await;
    caught_up(&store).await;
    assert_eq!(titles(&store, "later", now()).await.len(), 5);

    // The index of another database: rebuilt from this one's events.
    store.shutdown().await.expect("shutdown");
    drop(store);
    let other = TempDir::new().expect("a temporary directory");
    let store = open(other.path());
    create_titled(&store, "other", 7, ts("2026-01-03T00:00:00Z")).await;
    caught_up(&store).await;
    store.shutdown().await.expect("shutdown");
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("tfr-fts.db{suffix}");
        let _ = std::fs::remove_file(dir.path().join(&name));
        if other.path().join(&name).exists() {
            std::fs::copy(other.path().join(&name), dir.path().join(&name)).expect("copy");
        }
    }
    let store = open(dir.path());
    caught_up(&store).await;
    assert!(titles(&store, "other", now()).await.is_empty());
    assert_eq!(titles(&store, "later", now()).await.len(), 5);
    assert_eq!(titles(&store, "kept", now()).await.len(), 50);

    // A file that is not a database: made again.
    store.shutdown().await.expect("shutdown");
    drop(store);
    remove_index_files(dir.path(), &["-wal", "-shm"]);
    std::fs::write(
        dir.path().join("tfr-fts.db"),
        b"not a database at all, not even close",
    )
    .expect("write");
    let store = open(dir.path());
    caught_up(&store).await;
    assert_eq!(titles(&store, "later", now()).await.len(), 5);
    store.shutdown().await.expect("shutdown");
}

/// More than 20,000 events missing from the index at open (an upgrade from a version that kept
/// it in `tfr.db`, a deleted file) are indexed before the store is ready, so that no search
/// checks them one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_tail_is_indexed_before_the_store_is_ready() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    store.stop_full_text_indexer();
    let at = ts("2026-02-01T00:00:00Z");
    create_titled(&store, "bulk", 20_100, at).await;
    assert!(
        !store
            .wait_for_full_text(std::time::Duration::ZERO)
            .await
            .expect("wait"),
        "the indexer was stopped"
    );
    store.shutdown().await.expect("shutdown");
    drop(store);
    let store = open(dir.path());
    assert!(
        store
            .wait_for_full_text(std::time::Duration::ZERO)
            .await
            .expect("wait"),
        "indexed during open"
    );
    assert_eq!(
        titles(&store, "\"bulk 20099\"", now()).await,
        ["bulk 20099"]
    );
    store.shutdown().await.expect("shutdown");
}

/// Changes the index took are dropped from the queue in `tfr.db`; an older copy of the index
/// file, which never took them, is rebuilt at open rather than trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_copy_of_the_index_is_rebuilt() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = open(dir.path());
    let at = ts("2026-03-01T00:00:00Z");
    let created = create_titled(&store, "plain", 10, at).await;
    caught_up(&store).await;
    store.shutdown().await.expect("shutdown");
    drop(store);
    let old_copy = dir.path().join("old-fts.db");
    std::fs::copy(dir.path().join("tfr-fts.db"), &old_copy).expect("copy");
    if dir.path().join("tfr-fts.db-wal").exists() {
        std::fs::copy(
            dir.path().join("tfr-fts.db-wal"),
            dir.path().join("old-fts.db-wal"),
        )
        .expect("copy the log");
    }
    let indexed: i64 = Connection::open(&old_copy)
        .expect("open")
        .query_row("SELECT indexed_through FROM fts_state", [], |row| {
            row.get(0)
        })
        .expect("the copy's state");
    assert_eq!(indexed, 10, "the copy holds the ten events");

    let store = open(dir.path());
    let patch = EventPatch {
        ended_at: None,
        add_tags: vec!["zebra".into()],
        add_links: Vec::new(),
    };
    store
        .patch(created[4].id, patch)
        .await
        .expect("patch")
        .expect("the event");
    caught_up(&store).await;
    // One more commit, in which the writer drops the change the index took.
    insert_one(&store, record(&conformance::minimal("after", at))).await;
    caught_up(&store).await;
    store.shutdown().await.expect("shutdown");
    drop(store);
    let queued: i64 = Connection::open(dir.path().join(DATABASE_FILE))
        .expect("open")
        .query_row("SELECT count(*) FROM fts_stale", [], |row| row.get(0))
        .expect("the queue");
    assert_eq!(queued, 0, "the writer dropped the change");

    remove_index_files(dir.path(), &["-wal", "-shm"]);
    std::fs::copy(&old_copy, dir.path().join("tfr-fts.db")).expect("put the old copy back");
    let _ = std::fs::remove_file(dir.path().join("old-fts.db-wal"));
    let store = open(dir.path());
    caught_up(&store).await;
    assert_eq!(titles(&store, "zebra", now()).await, ["plain 4"]);
    assert_eq!(titles(&store, "plain", now()).await.len(), 10);
    store.shutdown().await.expect("shutdown");
}
