//! The HTTP plumbing shared by the client commands: one configured `reqwest` client, retries
//! with exponential backoff, and the server's JSON errors turned into readable messages.
//!
//! Retries are what make `tfr send` safe to drop into a deploy script: a server restarting
//! for a few seconds must not lose a fact. They are only done where repeating is harmless:
//! on connection errors, timeouts and 5xx answers; a 4xx answer means the request itself is
//! wrong and sending it again would only fail again. Writes carry an idempotency key, so a
//! retry after a lost answer returns the original event instead of a duplicate.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::ClientOptions;
use super::demo::Rng;

/// How long to wait for a TCP (and TLS) connection: a server that does not accept within
/// this is down or unreachable, and the retry loop takes over.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The deadline of a whole request and its answer, streaming exports excepted (they may
/// legitimately last longer; they are bounded by [`READ_TIMEOUT`] between reads instead).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest silence tolerated between two reads of a response body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The `User-Agent` sent with every request, so server logs tell CLI traffic (and its
/// version) apart from integrations and browsers.
pub const USER_AGENT: &str = concat!("tfr/", env!("CARGO_PKG_VERSION"));

/// When and how often a failed request is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total number of tries, the first included; at least 1.
    pub attempts: u32,
    /// The pause before the first retry; it doubles before each further retry.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five tries over about three seconds: long enough to ride out a server restart, short
    /// enough not to hold up a deploy when the server is really gone.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry): `first_delay`
    /// doubled `retry - 1` times, then scaled by `jitter` in `[0.5, 1.0]` so that clients
    /// failing together do not all come back at the same instant.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(16);
        let base = self.first_delay.saturating_mul(1 << doublings);
        base.mul_f64(jitter.clamp(0.5, 1.0))
    }
}

/// The `error` object of a server's error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_event`.
    #[serde(default)]
    pub code: String,
    /// A sentence for people.
    #[serde(default)]
    pub message: String,
    /// The field at fault, for validation errors.
    #[serde(default)]
    pub field: Option<String>,
}

