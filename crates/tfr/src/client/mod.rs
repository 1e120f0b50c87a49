//! The client commands: they talk to a tfr server over its HTTP API.
//!
//! Each command lives in its own module with its clap arguments and a `run` function; the HTTP
//! plumbing they share (one client, retries, error messages) is in [`http`]. The pieces that
//! need no server (building an event from flags, transforming import lines, formatting a
//! table, generating the demo history) are plain functions so they can be unit-tested.

pub mod correlate;
pub mod demo;
pub mod export;
pub mod http;
pub mod import;
pub mod last;
pub mod log;
pub mod send;

use std::io;
use std::process::ExitCode;

use jiff::Timestamp;

pub use correlate::CorrelateArgs;
pub use demo::DemoArgs;
pub use export::ExportArgs;
pub use import::ImportArgs;
pub use last::LastArgs;
pub use log::LogArgs;
pub use send::SendArgs;

/// Where the server is and how to authenticate, shared by every client command.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Base URL of the server, without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Bearer token, if any.
    pub token: Option<String>,
}

impl ClientOptions {
    /// The web page of one event, printed after `send` and `last` so a person can click it.
    pub fn event_url(&self, id: &str) -> String {
        format!("{}/events/{id}", self.server)
    }
}

/// Joins the words of a query given on the command line (`tfr log system:player kind:deploy`
/// without quotes) and adds a `since:` term for `--since`, so the server parses one query
/// string with the language of design §3.
pub fn build_query(words: &[String], since: Option<&str>) -> String {
    let mut terms: Vec<&str> = words
        .iter()
        .map(|word| word.trim())
        .filter(|word| !word.is_empty())
        .collect();
    let since_term = since.map(|since| format!("since:{}", since.trim()));
    if let Some(term) = &since_term {
        terms.push(term);
    }
    terms.join(" ")
}

/// Checks a `--from`/`--to` value locally (a date or an RFC 3339 timestamp) so a typo is
/// reported before any request, naming the flag.
pub fn parse_bound(flag: &str, text: &str) -> anyhow::Result<Timestamp> {
    tfr_core::time::parse_time_bound(text).map_err(|message| anyhow::anyhow!("{flag}: {message}"))
}

/// `2026-11-23T10:00:00Z`: the absolute UTC time shown next to relative ages, to the second.
pub fn format_utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Replaces control characters (escape sequences included) by `?` before text from the server
/// reaches a terminal: facts are written by many hands, and a crafted title must not be able
/// to drive the terminal.
pub fn sanitize_for_terminal(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Lets `tfr log | head` end quietly: when the reader of stdout goes away, the command has
/// done its job, so a broken pipe is success rather than an error.
pub fn ignore_broken_pipe(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(error)
            if error
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_joined_with_since() {
        let words = vec!["system:player".to_owned(), " kind:deploy ".to_owned()];
        assert_eq!(
            build_query(&words, Some("7d")),
            "system:player kind:deploy since:7d"
        );
        assert_eq!(build_query(&words, None), "system:player kind:deploy");
        assert_eq!(build_query(&[], Some("2h")), "since:2h");
        assert_eq!(build_query(&[String::new()], None), "");
    }

    #[test]
    fn utc_times_are_to_the_second() {
        let ts: Timestamp = "2026-11-23T11:00:00.123456+01:00".parse().unwrap();
        assert_eq!(format_utc(ts), "2026-11-23T10:00:00Z");
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        assert_eq!(sanitize_for_terminal("a\u{1b}[31mb\tc"), "a?[31mb?c");
        assert_eq!(sanitize_for_terminal("déploiement"), "déploiement");
    }

    #[test]
    fn bounds_name_the_flag() {
        assert!(parse_bound("--from", "2026-11-01").is_ok());
        let message = parse_bound("--to", "tomorrow").unwrap_err().to_string();
        assert!(message.starts_with("--to: "), "{message}");
    }

    #[test]
    fn broken_pipes_are_success() {
        let broken: anyhow::Result<ExitCode> =
            Err(io::Error::from(io::ErrorKind::BrokenPipe).into());
        assert!(ignore_broken_pipe(broken).is_ok());
        let other: anyhow::Result<ExitCode> =
            Err(io::Error::from(io::ErrorKind::PermissionDenied).into());
        assert!(ignore_broken_pipe(other).is_err());
    }

    #[test]
    fn event_urls() {
        let options = ClientOptions {
            server: "http://127.0.0.1:8080".to_owned(),
            token: None,
        };
        assert_eq!(options.event_url("abc"), "http://127.0.0.1:8080/events/abc");
    }
}
