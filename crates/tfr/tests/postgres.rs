//! The real `tfr` binary on PostgreSQL: several nodes on one database, an outage of the
//! database, and `tfr migrate-store`. Each test gets a database of its own on the server named
//! by `TFR_TEST_DATABASE_URL` (see `tfr_store_postgres::testing`); without a reachable server
//! the tests print `skipped: ...` and pass, unless `CI` is set.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, Storage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tfr_core::validate::validate_new_event;
use tfr_core::{EventPatch, Limits};
use tfr_store::{BatchMode, InsertOutcome, InsertRecord, Store, StreamPosition};
use tfr_store_postgres::testing::TestDatabase;
use tfr_store_postgres::{PostgresOptions, PostgresStore};
use tfr_store_sqlite::SqliteStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The longest anything here may take before the test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(30);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .expect("HTTP client")
}

async fn start(url: &str) -> Server {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || Server::start_on(Storage::Database(&url), &[]))
        .await
        .expect("start tfr serve")
}

async fn post(client: &reqwest::Client, server: &Server, body: &Value) -> (StatusCode, Value) {
    let response = client
        .post(server.url("/api/v1/events"))
        .json(body)
        .send()
        .await
        .expect("POST /api/v1/events");
    let status = response.status();
    (status, response.json().await.expect("a JSON answer"))
}

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> (StatusCode, Value) {
    let response = client
        .get(server.url(path))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    let status = response.status();
    (status, response.json().await.expect("a JSON answer"))
}

/// Reads Server-Sent Events from `GET /api/v1/stream`.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// One SSE message: its `id:` and its `data:` as JSON.
#[derive(Debug)]
struct Message {
    id: u64,
    data: Value,
}