impl fmt::Display for ErrorBody {
    /// `field: message`, the same shape as a local validation error, so a mistake reads the
    /// same whether the CLI or the server caught it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field.as_deref().filter(|field| !field.is_empty()) {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

/// Why a request to the server did not succeed.
#[derive(Debug)]
pub enum ApiError {
    /// The options cannot make a request (a malformed `--server` URL, a token that is not a
    /// valid header value); retrying would not help.
    Setup(String),
    /// No complete answer from the server, after every allowed attempt.
    Unreachable {
        url: String,
        attempts: u32,
        cause: String,
    },
    /// The server answered with an error status.
    Status { status: StatusCode, body: ErrorBody },
    /// The server answered with success, but not with what the API promises.
    BadResponse { url: String, message: String },
}

impl ApiError {
    /// The HTTP status of an error answer, to react to specific ones (`404` from `last`).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(message) => f.write_str(message),
            Self::Unreachable {
                url,
                attempts,
                cause,
            } => {
                write!(f, "cannot reach the server at {url}")?;
                if *attempts > 1 {
                    write!(f, " after {attempts} attempts")?;
                }
                write!(f, ": {cause}")
            }
            Self::Status { status, body } => {
                let verb = if status.is_server_error() {
                    "the server failed"
                } else {
                    "the server refused the request"
                };
                write!(f, "{verb} ({} {}): {body}", status.as_u16(), body.code)
            }
            Self::BadResponse { url, message } => {
                write!(f, "unexpected answer from {url}: {message}")
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// The answer of `POST /api/v1/events/bulk`: one outcome per line of the request body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BulkReport {
    /// Lines stored as new events.
    #[serde(default)]
    pub created: u64,
    /// Lines whose idempotency key was already used with the same content.
    #[serde(default)]
    pub duplicates: u64,
    /// Lines refused, with their 1-based line number within the request body.
    #[serde(default)]
    pub errors: Vec<BulkLineError>,
}

/// One refused line of a bulk request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BulkLineError {
    /// 1-based line number within the request body (blank lines counted).
    pub line: u64,
    pub error: ErrorBody,
}

/// The server's answer to a successful request whose body has been read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// A client of one tfr server: the base URL, the credentials and the retry policy.
#[derive(Clone, Debug)]
pub struct Api {
    client: reqwest::Client,
    server: String,
    retry: RetryPolicy,
    /// Whether to tell the user on stderr that a request is being retried. On by default:
    /// a silent three-second wait looks like a hang.
    announce_retries: bool,
}

impl Api {
    /// Builds the client for `options`: checks the server URL, sets the timeouts, the
    /// user agent and the bearer token (marked sensitive so it never shows in debug output).
    pub fn new(options: &ClientOptions) -> Result<Self, ApiError> {
        let server = options.server.trim_end_matches('/').to_owned();
        match Url::parse(&server) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
            _ => {
                return Err(ApiError::Setup(format!(
                    "--server: '{server}' is not an http(s) URL (e.g. http://127.0.0.1:8080)"
                )));
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(token) = options.token.as_deref().filter(|t| !t.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ApiError::Setup(
                    "--token: the token holds characters that cannot be sent in an HTTP header"
                        .to_owned(),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|error| {
                ApiError::Setup(format!("cannot set up the HTTP client: {}", chain(&error)))
            })?;
        Ok(Self {
            client,
            server,
            retry: RetryPolicy::default(),
            announce_retries: true,
        })
    }

    /// Replaces the retry policy (tests use short delays).
    #[cfg(test)]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Turns the "retrying in …" notices on stderr off, e.g. while a progress bar is drawn.
    pub fn quiet(mut self) -> Self {
        self.announce_retries = false;
        self
    }

    /// The base URL of the server, without a trailing slash.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The URL of an API path with its query parameters; empty values are left out so an
    /// absent filter is absent rather than empty.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ApiError> {
        let mut url = Url::parse(&format!("{}{path}", self.server))
            .map_err(|error| ApiError::Setup(format!("bad URL for {path}: {error}")))?;
        let present: Vec<_> = query
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        if !present.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in present {
                pairs.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// `GET` a JSON document.
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let url = self.url(path, query)?;
        let answer = self.fetch(&url, || self.client.get(url.clone())).await?;
        parse_json(&url, &answer.body)
    }

    /// `POST` one JSON document; returns the status (to tell `201` created from `200`
    /// already recorded) and the JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(StatusCode, Value), ApiError> {
        let url = self.url(path, &[])?;
        let bytes = serde_json::to_vec(body)
            .map_err(|error| ApiError::Setup(format!("cannot encode the request: {error}")))?;
        let answer = self
            .fetch(&url, || {
                self.client
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(bytes.clone())
            })
            .await?;
        Ok((answer.status, parse_json(&url, &answer.body)?))
    }

    /// `POST` an NDJSON body to `/api/v1/events/bulk`. Retrying a batch is safe because
    /// every line carries an idempotency key: lines stored by a lost attempt come back as
    /// duplicates.
    pub async fn post_bulk(&self, ndjson: &[u8]) -> Result<BulkReport, ApiError> {
        let url = self.url("/api/v1/events/bulk", &[])?;
        let answer = self
            .fetch(&url, || {
                self.client
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-ndjson")
                    .body(ndjson.to_vec())
            })
            .await?;
        serde_json::from_slice(&answer.body).map_err(|error| ApiError::BadResponse {
            url: url.to_string(),
            message: format!("not a bulk report: {error}"),
        })
    }

    /// Opens the live stream (`GET /api/v1/stream`, Server-Sent Events) for `query`, resuming
    /// after `last_event_id` when given. Opening is retried like any request.
    pub async fn open_event_stream(
        &self,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<Response, ApiError> {
        let url = self.url("/api/v1/stream", &[("q", query)])?;
        let mut retry = 0;
        loop {
            let mut request = self.client.get(url.clone());
            if let Some(id) = last_event_id {
                request = request.header("Last-Event-ID", id);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => status_error(response).await,
                Err(error) => transport_error(&url, &error),
            };
            retry += 1;
            self.pause_or_give_up(failure, retry, &url).await?;
        }
    }

    /// `GET` a streamed body (the NDJSON export). Only getting the answer's head is retried;
    /// once bytes flow, a broken connection is an error, as the data already written cannot
    /// be taken back. No overall deadline: a large export may take minutes, but a stall
    /// longer than [`READ_TIMEOUT`] fails.
    pub async fn get_stream(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Response, ApiError> {
        let url = self.url(path, query)?;
        let mut retry = 0;
        loop {
            let failure = match self.client.get(url.clone()).send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => status_error(response).await,
                Err(error) => transport_error(&url, &error),
            };
            retry += 1;
            self.pause_or_give_up(failure, retry, &url).await?;
        }
    }

    /// Sends a request built by `make` (called again for each attempt) and reads its
    /// answer, retrying as the policy allows. Reading the body is part of the attempt, so a
    /// connection dropped mid-answer is retried too.
    async fn fetch(
        &self,
        url: &Url,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, ApiError> {
        let mut retry = 0;
        loop {
            let failure = match make().timeout(REQUEST_TIMEOUT).send().await {
                Ok(response) if response.status().is_success() => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) => {
                            return Ok(Answer {
                                status,
                                body: body.to_vec(),
                            });
                        }
                        Err(error) => transport_error(url, &error),
                    }
                }
                Ok(response) => status_error(response).await,
                Err(error) => transport_error(url, &error),
            };
            retry += 1;
            self.pause_or_give_up(failure, retry, url).await?;
        }
    }

