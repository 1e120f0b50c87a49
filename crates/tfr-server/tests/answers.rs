//! End-to-end tests of the answers: statistics, correlation and the live stream, over a real
//! server on 127.0.0.1 and a real SQLite file, with data whose right answers are known.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tfr_server::{AppState, ServerConfig};
use tfr_store::Store;
use tfr_store_sqlite::SqliteStore;

struct TestServer {
    base: String,
    client: reqwest::Client,
    _store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(Arc::clone(&store), ServerConfig::default());
        tokio::spawn(tfr_server::serve(listener, state, std::future::pending()));
        Self {
            base,
            client: reqwest::Client::new(),
            _store: store,
            _dir: dir,
        }
    }

    async fn post(&self, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}/api/v1/events", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

fn event(title: &str, system: &str, kind: &str, at: &str) -> Value {
    json!({"title": title, "system": system, "author": "alice", "kind": kind, "occurred_at": at})
}

#[tokio::test]
async fn histogram_follows_the_time_zone_across_dst() {
    let server = TestServer::start().await;
    // Paris: 2026-03-29 is 23 hours long (clocks go 02:00 → 03:00).
    server
        .post(&json!([
            event("a", "player", "deploy", "2026-03-28T22:59:59Z"), // 23:59:59 on the 28th
            event("b", "player", "deploy", "2026-03-28T23:00:00Z"), // 00:00 on the 29th
            event("c", "api", "config", "2026-03-29T21:59:59Z"),    // 23:59:59 on the 29th
            event("d", "api", "deploy", "2026-03-29T22:00:00Z"),    // 00:00 on the 30th
            {"title": "e", "system": "db", "author": "bob", "occurred_at": "2026-03-29T12:00:00Z",
             "team": "data"},
        ]))
        .await;
    let (status, histogram) = server
        .get("/api/v1/stats/histogram?from=2026-03-28T00:00:00%2B01:00&to=2026-03-31T00:00:00%2B02:00&interval=day&by=kind&tz=Europe/Paris")
        .await;
    assert_eq!(status, StatusCode::OK, "{histogram}");
    assert_eq!(histogram["interval"], "day");
    assert_eq!(histogram["tz"], "Europe/Paris");
    assert_eq!(histogram["by"], "kind");
    assert_eq!(
        histogram["buckets"],
        json!([
            {"start": "2026-03-28T00:00:00+01:00", "total": 1, "groups": {"deploy": 1}},
            {"start": "2026-03-29T00:00:00+01:00", "total": 3, "groups": {"deploy": 1, "config": 1, "change": 1}},
            {"start": "2026-03-30T00:00:00+02:00", "total": 1, "groups": {"deploy": 1}},
        ])
    );
    // Grouped by team, events without one count as "(none)"; hours in UTC; a query filters.
    let (_, by_team) = server
        .get("/api/v1/stats/histogram?from=2026-03-29T00:00:00Z&to=2026-03-30T00:00:00Z&interval=day&by=team")
        .await;
    assert_eq!(
        by_team["buckets"],
        json!([{"start": "2026-03-29T00:00:00+00:00", "total": 3, "groups": {"(none)": 2, "data": 1}}])
    );
    let (_, hours) = server
        .get("/api/v1/stats/histogram?q=system:api&from=2026-03-29T21:00:00Z&to=2026-03-29T23:00:00Z&interval=hour")
        .await;
    assert_eq!(
        hours["buckets"],
        json!([
            {"start": "2026-03-29T21:00:00+00:00", "total": 1, "groups": {}},
            {"start": "2026-03-29T22:00:00+00:00", "total": 1, "groups": {}},
        ])
    );
    // Weeks and months exist; empty buckets are present with 0.
    let (_, months) = server
        .get("/api/v1/stats/histogram?from=2026-01-15&to=2026-05-01&interval=month")
        .await;
    let totals: Vec<u64> = months["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [0, 0, 5, 0]);
    assert_eq!(months["buckets"][0]["start"], "2026-01-01T00:00:00+00:00");

    for (path, parameter) in [
        ("/api/v1/stats/histogram?interval=year", "interval"),
        ("/api/v1/stats/histogram?by=title", "by"),
        ("/api/v1/stats/histogram?tz=Mars/Olympus", "tz"),
        (
            "/api/v1/stats/histogram?from=2000-01-01&interval=hour",
            "from",
        ),
    ] {
        let (status, answer) = server.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer["error"]["parameter"], parameter, "{path}: {answer}");
    }
}

