//! GitHub webhooks: `POST /integrations/github`.
//!
//! Every delivery is authenticated first: `X-Hub-Signature-256` must be the HMAC-SHA256 of the
//! raw body under the configured secret (checked in constant time); without a configured
//! secret every delivery is refused. `X-GitHub-Delivery` is the idempotency key, so a
//! redelivery (GitHub's "Redeliver" button, a retry) stores nothing twice.
//!
//! Recorded: `push` (one event per push), `pull_request` closed and merged, `release`
//! published, `deployment` created, `deployment_status` final states, and `workflow_run`
//! completed for the workflows the configuration lists. `ping` answers `200`; anything else
//! `202 {"ignored": "<reason>"}`, so the delivery log on GitHub says why nothing was stored.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::{
    Draft, from_seconds, header, idempotency_key, integer, media_type, one_line, parse_time,
    read_body, record, text, tfr_error,
};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// `source` of the events, and the `submitted_by` of deliveries signed with the secret.
const SOURCE: &str = "github";
const SUBMITTER: &str = "github-webhook";

/// Commits listed in a push's description.
const LISTED_COMMITS: usize = 20;

/// Receive a GitHub webhook delivery.
///
/// Configure the webhook with this URL, content type `application/json` (or the form
/// encoding), and the secret set as `TFR_GITHUB_SECRET` / `github_secret`. Events: pushes,
/// pull requests, releases, deployments, deployment statuses, workflow runs.
#[utoipa::path(
    post,
    path = "/integrations/github",
    tag = "integrations",
    request_body(content = Object, description = "A GitHub webhook payload, as GitHub sends it", content_type = "application/json"),
    params(
        ("X-GitHub-Event" = String, Header, description = "The event name (push, pull_request, ...)"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's GUID: the idempotency key"),
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body under the secret"),
    ),
    responses(
        (status = 201, description = "Recorded: the event"),
        (status = 200, description = "A redelivery (the event as first recorded), or the answer to `ping`"),
        (status = 202, description = "Not recorded: `{\"ignored\": \"<reason>\"}`"),
        (status = 400, description = "Not a GitHub delivery, or the mapped event is invalid", body = ErrorBody),
        (status = 401, description = "No secret configured, or the signature is missing or wrong; nothing stored", body = ErrorBody),
        (status = 409, description = "The delivery id was already used for other content", body = ErrorBody),
    )
)]
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = &state.config.github_secret else {
        return tfr_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "GitHub deliveries are refused: no webhook secret is configured on this server (set TFR_GITHUB_SECRET or github_secret in tfr.toml, and the same secret on the GitHub webhook)",
        );
    };
    let Some(signature) = header(&headers, "x-hub-signature-256") else {
        return tfr_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the X-Hub-Signature-256 header is missing: set the webhook's secret on GitHub to the one configured here",
        );
    };
    let body = match read_body(body, state.config.body_limit).await {
        Ok(body) => body,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if !signature_is_valid(secret.expose().as_bytes(), &body, signature) {
        return tfr_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the X-Hub-Signature-256 signature does not match the body: the webhook's secret differs from the one configured here",
        );
    }
    let Some(event_name) = header(&headers, "x-github-event") else {
        return ApiError::InvalidBody("the X-GitHub-Event header is missing".into())
            .into_response();
    };
    let payload = match parse_payload(&headers, &body) {
        Ok(payload) => payload,
        Err(message) => return ApiError::InvalidBody(message).into_response(),
    };
    let delivery = header(&headers, "x-github-delivery");
    let draft = match map(event_name, &payload, &state.config) {
        Mapped::Record(draft) => *draft,
        Mapped::Ping => {
            let zen = text(&payload, "/zen").unwrap_or("");
            return (
                StatusCode::OK,
                Json(json!({"message": "pong: tfr receives this webhook", "zen": zen})),
            )
                .into_response();
        }
        Mapped::Ignored(reason) => {
            return (StatusCode::ACCEPTED, Json(json!({"ignored": reason}))).into_response();
        }
    };
    let mut draft = draft;
    draft.idempotency_key = delivery.map(|id| idempotency_key(SOURCE, &[id]));
    draft
        .attributes
        .insert("github_event".into(), json!(event_name));
    if let Some(delivery) = delivery {
        draft
            .attributes
            .insert("github_delivery".into(), json!(delivery));
    }
    match record(&state, draft, SOURCE, SUBMITTER).await {
        Ok(recorded) => (recorded.status(), Json(recorded.event())).into_response(),
        Err(refused) => ApiError::from(refused).into_response(),
    }
}

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`. The
/// comparison runs in constant time (`Mac::verify_slice`).
pub(crate) fn signature_is_valid(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The JSON payload: the body itself, or its `payload` form field when the webhook's content
/// type is `application/x-www-form-urlencoded`. (A JSON body sent with the form type — what
/// `curl -d` does — is read as JSON.)
fn parse_payload(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    if media_type(headers).as_deref() == Some("application/x-www-form-urlencoded")
        && let Some((_, payload)) = form_urlencoded::parse(body).find(|(name, _)| name == "payload")
    {
        return serde_json::from_str(&payload)
            .map_err(|e| format!("the payload field is not valid JSON: {e}"));
    }
    serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))
}

/// What a delivery becomes.
enum Mapped {
    Record(Box<Draft>),
    Ping,
    Ignored(String),
}

fn map(event_name: &str, payload: &Value, config: &crate::ServerConfig) -> Mapped {
    let action = text(payload, "/action").unwrap_or("");
    match event_name {
        "ping" => Mapped::Ping,
        "push" => push(payload, config.github_default_branch_only),
        "pull_request" if action == "closed" => {
            if payload.pointer("/pull_request/merged") == Some(&Value::Bool(true)) {
                Mapped::Record(Box::new(pull_request_merged(payload)))
            } else {
                Mapped::Ignored("pull request closed without merging: nothing changed".into())
            }
        }
        "pull_request" => Mapped::Ignored(format!(
            "pull_request action '{action}' is not recorded; only merged pull requests are"
        )),
        "release" if action == "published" => Mapped::Record(Box::new(release(payload))),
        "release" => Mapped::Ignored(format!(
            "release action '{action}' is not recorded; only published releases are"
        )),
        "deployment" if action == "created" || action.is_empty() => {
            Mapped::Record(Box::new(deployment(payload)))
        }
        "deployment" => Mapped::Ignored(format!(
            "deployment action '{action}' is not recorded; only created deployments are"
        )),
        "deployment_status" => deployment_status(payload),
        "workflow_run" if action == "completed" => workflow_run(payload, &config.github_workflows),
        "workflow_run" => Mapped::Ignored(format!(
            "workflow_run action '{action}' is not recorded; only completed runs are"
        )),
        other => Mapped::Ignored(format!(
            "GitHub event '{}' is not recorded; tfr records push, pull_request (merged), release (published), deployment, deployment_status and workflow_run (completed)",
            one_line(other, 64)
        )),
    }
}

/// The draft's common part: the repository as the system (its short name; the full name is a
/// tag), the sender as the author.
fn base(payload: &Value) -> Draft {
    let mut draft = Draft {
        system: text(payload, "/repository/name").unwrap_or("").to_owned(),
        author: text(payload, "/sender/login").unwrap_or("").to_owned(),
        ..Draft::default()
    };
    if let Some(full_name) = text(payload, "/repository/full_name") {
        draft.tag(format!("repo:{full_name}"));
    }
    draft
}

fn push(payload: &Value, default_branch_only: bool) -> Mapped {
    let reference = text(payload, "/ref").unwrap_or("");
    if payload.get("deleted") == Some(&Value::Bool(true)) {
        return Mapped::Ignored(format!(
            "'{}' was deleted: a deletion is not a change to record",
            one_line(reference, 200)
        ));
    }
    let (is_tag, name) = match (
        reference.strip_prefix("refs/heads/"),
        reference.strip_prefix("refs/tags/"),
    ) {
        (Some(branch), _) => (false, branch),
        (None, Some(tag)) => (true, tag),
        _ => (false, reference),
    };
    let default_branch = text(payload, "/repository/default_branch");
    if default_branch_only && (is_tag || default_branch.is_some_and(|d| d != name)) {
        return Mapped::Ignored(format!(
            "push to '{}', not the default branch '{}' (github_default_branch_only is set)",
            one_line(name, 200),
            default_branch.unwrap_or("?")
        ));
    }
    let mut draft = base(payload);
    if draft.author.is_empty() {
        text(payload, "/pusher/name")
            .unwrap_or("")
            .clone_into(&mut draft.author);
    }
    let commits = payload
        .get("commits")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let head_message = text(payload, "/head_commit/message")
        .or_else(|| commits.last().and_then(|c| text(c, "/message")))
        .map(|m| one_line(m, 300));
    let repo = draft.system.clone();
    if is_tag {
        draft.kind = Some("tag".into());
        draft.title = format!("Tag {name} pushed to {repo}");
        draft.version = Some(name.to_owned());
        draft.tag(format!("tag:{name}"));
    } else {
        draft.kind = Some("push".into());
        draft.title = match (head_message, commits.len()) {
            (Some(message), 0 | 1) => format!("Push to {name}: {message}"),
            (Some(message), n) => format!("Push to {name}: {message} (+{} more commits)", n - 1),
            (None, _) => format!("Push to {name}"),
        };
        draft.version = text(payload, "/after").map(str::to_owned);
        draft.tag(format!("branch:{name}"));
    }
    if payload.get("forced") == Some(&Value::Bool(true)) {
        draft.tag("forced");
    }
    draft.description = commit_list(commits);
    if let Some(compare) = text(payload, "/compare") {
        draft.link(compare, "Compare");
    }
    if let Some(url) = text(payload, "/head_commit/url") {
        draft.link(url, "Head commit");
    }
    // `repository.pushed_at` is the push's Unix time; the commits' own times are older.
    draft.occurred_at = integer(payload, "/repository/pushed_at").and_then(from_seconds);
    let mut details = Map::new();
    details.insert("ref".into(), json!(reference));
    details.insert("before".into(), payload.get("before").cloned().into());
    details.insert("after".into(), payload.get("after").cloned().into());
    details.insert("commits".into(), json!(commits.len()));
    draft
        .attributes
        .insert("push".into(), Value::Object(details));
    Mapped::Record(Box::new(draft))
}

/// A Markdown list of a push's commits: short sha, first line, author.
fn commit_list(commits: &[Value]) -> Option<String> {
    if commits.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = commits
        .iter()
        .take(LISTED_COMMITS)
        .map(|commit| {
            let sha = text(commit, "/id").unwrap_or("");
            let short = sha.get(..7).unwrap_or(sha);
            let message = one_line(text(commit, "/message").unwrap_or(""), 200);
            let author = text(commit, "/author/username")
                .or_else(|| text(commit, "/author/name"))
                .unwrap_or("?");
            format!("- `{short}` {message} — {author}")
        })
        .collect();
    if commits.len() > LISTED_COMMITS {
        lines.push(format!("- … and {} more", commits.len() - LISTED_COMMITS));
    }
    Some(lines.join("\n"))
}

fn pull_request_merged(payload: &Value) -> Draft {
    let mut draft = base(payload);
    let number = integer(payload, "/pull_request/number")
        .or_else(|| integer(payload, "/number"))
        .unwrap_or(0);
    let title = text(payload, "/pull_request/title").unwrap_or("");
    let target = text(payload, "/pull_request/base/ref").unwrap_or("?");
    if let Some(merger) = text(payload, "/pull_request/merged_by/login") {
        merger.clone_into(&mut draft.author);
    }
    draft.kind = Some("merge".into());
    draft.title = format!("Merge #{number} into {target}: {title}");
    draft.version = text(payload, "/pull_request/merge_commit_sha").map(str::to_owned);
    draft.description = text(payload, "/pull_request/body").map(str::to_owned);
    draft.occurred_at = text(payload, "/pull_request/merged_at").and_then(parse_time);
    if let Some(url) = text(payload, "/pull_request/html_url") {
        draft.link(url, &format!("Pull request #{number}"));
    }
    draft.tag(format!("branch:{target}"));
    draft.tag(format!("pr:{number}"));
    if let Some(source) = text(payload, "/pull_request/head/ref") {
        draft.tag(format!("from:{source}"));
    }
    if let Some(author) = text(payload, "/pull_request/user/login") {
        draft.tag(format!("pr_author:{author}"));
    }
    for label in payload
        .pointer("/pull_request/labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = text(label, "/name") {
            draft.tag(format!("label:{name}"));
        }
    }
    draft
}

fn release(payload: &Value) -> Draft {
    let mut draft = base(payload);
    let tag = text(payload, "/release/tag_name").unwrap_or("");
    let name = text(payload, "/release/name").unwrap_or(tag);
    if let Some(author) = text(payload, "/release/author/login") {
        author.clone_into(&mut draft.author);
    }
    draft.kind = Some("release".into());
    draft.title = format!("Release {name} of {}", draft.system);
    draft.version = Some(tag.to_owned()).filter(|t| !t.is_empty());
    draft.description = text(payload, "/release/body").map(str::to_owned);
    draft.occurred_at = text(payload, "/release/published_at").and_then(parse_time);
    if let Some(url) = text(payload, "/release/html_url") {
        draft.link(url, "Release notes");
    }
    if payload.pointer("/release/prerelease") == Some(&Value::Bool(true)) {
        draft.tag("prerelease");
    }
    draft
}

/// What deployments and their statuses share.
fn deployment_base(payload: &Value) -> Draft {
    let mut draft = base(payload);
    if let Some(creator) = text(payload, "/deployment/creator/login") {
        creator.clone_into(&mut draft.author);
    }
    draft.kind = Some("deploy".into());
    draft.environment = text(payload, "/deployment/environment").map(str::to_owned);
    draft.version = text(payload, "/deployment/sha").map(str::to_owned);
    if let Some(reference) = text(payload, "/deployment/ref") {
        draft.tag(format!("ref:{reference}"));
    }
    if let Some(id) = integer(payload, "/deployment/id") {
        draft.tag(format!("deployment:{id}"));
    }
    if let (Some(repo), Some(sha)) = (
        text(payload, "/repository/html_url"),
        text(payload, "/deployment/sha"),
    ) {
        draft.link(format!("{repo}/commit/{sha}"), "Commit");
    }
    draft
}

fn deploy_title(payload: &Value, outcome: Option<&str>) -> String {
    let what = text(payload, "/deployment/ref")
        .or_else(|| text(payload, "/deployment/sha").map(|s| s.get(..7).unwrap_or(s)))
        .unwrap_or("?");
    let environment = text(payload, "/deployment/environment").unwrap_or("?");
    let repo = text(payload, "/repository/name").unwrap_or("?");
    match outcome {
        Some(outcome) => format!("Deploy {repo} {what} to {environment}: {outcome}"),
        None => format!("Deploy {repo} {what} to {environment}"),
    }
}

fn deployment(payload: &Value) -> Draft {
    let mut draft = deployment_base(payload);
    draft.title = deploy_title(payload, None);
    draft.description = text(payload, "/deployment/description").map(str::to_owned);
    draft.occurred_at = text(payload, "/deployment/created_at").and_then(parse_time);
    draft.tag("state:created");
    draft
}

/// Deployment statuses: the final states are recorded (`success`, `failure`, `error`); the
/// states on the way (`queued`, `pending`, `in_progress`) and `inactive` (a newer deployment
/// replaced this one) are not. The event spans the deployment, from its creation to the status.
fn deployment_status(payload: &Value) -> Mapped {
    let state = text(payload, "/deployment_status/state").unwrap_or("");
    if !matches!(state, "success" | "failure" | "error") {
        return Mapped::Ignored(format!(
            "deployment_status '{}' is not recorded; only final states are (success, failure, error)",
            one_line(state, 64)
        ));
    }
    let mut draft = deployment_base(payload);
    if let Some(environment) = text(payload, "/deployment_status/environment") {
        draft.environment = Some(environment.to_owned());
    }
    draft.title = deploy_title(payload, Some(state));
    draft.description = text(payload, "/deployment_status/description")
        .or_else(|| text(payload, "/deployment/description"))
        .map(str::to_owned);
    let started = text(payload, "/deployment/created_at").and_then(parse_time);
    let finished = text(payload, "/deployment_status/created_at").and_then(parse_time);
    match (started, finished) {
        (Some(started), Some(finished)) if finished >= started => {
            draft.occurred_at = Some(started);
            draft.ended_at = Some(finished);
        }
        _ => draft.occurred_at = finished.or(started),
    }
    draft.tag(format!("state:{state}"));
    for (pointer, title) in [
        ("/deployment_status/target_url", "Deployment"),
        ("/deployment_status/log_url", "Logs"),
        ("/deployment_status/environment_url", "Environment"),
    ] {
        if let Some(url) = text(payload, pointer)
            && !draft.links.iter().any(|link| link.url == url)
        {
            draft.link(url, title);
        }
    }
    Mapped::Record(Box::new(draft))
}

/// Completed workflow runs of the workflows listed in `github_workflows` (`*`: all). A
/// workflow whose name says "deploy" records a `deploy`, any other `ci`.
fn workflow_run(payload: &Value, workflows: &[String]) -> Mapped {
    let name = text(payload, "/workflow_run/name")
        .or_else(|| text(payload, "/workflow/name"))
        .unwrap_or("");
    let listed = workflows
        .iter()
        .any(|w| w == "*" || w.eq_ignore_ascii_case(name));
    if !listed {
        return Mapped::Ignored(format!(
            "workflow '{}' is not listed in github_workflows (TFR_GITHUB_WORKFLOWS), so its runs are not recorded",
            one_line(name, 100)
        ));
    }
    let mut draft = base(payload);
    if let Some(actor) = text(payload, "/workflow_run/triggering_actor/login")
        .or_else(|| text(payload, "/workflow_run/actor/login"))
    {
        actor.clone_into(&mut draft.author);
    }
    let conclusion = text(payload, "/workflow_run/conclusion").unwrap_or("unknown");
    let branch = text(payload, "/workflow_run/head_branch");
    draft.kind = Some(if name.to_ascii_lowercase().contains("deploy") {
        "deploy".into()
    } else {
        "ci".into()
    });
    draft.title = match branch {
        Some(branch) => format!("Workflow {name} on {branch}: {conclusion}"),
        None => format!("Workflow {name}: {conclusion}"),
    };
    draft.version = text(payload, "/workflow_run/head_sha").map(str::to_owned);
    draft.description = text(payload, "/workflow_run/display_title").map(str::to_owned);
    let started = text(payload, "/workflow_run/run_started_at").and_then(parse_time);
    let finished = text(payload, "/workflow_run/updated_at").and_then(parse_time);
    draft.occurred_at = started.or(finished);
    if let (Some(started), Some(finished)) = (started, finished)
        && finished > started
    {
        draft.ended_at = Some(finished);
    }
    if let Some(url) = text(payload, "/workflow_run/html_url") {
        draft.link(url, "Workflow run");
    }
    draft.tag(format!("workflow:{name}"));
    draft.tag(format!("conclusion:{conclusion}"));
    if let Some(branch) = branch {
        draft.tag(format!("branch:{branch}"));
    }
    Mapped::Record(Box::new(draft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        // The example of GitHub's documentation on validating deliveries.
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_is_valid(secret, body, good));
        assert!(!signature_is_valid(secret, b"Hello, World?", good));
        assert!(!signature_is_valid(b"another secret", body, good));
        assert!(!signature_is_valid(
            secret,
            body,
            &good.replace("sha256=", "sha1=")
        ));
        assert!(!signature_is_valid(secret, body, "sha256=zz"));
        assert!(!signature_is_valid(secret, body, "sha256="));
        assert!(!signature_is_valid(secret, body, &good[..good.len() - 2]));
    }
}