    /// After a failed attempt: returns the error when it is final (not retryable, or the
    /// attempts are spent), otherwise announces the retry and sleeps with backoff.
    async fn pause_or_give_up(
        &self,
        failure: Failure,
        retry: u32,
        url: &Url,
    ) -> Result<(), ApiError> {
        let attempts = self.retry.attempts.max(1);
        if !failure.retryable || retry >= attempts {
            return Err(match failure.error {
                ApiError::Unreachable { url, cause, .. } => ApiError::Unreachable {
                    url,
                    attempts: retry,
                    cause,
                },
                other => other,
            });
        }
        let delay = self.retry.delay(retry, jitter(url.as_str(), retry));
        if self.announce_retries {
            let reason = match &failure.error {
                ApiError::Unreachable { cause, .. } => cause.clone(),
                other => other.to_string(),
            };
            eprintln!(
                "tfr: {reason}; retrying in {} ms (attempt {} of {attempts})",
                delay.as_millis(),
                retry + 1
            );
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// A failed attempt and whether it may be repeated.
struct Failure {
    error: ApiError,
    retryable: bool,
}

/// Connection errors, timeouts and connections dropped while sending or reading are worth
/// another try; a malformed request (`is_builder`) or a redirect loop is not.
fn transport_error(url: &Url, error: &reqwest::Error) -> Failure {
    let retryable =
        error.is_connect() || error.is_timeout() || error.is_request() || error.is_body();
    // reqwest's own message repeats the URL; the innermost cause ("Connection refused",
    // "failed to lookup address information") is what tells the user what went wrong.
    let mut innermost = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        innermost = cause.to_string();
        source = cause.source();
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "connection lost"
    };
    let cause = format!("{what}: {innermost}");
    Failure {
        error: ApiError::Unreachable {
            url: url.to_string(),
            attempts: 1,
            cause,
        },
        retryable,
    }
}

/// Reads an error answer: the server's `{"error": {...}}` when it sent one, otherwise the
/// start of whatever it sent (a proxy's HTML page, say). 5xx answers are retryable.
async fn status_error(response: Response) -> Failure {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    Failure {
        error: ApiError::Status {
            status,
            body: error_body(status, &text),
        },
        retryable: status.is_server_error(),
    }
}

/// Extracts the error object from an error answer's body, or makes one up from the status
/// and the body's first line when the answer is not tfr's JSON.
pub fn error_body(status: StatusCode, text: &str) -> ErrorBody {
    if let Ok(envelope) = serde_json::from_str::<ErrorEnvelope>(text) {
        return envelope.error;
    }
    let first_line: String = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    let reason = status.canonical_reason().unwrap_or("error");
    ErrorBody {
        code: format!("http_{}", status.as_u16()),
        message: if first_line.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason}: {first_line}")
        },
        field: None,
    }
}

fn parse_json(url: &Url, body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::BadResponse {
        url: url.to_string(),
        message: format!("not JSON: {error}"),
    })
}