#[tokio::test]
async fn top_values() {
    let server = TestServer::start().await;
    let mut events = Vec::new();
    for (system, n) in [("player", 5), ("api", 3), ("cdn", 3), ("db", 1)] {
        for i in 0..n {
            events.push(event(
                &format!("{system} {i}"),
                system,
                "deploy",
                "2026-11-01T10:00:00Z",
            ));
        }
    }
    server.post(&Value::Array(events)).await;
    let (status, top) = server.get("/api/v1/stats/top?field=system&limit=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        top,
        json!({"field": "system", "values": [
            {"value": "player", "count": 5}, {"value": "api", "count": 3}, {"value": "cdn", "count": 3}
        ]})
    );
    let (_, filtered) = server
        .get("/api/v1/stats/top?field=system&q=-system:player")
        .await;
    assert_eq!(filtered["values"][0], json!({"value": "api", "count": 3}));
    let (_, teams) = server.get("/api/v1/stats/top?field=team").await;
    assert_eq!(teams["values"], json!([]), "no team: nothing to rank");
    let (status, _) = server.get("/api/v1/stats/top?field=title").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn correlation_finds_the_planted_side_effect() {
    let server = TestServer::start().await;
    // Range: 10 days. A: 10 deploys of the player, one a day at 10:00. B: an error spike on
    // the CDN 10 minutes after 8 of them, plus 2 unrelated spikes.
    let mut events = Vec::new();
    for day in 1..=10 {
        events.push(event(
            "deploy player",
            "player",
            "deploy",
            &format!("2026-10-{day:02}T10:00:00Z"),
        ));
        if day <= 8 {
            events.push(event(
                "cdn errors",
                "cdn",
                "incident",
                &format!("2026-10-{day:02}T10:10:00Z"),
            ));
        }
    }
    events.push(event(
        "cdn errors",
        "cdn",
        "incident",
        "2026-10-03T03:00:00Z",
    ));
    events.push(event(
        "cdn errors",
        "cdn",
        "incident",
        "2026-10-09T18:00:00Z",
    ));
    server.post(&Value::Array(events)).await;

    let (status, report) = server
        .get("/api/v1/correlate?a=system:player%20kind:deploy&b=system:cdn%20kind:incident&window=1h&from=2026-10-01&to=2026-10-11&limit=3")
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["hits"], 8);
    assert_eq!(report["a_count"], 10);
    assert_eq!(report["b_count"], 10);
    assert_eq!(report["hit_rate"], 0.8);
    // 10 B events, each covering the hour before it, no overlaps: 10 h of 240 h.
    let baseline = 10.0 / 240.0;
    assert!((report["baseline"].as_f64().unwrap() - baseline).abs() < 1e-12);
    assert!((report["lift"].as_f64().unwrap() - 0.8 / baseline).abs() < 1e-9);
    let p = report["p_value"].as_f64().unwrap();
    assert!(p > 0.0 && p < 1e-8, "{p}");
    assert_eq!(
        report["verdict"],
        format!(
            "8 of 10 changes matching A were followed within 1h by B (baseline 4.2%): 19.2× more often than chance, p = {}",
            tfr_core::correlate::format_p_value(p)
        )
    );
    // The three most recent A events: days 10 and 9 (no B) and 8 (B 10 min later).
    let matches = report["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 3);
    assert_eq!(matches[0]["a"]["occurred_at"], "2026-10-10T10:00:00Z");
    assert_eq!(matches[0]["b"], json!([]));
    assert_eq!(matches[2]["a"]["occurred_at"], "2026-10-08T10:00:00Z");
    assert_eq!(matches[2]["b"][0]["occurred_at"], "2026-10-08T10:10:00Z");
    assert_eq!(report["matches_truncated"], true);

    // Edge cases answered clearly.
    let (_, none) = server
        .get("/api/v1/correlate?a=system:nothing&b=system:cdn&from=2026-10-01&to=2026-10-11")
        .await;
    assert_eq!(none["a_count"], 0);
    assert_eq!(none["hit_rate"], Value::Null);
    assert!(
        none["verdict"]
            .as_str()
            .unwrap()
            .starts_with("No event matches A")
    );
    let (_, no_b) = server
        .get("/api/v1/correlate?a=system:player&b=system:nothing&from=2026-10-01&to=2026-10-11")
        .await;
    assert_eq!(
        (no_b["hits"].as_u64(), no_b["baseline"].as_f64()),
        (Some(0), Some(0.0))
    );
    assert_eq!(no_b["p_value"], 1.0);
    for (path, parameter) in [
        ("/api/v1/correlate?b=x", "a"),
        ("/api/v1/correlate?a=x", "b"),
        ("/api/v1/correlate?a=x&b=y&window=0m", "window"),
        ("/api/v1/correlate?a=sytem:x&b=y", "a"),
    ] {
        let (status, answer) = server.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer["error"]["parameter"], parameter, "{path}: {answer}");
    }
}

