//! GitLab webhooks: `POST /integrations/gitlab`.
//!
//! `X-Gitlab-Token` must equal the configured token (compared in constant time); without one,
//! every delivery is refused. GitLab's `Idempotency-Key` header (GitLab 17.4 and later: the
//! same on every retry of an event) is the idempotency key; older GitLab sends none, and the
//! key is then made of what identifies the event (project, ref and commits of a push, the
//! merge request's number...), so a retry is still recognised.
//!
//! Recorded: push, tag push, merge request merged, release created, deployment finished
//! (success, failed, canceled). Anything else: `202 {"ignored": "<reason>"}`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    Draft, header, idempotency_key, integer, one_line, parse_time, read_body, record,
    secret_matches, text, tfr_error,
};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};

const SOURCE: &str = "gitlab";
const SUBMITTER: &str = "gitlab-webhook";

/// The object id of "no commit": a ref created from nothing or deleted.
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

/// Commits listed in a push's description (GitLab sends at most 20).
const LISTED_COMMITS: usize = 20;

/// Receive a GitLab webhook delivery.
///
/// Configure the project's (or group's) webhook with this URL and the secret token set as
/// `TFR_GITLAB_TOKEN` / `gitlab_token`. Triggers: push, tag push, merge request, release,
/// deployment events.
#[utoipa::path(
    post,
    path = "/integrations/gitlab",
    tag = "integrations",
    request_body(content = Object, description = "A GitLab webhook payload, as GitLab sends it", content_type = "application/json"),
    params(
        ("X-Gitlab-Token" = String, Header, description = "The webhook's secret token"),
        ("X-Gitlab-Event" = Option<String>, Header, description = "The event name (Push Hook, ...); `object_kind` in the body says the same"),
        ("Idempotency-Key" = Option<String>, Header, description = "GitLab's id of the event, the same on every retry"),
    ),
    responses(
        (status = 201, description = "Recorded: the event"),
        (status = 200, description = "A retry: the event as first recorded"),
        (status = 202, description = "Not recorded: `{\"ignored\": \"<reason>\"}`"),
        (status = 400, description = "Not a GitLab payload, or the mapped event is invalid", body = ErrorBody),
        (status = 401, description = "No token configured, or the token is missing or wrong; nothing stored", body = ErrorBody),
    )
)]
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(expected) = &state.config.gitlab_token else {
        return tfr_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "GitLab deliveries are refused: no webhook token is configured on this server (set TFR_GITLAB_TOKEN or gitlab_token in tfr.toml, and the same secret token on the GitLab webhook)",
        );
    };
    let Some(token) = headers.get("x-gitlab-token") else {
        return tfr_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the X-Gitlab-Token header is missing: set the webhook's secret token on GitLab to the one configured here",
        );
    };
    if !secret_matches(token.as_bytes(), expected) {
        return tfr_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the X-Gitlab-Token does not match the token configured here",
        );
    }
    let body = match read_body(body, state.config.body_limit).await {
        Ok(body) => body,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(e) => {
            return ApiError::InvalidBody(format!("the body is not valid JSON: {e}"))
                .into_response();
        }
    };
    let kind = text(&payload, "/object_kind")
        .or_else(|| text(&payload, "/event_name"))
        .unwrap_or("");
    let mapped = match kind {
        "push" => push(&payload),
        "tag_push" => tag_push(&payload),
        "merge_request" => merge_request(&payload),
        "release" => release(&payload),
        "deployment" => deployment(&payload),
        _ => Err(format!(
            "GitLab event '{}' ({}) is not recorded; tfr records push, tag_push, merge_request (merged), release (created) and deployment (finished)",
            one_line(kind, 64),
            header(&headers, "x-gitlab-event").map_or_else(String::new, |e| one_line(e, 64))
        )),
    };
    let (mut draft, natural_key) = match mapped {
        Ok(mapped) => mapped,
        Err(reason) => {
            return (StatusCode::ACCEPTED, Json(json!({"ignored": reason}))).into_response();
        }
    };
    draft.idempotency_key = Some(match header(&headers, "idempotency-key") {
        Some(id) => idempotency_key(SOURCE, &[id]),
        None => natural_key,
    });
    draft.attributes.insert("gitlab_event".into(), json!(kind));
    match record(&state, draft, SOURCE, SUBMITTER).await {
        Ok(recorded) => (recorded.status(), Json(recorded.event())).into_response(),
        Err(refused) => ApiError::from(refused).into_response(),
    }
}

/// A mapped delivery and the key that identifies it without a delivery id, or why it is
/// ignored.
type Mapped = Result<(Draft, String), String>;