/// An error and its causes on one line: reqwest's own message ("error sending request")
/// says little; the cause ("Connection refused") is what the user needs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// A jitter factor in `[0.5, 1.0]`, different per process and per attempt.
fn jitter(salt: &str, retry: u32) -> f64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let salt = salt.bytes().fold(u64::from(retry), |acc, byte| {
        acc.rotate_left(5) ^ u64::from(byte)
    });
    let mut rng = Rng::new(clock ^ salt ^ u64::from(std::process::id()));
    0.5 + rng.next_f64() / 2.0
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A request as the fake server saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        head: String,
        body: Vec<u8>,
    }

    /// Serves the given `(status, body)` answers, one per connection, and records requests.
    async fn fake_server(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            for (status, body) in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut data = Vec::new();
                let mut buffer = [0u8; 4096];
                let (head, body_start) = loop {
                    let n = socket.read(&mut buffer).await.unwrap();
                    data.extend_from_slice(&buffer[..n]);
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&data[..end]).to_string(), end + 4);
                    }
                };
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while data.len() < body_start + length {
                    let n = socket.read(&mut buffer).await.unwrap();
                    data.extend_from_slice(&buffer[..n]);
                }
                record.lock().unwrap().push(Seen {
                    head,
                    body: data[body_start..body_start + length].to_vec(),
                });
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        });
        (format!("http://{address}"), seen)
    }

    fn api(server: &str, token: Option<&str>) -> Api {
        let options = ClientOptions {
            server: server.to_owned(),
            token: token.map(str::to_owned),
        };
        Api::new(&options)
            .unwrap()
            .with_retry(RetryPolicy {
                attempts: 4,
                first_delay: Duration::from_millis(1),
            })
            .quiet()
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_the_same_request() {
        let (server, seen) = fake_server(vec![
            (
                503,
                r#"{"error":{"code":"store_unavailable","message":"try later"}}"#,
            ),
            (502, "<html>bad gateway</html>"),
            (201, r#"{"id":"abc"}"#),
        ])
        .await;
        let body = json!({"title": "t", "idempotency_key": "cli-1"});
        let (status, answer) = api(&server, Some("s3cret"))
            .post_json("/api/v1/events", &body)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(answer, json!({"id": "abc"}));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        for request in &seen {
            let head = request.head.to_lowercase();
            assert!(head.starts_with("post /api/v1/events http/1.1"), "{head}");
            assert!(head.contains("authorization: bearer s3cret"), "{head}");
            assert!(
                head.contains(&format!("user-agent: {}", USER_AGENT.to_lowercase())),
                "{head}"
            );
            assert_eq!(
                serde_json::from_slice::<Value>(&request.body).unwrap(),
                body
            );
        }
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let (server, seen) = fake_server(vec![(
            400,
            r#"{"error":{"code":"invalid_event","message":"is required","field":"system"}}"#,
        )])
        .await;
        let error = api(&server, None)
            .post_json("/api/v1/events", &json!({}))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            error.to_string(),
            "the server refused the request (400 invalid_event): system: is required"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(
            !seen.lock().unwrap()[0]
                .head
                .to_lowercase()
                .contains("authorization")
        );
    }

    #[tokio::test]
    async fn queries_are_encoded_and_empty_ones_left_out() {
        let (server, seen) = fake_server(vec![(200, r#"{"events":[],"next_cursor":null}"#)]).await;
        let answer = api(&server, None)
            .get_json(
                "/api/v1/events",
                &[
                    ("q", "system:player \"rate limit\" since:7d"),
                    ("cursor", ""),
                ],
            )
            .await
            .unwrap();
        assert_eq!(answer["events"], json!([]));
        let head = seen.lock().unwrap()[0].head.clone();
        assert!(
            head.starts_with(
                "GET /api/v1/events?q=system%3Aplayer+%22rate+limit%22+since%3A7d HTTP/1.1"
            ),
            "{head}"
        );
    }

    #[tokio::test]
    async fn bulk_reports_are_parsed() {
        let (server, seen) = fake_server(vec![(
            200,
            r#"{"created":1,"duplicates":2,"errors":[{"line":3,"error":{"code":"invalid_event","message":"is required","field":"title"}}]}"#,
        )])
        .await;
        let report = api(&server, None).post_bulk(b"{}\n{}\n{}\n").await.unwrap();
        assert_eq!((report.created, report.duplicates), (1, 2));
        assert_eq!(report.errors[0].line, 3);
        assert_eq!(report.errors[0].error.field.as_deref(), Some("title"));
        let head = seen.lock().unwrap()[0].head.to_lowercase();
        assert!(
            head.contains("content-type: application/x-ndjson"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn unreachable_servers_are_retried_then_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = api(&format!("http://{address}"), None)
            .get_json("/healthz", &[])
            .await
            .unwrap_err();
        match &error {
            ApiError::Unreachable { attempts, .. } => assert_eq!(*attempts, 4),
            other => panic!("expected unreachable, got {other:?}"),
        }
        let expected = format!(
            "cannot reach the server at http://{address}/healthz after 4 attempts: cannot connect: "
        );
        assert!(error.to_string().starts_with(&expected), "{error}");
    }

    #[test]
    fn bad_options_are_refused_early() {
        let options = |server: &str, token: Option<&str>| ClientOptions {
            server: server.to_owned(),
            token: token.map(str::to_owned),
        };
        for server in ["127.0.0.1:8080", "ftp://x.example", "not a url"] {
            assert!(
                matches!(Api::new(&options(server, None)), Err(ApiError::Setup(_))),
                "{server}"
            );
        }
        assert!(matches!(
            Api::new(&options("http://x.example", Some("bad\ntoken"))),
            Err(ApiError::Setup(_))
        ));
        let api = Api::new(&options("https://tfr.example/", None)).unwrap();
        assert_eq!(api.server(), "https://tfr.example");
    }

    #[test]
    fn error_bodies_fall_back_to_the_status() {
        let body = error_body(StatusCode::BAD_GATEWAY, "\n<html>upstream down</html>\n");
        assert_eq!(body.code, "http_502");
        assert_eq!(body.message, "Bad Gateway: <html>upstream down</html>");
        assert_eq!(error_body(StatusCode::NOT_FOUND, "").message, "Not Found");
        let body = error_body(
            StatusCode::CONFLICT,
            r#"{"error":{"code":"idempotency_conflict","message":"key used with other content"}}"#,
        );
        assert_eq!(body.to_string(), "key used with other content");
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, 1.0), Duration::from_millis(200));
        assert_eq!(policy.delay(2, 1.0), Duration::from_millis(400));
        assert_eq!(policy.delay(4, 1.0), Duration::from_millis(1600));
        assert_eq!(policy.delay(2, 0.5), Duration::from_millis(200));
        assert_eq!(
            policy.delay(1, 7.0),
            Duration::from_millis(200),
            "jitter is clamped"
        );
        for retry in 1..5 {
            let j = jitter("http://x", retry);
            assert!((0.5..=1.0).contains(&j), "{j}");
        }
    }
}
