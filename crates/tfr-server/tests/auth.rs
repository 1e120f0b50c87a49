//! Who may do what (design §10), proven against a real server on 127.0.0.1 over a real SQLite
//! file: the authorization matrix — every endpoint × {no token, read, write, admin, revoked,
//! expired} × {anonymous access open, closed, the loopback default once tokens exist} — and
//! the promises around it: `submitted_by`, revocation, `last_used_at`, rate limits, the caps on
//! streams and connections, the idle and body timeouts, deletion and its audit log.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tfr_core::token::{Scope, hash_token, token_from_bytes};
use tfr_server::{AnonymousWrites, AppState, RateLimit, Secret, ServerConfig};
use tfr_store::conformance::{create, minimal, record_at, ts};
use tfr_store::{NewToken, Store};
use tfr_store_sqlite::SqliteStore;

const GITHUB_SECRET: &str = "github-webhook-secret";
const GITLAB_TOKEN: &str = "gitlab-webhook-token";

/// The callers of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    Reader,
    Writer,
    Admin,
    Revoked,
    Expired,
}

const EVERYONE: [Who; 6] = [
    Who::Nobody,
    Who::Reader,
    Who::Writer,
    Who::Admin,
    Who::Revoked,
    Who::Expired,
];

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Nobody => "anonymous",
            Who::Reader => "reader",
            Who::Writer => "writer",
            Who::Admin => "admin",
            Who::Revoked => "revoked",
            Who::Expired => "expired",
        }
    }

    /// The token's secret: `tfr_` and 64 hex digits, different for each.
    fn token(self) -> Option<String> {
        let byte = match self {
            Who::Nobody => return None,
            Who::Reader => 1,
            Who::Writer => 2,
            Who::Admin => 3,
            Who::Revoked => 4,
            Who::Expired => 5,
        };
        Some(token_from_bytes(&[byte; 32]))
    }
}

/// What anonymous callers may do on the server under test.
#[derive(Clone, Copy, Debug)]
struct Anonymous {
    read: bool,
    write: bool,
}

/// Creates the matrix's tokens on the store: one per scope, a revoked one, an expired one.
async fn create_tokens(store: &dyn Store) {
    let now = tfr_core::time::now();
    for (who, scope, expires_at, revoked) in [
        (Who::Reader, Scope::Read, None, false),
        (Who::Writer, Scope::Write, None, false),
        (
            Who::Admin,
            Scope::Admin,
            Some(ts("2999-01-01T00:00:00Z")),
            false,
        ),
        (Who::Revoked, Scope::Admin, None, true),
        (
            Who::Expired,
            Scope::Admin,
            Some(ts("2020-01-01T00:00:00Z")),
            false,
        ),
    ] {
        let token = who.token().expect("a token");
        store
            .create_token(NewToken {
                name: who.name().to_owned(),
                scope,
                hash: hash_token(&token),
                created_at: now,
                expires_at,
            })
            .await
            .expect("create_token")
            .expect("a new name");
        if revoked {
            store
                .revoke_token(who.name(), now)
                .await
                .expect("revoke")
                .expect("found");
        }
    }
}

struct TestServer {
    base: String,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(config: ServerConfig, with_tokens: bool) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
        if with_tokens {
            create_tokens(store.as_ref()).await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let config = ServerConfig {
            github_secret: Some(Secret::new(GITHUB_SECRET)),
            gitlab_token: Some(Secret::new(GITLAB_TOKEN)),
            ..config
        };
        let state = AppState::new(Arc::clone(&store), config);
        tokio::spawn(tfr_server::serve(listener, state, std::future::pending()));
        Self {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            store,
            _dir: dir,
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// An event stored directly, for the endpoints that need one.
    async fn event(&self, title: &str) -> String {
        let submitted = minimal(title, ts("2026-11-01T10:00:00Z"));
        let event = create(
            self.store.as_ref(),
            record_at(&submitted, tfr_core::time::now(), "fixture"),
        )
        .await;
        event.id.to_string()
    }
}

/// What an endpoint needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Nothing: health, readiness, the OpenAPI document, the assets.
    Open,
    Read,
    Write,
    Admin,
    /// The webhook's own secret (GitHub, GitLab): tfr tokens play no part.
    Webhook,
}

/// Where a caller's token goes.
#[derive(Clone, Copy, Debug)]
enum Credential {
    /// `Authorization: Bearer`.
    Bearer,
    /// PagerDuty's `routing_key`, in the body.
    RoutingKey,
    /// Datadog's `DD-API-KEY` header.
    DatadogKey,
    /// Honeycomb's `X-Honeycomb-Team` header.
    HoneycombKey,
}

/// A request of the matrix, made fresh for each cell: `n` makes ids and keys unique, `event`
/// is an existing event, `fresh` one made for this request alone (deletions).
struct Call<'a> {
    n: u64,
    event: &'a str,
    fresh: &'a str,
}

