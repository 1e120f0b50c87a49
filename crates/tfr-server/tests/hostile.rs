//! Hostile content: titles, tags, links, descriptions, diffs and attributes carrying script
//! tags, `javascript:` URLs and HTML are facts like any other — stored intact and returned
//! intact by every read of the API (JSON, NDJSON export, the live stream) — while URLs that
//! could run code are refused where the model has URLs (links). The API's answers are JSON
//! with `nosniff`, so a browser never renders them as a page. (That the web UI renders the
//! same content inert is also checked here at the HTML level; the browser tests check it in
//! Chromium.)

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
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state = AppState::new(store, ServerConfig::default());
        tokio::spawn(tfr_server::serve(listener, state, std::future::pending()));
        Self {
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("a response");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("a body"))
    }
}

const SCRIPT: &str = "<script>alert(document.cookie)</script>";

/// An event made of attacks, field by field.
fn hostile() -> Value {
    json!({
        "title": format!("Deploy {SCRIPT} <img src=x onerror=alert(1)> \"quoted\" 'single' & more"),
        "system": "\"><svg onload=alert(1)>",
        "author": "javascript:alert(1)",
        "kind": "deploy",
        "environment": "<b>prod</b>",
        "team": "{{7*7}} ${7*7} <%= 7*7 %>",
        "source": "</script><script>alert(2)</script>",
        "version": "1.0' OR '1'='1",
        "description": format!(
            "# Notes\n\n{SCRIPT}\n\n<iframe src=\"https://evil.example\"></iframe>\n\n\
             [click](javascript:alert(1)) [data](data:text/html,{SCRIPT}) \
             <a href=\"javascript:alert(3)\">raw</a>\n\n![img](javascript:alert(4))\n\n\
             <div onclick=\"alert(5)\" style=\"background:url(javascript:alert(6))\">div</div>"
        ),
        "tags": [SCRIPT, "onload=alert(1)", "key:<svg/onload=alert(1)>", "javascript:alert(1)", "a\"b'c<d>e&f"],
        "links": [
            {"url": "https://example.com/?q=<script>alert(1)</script>&x=\"y\"", "title": SCRIPT},
            {"url": "http://example.com/#javascript:alert(1)", "title": "<img src=x onerror=alert(1)>"}
        ],
        "diff": format!(
            "--- a/index.html\n+++ b/index.html\n@@ -1,2 +1,2 @@\n-<p>old</p>\n+{SCRIPT}\n \
             <a href=\"javascript:alert(1)\">x</a>\n"
        ),
        "attributes": {"html": SCRIPT, "nested": {"<key>": "javascript:alert(1)"}},
    })
}

