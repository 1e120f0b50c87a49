//! Black-box tests of the `tfr` client commands: the real binary, run as a process, against a
//! real `tfr serve` on an ephemeral loopback port. Each test checks what the command printed,
//! its exit code, and what the server holds afterwards (over HTTP).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Server;
use jiff::Timestamp;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// The longest any single `tfr` invocation may take before the test fails instead of hanging.
const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// Fields the server assigns to an event; everything else comes from the submitter.
const SERVER_ASSIGNED: [&str; 3] = ["id", "recorded_at", "submitted_by"];

/// What a finished `tfr` process said.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:#?}");
        self
    }

    #[track_caller]
    fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// One `tfr` invocation being put together.
struct Tfr {
    command: tokio::process::Command,
    stdin: Option<Vec<u8>>,
}

impl Tfr {
    /// `tfr` run in `cwd` (a directory without `tfr.toml`), with no `TFR_*` variable from the
    /// test's environment and a known login name.
    fn new(cwd: &Path) -> Self {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tfr"));
        command.current_dir(cwd);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TFR_") {
                command.env_remove(&name);
            }
        }
        command
            .env_remove("TFR_SERVER")
            .env_remove("TFR_TOKEN")
            .env_remove("TFR_CONFIG")
            .env("USER", "tester")
            .env_remove("USERNAME")
            .kill_on_drop(true);
        Self {
            command,
            stdin: None,
        }
    }

    /// A client command talking to `server`.
    fn client(cwd: &Path, server: &str) -> Self {
        let mut tfr = Self::new(cwd);
        tfr.command.args(["--server", server]);
        tfr
    }

    fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// A flag and a path as its value.
    fn arg_path(mut self, flag: &str, path: &Path) -> Self {
        self.command.arg(flag).arg(path);
        self
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.command.env(name, value);
        self
    }

    fn env_remove(mut self, name: &str) -> Self {
        self.command.env_remove(name);
        self
    }

    fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    async fn run(mut self) -> Output {
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("start tfr");
        if let Some(bytes) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("piped stdin");
            tokio::spawn(async move {
                // The command may stop reading early (an error); that is its business.
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            });
        }
        let output = tokio::time::timeout(PROCESS_DEADLINE, child.wait_with_output())
            .await
            .expect("tfr did not finish within the deadline")
            .expect("wait for tfr");
        Output {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

/// A fresh server with its own data directory, and a scratch working directory for clients.
struct Fixture {
    server: Server,
    http: reqwest::Client,
    dir: TempDir,
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("cwd")).expect("create cwd");
        let data = dir.path().join("data");
        let server = tokio::task::spawn_blocking(move || Server::start(&data, &[]))
            .await
            .expect("start the server");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self { server, http, dir }
    }

    fn cwd(&self) -> PathBuf {
        self.dir.path().join("cwd")
    }

    fn base(&self) -> &str {
        &self.server.base
    }

    /// A client command against this server.
    fn tfr<I, S>(&self, args: I) -> Tfr
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Tfr::client(&self.cwd(), self.base()).args(args)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.server.url(path))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    /// One event, with its diff.
    async fn event(&self, id: &str) -> Value {
        let (status, event) = self.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(status, 200, "GET event {id}: {event}");
        event
    }

    /// Everything the server holds, oldest first, diffs included (the export endpoint).
    async fn all(&self) -> Vec<Value> {
        let response = self
            .http
            .get(self.server.url("/api/v1/export"))
            .send()
            .await
            .expect("GET export");
        assert_eq!(response.status().as_u16(), 200);
        let text = response.text().await.expect("export body");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("an exported line is JSON"))
            .collect()
    }

    async fn titles(&self) -> Vec<String> {
        self.all()
            .await
            .iter()
            .map(|event| event["title"].as_str().expect("title").to_owned())
            .collect()
    }

    /// Creates events over HTTP (an array, all or nothing); returns them as stored.
    async fn post_events(&self, events: &[Value]) -> Vec<Value> {
        let response = self
            .http
            .post(self.server.url("/api/v1/events"))
            .json(&Value::Array(events.to_vec()))
            .send()
            .await
            .expect("POST events");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON answer");
        assert_eq!(status, 201, "{body}");
        body["events"].as_array().expect("events").clone()
    }

    /// Creates events over the bulk endpoint (any number).
    async fn post_bulk(&self, events: &[Value]) {
        let mut body = String::new();
        for event in events {
            body.push_str(&event.to_string());
            body.push('\n');
        }
        let response = self
            .http
            .post(self.server.url("/api/v1/events/bulk"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("POST bulk");
        assert_eq!(response.status().as_u16(), 200);
        let report: Value = response.json().await.expect("bulk report");
        assert_eq!(report["created"], json!(events.len()), "{report}");
    }
}

/// `seconds` before now, to the second, as RFC 3339 UTC (the way `tfr log` prints times).
fn ago(seconds: i64) -> String {
    Timestamp::from_second(Timestamp::now().as_second() - seconds)
        .expect("a valid time")
        .to_string()
}

fn parse_ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line:?}"));
            assert!(value.is_object(), "not an object: {line}");
            value
        })
        .collect()
}

fn titles_of(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["title"].as_str().expect("title"))
        .collect()
}