type Build = fn(&TestServer, &Call<'_>, Option<&str>) -> RequestBuilder;

struct Endpoint {
    name: &'static str,
    need: Need,
    /// The status when the caller may.
    ok: u16,
    /// Whether the answer is a page (refusals too).
    page: bool,
    credential: Credential,
    build: Build,
}

fn endpoint(name: &'static str, need: Need, ok: u16, build: Build) -> Endpoint {
    Endpoint {
        name,
        need,
        ok,
        page: false,
        credential: Credential::Bearer,
        build,
    }
}

fn page(name: &'static str, build: Build) -> Endpoint {
    Endpoint {
        page: true,
        ..endpoint(name, Need::Read, 200, build)
    }
}

fn with(credential: Credential, endpoint: Endpoint) -> Endpoint {
    Endpoint {
        credential,
        ..endpoint
    }
}

fn sign(body: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(GITHUB_SECRET.as_bytes()).expect("a key");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn event_body(title: &str) -> Value {
    json!({"title": title, "system": "matrix", "author": "tester"})
}

/// Every endpoint of the server, with what it needs.
fn endpoints() -> Vec<Endpoint> {
    use Need::*;
    vec![
        // The API.
        endpoint("list", Read, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/events")
        }),
        endpoint("get one", Read, 200, |s, c, _| {
            s.request(Method::GET, &format!("/api/v1/events/{}", c.event))
        }),
        endpoint("last", Read, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/events/last?q=system:conformance")
        }),
        endpoint("around", Read, 200, |s, _, _| {
            s.request(
                Method::GET,
                "/api/v1/events/around?time=2026-11-01T10:00:00Z",
            )
        }),
        endpoint("histogram", Read, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/stats/histogram")
        }),
        endpoint("top", Read, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/stats/top?field=system")
        }),
        endpoint("correlate", Read, 200, |s, _, _| {
            s.request(
                Method::GET,
                "/api/v1/correlate?a=kind:deploy&b=kind:incident",
            )
        }),
        endpoint("export", Read, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/export")
        }),
        endpoint("stream", Read, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/stream")
        }),
        endpoint("metrics", Read, 200, |s, _, _| {
            s.request(Method::GET, "/metrics")
        }),
        endpoint("create", Write, 201, |s, c, _| {
            s.request(Method::POST, "/api/v1/events")
                .json(&event_body(&format!("created {}", c.n)))
        }),
        endpoint("create an array", Write, 201, |s, c, _| {
            s.request(Method::POST, "/api/v1/events")
                .json(&json!([event_body(&format!("array {}", c.n))]))
        }),
        endpoint("bulk", Write, 200, |s, c, _| {
            s.request(Method::POST, "/api/v1/events/bulk")
                .header("content-type", "application/x-ndjson")
                .body(format!("{}\n", event_body(&format!("bulk {}", c.n))))
        }),
        endpoint("patch", Write, 200, |s, c, _| {
            s.request(Method::PATCH, &format!("/api/v1/events/{}", c.event))
                .json(&json!({"tags": [format!("patched:{}", c.n)]}))
        }),
        endpoint("delete", Admin, 204, |s, c, _| {
            s.request(
                Method::DELETE,
                &format!("/api/v1/events/{}?reason=matrix", c.fresh),
            )
        }),
        endpoint("audit log", Admin, 200, |s, _, _| {
            s.request(Method::GET, "/api/v1/audit")
        }),
        // Open to anyone.
        endpoint("healthz", Open, 200, |s, _, _| {
            s.request(Method::GET, "/healthz")
        }),
        endpoint("readyz", Open, 200, |s, _, _| {
            s.request(Method::GET, "/readyz")
        }),
        endpoint("openapi", Open, 200, |s, _, _| {
            s.request(Method::GET, "/openapi.json")
        }),
        endpoint("stylesheet", Open, 200, |s, _, _| {
            s.request(Method::GET, "/static/app.css")
        }),
        endpoint("script", Open, 200, |s, _, _| {
            s.request(Method::GET, "/static/app.js")
        }),
        endpoint("cloudevents handshake", Open, 200, |s, _, _| {
            s.request(Method::OPTIONS, "/integrations/cloudevents")
                .header("webhook-request-origin", "eventemitter.example.com")
        }),
        endpoint("grafana preflight", Open, 204, |s, _, _| {
            s.request(Method::OPTIONS, "/integrations/grafana/api/annotations")
                .header("origin", "https://grafana.example.com")
                .header("access-control-request-method", "POST")
        }),
        // The web UI.
        page("feed", |s, _, _| s.request(Method::GET, "/")),
        page("cards", |s, _, _| s.request(Method::GET, "/ui/cards")),
        page("event page", |s, c, _| {
            s.request(Method::GET, &format!("/events/{}", c.event))
        }),
        page("stats page", |s, _, _| s.request(Method::GET, "/stats")),
        page("correlate page", |s, _, _| {
            s.request(Method::GET, "/correlate")
        }),
        // Integrations: webhooks with their own secrets.
        endpoint("github", Webhook, 201, |s, c, _| {
            let body = json!({"ref": "refs/heads/main", "after": format!("{:040x}", c.n),
                "repository": {"name": "player", "full_name": "acme/player", "default_branch": "main"},
                "sender": {"login": "alice"}, "head_commit": {"message": "Faster start"},
                "commits": [{"id": format!("{:040x}", c.n), "message": "Faster start"}]})
            .to_string();
            s.request(Method::POST, "/integrations/github")
                .header("content-type", "application/json")
                .header("x-github-event", "push")
                .header("x-github-delivery", format!("delivery-{}", c.n))
                .header("x-hub-signature-256", sign(&body))
                .body(body)
        }),
        endpoint("gitlab", Webhook, 201, |s, c, _| {
            s.request(Method::POST, "/integrations/gitlab")
                .header("x-gitlab-event", "Push Hook")
                .header("x-gitlab-token", GITLAB_TOKEN)
                .header("idempotency-key", format!("gitlab-{}", c.n))
                .json(&json!({"object_kind": "push", "ref": "refs/heads/main",
                    "checkout_sha": format!("{:040x}", c.n), "user_username": "bob",
                    "project": {"name": "api", "path_with_namespace": "acme/api", "default_branch": "main"},
                    "commits": [{"id": format!("{:040x}", c.n), "message": "Fix"}], "total_commits_count": 1}))
        }),
        // Integrations: writes with the tool's credential.
        with(
            Credential::RoutingKey,
            endpoint("pagerduty", Write, 202, |s, c, token| {
                s.request(Method::POST, "/integrations/pagerduty/v2/change/enqueue")
                    .json(
                        &json!({"routing_key": token.unwrap_or("R015XQJMPFHN5TQ2EYMBSCEPAO4D3BXE"),
                        "payload": {"summary": format!("change {}", c.n), "source": "matrix"}}),
                    )
            }),
        ),
        with(
            Credential::DatadogKey,
            endpoint("datadog", Write, 202, |s, c, token| {
                s.request(Method::POST, "/integrations/datadog/api/v1/events")
                    .header("dd-api-key", token.unwrap_or("0123456789abcdef0123456789abcdef"))
                    .json(&json!({"title": format!("datadog {}", c.n), "text": "x", "tags": ["service:matrix"]}))
            }),
        ),
        with(
            Credential::HoneycombKey,
            endpoint("honeycomb", Write, 201, |s, c, token| {
                s.request(Method::POST, "/integrations/honeycomb/1/markers/matrix")
                    .header("x-honeycomb-team", token.unwrap_or("hcaik_01j"))
                    .json(&json!({"message": format!("marker {}", c.n), "type": "deploy"}))
            }),
        ),
        endpoint("grafana annotation", Write, 200, |s, c, _| {
            s.request(Method::POST, "/integrations/grafana/api/annotations")
                .json(&json!({"text": format!("annotation {}", c.n), "tags": ["system:matrix"]}))
        }),
        endpoint("grafana graphite", Write, 200, |s, c, _| {
            s.request(
                Method::POST,
                "/integrations/grafana/api/annotations/graphite",
            )
            .json(&json!({"what": format!("graphite {}", c.n), "tags": ["system:matrix"]}))
        }),
        endpoint("cloudevents", Write, 201, |s, c, _| {
            s.request(Method::POST, "/integrations/cloudevents")
                .header("content-type", "application/cloudevents+json")
                .body(
                    json!({"specversion": "1.0", "id": format!("ce-{}", c.n),
                    "source": "/matrix", "type": "com.example.deployed",
                    "subject": "matrix"})
                    .to_string(),
                )
        }),
        // Integrations: Grafana reads.
        endpoint("grafana annotations", Read, 200, |s, _, _| {
            s.request(Method::GET, "/integrations/grafana/api/annotations")
        }),
        endpoint("simplejson", Read, 200, |s, _, _| {
            s.request(Method::GET, "/integrations/grafana/simplejson/")
        }),
        endpoint("simplejson annotations", Read, 200, |s, _, _| {
            s.request(Method::POST, "/integrations/grafana/simplejson/annotations")
                .json(
                    &json!({"range": {"from": "2026-10-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
                    "annotation": {"name": "tfr", "query": "system:matrix"}}),
                )
        }),
        endpoint("simplejson search", Read, 200, |s, _, _| {
            s.request(Method::POST, "/integrations/grafana/simplejson/search")
                .json(&json!({"target": ""}))
        }),
    ]
}

