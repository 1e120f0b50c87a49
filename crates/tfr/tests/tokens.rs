//! `tfr token create|list|revoke` and the safe defaults of `tfr serve`, on the real binary: a
//! token is printed alone, stored hashed, listed and revoked; off loopback the server needs a
//! write token to start, refuses anonymous callers, and records each token's name.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// `tfr` with the test's `TFR_*` environment removed.
fn tfr(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tfr"));
    command.current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TFR_") {
            command.env_remove(&name);
        }
    }
    command.env("USER", "tester").stdin(Stdio::null());
    command
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    tfr(cwd).args(args).output().expect("run tfr")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn token_list(cwd: &Path, data: &str) -> Vec<Value> {
    let out = run(cwd, &["token", "list", "--json", "--data", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().expect("a directory");
    let cwd = dir.path();
    let data = cwd.join("data");
    let data = data.to_str().expect("a path");

    let out = run(cwd, &["token", "list", "--data", data]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("there is no store"),
        "{}",
        text(&out.stderr)
    );
    assert!(!Path::new(data).exists(), "listing creates nothing");

    let out = run(
        cwd,
        &[
            "token",
            "create",
            "--name",
            "ci-jenkins",
            "--scope",
            "write",
            "--expires",
            "90d",
            "--data",
            data,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(
        token.len() == 68
            && token.starts_with("tfr_")
            && token[4..].chars().all(|c| c.is_ascii_hexdigit()),
        "stdout is the token alone: {stdout:?}"
    );
    assert!(
        text(&out.stderr).contains("shown once"),
        "{}",
        text(&out.stderr)
    );
    // Only the hash is stored.
    let database = std::fs::read(Path::new(data).join("tfr.db")).expect("the database");
    assert!(
        !database.windows(token.len()).any(|w| w == token.as_bytes()),
        "the token itself is in the database file"
    );

    for (args, complaint) in [
        (
            vec!["--name", "ci-jenkins", "--scope", "read"],
            "already exists",
        ),
        (
            vec!["--name", "anonymous", "--scope", "read"],
            "choose another name",
        ),
        (vec!["--name", "a b", "--scope", "read"], "--name"),
        (vec!["--name", "x", "--scope", "root"], "root"),
        (
            vec!["--name", "x", "--scope", "read", "--expires", "2001-01-01"],
            "past",
        ),
    ] {
        let mut full = vec!["token", "create"];
        full.extend(args);
        full.extend(["--data", data]);
        let out = run(cwd, &full);
        assert!(!out.status.success(), "{full:?}");
        assert!(out.stdout.is_empty(), "{full:?}: no token printed");
        assert!(
            text(&out.stderr).contains(complaint),
            "{full:?}: {}",
            text(&out.stderr)
        );
    }
    let out = run(
        cwd,
        &[
            "token", "create", "--name", "grafana", "--scope", "read", "--data", data,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(cwd, &["token", "list", "--data", data]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for column in ["NAME", "SCOPES", "CREATED", "LAST USED", "EXPIRES", "STATE"] {
        assert!(lines[0].contains(column), "{table}");
    }
    assert!(
        lines[1].starts_with("ci-jenkins")
            && lines[1].contains("read,write ")
            && lines[1].ends_with("active"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("grafana") && lines[2].contains("never"),
        "{table}"
    );

    let listed = token_list(cwd, data);
    assert_eq!(listed[0]["name"], "ci-jenkins");
    assert_eq!(listed[0]["scope"], "write");
    assert_eq!(listed[0]["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(listed[0]["last_used_at"], Value::Null);
    assert!(listed[0]["expires_at"].is_string());
    assert_eq!(listed[1]["expires_at"], Value::Null);

    let out = run(cwd, &["token", "revoke", "ci-jenkins", "--data", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("revoked"));
    assert_eq!(token_list(cwd, data)[0]["state"], "revoked");
    let out = run(cwd, &["token", "revoke", "ci-jenkins", "--data", data]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("already revoked"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cwd, &["token", "revoke", "nobody", "--data", data]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no token named 'nobody'"));
}

/// A `tfr serve` process on 0.0.0.0 (reached at 127.0.0.1).
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tfr serve --listen 0.0.0.0:0`: the server, or what it said before exiting.
fn serve_open(cwd: &Path, data: &str) -> Result<Server, String> {
    let mut child = tfr(cwd)
        .args(["serve", "--listen", "0.0.0.0:0", "--data", data])
        .env("TFR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tfr serve");
    let stderr = child.stderr.take().expect("stderr");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = String::new();
    loop {
        match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if let Some(at) = line.find("listening on http://0.0.0.0:") {
                    let port = line[at + "listening on http://0.0.0.0:".len()..]
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .expect("a port")
                        .to_owned();
                    return Ok(Server {
                        child,
                        base: format!("http://127.0.0.1:{port}"),
                    });
                }
                said.push_str(&line);
                said.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(said);
            }
        }
    }
}

fn create_token(cwd: &Path, data: &str, name: &str, scope: &str) -> String {
    let out = run(
        cwd,
        &[
            "token", "create", "--name", name, "--scope", scope, "--data", data,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_off_loopback_needs_a_write_token_and_then_tokens() {
    let dir = tempfile::tempdir().expect("a directory");
    let cwd = dir.path();
    let data = cwd.join("data");
    let data = data.to_str().expect("a path");

    // A read token is not enough to open the server to the network.
    let reader = create_token(cwd, data, "dashboards", "read");
    let refused = serve_open(cwd, data)
        .err()
        .expect("refused without a write token");
    assert!(
        refused.contains("refusing to listen on 0.0.0.0:0") && refused.contains("tfr token create"),
        "{refused}"
    );
    let writer = create_token(cwd, data, "ci-jenkins", "write");
    let server = serve_open(cwd, data).expect("starts with a write token");
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{}{path}", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    // Off loopback, anonymous callers read nothing by default.
    let anonymous = get("/api/v1/events", None).await.expect("a response");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        r#"Bearer realm="tfr""#
    );
    let page = get("/", None).await.expect("a response");
    assert_eq!(page.status(), 401);
    assert!(
        page.text()
            .await
            .expect("a page")
            .contains("A token is needed")
    );
    assert_eq!(
        get("/healthz", None).await.expect("a response").status(),
        200
    );
    assert_eq!(
        get("/api/v1/events", Some(&reader))
            .await
            .expect("a response")
            .status(),
        200
    );

    // The client commands send --token; the event records its name.
    let send = |token: Option<&str>, title: &str| {
        let mut command = tfr(cwd);
        command.args(["--server", &server.base]);
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        command
            .args(["send", "--title", title, "--system", "api"])
            .output()
            .expect("run tfr send")
    };
    let out = send(Some(&writer), "Deploy api 1.2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = send(Some(&reader), "Not allowed");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("403"), "{}", text(&out.stderr));
    let out = send(None, "Anonymous");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let listed: Value = get("/api/v1/events", Some(&reader))
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    let events = listed["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{listed}");
    assert_eq!(events[0]["title"], "Deploy api 1.2");
    assert_eq!(events[0]["submitted_by"], "ci-jenkins");

    // Used tokens show when; revoked ones stop working.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while token_list(cwd, data)
        .iter()
        .any(|token| token["last_used_at"].is_null())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "last_used_at never set"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = run(cwd, &["token", "revoke", "dashboards", "--data", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = get("/api/v1/events", Some(&reader))
            .await
            .expect("a response")
            .status();
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
