//! `tfr send`: record one event from the command line, typically from a deploy script.
//!
//! The event is validated locally with the server's own rules before anything is sent, so
//! a mistake is reported at once with the same field-naming message. Every send carries an
//! idempotency key, generated once per invocation when none is given, so the retries of
//! [`Api`] can never record the fact twice. With `--best-effort`, nothing can make the
//! command fail: a deploy must not break because its bookkeeping did.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tfr_core::validate::{Limits, validate_new_event};

use super::ClientOptions;
use super::http::{Api, ApiError};

/// Flags of `tfr send`.
#[derive(Args, Clone, Debug, Default)]
pub struct SendArgs {
    /// What was changed, on one line (required).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,

    /// On what system (required).
    #[arg(long, value_name = "NAME")]
    pub system: Option<String>,

    /// Who made the change [default: $USER, else $USERNAME].
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,

    /// Kind of change, a lowercase slug: deploy, config, schema, ab_test, feature_flag,
    /// infra, os_update, release, merge, incident… [default: change].
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,

    /// Environment, e.g. production or staging.
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,

    /// Team that owns the change.
    #[arg(long, value_name = "TEAM")]
    pub team: Option<String>,

    /// Tool that sent the event.
    #[arg(long, value_name = "TOOL", default_value = "cli")]
    pub source: String,

    /// Version deployed: a release number or a commit sha.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,

    /// Tag, `key:value` style encouraged (repeatable).
    #[arg(long = "tag", value_name = "K:V")]
    pub tags: Vec<String>,

    /// Link to a build, pull request or ticket: an http(s) URL (repeatable).
    #[arg(long = "link", value_name = "URL")]
    pub links: Vec<String>,

    /// Unified diff to attach: a file, or `-` to read it from stdin.
    #[arg(long, value_name = "FILE|-")]
    pub diff: Option<PathBuf>,

    /// Longer explanation, in Markdown.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// When the change happened, RFC 3339 with an offset, e.g. 2026-11-23T10:00:00Z
    /// [default: when the server receives it].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// When a change that spans time (A/B test, maintenance) ended, RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub ended_at: Option<String>,

    /// Custom data, KEY=VALUE; VALUE is taken as JSON when it parses as JSON (42, true,
    /// {"a":1}), else as a string (repeatable).
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,

    /// Key that makes retries safe: the same key with the same content is recorded once
    /// [default: a fresh `cli-<uuid>` per invocation].
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Never fail: on any error, print a warning and exit 0 (for deploy scripts).
    #[arg(long)]
    pub best_effort: bool,
}

/// Runs `tfr send`. Prints the event's id alone on stdout, so `ID=$(tfr send …)` works, and
/// the event's URL on stderr.
pub async fn run(args: SendArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    match send(&args, options).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) if args.best_effort => {
            eprintln!("tfr: warning: event not recorded: {error:#}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(error),
    }
}

async fn send(args: &SendArgs, options: &ClientOptions) -> anyhow::Result<()> {
    let idempotency_key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(generate_idempotency_key);
    let diff = match &args.diff {
        Some(path) => read_diff(path).await?,
        None => None,
    };
    let author_from_env = default_author(|name| std::env::var(name).ok());
    let event = build_event(args, author_from_env, diff, &idempotency_key)?;

    let api = Api::new(options)?;
    let (status, answer) = api.post_json("/api/v1/events", &event).await?;
    let id = answer
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadResponse {
            url: format!("{}/api/v1/events", options.server),
            message: "the answer has no event id".to_owned(),
        })?;

    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{id}").and_then(|()| stdout.flush()) {
        // The event is recorded; a reader that went away is no reason to report failure.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(anyhow!(
                "event {id} recorded, but cannot print its id: {error}"
            ));
        }
    }
    let verb = if status == StatusCode::OK {
        "already recorded"
    } else {
        "recorded"
    };
    eprintln!("{verb} {id}: {}", options.event_url(id));
    Ok(())
}

/// A key unique to this invocation: a UUIDv7, so keys also sort by time in server logs.
pub fn generate_idempotency_key() -> String {
    format!("cli-{}", uuid::Uuid::now_v7())
}

/// Who made the change when `--author` is not given: the login name from `$USER`
/// (Unix) or `$USERNAME` (Windows). `lookup` reads an environment variable; it is a
/// parameter so tests need not touch the process environment.
pub fn default_author(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["USER", "USERNAME"]
        .into_iter()
        .filter_map(lookup)
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
}

