//! End-to-end tests of the HTTP API: a real server on 127.0.0.1 over a real SQLite file,
//! driven with a real HTTP client.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tfr_server::{AppState, ServerConfig};
use tfr_store::Store;
use tfr_store_sqlite::SqliteStore;

struct TestServer {
    base: String,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    async fn start_with(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(Arc::clone(&store), config);
        tokio::spawn(tfr_server::serve(listener, state, std::future::pending()));
        Self {
            base,
            client: reqwest::Client::new(),
            store,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url("/api/v1/events"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn count(&self) -> u64 {
        self.store.count().await.unwrap()
    }
}

fn event(title: &str, system: &str) -> Value {
    json!({"title": title, "system": system, "author": "alice"})
}

fn at(title: &str, system: &str, occurred_at: &str) -> Value {
    let mut event = event(title, system);
    event["occurred_at"] = json!(occurred_at);
    event
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn create_then_get_round_trips_every_field() {
    let server = TestServer::start().await;
    let body = json!({
        "occurred_at": "2026-11-26T10:00:00.123456+01:00",
        "ended_at": "2026-11-26T11:00:00Z",
        "title": "Deploy player 5.2 — ünïcode",
        "system": "player",
        "author": "alice",
        "kind": "deploy",
        "environment": "production",
        "team": "video",
        "source": "cli",
        "version": "5.2.0",
        "description": "**why**: faster",
        "tags": ["release:5.2", "canary"],
        "links": [{"url": "https://ci.example.com/1", "title": "build"}],
        "diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
        "attributes": {"ticket": 42, "nested": {"ok": true}},
        "idempotency_key": "deploy-1"
    });
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/events/{id}"));
    assert_eq!(created["occurred_at"], "2026-11-26T09:00:00.123456Z");
    assert_eq!(created["submitted_by"], "anonymous");
    assert!(created["recorded_at"].as_str().is_some());

    let (status, fetched) = server.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    // The answer to the POST is the event without its diff (it can weigh a megabyte).
    assert!(created.get("diff").is_none());
    assert_eq!(created["has_diff"], true);
    let mut without_diff = fetched.clone();
    without_diff.as_object_mut().unwrap().remove("diff");
    assert_eq!(without_diff, created);
    assert_eq!(fetched["diff"], body["diff"]);
    assert_eq!(fetched["has_diff"], true);
    for field in [
        "title",
        "system",
        "kind",
        "environment",
        "team",
        "source",
        "version",
        "description",
        "tags",
        "links",
        "attributes",
        "ended_at",
    ] {
        if field != "ended_at" {
            assert_eq!(fetched[field], body[field], "{field}");
        }
    }
    assert_eq!(fetched["ended_at"], "2026-11-26T11:00:00Z");
    // Lists leave the diff out but say there is one.
    let (_, page) = server.get("/api/v1/events").await;
    assert_eq!(page["events"][0]["has_diff"], true);
    assert!(page["events"][0].get("diff").is_none());
}

#[tokio::test]
async fn minimal_curl_style_post_works() {
    let server = TestServer::start().await;
    // `curl -d '{...}'` sends application/x-www-form-urlencoded.
    let (status, body) = server
        .post_raw(
            "/api/v1/events",
            "application/x-www-form-urlencoded",
            r#"{"title": "restart cache", "system": "redis", "author": "bob"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "change");
    assert_eq!(body["occurred_at"], body["recorded_at"]);
}

#[tokio::test]
async fn invalid_events_name_the_field_and_store_nothing() {
    let server = TestServer::start().await;
    let cases = [
        (json!({"system": "x", "author": "a"}), "title"),
        (json!({"title": "", "system": "x", "author": "a"}), "title"),
        (json!({"title": "t", "sytem": "x", "author": "a"}), "sytem"),
        (json!({"title": "t", "system": 5, "author": "a"}), "system"),
        (
            json!({"title": "t", "system": "x", "author": "a", "occurred_at": "2026-11-26T10:00:00"}),
            "occurred_at",
        ),
        (
            json!({"title": "t", "system": "x", "author": "a", "id": "x"}),
            "id",
        ),
        (
            json!({"title": "t", "system": "x", "author": "a", "links": [{"url": "javascript:alert(1)"}]}),
            "links[0].url",
        ),
        (
            json!({"title": "t", "system": "x", "author": "a", "tags": ["a", 1]}),
            "tags[1]",
        ),
        (
            json!({"title": "t".repeat(501), "system": "x", "author": "a"}),
            "title",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = server.post(&body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&answer), "invalid_event");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(server.count().await, 0);
}

#[tokio::test]
async fn malformed_bodies() {
    let server = TestServer::start().await;
    let (status, answer) = server
        .post_raw("/api/v1/events", "application/json", "{not json")
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let (status, answer) = server
        .post_raw("/api/v1/events", "application/json", "")
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let (status, answer) = server.post_raw("/api/v1/events", "text/html", "<p>").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let (status, answer) = server
        .post_raw("/api/v1/events", "application/json", "[]")
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let (status, answer) = server
        .post_raw("/api/v1/events", "application/json", "42")
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_event")
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = TestServer::start_with(ServerConfig {
        body_limit: 4096,
        ..ServerConfig::default()
    })
    .await;
    let mut body = event("big", "x");
    body["description"] = json!("d".repeat(8000));
    let (status, answer) = server.post(&body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(server.count().await, 0);
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe() {
    let server = TestServer::start().await;
    let mut body = event("deploy", "player");
    body["idempotency_key"] = json!("k-1");
    let (status, first) = server.post(&body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = server.post(&body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    body["title"] = json!("something else");
    let (status, conflict) = server.post(&body).await;
    assert_eq!(
        (status, error_code(&conflict)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    assert_eq!(conflict["error"]["existing_id"], first["id"]);

    // The header works the same way, and must agree with the field when both are sent.
    let send = |key: &'static str, body: Value| {
        let request = server
            .client
            .post(server.url("/api/v1/events"))
            .header("idempotency-key", key)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let first = send("h-1", event("restart", "redis")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["idempotency_key"], "h-1");
    let retry = send("h-1", event("restart", "redis")).await;
    assert_eq!(retry.status(), StatusCode::OK);
    let mut mismatched = event("restart", "redis");
    mismatched["idempotency_key"] = json!("other");
    let response = send("h-1", mismatched).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.count().await, 2);
}

#[tokio::test]
async fn arrays_are_all_or_nothing() {
    let server = TestServer::start().await;
    let (status, answer) = server
        .post(&json!([event("a", "x"), {"title": "b"}, event("c", "x"), {"title": "d", "system": "x", "author": "a", "kind": "Bad Kind"}]))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_event")
    );
    let items = answer["error"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["index"].as_u64(), items[0]["field"].as_str()),
        (Some(1), Some("system"))
    );
    assert_eq!(
        (items[1]["index"].as_u64(), items[1]["field"].as_str()),
        (Some(3), Some("kind"))
    );
    assert_eq!(server.count().await, 0);

    let (status, answer) = server
        .post(&json!([event("a", "x"), event("b", "y")]))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(answer["events"].as_array().unwrap().len(), 2);
    assert_eq!(server.count().await, 2);

    // A conflicting key anywhere stores nothing of the array.
    let mut keyed = event("k", "x");
    keyed["idempotency_key"] = json!("array-key");
    assert_eq!(server.post(&keyed).await.0, StatusCode::CREATED);
    keyed["title"] = json!("changed");
    let (status, answer) = server.post(&json!([event("new", "x"), keyed])).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    assert_eq!(answer["error"]["items"][0]["index"], 1);
    assert_eq!(server.count().await, 3);

    let too_many: Vec<Value> = (0..1001).map(|i| event(&format!("e{i}"), "x")).collect();
    let (status, _) = server.post(&Value::Array(too_many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bulk_reports_each_line() {
    let server = TestServer::start().await;
    let mut keyed = event("keyed", "x");
    keyed["idempotency_key"] = json!("bulk-1");
    let body = [
        event("one", "x").to_string(),
        String::new(),
        "{broken".to_owned(),
        json!({"title": "no system", "author": "a"}).to_string(),
        keyed.to_string(),
        keyed.to_string(),
        event("last, no newline at end", "y").to_string(),
    ]
    .join("\n");
    let (status, outcome) = server
        .post_raw("/api/v1/events/bulk", "application/x-ndjson", body)
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["lines"], 7);
    assert_eq!(outcome["created"], 3);
    assert_eq!(outcome["duplicates"], 1);
    let errors = outcome["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["error"]["code"], "invalid_body");
    assert_eq!(errors[1]["line"], 4);
    assert_eq!(errors[1]["error"]["field"], "system");
    assert_eq!(server.count().await, 3);

    // Re-sending the keyed line with other content is a per-line conflict.
    keyed["title"] = json!("other");
    let (_, outcome) = server
        .post_raw(
            "/api/v1/events/bulk",
            "application/x-ndjson",
            keyed.to_string(),
        )
        .await;
    assert_eq!(
        outcome["errors"][0]["error"]["code"],
        "idempotency_conflict"
    );

    let (status, answer) = server
        .post_raw("/api/v1/events/bulk", "application/json", "[]")
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
}

/// A request longer than one stored batch (the server stores 500 lines at a time, one batch
/// while it reads the next): refused lines are reported in line order whether they were
/// refused while reading (invalid) or while storing (conflicts), and every other line stored.
#[tokio::test]
async fn bulk_errors_stay_in_line_order_across_batches() {
    let server = TestServer::start().await;
    let mut keyed = event("keyed", "x");
    keyed["idempotency_key"] = json!("order-1");
    let (status, _) = server
        .post_raw(
            "/api/v1/events/bulk",
            "application/x-ndjson",
            keyed.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut conflicting = keyed.clone();
    conflicting["title"] = json!("other content, same key");
    let lines: Vec<String> = (1..=1_200)
        .map(|line| match line {
            3 | 10 | 499 | 700 => conflicting.to_string(),
            4 | 501 | 650 | 1_199 => "{broken".to_owned(),
            _ => event(&format!("e{line}"), "x").to_string(),
        })
        .collect();
    let (status, outcome) = server
        .post_raw(
            "/api/v1/events/bulk",
            "application/x-ndjson",
            lines.join("\n"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["lines"], 1_200);
    assert_eq!(outcome["created"], 1_192);
    let errors: Vec<(u64, &str)> = outcome["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["error"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (3, "idempotency_conflict"),
            (4, "invalid_body"),
            (10, "idempotency_conflict"),
            (499, "idempotency_conflict"),
            (501, "invalid_body"),
            (650, "invalid_body"),
            (700, "idempotency_conflict"),
            (1_199, "invalid_body"),
        ]
    );
    assert_eq!(server.count().await, 1_193);
}

#[tokio::test]
async fn bulk_streams_large_bodies_and_limits_lines() {
    let server = TestServer::start_with(ServerConfig {
        body_limit: 2048,
        ..ServerConfig::default()
    })
    .await;
    // 3000 events: far more than the body limit in total, which applies per line here.
    let mut body = String::new();
    for i in 0..3000 {
        body.push_str(&event(&format!("event {i}"), "bulk").to_string());
        body.push('\n');
    }
    let mut long = event("long", "x");
    long["description"] = json!("d".repeat(4000));
    body.push_str(&long.to_string());
    body.push('\n');
    let (status, outcome) = server
        .post_raw("/api/v1/events/bulk", "application/x-ndjson", body)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["created"], 3000);
    assert_eq!(outcome["errors"][0]["line"], 3001);
    assert_eq!(outcome["errors"][0]["error"]["code"], "payload_too_large");
    assert_eq!(server.count().await, 3000);
}

#[tokio::test]
async fn feed_pages_with_cursor_and_query() {
    let server = TestServer::start().await;
    let mut events = Vec::new();
    for i in 0..120 {
        let system = if i % 3 == 0 { "player" } else { "api" };
        let mut e = at(
            &format!("change {i}"),
            system,
            &format!("2026-11-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24),
        );
        e["kind"] = json!(if i % 2 == 0 { "deploy" } else { "config" });
        events.push(e);
    }
    assert_eq!(
        server.post(&Value::Array(events)).await.0,
        StatusCode::CREATED
    );

    let mut seen: Vec<jiff::Timestamp> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/events?limit=7&cursor={cursor}"),
            None => "/api/v1/events?limit=7".to_owned(),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        for e in page["events"].as_array().unwrap() {
            seen.push(e["occurred_at"].as_str().unwrap().parse().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 120);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, no duplicates");

    let (_, page) = server
        .get("/api/v1/events?q=system:player%20kind:deploy&limit=500")
        .await;
    let matched = page["events"].as_array().unwrap();
    assert_eq!(matched.len(), 20); // i % 6 == 0
    assert!(
        matched
            .iter()
            .all(|e| e["system"] == "player" && e["kind"] == "deploy")
    );

    let (_, page) = server
        .get("/api/v1/events?from=2026-11-02&to=2026-11-03&limit=500")
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 24);
    let (_, page) = server
        .get("/api/v1/events?q=before:2026-11-02%20-system:player&limit=500")
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn bad_feed_parameters_are_400() {
    let server = TestServer::start().await;
    let (status, answer) = server.get("/api/v1/events?q=sytem:player").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    assert_eq!(answer["error"]["position"], 0);
    let (status, answer) = server.get("/api/v1/events?q=a%20%22unclosed").await;
    assert_eq!(answer["error"]["position"], 2, "{answer}");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for (path, parameter) in [
        ("/api/v1/events?limit=0", "limit"),
        ("/api/v1/events?limit=501", "limit"),
        ("/api/v1/events?limit=ten", "limit"),
        ("/api/v1/events?cursor=garbage", "cursor"),
        ("/api/v1/events?from=yesterday", "from"),
        ("/api/v1/events?from=2026-11-02&to=2026-11-01", "to"),
    ] {
        let (status, answer) = server.get(path).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
            "{path}"
        );
        assert_eq!(answer["error"]["parameter"], parameter, "{path}: {answer}");
    }
    let (status, answer) = server.get("/api/v1/events?limt=10").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limt"),
        "{answer}"
    );
}

/// Found by the OpenAPI fuzz (`.ci/schemathesis.sh`): a NUL in a query reached SQLite's
/// full-text syntax ("unterminated string") and PostgreSQL (which refuses NUL in text), and
/// was answered 500. Every endpoint taking a query now answers 400, as do Grafana's tags.
#[tokio::test]
async fn nul_in_a_query_is_400_everywhere() {
    let server = TestServer::start().await;
    assert_eq!(
        server.post(&event("deploy", "player")).await.0,
        StatusCode::CREATED
    );
    for path in [
        "/api/v1/events?q=a%00b",
        "/api/v1/events?q=%22a%00b%22",
        "/api/v1/events?q=system:a%00",
        "/api/v1/events/last?q=a%00b",
        "/api/v1/events/around?time=2026-11-01T00:00:00Z&q=a%00b",
        "/api/v1/stats/top?field=system&q=a%00b",
        "/api/v1/stats/histogram?q=a%00b",
        "/api/v1/export?q=a%00b",
        "/api/v1/correlate?a=a%00b&b=x",
    ] {
        let (status, answer) = server.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("NUL")),
            "{path}: {answer}"
        );
    }
    let (status, answer) = server
        .get("/integrations/grafana/api/annotations?tags=a%00b")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn full_text_search() {
    let server = TestServer::start().await;
    let mut with_description = event("Upgrade kernel", "cdn-edge");
    with_description["description"] = json!("Mitigates the **heartbleed-like** issue");
    with_description["diff"] = json!("+secretdiffword\n");
    let mut tagged = event("Rollout", "player");
    tagged["tags"] = json!(["release:5.2"]);
    tagged["version"] = json!("5.2.1");
    assert_eq!(
        server
            .post(&json!([
                with_description,
                tagged,
                event("Deploy player 5.2", "player")
            ]))
            .await
            .0,
        StatusCode::CREATED
    );
    let count = |q: &'static str| {
        let server = &server;
        async move {
            let (status, page) = server
                .get(&format!("/api/v1/events?q={}", urlencode(q)))
                .await;
            assert_eq!(status, StatusCode::OK, "{q}: {page}");
            page["events"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("kernel").await, 1);
    assert_eq!(count("heartbleed").await, 1);
    assert_eq!(count("upgr*").await, 1);
    assert_eq!(count("\"player 5.2\"").await, 1);
    assert_eq!(count("player").await, 2);
    assert_eq!(count("release").await, 1);
    assert_eq!(count("tag:release:5.2").await, 1);
    assert_eq!(count("version:5.2.1").await, 1);
    assert_eq!(count("secretdiffword").await, 0, "diffs are not indexed");
    assert_eq!(count("player -rollout").await, 1);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn last_and_around() {
    let server = TestServer::start().await;
    let (status, answer) = server.get("/api/v1/events/last?q=system:player").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let events = json!([
        at("early", "player", "2026-11-01T10:00:00Z"),
        at("late", "player", "2026-11-01T12:00:00Z"),
        at("other", "api", "2026-11-01T13:00:00Z"),
        at("near after", "api", "2026-11-01T12:10:00Z"),
        at("near before", "db", "2026-11-01T11:55:00Z"),
    ]);
    assert_eq!(server.post(&events).await.0, StatusCode::CREATED);
    let (status, last) = server.get("/api/v1/events/last?q=system:player").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last["title"], "late");
    assert!(last["age_seconds"].as_i64().unwrap() > 0);

    let (status, around) = server
        .get("/api/v1/events/around?time=2026-11-01T12:00:00Z&before=30m&after=15m")
        .await;
    assert_eq!(status, StatusCode::OK, "{around}");
    let titles: Vec<&str> = around["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["late", "near before", "near after"]);
    assert_eq!(around["events"][1]["offset_seconds"], -300);
    assert_eq!(around["events"][2]["offset_seconds"], 600);

    let (status, answer) = server.get("/api/v1/events/around").await;
    assert_eq!(
        (status, answer["error"]["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("time"))
    );
    let (status, _) = server
        .get("/api/v1/events/around?time=2026-11-01T12:00:00Z&before=2y")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patch_only_what_may_change() {
    let server = TestServer::start().await;
    let (_, created) = server
        .post(&at("A/B test", "player", "2026-11-01T10:00:00Z"))
        .await;
    let path = format!("/api/v1/events/{}", created["id"].as_str().unwrap());
    let patch = |body: Value| {
        let request = server.client.patch(server.url(&path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, updated) = patch(json!({"ended_at": "2026-11-02T10:00:00Z", "tags": ["ab:done"], "links": [{"url": "https://grafana.example.com/d/1"}]})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["ended_at"], "2026-11-02T10:00:00Z");
    assert_eq!(updated["tags"], json!(["ab:done"]));
    let (_, found) = server.get("/api/v1/events?q=tag:ab:done").await;
    assert_eq!(found["events"].as_array().unwrap().len(), 1);

    let (status, answer) = patch(json!({"title": "rewritten"})).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("title"))
    );
    let (status, answer) = patch(json!({"ended_at": "2026-10-01T00:00:00Z"})).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("ended_at"))
    );

    let missing = format!("/api/v1/events/{}", uuid_like());
    let response = server
        .client
        .patch(server.url(&missing))
        .json(&json!({"tags": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, _) = server.get(&missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = server.get("/api/v1/events/not-an-id").await;
    assert_eq!(
        (status, answer["error"]["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
}

fn uuid_like() -> &'static str {
    "0192f0c0-0000-7000-8000-000000000000"
}

#[tokio::test]
async fn export_streams_ndjson_oldest_first_with_diffs() {
    let server = TestServer::start().await;
    let mut events: Vec<Value> = (0..1200)
        .map(|i| {
            at(
                &format!("e{i}"),
                "x",
                &format!("2026-01-01T00:00:{:02}.{i:06}Z", i % 60),
            )
        })
        .collect();
    events[5]["diff"] = json!("+x\n");
    for chunk in events.chunks(1000) {
        assert_eq!(
            server.post(&Value::Array(chunk.to_vec())).await.0,
            StatusCode::CREATED
        );
    }
    let response = server
        .client
        .get(server.url("/api/v1/export?q=system:x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1200);
    let times: Vec<jiff::Timestamp> = lines
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "oldest first"
    );
    assert_eq!(lines.iter().filter(|e| e["diff"] == "+x\n").count(), 1);
}

#[tokio::test]
async fn concurrent_posts_are_all_stored_once() {
    let server = Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for client in 0..64 {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let (status, _) = server.post(&event(&format!("c{client}-{i}"), "load")).await;
                assert_eq!(status, StatusCode::CREATED);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(server.count().await, 640);
}

#[tokio::test]
async fn operations_endpoints() {
    let server = TestServer::start().await;
    assert_eq!(
        server.get("/healthz").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        server.get("/readyz").await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    server.post(&event("x", "y")).await;
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("tfr_events_stored 1"), "{metrics}");
    assert!(metrics.contains("tfr_events_created_total 1"));
    // The embedded store builds its full-text index behind the writer: one event at most is
    // waiting for it.
    assert!(
        metrics.contains("tfr_fulltext_index_lag_events 0")
            || metrics.contains("tfr_fulltext_index_lag_events 1"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "tfr_http_requests_total{method=\"POST\",route=\"/api/v1/events\",status=\"201\"} 1"
    ));
    assert!(
        metrics.contains("tfr_http_request_duration_seconds_count{route=\"/api/v1/events\"} 1")
    );

    let (status, document) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/events",
        "/api/v1/events/bulk",
        "/api/v1/events/{id}",
        "/api/v1/events/last",
        "/api/v1/events/around",
        "/api/v1/export",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }

    let (status, answer) = server.get("/nope").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let response = server
        .client
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(error_code(&answer), "method_not_allowed");
}

#[tokio::test]
async fn store_down_is_503() {
    let server = TestServer::start().await;
    server.store.shutdown().await.unwrap();
    let (status, answer) = server.post(&event("x", "y")).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    // The database's own words stay in the log.
    assert_eq!(
        answer["error"]["message"],
        "the store is unavailable; retry shortly"
    );
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn header_keys_for_arrays_and_bulk() {
    let server = TestServer::start().await;
    // An item's own key wins over the header's derived `K:i`.
    let mut own = event("own key", "x");
    own["idempotency_key"] = json!("mine");
    let send_array = |key: &'static str, body: Value| {
        let request = server
            .client
            .post(server.url("/api/v1/events"))
            .header("idempotency-key", key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = send_array("K", json!([own, event("derived", "x")])).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["events"][0]["idempotency_key"], "mine");
    assert_eq!(answer["events"][1]["idempotency_key"], "K:1");
    // Retrying the whole array stores nothing new.
    let (status, _) = send_array("K", json!([own, event("derived", "x")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.count().await, 2);

    // Bulk: line n without a key gets `K:n`, so the body can be retried as a whole.
    let body = format!("{}\n{}\n", event("b1", "y"), event("b2", "y"));
    for expected_created in [2, 0] {
        let response = server
            .client
            .post(server.url("/api/v1/events/bulk"))
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", "upload-7")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["created"], expected_created, "{outcome}");
    }
    let (_, page) = server.get("/api/v1/events?q=system:y").await;
    let keys: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.contains(&"upload-7:1") && keys.contains(&"upload-7:2"),
        "{keys:?}"
    );
}

#[tokio::test]
async fn a_key_repeated_in_one_array_with_other_content_is_refused() {
    let server = TestServer::start().await;
    let mut a = event("a", "x");
    a["idempotency_key"] = json!("dup");
    let mut b = event("b", "x");
    b["idempotency_key"] = json!("dup");
    let (status, answer) = server.post(&json!([a, event("c", "x"), b])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["items"][0]["index"], 2);
    assert_eq!(answer["error"]["items"][0]["field"], "idempotency_key");
    assert!(
        answer["error"]["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("item 0")
    );
    assert_eq!(server.count().await, 0);
    // The same content twice under one key is harmless: one event, the second its duplicate.
    let (status, answer) = server.post(&json!([a, a])).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(answer["events"][0]["id"], answer["events"][1]["id"]);
    assert_eq!(server.count().await, 1);
}

#[tokio::test]
async fn hostile_sizes_get_bounded_answers() {
    let server = TestServer::start().await;
    // A huge bad value is named, not echoed back in full.
    let mut bad = event("t", "x");
    bad["kind"] = json!("K".repeat(1_000_000));
    let (status, answer) = server.post(&bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer.to_string().len() < 1_000,
        "{}",
        answer.to_string().len()
    );
    // Too many values in a query is a 400 with a position, not a database error.
    let values = vec!["a*"; 1000].join(",");
    let (status, answer) = server
        .get(&format!("/api/v1/events?q=system:{values}"))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    // Links are absolute http(s) URLs without spaces or control characters.
    let mut link = event("t", "x");
    link["links"] = json!(["https://example.com/a b"]);
    let (status, answer) = server.post(&link).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("links[0].url"))
    );
}