impl EventStream {
    /// Connects (resuming after `last_event_id` if given) and waits for `: connected`.
    async fn open(client: &reqwest::Client, server: &Server, last_event_id: Option<u64>) -> Self {
        let mut request = client.get(server.url("/api/v1/stream"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        // The stream is endless: no overall timeout on this request.
        let request = request.timeout(Duration::from_secs(3600));
        let response = request.send().await.expect("GET /api/v1/stream");
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = Self {
            response,
            buffer: String::new(),
        };
        let first = stream.next_block().await;
        assert!(first.contains(": connected"), "{first:?}");
        stream
    }

    /// The next blank-line-terminated block.
    async fn next_block(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return block;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("an SSE message in time")
                .expect("the stream")
                .expect("the stream is still open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event (heartbeat comments skipped).
    async fn next(&mut self) -> Message {
        loop {
            let block = self.next_block().await;
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().parse().expect("a numeric id"));
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            if let Some(id) = id {
                return Message {
                    id,
                    data: serde_json::from_str(&data).expect("JSON data"),
                };
            }
        }
    }
}

/// Two nodes on one database: what one stores, the other reads at once and streams; a stream
/// resumed on the other node misses nothing; a key sent to both at once is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let a = start(database.url()).await;
    let b = start(database.url()).await;
    let client = http();
    let mut stream_on_b = EventStream::open(&client, &b, None).await;

    // Read-after-write across nodes.
    let submitted = json!({"title": "Deploy api 1.0", "system": "api", "author": "ci",
                           "tags": ["release:1.0"], "diff": "--- a\n+++ b\n+x\n"});
    let (status, created) = post(&client, &a, &submitted).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    let (status, read) = get(&client, &b, &format!("/api/v1/events/{id}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "node B reads what node A just stored"
    );
    assert_eq!(read["title"], "Deploy api 1.0");
    assert_eq!(read["diff"], "--- a\n+++ b\n+x\n");
    let (_, listed) = get(&client, &b, "/api/v1/events?q=tag:release:1.0").await;
    assert_eq!(listed["events"][0]["id"], id.as_str());

    // Node B's stream delivers what node A stored.
    let first = stream_on_b.next().await;
    assert_eq!(first.data["id"], id.as_str(), "streamed on node B");

    // Three more through node A; a client resuming on node B after the first gets them all.
    let mut later = Vec::new();
    for n in 0..3 {
        let (status, event) = post(
            &client,
            &a,
            &json!({"title": format!("later {n}"), "system": "api", "author": "ci"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        later.push(event["id"].as_str().expect("id").to_owned());
    }
    let mut resumed = EventStream::open(&client, &b, Some(first.id)).await;
    let mut ids = Vec::new();
    let mut position = first.id;
    for _ in 0..3 {
        let message = resumed.next().await;
        assert!(message.id > position, "positions increase");
        position = message.id;
        ids.push(message.data["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids, later, "resumed on node B: every later event, in order");
    for expected in &later {
        let message = stream_on_b.next().await;
        assert_eq!(message.data["id"], expected.as_str(), "the live stream too");
    }

    // The same idempotency key sent to both nodes at once: one event.
    for round in 0..10 {
        let body = json!({"title": format!("retried {round}"), "system": "api",
                          "author": "ci", "idempotency_key": format!("both-{round}")});
        let (on_a, on_b) = tokio::join!(post(&client, &a, &body), post(&client, &b, &body));
        let mut statuses = [on_a.0, on_b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CREATED],
            "round {round}: one created, one duplicate"
        );
        assert_eq!(on_a.1["id"], on_b.1["id"], "round {round}: the same event");
    }
    let (_, all) = get(&client, &b, "/api/v1/events?limit=500").await;
    assert_eq!(
        all["events"].as_array().expect("events").len(),
        1 + 3 + 10,
        "nothing stored twice"
    );
}

/// A TCP relay between tfr and PostgreSQL that the test can cut and restore, so that an
/// outage is simulated without touching the shared server.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let open = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0);
        let task = tokio::spawn({
            let open = Arc::clone(&open);
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        // Unreachable: the connection is closed at once.
                        drop(inbound);
                        continue;
                    }
                    // Only cuts from now on end this connection.
                    let mut cuts = cuts.clone();
                    cuts.borrow_and_update();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            }
        });
        Proxy {
            port,
            open,
            cut,
            task,
        }
    }

    /// Closes every relayed connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `GET /readyz` until it answers `status`, and returns the last body.
async fn wait_for_readiness(
    client: &reqwest::Client,
    server: &Server,
    status: StatusCode,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (got, body) = get(client, server, "/readyz").await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {got} ({body}) instead of {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// PostgreSQL unreachable: `/readyz` and writes answer 503 with a JSON error and nothing is
/// half-written; once it is back, the same node serves again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_answers_503_and_recovers() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let mut url = reqwest::Url::parse(database.url()).expect("a URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.port)).expect("port");
    let server = start(url.as_str()).await;
    let client = http();

    let (status, _) = post(
        &client,
        &server,
        &json!({"title": "Before the outage", "system": "db", "author": "ops"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    wait_for_readiness(&client, &server, StatusCode::OK).await;

    proxy.cut();
    let body = wait_for_readiness(&client, &server, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let during = json!({"title": "During the outage", "system": "db", "author": "ops",
                        "idempotency_key": "outage-1"});
    let started = Instant::now();
    let (status, body) = post(&client, &server, &during).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(
        !message.contains("127.0.0.1") && !message.contains(&proxy.port.to_string()),
        "no database detail reaches the client: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered in {:?}",
        started.elapsed()
    );
    let (status, _) = get(&client, &server, "/api/v1/events").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "reads too");

    proxy.restore();
    wait_for_readiness(&client, &server, StatusCode::OK).await;
    // The write that failed left nothing behind: the same key now creates the event.
    let (status, created) = post(&client, &server, &during).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, listed) = get(&client, &server, "/api/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    let titles: Vec<&str> = listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["During the outage", "Before the outage"]);
    // The live stream works again too.
    let mut stream = EventStream::open(&client, &server, None).await;
    let (status, after) = post(
        &client,
        &server,
        &json!({"title": "After the outage", "system": "db", "author": "ops"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(stream.next().await.data["id"], after["id"]);
}

fn insert_record(value: &Value, recorded_at: &str, submitted_by: &str) -> InsertRecord {
    let recorded_at = recorded_at.parse().expect("a timestamp");
    let event = validate_new_event(value, &Limits::default(), recorded_at).expect("valid");
    InsertRecord::new(event, recorded_at, submitted_by)
}

async fn run_tfr(args: &[&str]) -> (Option<i32>, String, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tfr"))
        .args(args)
        .env_remove("TFR_CONFIG")
        .env_remove("TFR_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run tfr");
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("tfr finished in time")
        .expect("tfr output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `tfr migrate-store` copies a SQLite history into PostgreSQL: every event as it stands (ids,
/// times, submitter, diff, patched tags), in order, with idempotency intact; run again, it
/// copies nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_a_history_from_sqlite_to_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let sqlite = SqliteStore::open(&data).expect("open SQLite");
    let keyed = json!({"title": "Deploy api 1.0", "system": "api", "author": "ci",
                       "occurred_at": "2026-11-01T10:00:00.123456Z", "kind": "deploy",
                       "tags": ["release:1.0"], "diff": "--- a\n+++ b\n+x\n",
                       "attributes": {"big": 9_007_199_254_740_993_u64},
                       "idempotency_key": "deploy-1"});
    let mut records = vec![
        insert_record(&keyed, "2026-11-01T10:00:01Z", "deploy-token"),
        insert_record(
            &json!({"title": "Moon landing", "system": "eagle", "author": "nasa",
                    "occurred_at": "1969-07-20T20:17:40Z"}),
            "2026-11-02T00:00:00Z",
            "anonymous",
        ),
    ];
    // Enough for several batches.
    for n in 0..2500 {
        records.push(insert_record(
            &json!({"title": format!("bulk {n}"), "system": "bulk", "author": "bot",
                    "occurred_at": "2026-11-03T00:00:00Z"}),
            "2026-11-03T00:00:01Z",
            "importer",
        ));
    }
    for chunk in records.chunks(1000) {
        let outcomes = sqlite
            .insert(chunk.to_vec(), BatchMode::Independent)
            .await
            .expect("insert");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, InsertOutcome::Created(_)))
        );
    }
    let keyed_id = records[0].event.id;
    sqlite
        .patch(
            keyed_id,
            EventPatch {
                add_tags: vec!["rolled-back".into()],
                ended_at: Some("2026-11-01T11:00:00Z".parse().expect("time")),
                add_links: Vec::new(),
            },
        )
        .await
        .expect("patch")
        .expect("found");
    sqlite.shutdown().await.expect("shutdown");
    drop(sqlite);

    let from = data.to_str().expect("a UTF-8 path");
    let (code, stdout, stderr) =
        run_tfr(&["migrate-store", "--from", from, "--to", database.url()]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("copied 2502 events") && stdout.contains("0 were already there"),
        "{stdout}"
    );
    let (code, stdout, stderr) =
        run_tfr(&["migrate-store", "--from", from, "--to", database.url()]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("copied 0 events") && stdout.contains("2502 were already there"),
        "run again, it copies nothing twice: {stdout}"
    );

    let sqlite = SqliteStore::open(&data).expect("open SQLite");
    let postgres = PostgresStore::open(database.url(), &PostgresOptions::default())
        .await
        .expect("open PostgreSQL");
    assert_eq!(postgres.count().await.expect("count"), 2502);
    let mut after = (StreamPosition(0), StreamPosition(0));
    loop {
        let from_sqlite = sqlite.stored_since(after.0, 1000).await.expect("SQLite");
        let from_postgres = postgres
            .stored_since(after.1, 1000)
            .await
            .expect("PostgreSQL");
        let events = |page: &[tfr_store::StoredEvent]| -> Vec<tfr_core::Event> {
            page.iter().map(|stored| stored.event.clone()).collect()
        };
        assert!(
            events(&from_sqlite) == events(&from_postgres),
            "the same events in the same order"
        );
        let (Some(last_sqlite), Some(last_postgres)) = (from_sqlite.last(), from_postgres.last())
        else {
            break;
        };
        after = (last_sqlite.position, last_postgres.position);
    }
    let original = sqlite.get(keyed_id).await.expect("get").expect("in SQLite");
    let copied = postgres.get(keyed_id).await.expect("get").expect("copied");
    assert_eq!(
        copied, original,
        "every field, the diff and the patch included"
    );
    assert_eq!(copied.tags, ["release:1.0", "rolled-back"]);
    // The original submission retried against PostgreSQL is recognised.
    let retry = insert_record(&keyed, "2026-11-20T00:00:00Z", "deploy-token");
    let outcome = postgres
        .insert(vec![retry], BatchMode::AllOrNothing)
        .await
        .expect("insert");
    assert!(
        matches!(&outcome[..], [InsertOutcome::Duplicate(event)] if event.id == keyed_id),
        "{outcome:?}"
    );
    sqlite.shutdown().await.expect("shutdown");
    postgres.shutdown().await.expect("shutdown");

    // A missing source is an error that says so, not an empty copy.
    let missing = dir.path().join("nothing-here");
    let (code, _, stderr) = run_tfr(&[
        "migrate-store",
        "--from",
        missing.to_str().expect("path"),
        "--to",
        database.url(),
    ])
    .await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("no tfr store there"), "{stderr}");
    assert!(!missing.exists(), "nothing was created");
    // A non-PostgreSQL destination is refused without printing its password.
    let (code, _, stderr) = run_tfr(&[
        "migrate-store",
        "--from",
        from,
        "--to",
        "mysql://user:s3cret@localhost/tfr",
    ])
    .await;
    assert_ne!(code, Some(0));
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
