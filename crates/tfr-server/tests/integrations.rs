//! End-to-end tests of the integrations (design §5): a real server on 127.0.0.1 over a real
//! SQLite file, sent each tool's payloads as the tool sends them (fixtures written from each
//! vendor's public documentation, in `tests/fixtures/integrations/`), every mapping checked
//! field by field on the stored event.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::Sha256;
use tfr_server::{AppState, Secret, ServerConfig};
use tfr_store::Store;
use tfr_store_sqlite::SqliteStore;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITLAB_TOKEN: &str = "gl-webhook-token-4f1c";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/integrations/", $name))
    };
}

struct TestServer {
    base: String,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn configured() -> ServerConfig {
    ServerConfig {
        github_secret: Some(Secret::new(GITHUB_SECRET)),
        gitlab_token: Some(Secret::new(GITLAB_TOKEN)),
        github_workflows: vec!["Deploy production".into()],
        ..ServerConfig::default()
    }
}

impl TestServer {
    async fn start() -> Self {
        Self::start_with(configured()).await
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

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// A GitHub delivery, signed with `secret`.
    async fn github(&self, event: &str, delivery: &str, body: &str, secret: &str) -> Answer {
        let signature = sign(secret, body.as_bytes());
        self.post(
            "/integrations/github",
            &[
                ("x-github-event", event),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", &signature),
                ("user-agent", "GitHub-Hookshot/8f5ba2c"),
            ],
            "application/json",
            body.to_owned(),
        )
        .await
    }

    async fn gitlab(&self, event: &str, body: &str, extra: &[(&str, &str)]) -> Answer {
        let mut headers = vec![("x-gitlab-event", event), ("x-gitlab-token", GITLAB_TOKEN)];
        headers.extend_from_slice(extra);
        self.post(
            "/integrations/gitlab",
            &headers,
            "application/json",
            body.to_owned(),
        )
        .await
    }

    /// The stored event, read back through the API.
    async fn event(&self, id: &Value) -> Value {
        let answer = self
            .get(&format!("/api/v1/events/{}", id.as_str().unwrap()))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }

    /// The only event with this `source`, read back through the API.
    async fn only_event(&self, source: &str) -> Value {
        let answer = self.get(&format!("/api/v1/events?q=source:{source}")).await;
        let events = answer.body["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "{}", answer.body);
        self.event(&events[0]["id"]).await
    }

    async fn count(&self) -> u64 {
        self.store.count().await.unwrap()
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn link_urls(event: &Value) -> Vec<&str> {
    event["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["url"].as_str().unwrap())
        .collect()
}

fn tags(event: &Value) -> Vec<&str> {
    event["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap())
        .collect()
}

// ---- GitHub ---------------------------------------------------------------------------------

#[tokio::test]
async fn github_push_is_recorded_once_per_delivery() {
    let server = TestServer::start().await;
    let body = fixture!("github_push.json");
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let first = server.github("push", delivery, body, GITHUB_SECRET).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    let event = server.event(&first.body["id"]).await;
    assert_eq!(
        event["title"],
        "Push to main: Player 5.2: faster start on slow networks (+1 more commits)"
    );
    assert_eq!(event["system"], "player");
    assert_eq!(event["author"], "alice");
    assert_eq!(event["kind"], "push");
    assert_eq!(event["source"], "github");
    assert_eq!(event["version"], "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
    assert_eq!(event["environment"], Value::Null);
    assert_eq!(event["occurred_at"], "2025-11-26T10:00:00Z");
    assert_eq!(event["submitted_by"], "github-webhook");
    assert_eq!(
        event["idempotency_key"],
        format!("github:{delivery}").as_str()
    );
    assert_eq!(tags(&event), ["repo:acme/player", "branch:main"]);
    assert_eq!(
        link_urls(&event),
        [
            "https://github.com/acme/player/compare/6113728f27ae...59b20b8d5c6f",
            "https://github.com/acme/player/commit/59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5"
        ]
    );
    let description = event["description"].as_str().unwrap();
    assert!(
        description.contains("- `0d1a26e` Retry the CDN token refresh — bob"),
        "{description}"
    );
    assert!(
        description.contains("- `59b20b8` Player 5.2: faster start on slow networks — alice"),
        "{description}"
    );
    assert_eq!(event["attributes"]["github_event"], "push");
    assert_eq!(event["attributes"]["github_delivery"], delivery);
    assert_eq!(event["attributes"]["push"]["commits"], 2);

    // GitHub's "Redeliver": same delivery id, same body → the original, nothing new.
    let again = server.github("push", delivery, body, GITHUB_SECRET).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(server.count().await, 1);

    // Another delivery of another push is another event.
    let other = body.replace("\"pushed_at\": 1764151200", "\"pushed_at\": 1764151500");
    let second = server
        .github(
            "push",
            "81e36b3e-cc78-11e3-8aa4-1e5f6c0a2b11",
            &other,
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(server.count().await, 2);
}

#[tokio::test]
async fn github_refuses_bad_signatures_and_stores_nothing() {
    let server = TestServer::start().await;
    let body = fixture!("github_push.json");
    let wrong = server.github("push", "d-1", body, "not the secret").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"]["code"], "unauthorized");
    assert!(
        wrong.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{}",
        wrong.body
    );

    // Signed, then altered on the way.
    let signature = sign(GITHUB_SECRET, body.as_bytes());
    let tampered = body.replace("alice", "mallory");
    let altered = server
        .post(
            "/integrations/github",
            &[
                ("x-github-event", "push"),
                ("x-github-delivery", "d-2"),
                ("x-hub-signature-256", &signature),
            ],
            "application/json",
            tampered,
        )
        .await;
    assert_eq!(altered.status, StatusCode::UNAUTHORIZED);

    let unsigned = server
        .post(
            "/integrations/github",
            &[("x-github-event", "push"), ("x-github-delivery", "d-3")],
            "application/json",
            body.to_owned(),
        )
        .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert!(
        unsigned.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256"),
        "{}",
        unsigned.body
    );

    // The legacy SHA-1 header alone is not enough.
    let sha1_only = server
        .post(
            "/integrations/github",
            &[
                ("x-github-event", "push"),
                (
                    "x-hub-signature",
                    "sha1=0123456789abcdef0123456789abcdef01234567",
                ),
            ],
            "application/json",
            body.to_owned(),
        )
        .await;
    assert_eq!(sha1_only.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.count().await, 0);
}

#[tokio::test]
async fn without_secrets_every_delivery_is_refused_with_the_reason() {
    let server = TestServer::start_with(ServerConfig::default()).await;
    let github = server
        .github("push", "d-1", fixture!("github_push.json"), GITHUB_SECRET)
        .await;
    assert_eq!(github.status, StatusCode::UNAUTHORIZED);
    let message = github.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no webhook secret is configured")
            && message.contains("TFR_GITHUB_SECRET"),
        "{message}"
    );
    let gitlab = server
        .gitlab("Push Hook", fixture!("gitlab_push.json"), &[])
        .await;
    assert_eq!(gitlab.status, StatusCode::UNAUTHORIZED);
    let message = gitlab.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("TFR_GITLAB_TOKEN"), "{message}");
    // Even a ping: the configuration is what is wrong, and GitHub's page should say so.
    let ping = server
        .github("ping", "d-2", fixture!("github_ping.json"), GITHUB_SECRET)
        .await;
    assert_eq!(ping.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.count().await, 0);
}

#[tokio::test]
async fn github_pull_request_merged() {
    let server = TestServer::start().await;
    let answer = server
        .github(
            "pull_request",
            "pr-1",
            fixture!("github_pull_request_merged.json"),
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let event = server.event(&answer.body["id"]).await;
    assert_eq!(
        event["title"],
        "Merge #1347 into main: Prefetch the first segment"
    );
    assert_eq!(event["system"], "player");
    assert_eq!(event["author"], "carol");
    assert_eq!(event["kind"], "merge");
    assert_eq!(event["version"], "e5bd3914e2e596debea16f433f57875b5b90bcd6");
    assert_eq!(event["occurred_at"], "2025-11-26T09:41:07Z");
    assert_eq!(
        event["description"],
        "Starts playback 300 ms earlier on 3G.\n\nCloses #1312."
    );
    assert_eq!(
        link_urls(&event),
        ["https://github.com/acme/player/pull/1347"]
    );
    assert_eq!(
        tags(&event),
        [
            "repo:acme/player",
            "branch:main",
            "pr:1347",
            "from:prefetch-first-segment",
            "pr_author:bob",
            "label:performance",
            "label:player"
        ]
    );

    // Closed without merging, or any other action: acknowledged, not recorded.
    let unmerged = fixture!("github_pull_request_merged.json")
        .replace("\"merged\": true", "\"merged\": false");
    let closed = server
        .github("pull_request", "pr-2", &unmerged, GITHUB_SECRET)
        .await;
    assert_eq!(closed.status, StatusCode::ACCEPTED);
    assert!(
        closed.body["ignored"]
            .as_str()
            .unwrap()
            .contains("without merging")
    );
    let opened = fixture!("github_pull_request_merged.json")
        .replace("\"action\": \"closed\"", "\"action\": \"opened\"");
    let opened = server
        .github("pull_request", "pr-3", &opened, GITHUB_SECRET)
        .await;
    assert_eq!(opened.status, StatusCode::ACCEPTED);
    assert!(
        opened.body["ignored"]
            .as_str()
            .unwrap()
            .contains("'opened'")
    );
    assert_eq!(server.count().await, 1);
}

#[tokio::test]
async fn github_release_deployment_and_statuses() {
    let server = TestServer::start().await;
    let release = server
        .github(
            "release",
            "r-1",
            fixture!("github_release.json"),
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(release.status, StatusCode::CREATED, "{}", release.body);
    let event = server.event(&release.body["id"]).await;
    assert_eq!(event["title"], "Release Player 5.2 of player");
    assert_eq!(event["kind"], "release");
    assert_eq!(event["version"], "v5.2.0");
    assert_eq!(event["author"], "alice");
    assert_eq!(event["occurred_at"], "2025-11-26T11:04:30Z");
    assert_eq!(
        link_urls(&event),
        ["https://github.com/acme/player/releases/tag/v5.2.0"]
    );
    assert!(
        event["description"]
            .as_str()
            .unwrap()
            .starts_with("## What's new")
    );

    let deployment = server
        .github(
            "deployment",
            "dep-1",
            fixture!("github_deployment.json"),
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(
        deployment.status,
        StatusCode::CREATED,
        "{}",
        deployment.body
    );
    let event = server.event(&deployment.body["id"]).await;
    assert_eq!(event["title"], "Deploy player v5.2.0 to production");
    assert_eq!(event["kind"], "deploy");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["version"], "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
    assert_eq!(event["author"], "deploy-bot[bot]");
    assert_eq!(event["description"], "Release train 48");
    assert_eq!(event["occurred_at"], "2025-11-26T12:00:00Z");
    assert_eq!(
        tags(&event),
        [
            "repo:acme/player",
            "ref:v5.2.0",
            "deployment:1873920115",
            "state:created"
        ]
    );

    let status = server
        .github(
            "deployment_status",
            "dep-2",
            fixture!("github_deployment_status.json"),
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(status.status, StatusCode::CREATED, "{}", status.body);
    let event = server.event(&status.body["id"]).await;
    assert_eq!(
        event["title"],
        "Deploy player v5.2.0 to production: success"
    );
    assert_eq!(event["kind"], "deploy");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["description"], "Deployed to 48 of 48 hosts");
    // The event spans the deployment: created at 12:00, succeeded at 12:06:30.
    assert_eq!(event["occurred_at"], "2025-11-26T12:00:00Z");
    assert_eq!(event["ended_at"], "2025-11-26T12:06:30Z");
    assert!(tags(&event).contains(&"state:success"));
    assert_eq!(
        link_urls(&event),
        [
            "https://github.com/acme/player/commit/59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5",
            "https://ci.acme.example/deploys/9121",
            "https://ci.acme.example/deploys/9121/log",
            "https://player.acme.example"
        ]
    );

    // States on the way are acknowledged, not recorded.
    let in_progress = fixture!("github_deployment_status.json")
        .replace("\"state\": \"success\"", "\"state\": \"in_progress\"");
    let answer = server
        .github("deployment_status", "dep-3", &in_progress, GITHUB_SECRET)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(
        answer.body["ignored"]
            .as_str()
            .unwrap()
            .contains("in_progress")
    );
    assert_eq!(server.count().await, 3);
}

#[tokio::test]
async fn github_workflow_runs_of_listed_workflows() {
    let server = TestServer::start().await;
    let answer = server
        .github(
            "workflow_run",
            "wf-1",
            fixture!("github_workflow_run.json"),
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let event = server.event(&answer.body["id"]).await;
    assert_eq!(
        event["title"],
        "Workflow Deploy production on main: success"
    );
    assert_eq!(event["kind"], "deploy");
    assert_eq!(event["author"], "alice");
    assert_eq!(event["occurred_at"], "2025-11-26T10:00:05Z");
    assert_eq!(event["ended_at"], "2025-11-26T10:09:41Z");
    assert_eq!(
        tags(&event),
        [
            "repo:acme/player",
            "workflow:Deploy production",
            "conclusion:success",
            "branch:main"
        ]
    );

    let unlisted = fixture!("github_workflow_run.json").replace("Deploy production", "Lint");
    let answer = server
        .github("workflow_run", "wf-2", &unlisted, GITHUB_SECRET)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(
        answer.body["ignored"]
            .as_str()
            .unwrap()
            .contains("github_workflows")
    );
    assert_eq!(server.count().await, 1);
}

#[tokio::test]
async fn github_ping_other_events_and_form_encoding() {
    let server = TestServer::start().await;
    let ping = server
        .github("ping", "p-1", fixture!("github_ping.json"), GITHUB_SECRET)
        .await;
    assert_eq!(ping.status, StatusCode::OK, "{}", ping.body);
    assert_eq!(ping.body["zen"], "Keep it logically awesome.");

    let issues = server
        .github(
            "issues",
            "i-1",
            r#"{"action": "opened", "issue": {"number": 1}}"#,
            GITHUB_SECRET,
        )
        .await;
    assert_eq!(issues.status, StatusCode::ACCEPTED);
    assert!(
        issues.body["ignored"]
            .as_str()
            .unwrap()
            .contains("GitHub event 'issues' is not recorded"),
        "{}",
        issues.body
    );

    // A webhook set to application/x-www-form-urlencoded sends `payload=<json>`, signed as is.
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", fixture!("github_release.json"))
        .finish();
    let signature = sign(GITHUB_SECRET, form.as_bytes());
    let answer = server
        .post(
            "/integrations/github",
            &[
                ("x-github-event", "release"),
                ("x-github-delivery", "f-1"),
                ("x-hub-signature-256", &signature),
            ],
            "application/x-www-form-urlencoded",
            form,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["kind"], "release");

    // A signed body that is not JSON is a 400, not a 500.
    let garbage = server
        .github("push", "g-1", "not json", GITHUB_SECRET)
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.body["error"]["code"], "invalid_body");
    assert_eq!(server.count().await, 1);
}

#[tokio::test]
async fn github_default_branch_only() {
    let server = TestServer::start_with(ServerConfig {
        github_default_branch_only: true,
        ..configured()
    })
    .await;
    let feature = fixture!("github_push.json").replace("refs/heads/main", "refs/heads/feature-x");
    let answer = server.github("push", "b-1", &feature, GITHUB_SECRET).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(
        answer.body["ignored"]
            .as_str()
            .unwrap()
            .contains("not the default branch 'main'"),
        "{}",
        answer.body
    );
    let main = server
        .github("push", "b-2", fixture!("github_push.json"), GITHUB_SECRET)
        .await;
    assert_eq!(main.status, StatusCode::CREATED);
    assert_eq!(server.count().await, 1);
}

// ---- GitLab ---------------------------------------------------------------------------------

#[tokio::test]
async fn gitlab_push_with_and_without_idempotency_key() {
    let server = TestServer::start().await;
    let body = fixture!("gitlab_push.json");
    let key = [("idempotency-key", "a5461c4d-9c7f-4af9-add6-cddebe3c426f")];
    let first = server.gitlab("Push Hook", body, &key).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let event = server.event(&first.body["id"]).await;
    assert_eq!(
        event["title"],
        "Push to master: fixed readme (+3 more commits)"
    );
    assert_eq!(event["system"], "diaspora");
    assert_eq!(event["author"], "jsmith");
    assert_eq!(event["kind"], "push");
    assert_eq!(event["source"], "gitlab");
    assert_eq!(event["submitted_by"], "gitlab-webhook");
    assert_eq!(event["version"], "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    assert_eq!(
        event["idempotency_key"],
        "gitlab:a5461c4d-9c7f-4af9-add6-cddebe3c426f"
    );
    assert_eq!(tags(&event), ["repo:mike/diaspora", "branch:master"]);
    assert_eq!(
        link_urls(&event),
        [
            "https://gitlab.example.com/mike/diaspora/-/compare/95790bf891e76fee5e1747ab589903a6a1f80f22...da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
        ]
    );
    let description = event["description"].as_str().unwrap();
    assert!(
        description.contains("- `b6568db1` Update Catalan translation to e38cb41. — Jordi Mallach")
            && description.contains("4 commits in all"),
        "{description}"
    );

    // A retry carries the same Idempotency-Key.
    let retry = server.gitlab("Push Hook", body, &key).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body["id"], first.body["id"]);

    // Older GitLab sends no key: the push's own identity (project, ref, before, after) is one.
    let legacy = server
        .gitlab(
            "Push Hook",
            &body
                .replace("\"project_id\": 15", "\"project_id\": 16")
                .replace("\"id\": 15", "\"id\": 16"),
            &[],
        )
        .await;
    assert_eq!(legacy.status, StatusCode::CREATED, "{}", legacy.body);
    let legacy_retry = server
        .gitlab(
            "Push Hook",
            &body
                .replace("\"project_id\": 15", "\"project_id\": 16")
                .replace("\"id\": 15", "\"id\": 16"),
            &[],
        )
        .await;
    assert_eq!(legacy_retry.status, StatusCode::OK);
    assert_eq!(legacy_retry.body["id"], legacy.body["id"]);
    assert_eq!(server.count().await, 2);
}

#[tokio::test]
async fn gitlab_token_is_checked() {
    let server = TestServer::start().await;
    let body = fixture!("gitlab_push.json");
    let wrong = server
        .post(
            "/integrations/gitlab",
            &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "guess")],
            "application/json",
            body.to_owned(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"]["code"], "unauthorized");
    let missing = server
        .post(
            "/integrations/gitlab",
            &[("x-gitlab-event", "Push Hook")],
            "application/json",
            body.to_owned(),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Gitlab-Token")
    );
    // A prefix of the token is not the token.
    let prefix = server
        .post(
            "/integrations/gitlab",
            &[("x-gitlab-token", &GITLAB_TOKEN[..5])],
            "application/json",
            body.to_owned(),
        )
        .await;
    assert_eq!(prefix.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.count().await, 0);
}

#[tokio::test]
async fn gitlab_tags_merges_releases_and_deployments() {
    let server = TestServer::start().await;
    let tag = server
        .gitlab("Tag Push Hook", fixture!("gitlab_tag_push.json"), &[])
        .await;
    assert_eq!(tag.status, StatusCode::CREATED, "{}", tag.body);
    let event = server.event(&tag.body["id"]).await;
    assert_eq!(event["title"], "Tag v1.0.0 pushed to example");
    assert_eq!(event["kind"], "tag");
    assert_eq!(event["version"], "v1.0.0");
    assert_eq!(event["author"], "jsmith");
    assert_eq!(
        event["description"],
        "Version 1.0: the first stable release"
    );
    assert_eq!(
        link_urls(&event),
        ["https://gitlab.example.com/jsmith/example/-/tags/v1.0.0"]
    );

    let merge = server
        .gitlab(
            "Merge Request Hook",
            fixture!("gitlab_merge_request.json"),
            &[],
        )
        .await;
    assert_eq!(merge.status, StatusCode::CREATED, "{}", merge.body);
    let event = server.event(&merge.body["id"]).await;
    assert_eq!(event["title"], "Merge !1 into master: MS-Viewport");
    assert_eq!(event["system"], "gitlab-test");
    assert_eq!(event["author"], "root");
    assert_eq!(event["kind"], "merge");
    assert_eq!(event["version"], "e5bd3914e2e596debea16f433f57875b5b90bcd6");
    assert_eq!(
        tags(&event),
        [
            "repo:gitlabhq/gitlab-test",
            "branch:master",
            "mr:1",
            "from:ms-viewport",
            "label:API"
        ]
    );
    let opened = fixture!("gitlab_merge_request.json")
        .replace("\"action\": \"merge\"", "\"action\": \"open\"");
    let ignored = server.gitlab("Merge Request Hook", &opened, &[]).await;
    assert_eq!(ignored.status, StatusCode::ACCEPTED);
    assert!(ignored.body["ignored"].as_str().unwrap().contains("'open'"));

    let release = server
        .gitlab("Release Hook", fixture!("gitlab_release.json"), &[])
        .await;
    assert_eq!(release.status, StatusCode::CREATED, "{}", release.body);
    let event = server.event(&release.body["id"]).await;
    assert_eq!(event["title"], "Release v1.1 of release-webhook-example");
    assert_eq!(event["kind"], "release");
    assert_eq!(event["version"], "v1.1");
    assert_eq!(event["author"], "Example User");
    assert_eq!(event["occurred_at"], "2020-11-02T12:55:12Z");
    assert_eq!(
        link_urls(&event),
        [
            "https://gitlab.example.com/gitlab-org/release-webhook-example/-/releases/v1.1",
            "https://example.net/changelog"
        ]
    );

    let deployment = server
        .gitlab("Deployment Hook", fixture!("gitlab_deployment.json"), &[])
        .await;
    assert_eq!(
        deployment.status,
        StatusCode::CREATED,
        "{}",
        deployment.body
    );
    let event = server.event(&deployment.body["id"]).await;
    assert_eq!(
        event["title"],
        "Deploy test-deployment-webhooks 279484c0 to staging"
    );
    assert_eq!(event["kind"], "deploy");
    assert_eq!(event["environment"], "staging");
    assert_eq!(event["author"], "root");
    assert_eq!(event["version"], "279484c09fbe69ededfced8c1bb6e6d24616b468");
    assert_eq!(event["occurred_at"], "2021-04-28T19:50:00Z");
    assert_eq!(event["description"], "Add new file");
    assert_eq!(
        tags(&event),
        [
            "repo:root/test-deployment-webhooks",
            "status:success",
            "tier:staging",
            "deployment:15"
        ]
    );
    let running = fixture!("gitlab_deployment.json")
        .replace("\"status\": \"success\"", "\"status\": \"running\"");
    let ignored = server.gitlab("Deployment Hook", &running, &[]).await;
    assert_eq!(ignored.status, StatusCode::ACCEPTED);

    let pipeline = server
        .gitlab(
            "Pipeline Hook",
            r#"{"object_kind": "pipeline", "object_attributes": {"id": 31}}"#,
            &[],
        )
        .await;
    assert_eq!(pipeline.status, StatusCode::ACCEPTED);
    assert!(
        pipeline.body["ignored"]
            .as_str()
            .unwrap()
            .contains("'pipeline' (Pipeline Hook)"),
        "{}",
        pipeline.body
    );
    let deleted = fixture!("gitlab_push.json").replace(
        "\"after\": \"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\"",
        "\"after\": \"0000000000000000000000000000000000000000\"",
    );
    let ignored = server.gitlab("Push Hook", &deleted, &[]).await;
    assert_eq!(ignored.status, StatusCode::ACCEPTED);
    assert_eq!(server.count().await, 4);
}

// ---- PagerDuty ------------------------------------------------------------------------------

#[tokio::test]
async fn pagerduty_change_events() {
    let server = TestServer::start().await;
    let path = "/integrations/pagerduty/v2/change/enqueue";
    let answer = server
        .post(
            path,
            &[],
            "application/json",
            fixture!("pagerduty_change.json"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({"status": "success", "message": "Change event processed"})
    );
    let event = server.only_event("pagerduty").await;
    assert_eq!(
        event["title"],
        "Build Success: Increase snapshot create timeout to 30 seconds"
    );
    assert_eq!(event["system"], "snapshotter");
    assert_eq!(event["author"], "dave");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["version"], "1.9.4");
    assert_eq!(event["kind"], "change");
    assert_eq!(event["occurred_at"], "2025-11-26T08:42:58.315Z");
    assert_eq!(event["submitted_by"], "anonymous");
    assert_eq!(
        tags(&event),
        ["pagerduty_source:acme-build-pipeline-tool-default-i-9999"]
    );
    assert_eq!(
        event["links"],
        json!([{"url": "https://acme.pagerduty.dev/build/2", "title": "View more details in Acme!"}])
    );
    assert_eq!(event["attributes"]["custom_details"]["build_number"], "2");

    // PagerDuty-shaped refusals.
    let invalid = server
        .post(
            path,
            &[],
            "application/json",
            r#"{"payload": {"source": "x"}}"#,
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.body["status"], "invalid event");
    assert_eq!(invalid.body["message"], "Event object is invalid");
    assert_eq!(
        invalid.body["errors"],
        json!([
            "'routing_key' is missing or blank",
            "'payload.summary' is missing or blank"
        ])
    );
    let garbage = server.post(path, &[], "application/json", "{").await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.body["status"], "Unrecognized object");
    // The API's validation applies: a javascript: link is refused, naming it.
    let hostile = fixture!("pagerduty_change.json")
        .replace("https://acme.pagerduty.dev/build/2", "javascript:alert(1)");
    let refused = server.post(path, &[], "application/json", hostile).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("links[0].url"),
        "{}",
        refused.body
    );
    assert_eq!(server.count().await, 1);

    // PagerDuty has no delivery id; a retry with an Idempotency-Key is still stored once.
    let keyed = [("idempotency-key", "deploy-48-snapshotter")];
    for _ in 0..2 {
        let answer = server
            .post(
                path,
                &keyed,
                "application/json",
                fixture!("pagerduty_change.json"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    assert_eq!(server.count().await, 2);
}

// ---- Datadog --------------------------------------------------------------------------------

#[tokio::test]
async fn datadog_events() {
    let server = TestServer::start().await;
    let path = "/integrations/datadog/api/v1/events";
    let answer = server
        .post(
            path,
            &[("dd-api-key", "0123456789abcdef0123456789abcdef")],
            "application/json",
            fixture!("datadog_event.json"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["status"], "ok");
    let reply = &answer.body["event"];
    assert!(reply["id"].as_i64().unwrap() > 0);
    assert_eq!(
        reply["id_str"],
        reply["id"].as_i64().unwrap().to_string().as_str()
    );
    assert_eq!(reply["title"], "Deployed checkout 1.4.2 to production");
    assert_eq!(reply["date_happened"], 1_764_151_500);
    assert!(reply["url"].as_str().unwrap().starts_with("/events/"));

    let event = server.event(&reply["tfr_id"]).await;
    assert_eq!(event["title"], "Deployed checkout 1.4.2 to production");
    assert_eq!(event["system"], "checkout");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["version"], "1.4.2");
    assert_eq!(event["team"], "payments");
    assert_eq!(event["author"], "datadog");
    assert_eq!(event["source"], "datadog");
    assert_eq!(event["occurred_at"], "2025-11-26T10:05:00Z");
    assert_eq!(
        event["description"],
        "Rolled out by **alice** with [the release train](https://ci.acme.example/trains/48)."
    );
    assert_eq!(
        tags(&event),
        [
            "region:eu-west-1",
            "host:deploy-runner-3",
            "source_type:jenkins",
            "alert_type:success"
        ]
    );
    assert_eq!(event["attributes"]["aggregation_key"], "checkout-deploys");

    let missing = server
        .post(path, &[], "application/json", r#"{"text": "no title"}"#)
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body, json!({"errors": ["Event title is required"]}));
    let not_json = server.post(path, &[], "application/json", "title=x").await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert!(not_json.body["errors"].is_array());
    assert_eq!(server.count().await, 1);
}

// ---- Grafana --------------------------------------------------------------------------------

#[tokio::test]
async fn grafana_annotations_in_and_back_out() {
    let server = TestServer::start().await;
    let added = server
        .post(
            "/integrations/grafana/api/annotations",
            &[("authorization", "Bearer glsa_0123456789")],
            "application/json",
            fixture!("grafana_annotation.json"),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["message"], "Annotation added");
    let id = added.body["id"].as_i64().unwrap();
    let event = server.event(&added.body["tfr_id"]).await;
    assert_eq!(event["title"], "CDN cache rules updated");
    assert_eq!(
        event["description"],
        "CDN cache rules updated\nTTL of /api/* lowered to 30 s"
    );
    assert_eq!(event["system"], "cdn-edge");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["kind"], "config");
    assert_eq!(event["author"], "grafana");
    assert_eq!(event["occurred_at"], "2025-11-26T10:00:00Z");
    assert_eq!(event["ended_at"], "2025-11-26T10:10:00Z");
    assert_eq!(tags(&event), ["maintenance"]);
    assert_eq!(event["attributes"]["dashboardUID"], "jcIIG-07z");

    let graphite = server
        .post(
            "/integrations/grafana/api/annotations/graphite",
            &[],
            "application/json",
            r#"{"what": "Event - deploy", "tags": "deploy production", "when": 1764151500, "data": "deploy of main branch happened"}"#,
        )
        .await;
    assert_eq!(graphite.status, StatusCode::OK, "{}", graphite.body);
    assert_eq!(graphite.body["message"], "Graphite annotation added");

    let missing = server
        .post(
            "/integrations/grafana/api/annotations",
            &[],
            "application/json",
            r#"{"tags": ["x"]}"#,
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body, json!({"message": "text is required"}));

    // An event recorded through the API shows too.
    let api = server
        .post(
            "/api/v1/events",
            &[],
            "application/json",
            r#"{"title": "Deploy player 5.2", "system": "player", "author": "alice", "kind": "deploy", "environment": "production", "occurred_at": "2025-11-26T10:07:00Z", "tags": ["release:5.2"]}"#,
        )
        .await;
    assert_eq!(api.status, StatusCode::CREATED);

    // Read back: Grafana's annotation shape, newest first, in the time range.
    let range = "from=1764151200000&to=1764154800000";
    let all = server
        .get(&format!("/integrations/grafana/api/annotations?{range}"))
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.headers["access-control-allow-origin"], "*");
    let annotations = all.body.as_array().unwrap();
    assert_eq!(annotations.len(), 3, "{}", all.body);
    assert_eq!(annotations[0]["text"], "Deploy player 5.2");
    assert_eq!(annotations[0]["time"], 1_764_151_620_000_i64);
    assert_eq!(annotations[0]["timeEnd"], 1_764_151_620_000_i64);
    assert_eq!(
        annotations[0]["tags"],
        json!([
            "system:player",
            "kind:deploy",
            "env:production",
            "release:5.2"
        ])
    );
    let cdn = &annotations[2];
    assert_eq!(cdn["id"], id);
    assert_eq!(cdn["time"], 1_764_151_200_000_i64);
    assert_eq!(cdn["timeEnd"], 1_764_151_800_000_i64);
    assert_eq!(cdn["text"], "CDN cache rules updated");
    for field in ["alertId", "dashboardId", "panelId", "userId"] {
        assert_eq!(cdn[field], 0, "{field}");
    }

    // Tags filter: a field tag filters the field, others the tags; every tag must match...
    let by_system = server
        .get(&format!(
            "/integrations/grafana/api/annotations?{range}&tags=system:player"
        ))
        .await;
    assert_eq!(by_system.body.as_array().unwrap().len(), 1);
    let both = server
        .get(&format!(
            "/integrations/grafana/api/annotations?{range}&tags=env:production&tags=maintenance"
        ))
        .await;
    assert_eq!(both.body.as_array().unwrap().len(), 1, "{}", both.body);
    // ...or any of them.
    let any = server
        .get(&format!(
            "/integrations/grafana/api/annotations?{range}&tags=deploy&tags=maintenance&matchAny=true"
        ))
        .await;
    assert_eq!(any.body.as_array().unwrap().len(), 2, "{}", any.body);
    // tfr's own query language.
    let query = server
        .get(&format!(
            "/integrations/grafana/api/annotations?{range}&q=kind:deploy,config"
        ))
        .await;
    assert_eq!(query.body.as_array().unwrap().len(), 2, "{}", query.body);
    let limited = server
        .get(&format!(
            "/integrations/grafana/api/annotations?{range}&limit=1"
        ))
        .await;
    assert_eq!(limited.body.as_array().unwrap().len(), 1);
    let alerts = server
        .get(&format!(
            "/integrations/grafana/api/annotations?{range}&type=alert"
        ))
        .await;
    assert_eq!(alerts.body, json!([]));
    let typo = server
        .get("/integrations/grafana/api/annotations?form=1")
        .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(typo.body["message"].as_str().unwrap().contains("form"));
    let bad_query = server
        .get("/integrations/grafana/api/annotations?q=sytem:x")
        .await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn grafana_simplejson_datasource() {
    let server = TestServer::start().await;
    for body in [
        r#"{"title": "Deploy player 5.2", "system": "player", "author": "alice", "kind": "deploy", "environment": "production", "version": "5.2.0", "occurred_at": "2025-11-26T10:07:00Z"}"#,
        r#"{"title": "A/B test new start screen", "system": "player", "author": "bob", "kind": "ab_test", "occurred_at": "2025-11-26T10:20:00Z", "ended_at": "2025-11-26T11:20:00Z"}"#,
        r#"{"title": "Old deploy", "system": "player", "author": "alice", "kind": "deploy", "occurred_at": "2025-11-20T10:00:00Z"}"#,
    ] {
        let answer = server
            .post("/api/v1/events", &[], "application/json", body)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    // "Test connection", with and without the trailing slash.
    for path in [
        "/integrations/grafana/simplejson/",
        "/integrations/grafana/simplejson",
    ] {
        let test = server.get(path).await;
        assert_eq!(test.status, StatusCode::OK, "{path}");
    }
    let request = json!({
        "range": {"from": "2025-11-26T10:00:00.000Z", "to": "2025-11-26T12:00:00.000Z"},
        "rangeRaw": {"from": "now-2h", "to": "now"},
        "annotation": {"name": "Changes", "datasource": "tfr", "iconColor": "rgba(255, 96, 96, 1)", "enable": true, "query": "system:player"}
    });
    let answer = server
        .post(
            "/integrations/grafana/simplejson/annotations",
            &[("origin", "https://grafana.acme.example")],
            "application/json",
            request.to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
    let items = answer.body.as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", answer.body);
    let ab_test = &items[0];
    assert_eq!(ab_test["title"], "A/B test new start screen");
    assert_eq!(ab_test["time"], 1_764_152_400_000_i64);
    assert_eq!(ab_test["timeEnd"], 1_764_156_000_000_i64);
    assert_eq!(ab_test["isRegion"], true);
    assert_eq!(ab_test["annotation"]["name"], "Changes");
    let deploy = &items[1];
    assert_eq!(deploy["isRegion"], false);
    assert_eq!(
        deploy["text"],
        "deploy on player by alice in production (5.2.0)"
    );
    assert_eq!(
        deploy["tags"],
        json!(["system:player", "kind:deploy", "env:production"])
    );

    let narrowed = server
        .post(
            "/integrations/grafana/simplejson/annotations",
            &[],
            "application/json",
            request.to_string().replace("system:player", "kind:deploy"),
        )
        .await;
    assert_eq!(narrowed.body.as_array().unwrap().len(), 1);
    let bad = server
        .post(
            "/integrations/grafana/simplejson/annotations",
            &[],
            "application/json",
            request.to_string().replace("system:player", "kind:"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["message"].as_str().unwrap().contains("position"));

    // Browser access: the CORS preflight.
    let preflight = server
        .send(
            server
                .client
                .request(
                    reqwest::Method::OPTIONS,
                    format!(
                        "{}/integrations/grafana/simplejson/annotations",
                        server.base
                    ),
                )
                .header("origin", "https://grafana.acme.example")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    assert!(
        preflight.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        preflight.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );
    let search = server
        .post(
            "/integrations/grafana/simplejson/search",
            &[],
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(search.body, json!([]));
}

// ---- Honeycomb ------------------------------------------------------------------------------

#[tokio::test]
async fn honeycomb_markers() {
    let server = TestServer::start().await;
    let answer = server
        .post(
            "/integrations/honeycomb/1/markers/backend",
            &[("x-honeycomb-team", "hcaik_01j")],
            "application/json",
            fixture!("honeycomb_marker.json"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["message"], "backend deploy #123");
    assert_eq!(answer.body["type"], "deploy");
    assert_eq!(answer.body["start_time"], 1_764_151_200);
    assert_eq!(answer.body["end_time"], 1_764_151_500);
    let event = server.event(&answer.body["id"]).await;
    assert_eq!(event["title"], "backend deploy #123");
    assert_eq!(event["system"], "backend");
    assert_eq!(event["kind"], "deploy");
    assert_eq!(event["author"], "honeycomb");
    assert_eq!(event["source"], "honeycomb");
    assert_eq!(event["occurred_at"], "2025-11-26T10:00:00Z");
    assert_eq!(event["ended_at"], "2025-11-26T10:05:00Z");
    assert_eq!(link_urls(&event), ["https://ci.acme.example/builds/123"]);
    assert_eq!(tags(&event), ["marker_type:deploy"]);

    // Every field is optional, as on Honeycomb.
    let bare = server
        .post(
            "/integrations/honeycomb/1/markers/__all__",
            &[],
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(bare.status, StatusCode::CREATED, "{}", bare.body);
    let bad = server
        .post(
            "/integrations/honeycomb/1/markers/backend",
            &[],
            "application/json",
            r#"{"start_time": "noon"}"#,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["error"].as_str().unwrap().contains("start_time"));
    assert_eq!(server.count().await, 2);
}

// ---- CloudEvents ----------------------------------------------------------------------------

#[tokio::test]
async fn cloudevents_structured_cdevent() {
    let server = TestServer::start().await;
    let body = fixture!("cloudevents_service_deployed.json");
    let answer = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents+json; charset=utf-8",
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let event = server.event(&answer.body["id"]).await;
    assert_eq!(
        event["title"],
        "Service checkout deployed to production (sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427)"
    );
    assert_eq!(event["system"], "checkout");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["kind"], "deploy");
    assert_eq!(
        event["version"],
        "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
    );
    assert_eq!(event["author"], "cloudevents");
    assert_eq!(event["source"], "cloudevents");
    assert_eq!(event["occurred_at"], "2025-11-26T14:27:05.315384Z");
    assert_eq!(
        event["idempotency_key"],
        "ce:/argocd/clusters/prod-eu:271069a8-fc18-44f1-b38f-9d70a1695819"
    );
    assert_eq!(tags(&event), ["cdevent:service.deployed"]);
    assert_eq!(
        event["attributes"]["cloudevent"]["type"],
        "dev.cdevents.service.deployed.0.1.1"
    );
    assert_eq!(event["attributes"]["data"]["subject"]["id"], "checkout");

    // Redelivered: same source and id → the original.
    let again = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents+json",
            body,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["id"], answer.body["id"]);
    // Same source and id, other content → 409.
    let changed = body.replace("\"id\": \"production\"", "\"id\": \"staging\"");
    let conflict = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents+json",
            changed,
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.body["error"]["code"], "idempotency_conflict");
    assert_eq!(server.count().await, 1);
}

#[tokio::test]
async fn cloudevents_binary_mode() {
    let server = TestServer::start().await;
    let data = r#"{"title": "Rotated the payments API key", "system": "payments-api", "author": "vault-operator", "environment": "production", "kind": "config", "description": "Scheduled rotation."}"#;
    let answer = server
        .post(
            "/integrations/cloudevents",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "A234-1234-1234"),
                ("ce-source", "/vault/secrets/payments"),
                ("ce-type", "com.acme.secret.rotated"),
                ("ce-time", "2025-11-26T16:00:00Z"),
                ("ce-subject", "payments%2Fapi-key"),
                (
                    "ce-traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
            "application/json",
            data,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let event = server.event(&answer.body["id"]).await;
    assert_eq!(event["title"], "Rotated the payments API key");
    assert_eq!(event["system"], "payments-api");
    assert_eq!(event["author"], "vault-operator");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["kind"], "config");
    assert_eq!(event["description"], "Scheduled rotation.");
    assert_eq!(event["occurred_at"], "2025-11-26T16:00:00Z");
    let context = &event["attributes"]["cloudevent"];
    assert_eq!(context["subject"], "payments/api-key");
    assert_eq!(context["datacontenttype"], "application/json");
    assert_eq!(
        context["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );

    // A type with no tfr fields in its data: kind from the type, system from the source.
    let plain = server
        .post(
            "/integrations/cloudevents",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "42"),
                ("ce-source", "kubernetes/prod-eu"),
                ("ce-type", "io.k8s.deployment.rollout"),
            ],
            "text/plain",
            "rolled out 3 replicas",
        )
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert_eq!(plain.body["kind"], "io_k8s_deployment_rollout");
    assert_eq!(plain.body["system"], "kubernetes/prod-eu");
    assert_eq!(plain.body["title"], "io.k8s.deployment.rollout");
    assert_eq!(plain.body["description"], "rolled out 3 replicas");

    let incomplete = server
        .post(
            "/integrations/cloudevents",
            &[("ce-specversion", "1.0"), ("ce-id", "1")],
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(incomplete.status, StatusCode::BAD_REQUEST);
    assert!(
        incomplete.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("source, type")
    );
    let unknown_mode = server
        .post("/integrations/cloudevents", &[], "text/csv", "a,b")
        .await;
    assert_eq!(unknown_mode.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(server.count().await, 2);
}

#[tokio::test]
async fn cloudevents_batch_mode() {
    let server = TestServer::start().await;
    let body = fixture!("cloudevents_batch.json");
    let answer = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents-batch+json",
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let events = answer.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);

    let pipeline = server.event(&events[0]["id"]).await;
    assert_eq!(pipeline["title"], "Pipeline release finished: failure");
    assert_eq!(pipeline["system"], "release");
    assert_eq!(pipeline["kind"], "ci");
    assert_eq!(
        pipeline["description"],
        "Step push-image failed\nregistry unavailable"
    );
    assert_eq!(
        link_urls(&pipeline),
        ["https://tekton.acme.example/runs/812"]
    );
    assert_eq!(
        tags(&pipeline),
        ["cdevent:pipelinerun.finished", "outcome:failure"]
    );

    let flag = server.event(&events[1]["id"]).await;
    assert_eq!(
        flag["title"],
        "Feature flag new-checkout enabled for 10% of users"
    );
    assert_eq!(flag["system"], "checkout");
    assert_eq!(flag["author"], "erin");
    assert_eq!(flag["kind"], "feature_flag");
    assert_eq!(flag["environment"], "production");
    assert_eq!(tags(&flag), ["flag:new-checkout", "rollout:10"]);
    assert_eq!(
        link_urls(&flag),
        ["https://flags.acme.example/flags/new-checkout"]
    );

    // The whole batch redelivered: nothing new.
    let again = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents-batch+json",
            body,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(server.count().await, 2);

    // All or nothing: one bad item refuses the batch, naming its index.
    let mut items: Value = serde_json::from_str(body).unwrap();
    items[0]["id"] = json!("new-1");
    items[1]["specversion"] = json!("0.3");
    let refused = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents-batch+json",
            items.to_string(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["error"]["items"][0]["index"], 1);
    assert_eq!(server.count().await, 2);
    let empty = server
        .post(
            "/integrations/cloudevents",
            &[],
            "application/cloudevents-batch+json",
            "[]",
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body, json!({"events": []}));
}

#[tokio::test]
async fn cloudevents_webhook_handshake() {
    let server = TestServer::start().await;
    let answer = server
        .send(
            server
                .client
                .request(
                    reqwest::Method::OPTIONS,
                    format!("{}/integrations/cloudevents", server.base),
                )
                .header("webhook-request-origin", "eventemitter.example.com"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers["webhook-allowed-origin"],
        "eventemitter.example.com"
    );
}

// ---- All ------------------------------------------------------------------------------------

#[tokio::test]
async fn integrations_are_in_the_openapi_document_and_metrics() {
    let server = TestServer::start().await;
    let document = server.get("/openapi.json").await;
    for path in [
        "/integrations/github",
        "/integrations/gitlab",
        "/integrations/pagerduty/v2/change/enqueue",
        "/integrations/datadog/api/v1/events",
        "/integrations/grafana/api/annotations",
        "/integrations/grafana/api/annotations/graphite",
        "/integrations/grafana/simplejson/annotations",
        "/integrations/honeycomb/1/markers/{dataset}",
        "/integrations/cloudevents",
    ] {
        assert!(document.body["paths"].get(path).is_some(), "{path}");
    }
    server
        .post(
            "/integrations/pagerduty/v2/change/enqueue",
            &[],
            "application/json",
            fixture!("pagerduty_change.json"),
        )
        .await;
    let metrics = server.get("/metrics").await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("route=\"/integrations/pagerduty/v2/change/enqueue\""),
        "{text}"
    );
}