/// Builds the JSON event of design §2 from the flags, then validates it with the server's
/// rules. `author_from_env` is the fallback for `--author`; `diff` the text read from
/// `--diff`. The diff size is left to the server, whose limit is configurable.
pub fn build_event(
    args: &SendArgs,
    author_from_env: Option<String>,
    diff: Option<String>,
    idempotency_key: &str,
) -> anyhow::Result<Value> {
    let mut event = Map::new();
    let mut put = |field: &str, value: Option<&str>| {
        if let Some(value) = value {
            event.insert(field.to_owned(), Value::String(value.to_owned()));
        }
    };
    put("title", args.title.as_deref());
    put("system", args.system.as_deref());
    let author = args
        .author
        .clone()
        .or(author_from_env)
        .ok_or_else(|| anyhow!("cannot tell who made the change: pass --author NAME (neither $USER nor $USERNAME is set)"))?;
    put("author", Some(&author));
    put("kind", args.kind.as_deref());
    put("environment", args.environment.as_deref());
    put("team", args.team.as_deref());
    put("source", Some(&args.source));
    put("version", args.version.as_deref());
    put("description", args.description.as_deref());
    put("diff", diff.as_deref());
    put("idempotency_key", Some(idempotency_key));
    if let Some(at) = &args.at {
        let at = tfr_core::time::parse_timestamp(at).map_err(|m| anyhow!("--at: {m}"))?;
        event.insert("occurred_at".to_owned(), json!(at.to_string()));
    }
    if let Some(ended_at) = &args.ended_at {
        let ended_at =
            tfr_core::time::parse_timestamp(ended_at).map_err(|m| anyhow!("--ended-at: {m}"))?;
        event.insert("ended_at".to_owned(), json!(ended_at.to_string()));
    }
    if !args.tags.is_empty() {
        event.insert("tags".to_owned(), json!(args.tags));
    }
    if !args.links.is_empty() {
        let links: Vec<Value> = args.links.iter().map(|url| json!({"url": url})).collect();
        event.insert("links".to_owned(), Value::Array(links));
    }
    if !args.attributes.is_empty() {
        event.insert(
            "attributes".to_owned(),
            Value::Object(parse_attributes(&args.attributes)?),
        );
    }

    let event = Value::Object(event);
    let limits = Limits {
        max_diff_bytes: usize::MAX,
    };
    validate_new_event(&event, &limits, tfr_core::time::now())
        .map_err(|error| anyhow!("invalid event: {error}"))?;
    Ok(event)
}

/// Parses `--attribute KEY=VALUE` flags into the `attributes` object. VALUE is JSON when it
/// parses as JSON, else a string: `replicas=12` is a number, `owner=alice` a string. A key
/// given twice is refused rather than silently overwritten.
pub fn parse_attributes(flags: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut attributes = Map::new();
    for flag in flags {
        let Some((key, raw)) = flag.split_once('=') else {
            bail!("--attribute '{flag}': expected KEY=VALUE");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("--attribute '{flag}': the key is empty");
        }
        let value = serde_json::from_str::<Value>(raw).unwrap_or_else(|_| json!(raw));
        if attributes.insert(key.to_owned(), value).is_some() {
            bail!("--attribute: '{key}' is given twice");
        }
    }
    Ok(attributes)
}