/// The project as the system (the last part of its path; the full path is a tag).
fn base(payload: &Value) -> Draft {
    let path = text(payload, "/project/path_with_namespace").unwrap_or("");
    let system = path
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .or_else(|| text(payload, "/project/name"))
        .unwrap_or("");
    let mut draft = Draft {
        system: system.to_owned(),
        author: text(payload, "/user/username")
            .or_else(|| text(payload, "/user_username"))
            .or_else(|| text(payload, "/user/name"))
            .or_else(|| text(payload, "/user_name"))
            .unwrap_or("")
            .to_owned(),
        ..Draft::default()
    };
    if !path.is_empty() {
        draft.tag(format!("repo:{path}"));
    }
    draft
}

fn project_id(payload: &Value) -> String {
    integer(payload, "/project/id")
        .or_else(|| integer(payload, "/project_id"))
        .map_or_else(|| "?".to_owned(), |id| id.to_string())
}

fn push(payload: &Value) -> Mapped {
    let reference = text(payload, "/ref").unwrap_or("");
    let branch = reference.strip_prefix("refs/heads/").unwrap_or(reference);
    let before = text(payload, "/before").unwrap_or("");
    let after = text(payload, "/after").unwrap_or("");
    if after == NO_COMMIT {
        return Err(format!(
            "branch '{}' was deleted: a deletion is not a change to record",
            one_line(branch, 200)
        ));
    }
    let mut draft = base(payload);
    let commits = payload
        .get("commits")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let total = integer(payload, "/total_commits_count")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(commits.len());
    let head = text(payload, "/checkout_sha").unwrap_or(after);
    let headline = commits
        .iter()
        .find(|c| text(c, "/id") == Some(head))
        .or_else(|| commits.last())
        .and_then(|c| text(c, "/title").or_else(|| text(c, "/message")))
        .map(|m| one_line(m, 300));
    draft.kind = Some("push".into());
    draft.title = match (headline, total) {
        (Some(message), 0 | 1) => format!("Push to {branch}: {message}"),
        (Some(message), n) => format!("Push to {branch}: {message} (+{} more commits)", n - 1),
        (None, _) => format!("Push to {branch}"),
    };
    draft.version = Some(head.to_owned()).filter(|h| !h.is_empty());
    draft.description = commit_list(commits, total);
    if let Some(web) = text(payload, "/project/web_url") {
        if before.is_empty() || before == NO_COMMIT {
            draft.link(format!("{web}/-/commit/{head}"), "Head commit");
        } else {
            draft.link(format!("{web}/-/compare/{before}...{after}"), "Compare");
        }
    }
    draft.tag(format!("branch:{branch}"));
    let key = idempotency_key(
        SOURCE,
        &["push", &project_id(payload), reference, before, after],
    );
    Ok((draft, key))
}

fn commit_list(commits: &[Value], total: usize) -> Option<String> {
    if commits.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = commits
        .iter()
        .take(LISTED_COMMITS)
        .map(|commit| {
            let sha = text(commit, "/id").unwrap_or("");
            let short = sha.get(..8).unwrap_or(sha);
            let message = one_line(
                text(commit, "/title")
                    .or_else(|| text(commit, "/message"))
                    .unwrap_or(""),
                200,
            );
            let author = text(commit, "/author/name").unwrap_or("?");
            format!("- `{short}` {message} — {author}")
        })
        .collect();
    let listed = lines.len();
    if total > listed {
        lines.push(format!("- … {} commits in all", total));
    }
    Some(lines.join("\n"))
}

fn tag_push(payload: &Value) -> Mapped {
    let reference = text(payload, "/ref").unwrap_or("");
    let tag = reference.strip_prefix("refs/tags/").unwrap_or(reference);
    let after = text(payload, "/after").unwrap_or("");
    if after == NO_COMMIT {
        return Err(format!(
            "tag '{}' was deleted: a deletion is not a change to record",
            one_line(tag, 200)
        ));
    }
    let mut draft = base(payload);
    draft.kind = Some("tag".into());
    draft.title = format!("Tag {tag} pushed to {}", draft.system);
    draft.version = Some(tag.to_owned()).filter(|t| !t.is_empty());
    draft.description = text(payload, "/message").map(str::to_owned);
    if let Some(web) = text(payload, "/project/web_url") {
        draft.link(format!("{web}/-/tags/{tag}"), "Tag");
    }
    draft.tag(format!("tag:{tag}"));
    if let Some(sha) = text(payload, "/checkout_sha") {
        draft.tag(format!("commit:{sha}"));
    }
    let key = idempotency_key(
        SOURCE,
        &["tag_push", &project_id(payload), reference, after],
    );
    Ok((draft, key))
}