/// The fields a client sent, as the server returns them (it adds its own).
fn assert_intact(sent: &Value, returned: &Value, context: &str) {
    for (field, value) in sent.as_object().expect("an object") {
        if field == "diff" && returned.get("diff").is_none() {
            assert_eq!(returned["has_diff"], true, "{context}: has_diff");
            continue;
        }
        assert_eq!(&returned[field], value, "{context}: {field} changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_is_stored_and_returned_intact() {
    let server = TestServer::start().await;
    // The live stream, open before the write.
    let stream = server
        .client
        .get(server.url("/api/v1/stream"))
        .send()
        .await
        .expect("a stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let mut stream = stream.bytes_stream();

    let sent = hostile();
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .json(&sent)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    assert_intact(&sent, &created, "the answer to POST");
    let id = created["id"].as_str().expect("an id").to_owned();

    // One event, with its diff.
    let (status, headers, body) = server.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let one: Value = serde_json::from_str(&body).expect("json");
    assert_intact(&sent, &one, "GET /api/v1/events/{id}");
    assert_eq!(one["diff"], sent["diff"]);

    // The feed, the full text search, a tag search.
    for path in [
        "/api/v1/events".to_owned(),
        "/api/v1/events?q=alert".to_owned(),
        format!(
            "/api/v1/events?q=tag:{}",
            percent("key:<svg/onload=alert(1)>")
        ),
    ] {
        let (status, _, body) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page: Value = serde_json::from_str(&body).expect("json");
        let events = page["events"].as_array().expect("events");
        assert_eq!(events.len(), 1, "{path}: {body}");
        assert_intact(&sent, &events[0], &path);
    }

    // The export, diff included.
    let (status, _, body) = server.get("/api/v1/export").await;
    assert_eq!(status, StatusCode::OK);
    let exported: Value = serde_json::from_str(body.lines().next().expect("a line")).expect("json");
    assert_intact(&sent, &exported, "the export");
    assert_eq!(exported["diff"], sent["diff"]);

    // The live stream: the event as JSON in one `data:` line, its newlines escaped.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\ndata:") && !text.starts_with("data:") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    while !text.trim_end_matches(' ').ends_with("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the rest of the event")
            .expect("the stream goes on")
            .expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .expect("a data line");
    let streamed: Value = serde_json::from_str(data.trim()).expect("json");
    assert_intact(&sent, &streamed, "the stream");
}

#[tokio::test]
async fn urls_that_could_run_code_are_refused_as_links() {
    let server = TestServer::start().await;
    for url in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example.com/",
        "/relative",
        "https://exa mple.com/",
        "https://example.com/\u{0}",
    ] {
        let response = server
            .client
            .post(server.url("/api/v1/events"))
            .json(&json!({"title": "t", "system": "s", "author": "a", "links": [{"url": url}]}))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["field"], "links[0].url", "{url:?}: {body}");
    }
}

/// The same event on its page: every attack shown as text, no markup of the attacker's, no
/// link to a `javascript:` URL, a strict Content-Security-Policy.
#[tokio::test]
async fn hostile_content_is_inert_in_pages() {
    let server = TestServer::start().await;
    let created: Value = server
        .client
        .post(server.url("/api/v1/events"))
        .json(&hostile())
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("an id");
    for path in [
        format!("/events/{id}"),
        "/".to_owned(),
        "/ui/cards".to_owned(),
    ] {
        let (status, headers, html) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let lower = html.to_ascii_lowercase();
        // The page's own script tag is the only one (an external file, allowed by the CSP).
        let scripts = lower.matches("<script").count();
        assert!(scripts <= 1, "{path}: {scripts} script tags");
        for forbidden in [
            "<script>alert",
            "<img src=x",
            "<svg onload",
            "<svg/onload",
            "<iframe",
            "<div onclick",
            "<b>prod</b>",
        ] {
            assert!(!lower.contains(forbidden), "{path}: {forbidden} in {html}");
        }
        // Every tag is the page's own (user text is escaped, so a `<` starts a real tag): no
        // event handler, no link or source that points to code.
        for tag in lower
            .split('<')
            .skip(1)
            .map(|rest| rest.split('>').next().unwrap_or(""))
        {
            for (name, value) in attributes(tag) {
                assert!(
                    !name.starts_with("on"),
                    "{path}: an event handler in <{tag}>"
                );
                if matches!(name.as_str(), "href" | "src" | "action" | "formaction") {
                    let value = value.trim_start();
                    // (The page's own icon is a `data:image/` URL.)
                    for scheme in ["javascript:", "vbscript:", "data:text"] {
                        assert!(!value.starts_with(scheme), "{path}: <{tag}>");
                    }
                }
            }
        }
    }
    let (_, _, page) = server.get(&format!("/events/{id}")).await;
    assert!(page.contains("&lt;script&gt;alert(document.cookie)&lt;/script&gt;"));
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The attributes of a tag's text (`a href="x" class=y`): names and unquoted values.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = tag.trim_start_matches(|c: char| !c.is_whitespace());
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return found;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_owned();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (text, remaining) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let end = body.find(quote).unwrap_or(body.len());
                    (&body[..end], body.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = text.to_owned();
            rest = remaining;
        }
        found.push((name, value));
    }
}