/// Reads `--diff`: a file, or stdin for `-`. Must be UTF-8 text; an empty diff means none.
async fn read_diff(path: &Path) -> anyhow::Result<Option<String>> {
    let bytes = if path == Path::new("-") {
        tokio::task::spawn_blocking(|| {
            let mut buffer = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buffer)
                .map(|_| buffer)
        })
        .await
        .context("--diff -: reading stdin")?
        .context("--diff -: cannot read stdin")?
    } else {
        tokio::fs::read(path)
            .await
            .with_context(|| format!("--diff: cannot read {}", path.display()))?
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("--diff: {} is not UTF-8 text", path.display()))?;
    Ok(Some(text).filter(|text| !text.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SendArgs {
        SendArgs {
            title: Some("Deploy player 5.2.1 to production".to_owned()),
            system: Some("player".to_owned()),
            source: "cli".to_owned(),
            ..SendArgs::default()
        }
    }

    fn build(args: &SendArgs) -> anyhow::Result<Value> {
        build_event(args, Some("alice".to_owned()), None, "cli-test")
    }

    #[test]
    fn minimal_event() {
        let event = build(&args()).unwrap();
        assert_eq!(
            event,
            json!({
                "title": "Deploy player 5.2.1 to production",
                "system": "player",
                "author": "alice",
                "source": "cli",
                "idempotency_key": "cli-test",
            })
        );
    }

    #[test]
    fn full_event() {
        let args = SendArgs {
            author: Some("bob".to_owned()),
            kind: Some("deploy".to_owned()),
            environment: Some("production".to_owned()),
            team: Some("video".to_owned()),
            version: Some("5.2.1".to_owned()),
            tags: vec!["release:5.2".to_owned(), "ticket:OPS-1234".to_owned()],
            links: vec!["https://ci.example.com/player/builds/812".to_owned()],
            description: Some("## Why\nfaster start".to_owned()),
            at: Some("2026-11-23T11:00:00+01:00".to_owned()),
            ended_at: Some("2026-11-23T12:00:00Z".to_owned()),
            attributes: vec!["replicas=12".to_owned(), "owner=alice".to_owned()],
            ..args()
        };
        let event = build_event(
            &args,
            Some("ignored".to_owned()),
            Some("--- a\n+++ b\n".to_owned()),
            "k",
        )
        .unwrap();
        assert_eq!(event["author"], "bob", "--author wins over $USER");
        assert_eq!(event["kind"], "deploy");
        assert_eq!(event["environment"], "production");
        assert_eq!(event["team"], "video");
        assert_eq!(event["version"], "5.2.1");
        assert_eq!(event["tags"], json!(["release:5.2", "ticket:OPS-1234"]));
        assert_eq!(
            event["links"],
            json!([{"url": "https://ci.example.com/player/builds/812"}])
        );
        assert_eq!(event["occurred_at"], "2026-11-23T10:00:00Z");
        assert_eq!(event["ended_at"], "2026-11-23T12:00:00Z");
        assert_eq!(
            event["attributes"],
            json!({"replicas": 12, "owner": "alice"})
        );
        assert_eq!(event["diff"], "--- a\n+++ b\n");
        assert_eq!(event["description"], "## Why\nfaster start");
    }

    #[test]
    fn author_defaults_to_the_login_name() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(
            default_author(env(&[("USER", "alice"), ("USERNAME", "bob")])).as_deref(),
            Some("alice")
        );
        assert_eq!(
            default_author(env(&[("USERNAME", "bob")])).as_deref(),
            Some("bob")
        );
        assert_eq!(
            default_author(env(&[("USER", " "), ("USERNAME", "bob")])).as_deref(),
            Some("bob")
        );
        assert_eq!(default_author(env(&[])), None);

        let error = build_event(&args(), None, None, "k")
            .unwrap_err()
            .to_string();
        assert!(error.contains("--author"), "{error}");
    }

    #[test]
    fn local_validation_names_the_field() {
        let missing = SendArgs {
            system: None,
            ..args()
        };
        assert_eq!(
            build(&missing).unwrap_err().to_string(),
            "invalid event: system: is required"
        );
        let blank = SendArgs {
            title: Some("  ".to_owned()),
            ..args()
        };
        assert_eq!(
            build(&blank).unwrap_err().to_string(),
            "invalid event: title: must not be empty"
        );
        let bad_kind = SendArgs {
            kind: Some("Deploy".to_owned()),
            ..args()
        };
        assert!(
            build(&bad_kind)
                .unwrap_err()
                .to_string()
                .starts_with("invalid event: kind: ")
        );
        let bad_link = SendArgs {
            links: vec!["javascript:alert(1)".to_owned()],
            ..args()
        };
        assert!(
            build(&bad_link)
                .unwrap_err()
                .to_string()
                .starts_with("invalid event: links[0].url: ")
        );
    }

    #[test]
    fn times_need_an_offset() {
        let offsetless = SendArgs {
            at: Some("2026-11-23T10:00:00".to_owned()),
            ..args()
        };
        let error = build(&offsetless).unwrap_err().to_string();
        assert!(
            error.starts_with("--at: ") && error.contains("offset"),
            "{error}"
        );
        let backwards = SendArgs {
            at: Some("2026-11-23T10:00:00Z".to_owned()),
            ended_at: Some("2026-11-23T09:00:00Z".to_owned()),
            ..args()
        };
        assert_eq!(
            build(&backwards).unwrap_err().to_string(),
            "invalid event: ended_at: must not be before occurred_at"
        );
        let bad = SendArgs {
            ended_at: Some("soon".to_owned()),
            ..args()
        };
        assert!(
            build(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("--ended-at: ")
        );
    }

    #[test]
    fn attributes_are_json_or_strings() {
        let flags: Vec<String> = [
            "n=42",
            "ok=true",
            "obj={\"a\":[1]}",
            "name=alice",
            "empty=",
            "eq=a=b",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            Value::Object(parse_attributes(&flags).unwrap()),
            json!({"n": 42, "ok": true, "obj": {"a": [1]}, "name": "alice", "empty": "", "eq": "a=b"})
        );
        for bad in ["novalue", "=x"] {
            assert!(parse_attributes(&[bad.to_owned()]).is_err(), "{bad}");
        }
        let twice = parse_attributes(&["a=1".to_owned(), "a=2".to_owned()]).unwrap_err();
        assert!(twice.to_string().contains("twice"));
    }

    #[test]
    fn large_diffs_are_left_to_the_server() {
        let diff = "+".repeat(tfr_core::validate::DEFAULT_MAX_DIFF_BYTES + 1);
        assert!(build_event(&args(), Some("a".to_owned()), Some(diff), "k").is_ok());
    }

    #[test]
    fn generated_keys_are_unique() {
        let a = generate_idempotency_key();
        let b = generate_idempotency_key();
        assert!(a.starts_with("cli-") && a.len() == 40, "{a}");
        assert_ne!(a, b);
    }
}