fn merge_request(payload: &Value) -> Mapped {
    let action = text(payload, "/object_attributes/action").unwrap_or("");
    if action != "merge" {
        return Err(format!(
            "merge_request action '{}' is not recorded; only merges are",
            one_line(action, 64)
        ));
    }
    let mut draft = base(payload);
    let iid = integer(payload, "/object_attributes/iid").unwrap_or(0);
    let title = text(payload, "/object_attributes/title").unwrap_or("");
    let target = text(payload, "/object_attributes/target_branch").unwrap_or("?");
    draft.kind = Some("merge".into());
    draft.title = format!("Merge !{iid} into {target}: {title}");
    draft.version = text(payload, "/object_attributes/merge_commit_sha")
        .or_else(|| text(payload, "/object_attributes/last_commit/id"))
        .map(str::to_owned);
    draft.description = text(payload, "/object_attributes/description").map(str::to_owned);
    if let Some(url) = text(payload, "/object_attributes/url") {
        draft.link(url, &format!("Merge request !{iid}"));
    }
    draft.tag(format!("branch:{target}"));
    draft.tag(format!("mr:{iid}"));
    if let Some(source) = text(payload, "/object_attributes/source_branch") {
        draft.tag(format!("from:{source}"));
    }
    for label in payload
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = text(label, "/title") {
            draft.tag(format!("label:{name}"));
        }
    }
    let key = idempotency_key(SOURCE, &["merge", &project_id(payload), &iid.to_string()]);
    Ok((draft, key))
}

fn release(payload: &Value) -> Mapped {
    let action = text(payload, "/action").unwrap_or("");
    if action != "create" {
        return Err(format!(
            "release action '{}' is not recorded; only created releases are",
            one_line(action, 64)
        ));
    }
    let mut draft = base(payload);
    if draft.author.is_empty() {
        text(payload, "/commit/author/name")
            .unwrap_or("")
            .clone_into(&mut draft.author);
    }
    let tag = text(payload, "/tag").unwrap_or("");
    let name = text(payload, "/name").unwrap_or(tag);
    draft.kind = Some("release".into());
    draft.title = format!("Release {name} of {}", draft.system);
    draft.version = Some(tag.to_owned()).filter(|t| !t.is_empty());
    draft.description = text(payload, "/description").map(str::to_owned);
    draft.occurred_at = text(payload, "/released_at").and_then(parse_time);
    if let Some(url) = text(payload, "/url") {
        draft.link(url, "Release");
    }
    for link in payload
        .pointer("/assets/links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(url) = text(link, "/url") {
            draft.link(url, text(link, "/name").unwrap_or("Asset"));
        }
    }
    let key = idempotency_key(SOURCE, &["release", &project_id(payload), tag]);
    Ok((draft, key))
}

/// Finished deployments (`success`, `failed`, `canceled`); `running` and the like are not
/// recorded.
fn deployment(payload: &Value) -> Mapped {
    let status = text(payload, "/status").unwrap_or("");
    if !matches!(status, "success" | "failed" | "canceled") {
        return Err(format!(
            "deployment status '{}' is not recorded; only finished deployments are (success, failed, canceled)",
            one_line(status, 64)
        ));
    }
    let mut draft = base(payload);
    let environment = text(payload, "/environment").unwrap_or("?");
    let sha = text(payload, "/commit_url")
        .and_then(|url| url.rsplit('/').next())
        .filter(|sha| sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit()));
    let short = text(payload, "/short_sha").or(sha).unwrap_or("?");
    draft.kind = Some("deploy".into());
    draft.environment = Some(environment.to_owned());
    draft.title = if status == "success" {
        format!("Deploy {} {short} to {environment}", draft.system)
    } else {
        format!("Deploy {} {short} to {environment}: {status}", draft.system)
    };
    draft.version = sha.or(Some(short)).map(str::to_owned);
    draft.description = text(payload, "/commit_title").map(str::to_owned);
    draft.occurred_at = text(payload, "/status_changed_at").and_then(parse_time);
    for (pointer, title) in [
        ("/deployable_url", "Job"),
        ("/commit_url", "Commit"),
        ("/environment_external_url", "Environment"),
    ] {
        if let Some(url) = text(payload, pointer) {
            draft.link(url, title);
        }
    }
    draft.tag(format!("status:{status}"));
    if let Some(tier) = text(payload, "/environment_tier") {
        draft.tag(format!("tier:{tier}"));
    }
    let id = integer(payload, "/deployment_id").map_or_else(|| "?".to_owned(), |i| i.to_string());
    draft.tag(format!("deployment:{id}"));
    let key = idempotency_key(SOURCE, &["deployment", &project_id(payload), &id, status]);
    Ok((draft, key))
}
