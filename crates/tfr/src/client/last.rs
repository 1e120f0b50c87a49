//! `tfr last`: "when was the last time we updated X?" — the most recent matching event and
//! how long ago it happened.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::StatusCode;
use serde_json::Value;
use tfr_core::Event;

use super::http::Api;
use super::{ClientOptions, build_query, format_utc, ignore_broken_pipe, sanitize_for_terminal};

/// Flags of `tfr last`.
#[derive(Args, Clone, Debug)]
pub struct LastArgs {
    /// Query (design §3), e.g. `system:postgres-main kind:os_update`; several words are joined
    /// with spaces. With a negated term, quote the query or end the options
    /// with `--`: `tfr last -- system:player -kind:deploy`.
    #[arg(value_name = "QUERY", required = true)]
    pub query: Vec<String>,

    /// Print the server's JSON (the event with `age_seconds`) instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tfr last`; exits 1 with "no event matches …" when nothing matches.
pub async fn run(args: LastArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    ignore_broken_pipe(last(&args, options).await)
}

async fn last(args: &LastArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    let query = build_query(&args.query, None);
    let api = Api::new(options)?;
    let answer = match api.get_json("/api/v1/events/last", &[("q", &query)]).await {
        Ok(answer) => answer,
        Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => {
            bail!("no event matches {query}")
        }
        Err(error) => return Err(error.into()),
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, &answer)?;
        writeln!(stdout)?;
    } else {
        let (summary, link) = describe(&answer, options)?;
        writeln!(stdout, "{summary}")?;
        writeln!(stdout, "{link}")?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The two lines printed for the event: `3d ago  2026-11-23T10:00:00Z  deploy  player  alice
/// "title"`, then its id and URL. The age is the server's `age_seconds` (one clock for
/// everyone), or computed locally when an older server leaves it out.
pub fn describe(answer: &Value, options: &ClientOptions) -> anyhow::Result<(String, String)> {
    let age = answer.get("age_seconds").and_then(Value::as_i64);
    let mut event = answer.clone();
    if let Some(object) = event.as_object_mut() {
        object.remove("age_seconds");
    }
    let event: Event =
        serde_json::from_value(event).context("the server sent an event tfr cannot read")?;
    let age = age.unwrap_or_else(|| {
        tfr_core::time::now()
            .as_second()
            .saturating_sub(event.occurred_at.as_second())
    });
    let summary = format!(
        "{}  {}  {}  {}  {}  \"{}\"",
        tfr_core::time::humanize_seconds(age),
        format_utc(event.occurred_at),
        sanitize_for_terminal(&event.kind),
        sanitize_for_terminal(&event.system),
        sanitize_for_terminal(&event.author),
        sanitize_for_terminal(&event.title),
    );
    let id = event.id.to_string();
    let link = format!("{id}  {}", options.event_url(&id));
    Ok((summary, link))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_uses_the_servers_age() {
        let answer = json!({
            "id": "01938e1c-6a2b-7cc0-8000-000000000001",
            "occurred_at": "2026-11-23T10:00:00Z",
            "ended_at": null,
            "recorded_at": "2026-11-23T10:00:01Z",
            "title": "Upgrade kernel to 6.1.0-27 on cdn-edge",
            "system": "cdn-edge",
            "author": "ansible",
            "kind": "os_update",
            "environment": "production",
            "team": "sre",
            "source": "ansible",
            "version": "6.1.0-27",
            "description": null,
            "tags": [],
            "links": [],
            "has_diff": false,
            "attributes": null,
            "idempotency_key": null,
            "submitted_by": "anonymous",
            "age_seconds": 3 * 86_400 + 5
        });
        let options = ClientOptions {
            server: "http://tfr.example".to_owned(),
            token: None,
        };
        let (summary, link) = describe(&answer, &options).unwrap();
        assert_eq!(
            summary,
            "3d ago  2026-11-23T10:00:00Z  os_update  cdn-edge  ansible  \"Upgrade kernel to 6.1.0-27 on cdn-edge\""
        );
        assert_eq!(
            link,
            "01938e1c-6a2b-7cc0-8000-000000000001  http://tfr.example/events/01938e1c-6a2b-7cc0-8000-000000000001"
        );
        assert!(describe(&json!({"id": 1}), &options).is_err());
    }
}