fn without(event: &Value, fields: &[&str]) -> Value {
    let mut event = event.clone();
    let object = event.as_object_mut().expect("an event object");
    for field in fields {
        object.remove(*field);
    }
    event
}

/// A loopback port nobody listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

// ---------------------------------------------------------------------------------------------
// send
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_minimal_prints_only_the_id_and_stores_the_event() {
    let fx = Fixture::start().await;
    let before = Timestamp::now();
    let out = fx
        .tfr([
            "send",
            "--title",
            "Deploy player 5.2.1",
            "--system",
            "player",
        ])
        .run()
        .await;
    let after = Timestamp::now();
    out.assert_success();

    let id = out.stdout.strip_suffix('\n').expect("one line on stdout");
    assert!(
        !id.contains('\n'),
        "stdout holds only the id: {:?}",
        out.stdout
    );
    let uuid = uuid::Uuid::parse_str(id).expect("the id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "ids are UUIDv7");
    assert_eq!(
        out.stderr,
        format!("recorded {id}: {}/events/{id}\n", fx.base())
    );

    let event = fx.event(id).await;
    let occurred: Timestamp = event["occurred_at"].as_str().unwrap().parse().unwrap();
    assert!(
        before <= occurred && occurred <= after,
        "occurred_at {occurred} defaults to when the server received it"
    );
    let key = event["idempotency_key"].as_str().expect("a generated key");
    assert!(key.starts_with("cli-") && key.len() == 40, "{key}");
    assert_eq!(
        without(
            &event,
            &["id", "occurred_at", "recorded_at", "idempotency_key"]
        ),
        json!({
            "ended_at": null,
            "title": "Deploy player 5.2.1",
            "system": "player",
            "author": "tester",
            "kind": "change",
            "environment": null,
            "team": null,
            "source": "cli",
            "version": null,
            "description": null,
            "tags": [],
            "links": [],
            "has_diff": false,
            "attributes": null,
            "submitted_by": "anonymous",
        })
    );
    assert_eq!(event["id"], id);
    assert_eq!(fx.all().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_every_flag_reaches_the_server() {
    let fx = Fixture::start().await;
    let diff =
        "--- a/player.yaml\n+++ b/player.yaml\n@@ -1 +1 @@\n-version: 5.2.0\n+version: 5.2.1\n";
    let diff_file = fx.cwd().join("change.diff");
    std::fs::write(&diff_file, diff).unwrap();
    let out = fx
        .tfr(["send", "--title", "Deploy player 5.2.1 to production"])
        .args(["--system", "player", "--author", "bob", "--kind", "deploy"])
        .args([
            "--env",
            "production",
            "--team",
            "video",
            "--source",
            "jenkins",
        ])
        .args(["--version", "5.2.1"])
        .args(["--tag", "release:5.2", "--tag", "ticket:OPS-1234"])
        .args(["--link", "https://ci.example.com/player/builds/812"])
        .args(["--link", "https://git.example.com/video/player/pull/4521"])
        .args(["--description", "## Why\nFaster start: 30 % less buffering"])
        .args(["--at", "2026-11-02T10:00:00.123456+01:00"])
        .args(["--ended-at", "2026-11-02T09:30:00Z"])
        .args(["--attribute", "replicas=12", "--attribute", "owner=alice"])
        .args(["--attribute", r#"canary={"percent":5}"#])
        .arg_path("--diff", &diff_file)
        .args(["--idempotency-key", "deploy-player-812"])
        .run()
        .await;
    out.assert_success();
    let id = out.stdout.trim_end();

    let event = fx.event(id).await;
    assert_eq!(
        without(&event, &["id", "recorded_at"]),
        json!({
            "occurred_at": "2026-11-02T09:00:00.123456Z",
            "ended_at": "2026-11-02T09:30:00Z",
            "title": "Deploy player 5.2.1 to production",
            "system": "player",
            "author": "bob",
            "kind": "deploy",
            "environment": "production",
            "team": "video",
            "source": "jenkins",
            "version": "5.2.1",
            "description": "## Why\nFaster start: 30 % less buffering",
            "tags": ["release:5.2", "ticket:OPS-1234"],
            "links": [
                {"url": "https://ci.example.com/player/builds/812"},
                {"url": "https://git.example.com/video/player/pull/4521"},
            ],
            "has_diff": true,
            "diff": diff,
            "attributes": {"replicas": 12, "owner": "alice", "canary": {"percent": 5}},
            "idempotency_key": "deploy-player-812",
            "submitted_by": "anonymous",
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reads_the_diff_from_stdin_and_the_author_from_user() {
    let fx = Fixture::start().await;
    let diff = "--- a/limits.conf\n+++ b/limits.conf\n-rate = 100\n+rate = 250\n";
    let out = fx
        .tfr(["send", "--title", "Raise the rate limit", "--system", "api"])
        .args(["--diff", "-"])
        .env("USER", "ci-bot")
        .env("USERNAME", "someone-else")
        .stdin(diff)
        .run()
        .await;
    out.assert_success();
    let event = fx.event(out.stdout.trim_end()).await;
    assert_eq!(event["author"], "ci-bot", "$USER comes before $USERNAME");
    assert_eq!(event["diff"], diff);
    assert_eq!(event["has_diff"], true);

    // $USERNAME is the fallback.
    let out = fx
        .tfr(["send", "--title", "Second", "--system", "api"])
        .env_remove("USER")
        .env("USERNAME", "winuser")
        .run()
        .await;
    out.assert_success();
    assert_eq!(fx.event(out.stdout.trim_end()).await["author"], "winuser");

    // Neither: the command says to pass --author, and nothing is sent.
    let out = fx
        .tfr(["send", "--title", "Third", "--system", "api"])
        .env_remove("USER")
        .run()
        .await;
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("--author"), "{}", out.stderr);
    assert_eq!(fx.titles().await, ["Raise the rate limit", "Second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refuses_invalid_input_naming_the_field() {
    let fx = Fixture::start().await;
    let missing_diff = fx.cwd().join("missing.diff");
    let missing_diff = missing_diff.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--at", "2026-11-02T10:00:00"], "tfr: --at: "),
        (vec!["--ended-at", "soon"], "tfr: --ended-at: "),
        (vec!["--kind", "Deploy"], "tfr: invalid event: kind: "),
        (
            vec!["--link", "ftp://files.example.com/x"],
            "tfr: invalid event: links[0].url: ",
        ),
        (
            vec![
                "--link",
                "https://ok.example.com",
                "--link",
                "javascript:alert(1)",
            ],
            "tfr: invalid event: links[1].url: ",
        ),
        (
            vec![
                "--at",
                "2026-11-02T10:00:00Z",
                "--ended-at",
                "2026-11-02T09:00:00Z",
            ],
            "tfr: invalid event: ended_at: ",
        ),
        (vec!["--attribute", "novalue"], "tfr: --attribute 'novalue'"),
        (
            vec!["--attribute", "a=1", "--attribute", "a=2"],
            "tfr: --attribute: 'a'",
        ),
        (vec!["--diff", missing_diff], "tfr: --diff: "),
    ];
    for (flags, expected) in cases {
        let out = fx
            .tfr(["send", "--title", "Valid title", "--system", "player"])
            .args(&flags)
            .run()
            .await;
        assert_eq!(out.code, Some(1), "{flags:?}: {out:#?}");
        assert!(out.stdout.is_empty(), "{flags:?}: {out:#?}");
        assert!(
            out.stderr.starts_with(expected),
            "{flags:?}: expected {expected:?}, got {:?}",
            out.stderr
        );
    }
    // The offset message says what is missing.
    let out = fx
        .tfr(["send", "--title", "t", "--system", "s"])
        .args(["--at", "2026-11-02T10:00:00"])
        .run()
        .await;
    assert!(out.stderr.contains("offset"), "{}", out.stderr);

    // A required field left out.
    let out = fx.tfr(["send", "--title", "No system"]).run().await;
    out.assert_code(1);
    assert_eq!(out.stderr, "tfr: invalid event: system: is required\n");
    let out = fx
        .tfr(["send", "--title", "  ", "--system", "s"])
        .run()
        .await;
    out.assert_code(1);
    assert_eq!(out.stderr, "tfr: invalid event: title: must not be empty\n");

    assert!(fx.all().await.is_empty(), "nothing is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_the_same_idempotency_key_stores_one_event() {
    let fx = Fixture::start().await;
    let send = || {
        fx.tfr(["send", "--title", "Deploy api 3.1", "--system", "api"])
            .args(["--tag", "b:2", "--tag", "a:1"])
            .args(["--idempotency-key", "deploy-api-77"])
    };
    let first = send().run().await;
    first.assert_success();
    let id = first.stdout.trim_end().to_owned();
    assert!(first.stderr.starts_with(&format!("recorded {id}: ")));

    // Without --at the server fills in occurred_at; a retry a moment later is the same fact.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = send().run().await;
    second.assert_success();
    assert_eq!(second.stdout, format!("{id}\n"), "the original id");
    assert_eq!(
        second.stderr,
        format!("already recorded {id}: {}/events/{id}\n", fx.base())
    );

    // The same key with other content is refused, not silently merged.
    let conflict = fx
        .tfr(["send", "--title", "Something else", "--system", "api"])
        .args(["--idempotency-key", "deploy-api-77"])
        .run()
        .await;
    conflict.assert_code(1);
    assert!(conflict.stdout.is_empty());
    assert!(
        conflict
            .stderr
            .contains("(409 idempotency_conflict): idempotency_key: "),
        "{}",
        conflict.stderr
    );
    assert!(conflict.stderr.contains(&id), "{}", conflict.stderr);
    assert!(
        !conflict.stderr.contains("retrying"),
        "a 4xx is not retried: {}",
        conflict.stderr
    );

    let all = fx.all().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_an_unreachable_server_retries_then_fails_or_warns() {
    let dir = tempfile::tempdir().unwrap();
    let server = format!("http://127.0.0.1:{}", dead_port());
    let send = |extra: &[&str]| {
        Tfr::client(dir.path(), &server)
            .args(["send", "--title", "Deploy", "--system", "player"])
            .args(extra)
            .run()
    };
    let started = Instant::now();
    let (strict, lenient) = tokio::join!(send(&[]), send(&["--best-effort"]));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "the retries took {elapsed:?}"
    );

    let unreachable = format!(
        "cannot reach the server at {server}/api/v1/events after 5 attempts: cannot connect: "
    );
    for out in [&strict, &lenient] {
        assert!(out.stdout.is_empty(), "{out:#?}");
        let retries = out
            .stderr
            .lines()
            .filter(|line| line.contains("; retrying in "))
            .count();
        assert_eq!(retries, 4, "four retries announced: {}", out.stderr);
        assert!(out.stderr.contains("(attempt 5 of 5)"), "{}", out.stderr);
    }
    strict.assert_code(1);
    let last = strict.stderr.lines().last().unwrap();
    assert!(last.starts_with(&format!("tfr: {unreachable}")), "{last}");

    lenient.assert_success();
    let last = lenient.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("tfr: warning: event not recorded: {unreachable}")),
        "{last}"
    );

    // --best-effort also covers a refused event: a deploy script never fails because of it.
    let out = Tfr::client(dir.path(), &server)
        .args(["send", "--title", "Deploy", "--system", "player"])
        .args(["--kind", "Deploy", "--best-effort"])
        .run()
        .await;
    out.assert_success();
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with("tfr: warning: event not recorded: invalid event: kind: "),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// log and last
// ---------------------------------------------------------------------------------------------

/// Six events over the last month, newest first: (title, occurred_at).
async fn seed_history(fx: &Fixture) -> Vec<(Value, String)> {
    let rows = [
        (
            "Deploy player 5.2.1",
            "player",
            "deploy",
            "production",
            3_600,
        ),
        (
            "Raise rate limit",
            "api-gateway",
            "config",
            "production",
            7_200,
        ),
        (
            "Deploy player 5.2.0",
            "player",
            "deploy",
            "staging",
            3 * 86_400,
        ),
        (
            "Flip new-controls flag",
            "player",
            "feature_flag",
            "production",
            4 * 86_400,
        ),
        (
            "Deploy player 5.1.9",
            "player",
            "deploy",
            "production",
            10 * 86_400,
        ),
        (
            "Upgrade kernel on cdn-edge",
            "cdn-edge",
            "os_update",
            "production",
            30 * 86_400,
        ),
    ];
    let events: Vec<Value> = rows
        .iter()
        .map(|(title, system, kind, environment, age)| {
            json!({
                "title": title, "system": system, "kind": kind, "environment": environment,
                "author": "alice", "occurred_at": ago(*age),
            })
        })
        .collect();
    // Posted oldest first, so the feed order is the time order, not the insertion order.
    let mut reversed = events.clone();
    reversed.reverse();
    let mut stored = fx.post_events(&reversed).await;
    stored.reverse();
    stored
        .into_iter()
        .map(|event| {
            let time = event["occurred_at"].as_str().unwrap().to_owned();
            (event, time)
        })
        .collect()
}

/// The titles of a `tfr log` table, after checking its header.
fn table_titles(out: &Output) -> Vec<String> {
    let lines = out.stdout_lines();
    if lines.is_empty() {
        return Vec::new();
    }
    assert!(
        lines[0].starts_with("WHEN ") && lines[0].ends_with("  TITLE"),
        "header: {:?}",
        lines[0]
    );
    lines[1..]
        .iter()
        .map(|line| line.rsplit("  ").next().expect("a title column").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_shows_a_table_newest_first_and_filters() {
    let fx = Fixture::start().await;
    let history = seed_history(&fx).await;
    let all: Vec<&str> = history
        .iter()
        .map(|(event, _)| event["title"].as_str().unwrap())
        .collect();

    let out = fx.tfr(["log"]).run().await;
    out.assert_success();
    assert_eq!(table_titles(&out), all);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let first_row = out.stdout_lines()[1];
    assert!(first_row.starts_with("1h ago "), "{first_row}");
    for cell in [
        history[0].1.as_str(),
        "deploy",
        "player",
        "production",
        "alice",
    ] {
        assert!(
            first_row.contains(&format!("{cell}  ")),
            "{cell} in {first_row}"
        );
    }

    let out = fx.tfr(["log", "system:player", "kind:deploy"]).run().await;
    out.assert_success();
    assert_eq!(
        table_titles(&out),
        [
            "Deploy player 5.2.1",
            "Deploy player 5.2.0",
            "Deploy player 5.1.9"
        ]
    );

    let out = fx.tfr(["log", "--since", "7d"]).run().await;
    out.assert_success();
    assert_eq!(table_titles(&out), all[..4]);

    let out = fx
        .tfr(["log", "system:player", "--since", "7d"])
        .run()
        .await;
    out.assert_success();
    assert_eq!(
        table_titles(&out),
        [
            "Deploy player 5.2.1",
            "Deploy player 5.2.0",
            "Flip new-controls flag"
        ]
    );

    let out = fx
        .tfr(["log", "--", "system:player", "-kind:deploy"])
        .run()
        .await;
    out.assert_success();
    assert_eq!(table_titles(&out), ["Flip new-controls flag"]);

    let out = fx.tfr(["log", "--limit", "2"]).run().await;
    out.assert_success();
    assert_eq!(table_titles(&out), all[..2]);

    let out = fx.tfr(["log", "system:nothing"]).run().await;
    out.assert_success();
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr, "no events match\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_json_prints_events_only() {
    let fx = Fixture::start().await;
    let history = seed_history(&fx).await;

    let out = fx.tfr(["log", "--json"]).run().await;
    out.assert_success();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let events = parse_ndjson(&out.stdout);
    let expected: Vec<Value> = history.iter().map(|(event, _)| event.clone()).collect();
    assert_eq!(
        events, expected,
        "the server's events, as stored, newest first"
    );

    let out = fx
        .tfr([
            "log",
            "--json",
            "kind:deploy",
            "--since",
            "7d",
            "--limit",
            "1",
        ])
        .run()
        .await;
    out.assert_success();
    assert_eq!(
        titles_of(&parse_ndjson(&out.stdout)),
        ["Deploy player 5.2.1"]
    );

    let out = fx.tfr(["log", "--json", "system:nothing"]).run().await;
    out.assert_success();
    assert!(out.stdout.is_empty(), "no table header or notice on stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_reports_invalid_queries_and_flags() {
    let fx = Fixture::start().await;
    let out = fx.tfr(["log", "system:"]).run().await;
    out.assert_code(1);
    assert!(out.stdout.is_empty());
    assert_eq!(
        out.stderr,
        "tfr: the server refused the request (400 invalid_query): \
         invalid query at position 7: expected a value after 'system:'\n"
    );

    let out = fx.tfr(["log", "--since", "7x"]).run().await;
    out.assert_code(1);
    assert!(out.stderr.starts_with("tfr: --since: "), "{}", out.stderr);

    let out = fx.tfr(["log", "--from", "tomorrow"]).run().await;
    out.assert_code(1);
    assert!(out.stderr.starts_with("tfr: --from: "), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_limits_above_one_page_follow_the_cursor() {
    let fx = Fixture::start().await;
    const TOTAL: i64 = 620;
    let events: Vec<Value> = (0..TOTAL)
        .map(|i| {
            json!({"title": format!("event {i}"), "system": "bulk", "author": "loader",
                   "occurred_at": ago(60 * (i + 1))})
        })
        .collect();
    fx.post_bulk(&events).await;
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("event {i}")).collect();

    let out = fx.tfr(["log", "--json", "--limit", "600"]).run().await;
    out.assert_success();
    let page = parse_ndjson(&out.stdout);
    assert_eq!(titles_of(&page), expected[..600]);
    let ids: BTreeSet<&str> = page.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 600, "no event twice across pages");

    let out = fx.tfr(["log", "--json", "--limit", "1000"]).run().await;
    out.assert_success();
    assert_eq!(titles_of(&parse_ndjson(&out.stdout)), expected);

    let out = fx.tfr(["log", "--limit", "501"]).run().await;
    out.assert_success();
    assert_eq!(table_titles(&out), expected[..501]);
    let headers = out
        .stdout_lines()
        .iter()
        .filter(|line| line.starts_with("WHEN "))
        .count();
    assert_eq!(headers, 1, "one header for all pages");

    let out = fx.tfr(["log", "--limit", "0"]).run().await;
    out.assert_code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_shows_the_most_recent_match() {
    let fx = Fixture::start().await;
    let history = seed_history(&fx).await;
    let (latest, time) = &history[0];
    let id = latest["id"].as_str().unwrap();

    let out = fx.tfr(["last", "system:player"]).run().await;
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!(
            "1h ago  {time}  deploy  player  alice  \"Deploy player 5.2.1\"\n{id}  {}/events/{id}\n",
            fx.base()
        )
    );

    let out = fx
        .tfr(["last", "system:player", "kind:feature_flag"])
        .run()
        .await;
    out.assert_success();
    assert!(
        out.stdout_lines()[0].ends_with("\"Flip new-controls flag\""),
        "{}",
        out.stdout
    );

    let out = fx.tfr(["last", "--json", "system:cdn-edge"]).run().await;
    out.assert_success();
    assert_eq!(out.stdout.lines().count(), 1);
    let answer: Value = serde_json::from_str(&out.stdout).unwrap();
    let age = answer["age_seconds"].as_i64().expect("age_seconds");
    assert!((30 * 86_400..30 * 86_400 + 120).contains(&age), "{age}");
    assert_eq!(without(&answer, &["age_seconds"]), history[5].0);

    let out = fx
        .tfr(["last", "system:nothing", "kind:deploy"])
        .run()
        .await;
    out.assert_code(1);
    assert!(out.stdout.is_empty());
    assert_eq!(
        out.stderr,
        "tfr: no event matches system:nothing kind:deploy\n"
    );

    let out = fx.tfr(["last", "kind:"]).run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("(400 invalid_query): invalid query at position 5"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// export and import
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_a_fresh_server_keeps_every_field() {
    let source = Fixture::start().await;
    let diff_file = source.cwd().join("player.diff");
    let diff = "--- a/player.yaml\n+++ b/player.yaml\n-version: 5.2.0\n+version: 5.2.1\n";
    std::fs::write(&diff_file, diff).unwrap();
    source
        .tfr([
            "send",
            "--title",
            "Deploy player 5.2.1",
            "--system",
            "player",
        ])
        .args(["--author", "bob", "--kind", "deploy", "--env", "production"])
        .args([
            "--team",
            "video",
            "--source",
            "jenkins",
            "--version",
            "5.2.1",
        ])
        .args(["--tag", "release:5.2", "--tag", "ticket:OPS-1234"])
        .args(["--link", "https://ci.example.com/builds/812"])
        .args(["--description", "Faster start.\n\n- less buffering"])
        .args(["--at", "2026-11-02T10:00:00.5+01:00"])
        .args(["--ended-at", "2026-11-02T09:45:00Z"])
        .args(["--attribute", "replicas=12", "--attribute", "owner=alice"])
        .arg_path("--diff", &diff_file)
        .args(["--idempotency-key", "deploy-812"])
        .run()
        .await
        .assert_success();
    // Server-assigned occurred_at, with sub-second precision.
    source
        .tfr(["send", "--title", "Restart cache", "--system", "cache"])
        .run()
        .await
        .assert_success();
    source
        .tfr([
            "send",
            "--title",
            "Déploiement du lecteur ✓",
            "--system",
            "player",
        ])
        .args(["--diff", "-", "--at", "2026-10-01T00:00:00Z"])
        .stdin("+é\n-e\n")
        .run()
        .await
        .assert_success();
    // Over HTTP, with no idempotency key and a link title the CLI cannot set.
    let keyless = source
        .post_events(&[json!({
            "title": "Start A/B test thumbnails", "system": "web", "author": "carol",
            "kind": "ab_test", "occurred_at": "2026-09-01T08:00:00Z",
            "ended_at": "2026-09-15T08:00:00Z", "tags": ["experiment:thumbs"],
            "links": [{"url": "https://ab.example.com/thumbs", "title": "dashboard"}],
            "attributes": {"variants": ["a", "b"], "share": 0.5},
            "diff": "+thumbs: on\n",
        })])
        .await
        .remove(0);
    assert_eq!(keyless["idempotency_key"], Value::Null);
    let originals = source.all().await;
    assert_eq!(originals.len(), 4);

    // export --output FILE
    let file = source.cwd().join("backup.ndjson");
    let out = source.tfr(["export", "--output"]).args([&file]).run().await;
    out.assert_success();
    assert!(out.stdout.is_empty());
    assert_eq!(
        out.stderr,
        format!("exported 4 events to {}\n", file.display())
    );
    assert!(!source.cwd().join("backup.ndjson.partial").exists());
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(parse_ndjson(&exported), originals);

    // export to stdout gives the same bytes; a query narrows it.
    let out = source.tfr(["export"]).run().await;
    out.assert_success();
    assert_eq!(out.stdout, exported);
    assert_eq!(out.stderr, "exported 4 events\n");
    let out = source.tfr(["export", "system:player"]).run().await;
    out.assert_success();
    assert_eq!(
        titles_of(&parse_ndjson(&out.stdout)),
        ["Déploiement du lecteur ✓", "Deploy player 5.2.1"],
        "oldest first"
    );
    assert_eq!(out.stderr, "exported 2 events\n");

    // import into a fresh server
    let target = Fixture::start().await;
    let out = target.tfr(["import"]).args([&file]).run().await;
    out.assert_success();
    assert_eq!(
        out.stdout,
        "imported: 4 created, 0 already present, 0 errors\n"
    );
    let imported = target.all().await;
    assert_eq!(imported.len(), 4);
    let by_title: HashMap<&str, &Value> = imported
        .iter()
        .map(|event| (event["title"].as_str().unwrap(), event))
        .collect();
    for original in &originals {
        let title = original["title"].as_str().unwrap();
        let copy = by_title[title];
        assert_ne!(copy["id"], original["id"], "{title}: a new id");
        let mut expected = without(original, &SERVER_ASSIGNED);
        if original["id"] == keyless["id"] {
            // A keyless event gets a key derived from its exported id.
            expected["idempotency_key"] =
                json!(format!("import:{}", keyless["id"].as_str().unwrap()));
        }
        assert_eq!(without(copy, &SERVER_ASSIGNED), expected, "{title}");
    }
    assert_eq!(by_title["Deploy player 5.2.1"]["diff"], diff);
    assert_eq!(
        by_title["Deploy player 5.2.1"]["occurred_at"],
        "2026-11-02T09:00:00.5Z"
    );

    // Again: everything is already there, nothing is created.
    let out = target.tfr(["import"]).args([&file]).run().await;
    out.assert_success();
    assert_eq!(
        out.stdout,
        "imported: 0 created, 4 already present, 0 errors\n"
    );
    assert_eq!(target.all().await, imported);

    // Back into the server it came from (a restore): the keyless event is recognised by the
    // `import:<id>` key, the others by their keys; nothing is created.
    let before = source.all().await;
    let out = source.tfr(["import"]).args([&file]).run().await;
    out.assert_success();
    assert_eq!(
        out.stdout,
        "imported: 0 created, 4 already present, 0 errors\n"
    );
    assert_eq!(source.all().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_bad_lines_and_keeps_the_good_ones() {
    let fx = Fixture::start().await;
    let file = fx.cwd().join("mixed.ndjson");
    let lines = [
        r#"{"title":"first","system":"s","author":"x"}"#,
        r#"{not json"#,
        "",
        r#"{"title":"no system","author":"x"}"#,
        r#"{"title":"fifth","system":"s","author":"x"}"#,
        r#"{"title":"bad kind","system":"s","author":"x","kind":"Deploy"}"#,
        r#"[1, 2]"#,
    ];
    // The last line has no line ending.
    let text = format!(
        "{}\n{}",
        lines.join("\n"),
        r#"{"title":"eighth","system":"s","author":"x"}"#
    );
    std::fs::write(&file, text).unwrap();
    let out = fx.tfr(["import"]).args([&file]).run().await;
    out.assert_code(1);
    let report = out.stdout_lines();
    assert_eq!(report.len(), 5, "{}", out.stdout);
    assert_eq!(
        report[0],
        "imported: 3 created, 0 already present, 4 errors"
    );
    assert!(report[1].starts_with("line 2: not JSON: "), "{}", report[1]);
    assert_eq!(report[2], "line 4: system: is required");
    assert!(report[3].starts_with("line 6: kind: "), "{}", report[3]);
    assert_eq!(report[4], "line 7: not a JSON object");
    let mut titles = fx.titles().await;
    titles.sort();
    assert_eq!(titles, ["eighth", "fifth", "first"]);

    // Again, two lines per request: the batches go out while the next is read, and each
    // answer's line numbers still map back to the file's.
    let out = fx.tfr(["import", "--batch", "2"]).args([&file]).run().await;
    out.assert_code(1);
    let again = out.stdout_lines();
    assert_eq!(again[0], "imported: 0 created, 3 already present, 4 errors");
    assert_eq!(again[1..], report[1..], "the same lines refused");
    assert_eq!(fx.all().await.len(), 3);

    // From stdin; run twice, the second time nothing is new.
    let stdin = "{\"title\":\"piped one\",\"system\":\"p\",\"author\":\"x\"}\n\
                 {\"title\":\"piped two\",\"system\":\"p\",\"author\":\"x\"}\n";
    let out = fx.tfr(["import", "-"]).stdin(stdin).run().await;
    out.assert_success();
    assert_eq!(
        out.stdout,
        "imported: 2 created, 0 already present, 0 errors\n"
    );
    let out = fx.tfr(["import", "-"]).stdin(stdin).run().await;
    out.assert_success();
    assert_eq!(
        out.stdout,
        "imported: 0 created, 2 already present, 0 errors\n"
    );
    assert_eq!(fx.all().await.len(), 5);

    let out = fx.tfr(["import", "does-not-exist.ndjson"]).run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .starts_with("tfr: cannot open does-not-exist.ndjson"),
        "{}",
        out.stderr
    );
}

/// Batches that cannot be delivered stop the import; with two in flight, both are reported,
/// by their lines in the file, with the advice that running it again is safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_to_an_unreachable_server_names_the_lines_not_imported() {
    let dir = tempfile::tempdir().unwrap();
    let server = format!("http://127.0.0.1:{}", dead_port());
    let file = dir.path().join("three.ndjson");
    std::fs::write(
        &file,
        "{\"title\":\"a\",\"system\":\"s\",\"author\":\"x\"}\n\
         {\"title\":\"b\",\"system\":\"s\",\"author\":\"x\"}\n\
         {\"title\":\"c\",\"system\":\"s\",\"author\":\"x\"}\n",
    )
    .unwrap();
    let out = Tfr::client(dir.path(), &server)
        .args(["import", "--batch", "2"])
        .args([&file])
        .run()
        .await;
    out.assert_code(1);
    assert_eq!(
        out.stdout,
        "imported before the failure: 0 created, 0 already present, 0 errors\n"
    );
    assert!(
        out.stderr
            .contains("lines 1–2 were not imported: cannot reach the server"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("lines 3–3 were not imported: cannot reach the server"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Running the same import again is safe: events already stored are skipped."),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// demo
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fills_the_server_once() {
    let fx = Fixture::start().await;
    let day = || Timestamp::now().as_second().div_euclid(86_400);
    let first_day = day();
    let out = fx
        .tfr(["demo", "--events", "300", "--seed", "7"])
        .run()
        .await;
    out.assert_success();
    assert_eq!(out.stdout, "demo: 300 created, 0 already present\n");

    let events = fx.all().await;
    assert_eq!(events.len(), 300);
    let systems: BTreeSet<&str> = events
        .iter()
        .map(|e| e["system"].as_str().unwrap())
        .collect();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let authors: BTreeSet<&str> = events
        .iter()
        .map(|e| e["author"].as_str().unwrap())
        .collect();
    assert!(systems.len() >= 15, "systems: {systems:?}");
    assert!(kinds.len() >= 6, "kinds: {kinds:?}");
    assert!(authors.len() >= 10, "authors: {authors:?}");
    assert!(kinds.contains("deploy"), "{kinds:?}");
    let now = Timestamp::now();
    for event in &events {
        let at: Timestamp = event["occurred_at"].as_str().unwrap().parse().unwrap();
        assert!(at <= now, "demo events are in the past: {event}");
        let key = event["idempotency_key"].as_str().unwrap();
        assert!(key.starts_with("demo:7:"), "{key}");
    }

    let out = fx
        .tfr(["demo", "--events", "300", "--seed", "7"])
        .run()
        .await;
    out.assert_success();
    // The keys hold the UTC day: across midnight the second run is a new history.
    if day() == first_day {
        assert_eq!(out.stdout, "demo: 0 created, 300 already present\n");
        assert_eq!(fx.all().await.len(), 300);
    }
}

// ---------------------------------------------------------------------------------------------
// serve and configuration
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_open_address_without_the_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Tfr::new(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .args([&data])
        .run()
        .await;
    assert_ne!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stderr.contains("refusing to listen on 0.0.0.0:0")
            && out.stderr.contains("--allow-anonymous-writes"),
        "{}",
        out.stderr
    );
    assert!(!data.exists(), "nothing is created before the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_an_unreachable_database_fails_without_printing_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = Tfr::new(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database", "postgres://tfr:s3cret@127.0.0.1:1/tfr"])
        .run()
        .await;
    assert_ne!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stderr
            .contains("cannot open the store at postgres://tfr:***@127.0.0.1:1/tfr"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    assert!(
        !dir.path().join("tfr-data").exists(),
        "no default store is created"
    );
    let out = Tfr::new(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database", "mysql://tfr:s3cret@127.0.0.1/tfr"])
        .run()
        .await;
    assert_ne!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stderr.contains("only PostgreSQL URLs") && out.stderr.contains("--data DIR"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("custom.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nlisen = \"127.0.0.1:0\"\n",
    )
    .unwrap();

    let out = Tfr::new(dir.path())
        .args(["serve", "--config"])
        .args([&config])
        .run()
        .await;
    out.assert_code(2);
    assert!(
        out.stderr.starts_with(&format!(
            "tfr: invalid configuration file {}",
            config.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown field `lisen`"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("tfr-data").exists());

    // Client commands read the same file, and ./tfr.toml when no --config is given.
    std::fs::write(
        dir.path().join("tfr.toml"),
        "sever = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = Tfr::new(dir.path()).args(["log"]).run().await;
    out.assert_code(2);
    assert!(
        out.stderr
            .starts_with("tfr: invalid configuration file tfr.toml")
            && out.stderr.contains("unknown field `sever`"),
        "{}",
        out.stderr
    );

    let missing = dir.path().join("missing.toml");
    let out = Tfr::new(dir.path())
        .args(["log", "--config"])
        .args([&missing])
        .run()
        .await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("cannot read the configuration file"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlate_prints_the_verdict_and_the_figures() {
    let fx = Fixture::start().await;
    let mut events = Vec::new();
    for day in 1..=10 {
        events.push(
            json!({"title": "deploy player", "system": "player", "author": "ci",
            "kind": "deploy", "occurred_at": format!("2026-10-{day:02}T10:00:00Z")}),
        );
        if day <= 8 {
            events.push(
                json!({"title": "cdn 5xx spike", "system": "cdn", "author": "alerts",
                "kind": "incident", "occurred_at": format!("2026-10-{day:02}T10:10:00Z")}),
            );
        }
    }
    fx.post_events(&events).await;
    let out = fx
        .tfr([
            "correlate",
            "--a",
            "system:player kind:deploy",
            "--b",
            "system:cdn",
            "--window",
            "1h",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-11",
            "--limit",
            "2",
        ])
        .run()
        .await;
    out.assert_success();
    let lines = out.stdout_lines();
    assert_eq!(
        lines[0],
        "8 of 10 changes matching A were followed within 1h by B (baseline 3.3%): 24.0× more often than chance, p = 6e-11"
    );
    assert!(
        out.stdout
            .contains("  hits         8 of 10 A events (8 B events)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  2026-10-10T10:00:00Z  deploy player\n      (no B within the window)\n")
    );
    // --json is the server's answer; a bad window is refused before any request.
    let out = fx
        .tfr([
            "correlate",
            "--a",
            "system:player",
            "--b",
            "system:cdn",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-11",
            "--json",
        ])
        .run()
        .await;
    out.assert_success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["hits"], 8);
    let out = fx
        .tfr(["correlate", "--a", "x", "--b", "y", "--window", "soon"])
        .run()
        .await;
    out.assert_code(1);
    assert!(out.stderr.contains("--window"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_follow_prints_history_then_new_events() {
    use tokio::io::AsyncBufReadExt;
    let fx = Fixture::start().await;
    fx.post_events(&[
        json!({"title": "older", "system": "player", "author": "a", "occurred_at": "2026-11-01T10:00:00Z"}),
        json!({"title": "newer", "system": "player", "author": "a", "occurred_at": "2026-11-02T10:00:00Z"}),
    ])
    .await;
    let mut tfr = fx.tfr(["log", "--follow", "--json", "system:player"]);
    tfr.command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut child = tfr.command.spawn().expect("start tfr log --follow");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_title = async || -> String {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a line within 20 s")
            .unwrap()
            .expect("tfr is still running");
        let event: Value = serde_json::from_str(&line).unwrap();
        event["title"].as_str().unwrap().to_owned()
    };
    assert_eq!(next_title().await, "older", "history oldest first");
    assert_eq!(next_title().await, "newer");
    // The stream is open once the history is printed; give it a moment to subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fx.post_events(&[
        json!({"title": "other system", "system": "api", "author": "a"}),
        json!({"title": "live one", "system": "player", "author": "a"}),
    ])
    .await;
    assert_eq!(next_title().await, "live one");
    child.kill().await.unwrap();
}