/// The status the matrix expects.
fn expected(endpoint: &Endpoint, who: Who, anonymous: Anonymous) -> u16 {
    let scope = match who {
        Who::Reader => Some(Scope::Read),
        Who::Writer => Some(Scope::Write),
        Who::Admin => Some(Scope::Admin),
        Who::Nobody | Who::Revoked | Who::Expired => None,
    };
    let needed = match endpoint.need {
        Need::Open | Need::Webhook => return endpoint.ok,
        Need::Read => Scope::Read,
        Need::Write => Scope::Write,
        Need::Admin => Scope::Admin,
    };
    match (who, scope) {
        (Who::Revoked | Who::Expired, _) => 401,
        (_, Some(scope)) if scope.allows(needed) => endpoint.ok,
        (_, Some(_)) => 403,
        (_, None) => {
            let allowed = match needed {
                Scope::Read => anonymous.read,
                Scope::Write => anonymous.write,
                Scope::Admin => false,
            };
            if allowed { endpoint.ok } else { 401 }
        }
    }
}

/// Runs every endpoint for every caller and reports every cell that differs from
/// [`expected`].
async fn run_matrix(server: &TestServer, anonymous: Anonymous, label: &str) {
    let event = server.event("matrix fixture").await;
    let counter = AtomicU64::new(0);
    let mut failures = Vec::new();
    let mut cells = 0;
    for endpoint in endpoints() {
        for who in EVERYONE {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let fresh = server.event(&format!("to delete {n}")).await;
            let call = Call {
                n,
                event: &event,
                fresh: &fresh,
            };
            let token = who.token();
            let mut request = (endpoint.build)(server, &call, token.as_deref());
            if let (Credential::Bearer, Some(token)) = (endpoint.credential, &token) {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("a response");
            let status = response.status();
            let headers = response.headers().clone();
            let want = expected(&endpoint, who, anonymous);
            cells += 1;
            let cell = format!("[{label}] {} as {}", endpoint.name, who.name());
            if endpoint.name == "stream" && status == StatusCode::OK {
                drop(response); // endless: the status is all there is to see
            } else {
                let body = response.text().await.unwrap_or_default();
                if status.as_u16() != want {
                    failures.push(format!("{cell}: {status}, expected {want}: {body}"));
                    continue;
                }
                if want == 401 || want == 403 {
                    let challenge = headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !challenge.starts_with("Bearer") {
                        failures.push(format!("{cell}: no Bearer challenge: {challenge:?}"));
                    }
                    let code = if want == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    };
                    if endpoint.page {
                        if !body.contains("<html") || body.contains("\"code\"") {
                            failures.push(format!("{cell}: a refusal page was expected: {body}"));
                        }
                    } else {
                        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        if json["error"]["code"] != code {
                            failures.push(format!("{cell}: expected code {code}: {body}"));
                        }
                    }
                }
                continue;
            }
            if status.as_u16() != want {
                failures.push(format!("{cell}: {status}, expected {want}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_with_anonymous_access_open() {
    let config = ServerConfig {
        anonymous_read: true,
        anonymous_writes: AnonymousWrites::Allowed,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, true).await;
    let anonymous = Anonymous {
        read: true,
        write: true,
    };
    run_matrix(&server, anonymous, "open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_with_anonymous_access_closed() {
    let config = ServerConfig {
        anonymous_read: false,
        anonymous_writes: AnonymousWrites::Refused,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, true).await;
    let anonymous = Anonymous {
        read: false,
        write: false,
    };
    run_matrix(&server, anonymous, "closed").await;
}

/// The loopback default (anonymous reads; anonymous writes until the first token) once
/// tokens exist: reads stay open, writes need a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_on_the_loopback_default_once_tokens_exist() {
    let server = TestServer::start(ServerConfig::default(), true).await;
    let anonymous = Anonymous {
        read: true,
        write: false,
    };
    run_matrix(&server, anonymous, "loopback default").await;
}

// ---------------------------------------------------------------------------------------------
// Around the matrix
// ---------------------------------------------------------------------------------------------

fn closed() -> ServerConfig {
    ServerConfig {
        anonymous_read: false,
        anonymous_writes: AnonymousWrites::Refused,
        ..ServerConfig::default()
    }
}

async fn json_of(request: RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every way of writing records the token's name as `submitted_by`; the webhooks record
/// theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_records_the_token_name() {
    let server = TestServer::start(closed(), true).await;
    let event = server.event("patched").await;
    let token = Who::Writer.token().expect("a token");
    let mut writes = 0;
    for endpoint in endpoints() {
        if endpoint.need != Need::Write && endpoint.need != Need::Webhook {
            continue;
        }
        let call = Call {
            n: 1000 + writes,
            event: &event,
            fresh: &event,
        };
        let mut request = (endpoint.build)(&server, &call, Some(&token));
        if let Credential::Bearer = endpoint.credential {
            request = request.bearer_auth(&token);
        }
        let (status, _, body) = json_of(request).await;
        assert_eq!(status.as_u16(), endpoint.ok, "{}: {body}", endpoint.name);
        writes += 1;
    }
    let (_, _, page) = json_of(
        server
            .request(Method::GET, "/api/v1/events?limit=500")
            .bearer_auth(&token),
    )
    .await;
    let mut by_source: Vec<(String, String)> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["submitted_by"] != "fixture")
        .map(|event| {
            (
                event["source"].as_str().unwrap_or("api").to_owned(),
                event["submitted_by"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    by_source.sort();
    by_source.dedup();
    assert_eq!(
        by_source,
        [
            ("api", "writer"),
            ("cloudevents", "writer"),
            ("datadog", "writer"),
            ("github", "github-webhook"),
            ("gitlab", "gitlab-webhook"),
            ("grafana", "writer"),
            ("honeycomb", "writer"),
            ("pagerduty", "writer"),
        ]
        .map(|(source, by)| (source.to_owned(), by.to_owned()))
    );
}

/// A tool's own key (no `tfr_` prefix) is no credential: the write is anonymous, so refused
/// where anonymous writes are; a key with the prefix must be a valid token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_keys_are_tfr_tokens_or_nothing() {
    let server = TestServer::start(closed(), true).await;
    let datadog = |key: &str| {
        server
            .request(Method::POST, "/integrations/datadog/api/v1/events")
            .header("dd-api-key", key)
            .json(&json!({"title": "Deploy", "text": "x", "tags": ["service:web"]}))
    };
    let (status, headers, body) = json_of(datadog("0123456789abcdef")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="tfr""#);
    let (status, headers, body) = json_of(datadog("tfr_not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let reader = Who::Reader.token().expect("a token");
    let (status, _, body) = json_of(datadog(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["required_scope"], "write");
    // The tool's key and a bearer token: the token counts.
    let writer = Who::Writer.token().expect("a token");
    let (status, _, body) = json_of(datadog("0123456789abcdef").bearer_auth(&writer)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// `Authorization` must be `Bearer <token>`: anything else is refused, not ignored.
#[tokio::test]
async fn malformed_authorization_is_refused() {
    let server = TestServer::start(ServerConfig::default(), false).await;
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "tfr_abc",
        "Bearer not-a-tfr-token",
    ] {
        let (status, headers, body) = json_of(
            server
                .request(Method::GET, "/api/v1/events")
                .header("authorization", value),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{value}"
        );
    }
}

/// Revoking a token on the store (as `tfr token revoke` does, from any machine) shuts it out
/// of a running server within the cache's lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_a_running_server() {
    let server = TestServer::start(closed(), true).await;
    let token = Who::Writer.token().expect("a token");
    let list = || {
        server
            .request(Method::GET, "/api/v1/events")
            .bearer_auth(&token)
    };
    assert_eq!(json_of(list()).await.0, StatusCode::OK);
    server
        .store
        .revoke_token("writer", tfr_core::time::now())
        .await
        .expect("revoke")
        .expect("found");
    let deadline = Instant::now() + tfr_server::TOKEN_CACHE_TTL + Duration::from_secs(5);
    loop {
        let (status, _, body) = json_of(list()).await;
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("revoked"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still accepted: {status}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// On loopback with no token, anonymous writes are allowed; once a token is created they are
/// refused (reads stay open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_token_ends_anonymous_writes() {
    let server = TestServer::start(ServerConfig::default(), false).await;
    let post = || {
        server
            .request(Method::POST, "/api/v1/events")
            .json(&event_body("anonymous"))
    };
    let (status, _, body) = json_of(post()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["submitted_by"], "anonymous");
    create_tokens(server.store.as_ref()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = json_of(post()).await;
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("tokens are defined"),
                "{body}"
            );
            break;
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(Instant::now() < deadline, "anonymous writes still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _, _) = json_of(server.request(Method::GET, "/api/v1/events")).await;
    assert_eq!(status, StatusCode::OK, "anonymous reads stay open");
}

/// Using a token records when, at most about once a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_used_is_recorded() {
    let server = TestServer::start(closed(), true).await;
    let token = Who::Reader.token().expect("a token");
    let before = tfr_core::time::now();
    for _ in 0..3 {
        let (status, _, _) = json_of(
            server
                .request(Method::GET, "/api/v1/events")
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tokens = server.store.list_tokens().await.expect("list");
        let reader = tokens.iter().find(|t| t.name == "reader").expect("reader");
        if let Some(used) = reader.last_used_at {
            assert!(used >= before, "{used} < {before}");
            let writer = tokens.iter().find(|t| t.name == "writer").expect("writer");
            assert_eq!(writer.last_used_at, None, "an unused token was not touched");
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never set");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Over the rate limit: `429` with `Retry-After`, for that caller only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_per_caller() {
    let config = ServerConfig {
        rate_limit: Some(RateLimit {
            requests: 3,
            per: Duration::from_secs(60),
        }),
        ..closed()
    };
    let server = TestServer::start(config, true).await;
    let get = |who: Who| {
        server
            .request(Method::GET, "/api/v1/events")
            .bearer_auth(who.token().expect("a token"))
    };
    for _ in 0..3 {
        assert_eq!(json_of(get(Who::Reader)).await.0, StatusCode::OK);
    }
    let (status, headers, body) = json_of(get(Who::Reader)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry_after: u64 = headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        json_of(get(Who::Writer)).await.0,
        StatusCode::OK,
        "another token has its own budget"
    );
    // Health stays open whatever the budget.
    assert_eq!(
        json_of(server.request(Method::GET, "/healthz")).await.0,
        StatusCode::OK
    );
}

/// At most `max_streams` live streams: the next is `503`, and a closed one frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped() {
    let config = ServerConfig {
        max_streams: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, false).await;
    let open = || server.request(Method::GET, "/api/v1/stream").send();
    let first = open().await.expect("first stream");
    assert_eq!(first.status(), StatusCode::OK);
    let (status, headers, body) = json_of(server.request(Method::GET, "/api/v1/stream")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live streams"),
        "{body}"
    );
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let again = open().await.expect("a stream");
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads on a raw connection until the server closes it (or `limit` passes).
fn closed_within(mut stream: TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(limit))
        .expect("a read timeout");
    let mut buffer = [0_u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A connection that says nothing, or sends its headers too slowly, is closed after the idle
/// timeout; connections beyond `max_connections` wait for a free slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_connections_capped() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        max_connections: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, false).await;
    let address = server.base.trim_start_matches("http://").to_owned();

    let silent = TcpStream::connect(&address).expect("connect");
    // The only slot is taken: a request waits...
    let waiting = tokio::spawn({
        let request = server.request(Method::GET, "/healthz");
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("a response");
            (response.status(), started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served beyond max_connections");
    // ...until the silent connection is closed by the idle timeout.
    let closed =
        tokio::task::spawn_blocking(move || closed_within(silent, Duration::from_secs(10)))
            .await
            .expect("the reader");
    assert!(closed, "an idle connection was kept open");
    let (status, waited) = waiting.await.expect("the waiting request");
    assert_eq!(status, StatusCode::OK);
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // Headers sent one byte at a time, too slowly: closed, not answered.
    let mut slow = TcpStream::connect(&address).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let closed = tokio::task::spawn_blocking(move || closed_within(slow, Duration::from_secs(10)))
        .await
        .expect("the reader");
    assert!(closed, "a slow client held its connection");
}

/// A request body that stops arriving is answered `408` after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_timed_out() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, false).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).expect("connect");
        stream
            .write_all(
                b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":",
            )
            .expect("write");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("the client");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// Deleting an event needs `admin`, is audited (who, when, what, why), and happens once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_is_audited() {
    let server = TestServer::start(closed(), true).await;
    let admin = Who::Admin.token().expect("a token");
    let id = server.event("Rotate the password").await;
    let delete = |path: String| server.request(Method::DELETE, &path).bearer_auth(&admin);
    let (status, _, body) = json_of(delete(format!(
        "/api/v1/events/{id}?reason=a%20password%20in%20the%20diff"
    )))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _, body) = json_of(delete(format!("/api/v1/events/{id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = json_of(
        server
            .request(Method::GET, &format!("/api/v1/events/{id}"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = json_of(delete(format!(
        "/api/v1/events/{}?reason=line%0Abreak",
        server.event("x").await
    )))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["parameter"], "reason");
    let (status, _, body) = json_of(delete("/api/v1/events/not-an-id".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, _, log) = json_of(
        server
            .request(Method::GET, "/api/v1/audit")
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{log}");
    let entry = &entries[0];
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["action"], "event.delete");
    assert_eq!(entry["event_id"], id.as_str());
    assert_eq!(entry["title"], "Rotate the password");
    assert_eq!(entry["system"], "conformance");
    assert_eq!(entry["reason"], "a password in the diff");
    assert!(entry["at"].as_str().expect("a time").ends_with('Z'));
    assert_eq!(log["next_cursor"], Value::Null);

    // Paging.
    for n in 0..3 {
        let id = server.event(&format!("more {n}")).await;
        let (status, _, _) = json_of(delete(format!("/api/v1/events/{id}"))).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (_, _, first) = json_of(
        server
            .request(Method::GET, "/api/v1/audit?limit=2")
            .bearer_auth(&admin),
    )
    .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, _, second) = json_of(
        server
            .request(
                Method::GET,
                &format!("/api/v1/audit?limit=2&cursor={cursor}"),
            )
            .bearer_auth(&admin),
    )
    .await;
    let titles: Vec<&str> = first["entries"]
        .as_array()
        .into_iter()
        .chain(second["entries"].as_array())
        .flatten()
        .map(|entry| entry["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        titles,
        ["more 2", "more 1", "more 0", "Rotate the password"]
    );
    assert_eq!(second["next_cursor"], Value::Null);
}