/// A minimal Server-Sent Events reader: `(id, data)` of each message.
struct SseReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    async fn open(server: &TestServer, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = server.client.get(format!(
            "{}/api/v1/stream?q={}",
            server.base,
            query.replace(':', "%3A").replace(' ', "%20")
        ));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut reader = Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        };
        // The first message is the comment saying the subscription is live.
        let first = reader.next_block().await;
        assert_eq!(first, ": connected");
        reader
    }

    async fn next_block(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return block;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE message within 10 s")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event message (heartbeat comments skipped).
    async fn next_event(&mut self) -> (String, Value) {
        loop {
            let block = self.next_block().await;
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(value.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                return (id, data);
            }
        }
    }
}

#[tokio::test]
async fn stream_delivers_matching_events_and_resumes_without_gaps() {
    let server = TestServer::start().await;
    let mut reader = SseReader::open(&server, "system:player", None).await;
    server
        .post(&event(
            "other system",
            "api",
            "deploy",
            "2026-11-01T10:00:00Z",
        ))
        .await;
    let first = server
        .post(&event("first", "player", "deploy", "2026-11-01T10:00:00Z"))
        .await;
    let (first_id, data) = reader.next_event().await;
    assert_eq!(data["id"], first["id"], "the api event was filtered out");
    assert_eq!(data["title"], "first");

    // The client goes away; events are stored meanwhile; it comes back with Last-Event-ID.
    drop(reader);
    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(
            server
                .post(&event(
                    &format!("missed {i}"),
                    "player",
                    "config",
                    "2026-11-01T11:00:00Z",
                ))
                .await,
        );
        server
            .post(&event("noise", "api", "config", "2026-11-01T11:00:00Z"))
            .await;
    }
    let mut reader = SseReader::open(&server, "system:player", Some(&first_id)).await;
    let mut previous: u64 = first_id.parse().unwrap();
    for expected in &missed {
        let (id, data) = reader.next_event().await;
        assert_eq!(data["id"], expected["id"]);
        let position: u64 = id.parse().unwrap();
        assert!(position > previous, "positions grow");
        previous = position;
    }
    // And then live again.
    let live = server
        .post(&event("live", "player", "deploy", "2026-11-01T12:00:00Z"))
        .await;
    let (_, data) = reader.next_event().await;
    assert_eq!(data["id"], live["id"]);

    // A bad query or Last-Event-ID is a 400 before the stream starts.
    let (status, answer) = server.get("/api/v1/stream?q=sytem:x").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let response = server
        .client
        .get(format!("{}/api/v1/stream", server.base))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_slow_stream_client_catches_up_from_the_store() {
    let server = TestServer::start().await;
    let mut reader = SseReader::open(&server, "", None).await;
    // Far more events than the in-memory feed holds, while the client reads nothing.
    let total = tfr_store::STREAM_BUFFER * 2 + 100;
    let events: Vec<Value> = (0..total)
        .map(|i| event(&format!("e{i}"), "bulk", "change", "2026-11-01T10:00:00Z"))
        .collect();
    let body: String = events.iter().map(|e| e.to_string() + "\n").collect();
    let response = server
        .client
        .post(format!("{}/api/v1/events/bulk", server.base))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["created"], total);
    let mut titles = Vec::with_capacity(total);
    let mut previous = 0u64;
    for _ in 0..total {
        let (id, data) = reader.next_event().await;
        let position: u64 = id.parse().unwrap();
        assert!(position > previous);
        previous = position;
        titles.push(data["title"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (0..total).map(|i| format!("e{i}")).collect();
    assert_eq!(titles, expected, "every event once, in stored order");
}
