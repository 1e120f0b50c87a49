//! `tfr correlate`: does changing A keep being followed by B? (design §6)

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;
use tfr_core::correlate::{format_p_value, percent};

use super::http::Api;
use super::log::truncate;
use super::{ClientOptions, ignore_broken_pipe, parse_bound, sanitize_for_terminal};

/// Flags of `tfr correlate`.
#[derive(Args, Clone, Debug)]
pub struct CorrelateArgs {
    /// Query selecting the changes A, e.g. 'system:player kind:deploy'.
    #[arg(long, value_name = "QUERY")]
    pub a: String,

    /// Query selecting the effects B, e.g. 'system:cdn kind:incident'.
    #[arg(long, value_name = "QUERY")]
    pub b: String,

    /// How soon after A a B event counts (e.g. 10m, 1h, 1d).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub window: String,

    /// Start of the range (default: 30 days before --to).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// End of the range (default: now).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// How many of the most recent A events to list with what followed them.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=500))]
    pub limit: u64,

    /// Print the server's JSON answer instead.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tfr correlate`.
pub async fn run(args: CorrelateArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    ignore_broken_pipe(correlate(&args, options).await)
}

async fn correlate(args: &CorrelateArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    tfr_core::time::parse_duration(&args.window).map_err(|m| anyhow::anyhow!("--window: {m}"))?;
    let from = args
        .from
        .as_deref()
        .map(|t| parse_bound("--from", t).map(|t| t.to_string()))
        .transpose()?
        .unwrap_or_default();
    let to = args
        .to
        .as_deref()
        .map(|t| parse_bound("--to", t).map(|t| t.to_string()))
        .transpose()?
        .unwrap_or_default();
    let limit = args.limit.to_string();
    let api = Api::new(options)?;
    let report = api
        .get_json(
            "/api/v1/correlate",
            &[
                ("a", args.a.as_str()),
                ("b", args.b.as_str()),
                ("window", args.window.as_str()),
                ("from", from.as_str()),
                ("to", to.as_str()),
                ("limit", limit.as_str()),
            ],
        )
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The report for people: the verdict, the figures, then each listed A event with the
/// first B event that followed it.
pub fn render(report: &Value) -> String {
    let text = |key: &str| report[key].as_str().unwrap_or("").to_owned();
    let number = |key: &str| report[key].as_u64().unwrap_or(0);
    let mut out = String::new();
    out.push_str(&sanitize_for_terminal(&text("verdict")));
    out.push_str("\n\n");
    out.push_str(&format!(
        "  A            {}\n",
        sanitize_for_terminal(&text("a"))
    ));
    out.push_str(&format!(
        "  B            {}\n",
        sanitize_for_terminal(&text("b"))
    ));
    out.push_str(&format!(
        "  range        {} .. {}, window {}\n",
        text("from"),
        text("to"),
        text("window")
    ));
    out.push_str(&format!(
        "  hits         {} of {} A events ({} B events)\n",
        number("hits"),
        number("a_count"),
        number("b_count")
    ));
    if let Some(rate) = report["hit_rate"].as_f64() {
        out.push_str(&format!("  hit rate     {}\n", percent(rate)));
    }
    out.push_str(&format!(
        "  baseline     {}\n",
        percent(report["baseline"].as_f64().unwrap_or(0.0))
    ));
    if let Some(lift) = report["lift"].as_f64() {
        out.push_str(&format!("  lift         {lift:.2}×\n"));
    }
    out.push_str(&format!(
        "  p-value      {}\n",
        format_p_value(report["p_value"].as_f64().unwrap_or(1.0))
    ));
    let matches = report["matches"].as_array().cloned().unwrap_or_default();
    if !matches.is_empty() {
        out.push_str("\nmost recent A events and the first B that followed:\n");
        for item in &matches {
            let a = &item["a"];
            let line = format!(
                "  {}  {}",
                a["occurred_at"].as_str().unwrap_or(""),
                truncate(
                    &sanitize_for_terminal(a["title"].as_str().unwrap_or("")),
                    50
                )
            );
            out.push_str(&line);
            match item["b"].as_array().and_then(|b| b.first()) {
                Some(b) => out.push_str(&format!(
                    "\n      → {}  {}\n",
                    b["occurred_at"].as_str().unwrap_or(""),
                    truncate(
                        &sanitize_for_terminal(b["title"].as_str().unwrap_or("")),
                        50
                    )
                )),
                None => out.push_str("\n      (no B within the window)\n"),
            }
        }
        if report["matches_truncated"].as_bool() == Some(true) {
            out.push_str("  …\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_the_verdict_figures_and_matches() {
        let report = json!({
            "a": "system:player", "b": "system:cdn", "window": "1h",
            "from": "2026-10-01T00:00:00Z", "to": "2026-10-11T00:00:00Z",
            "hits": 8, "a_count": 10, "b_count": 10, "hit_rate": 0.8,
            "baseline": 0.041666, "lift": 19.2, "p_value": 3.79e-10,
            "verdict": "8 of 10 changes matching A were followed within 1h by B",
            "matches": [
                {"a": {"occurred_at": "2026-10-10T10:00:00Z", "title": "deploy"}, "b": []},
                {"a": {"occurred_at": "2026-10-08T10:00:00Z", "title": "deploy"},
                 "b": [{"occurred_at": "2026-10-08T10:10:00Z", "title": "5xx spike"}]}
            ],
            "matches_truncated": true
        });
        let text = render(&report);
        assert!(text.starts_with("8 of 10 changes matching A were followed within 1h by B\n\n"));
        assert!(
            text.contains("  hits         8 of 10 A events (10 B events)\n"),
            "{text}"
        );
        assert!(text.contains("  hit rate     80%\n"));
        assert!(text.contains("  baseline     4.2%\n"));
        assert!(text.contains("  lift         19.20×\n"));
        assert!(text.contains("  p-value      4e-10\n"));
        assert!(text.contains("      (no B within the window)\n"));
        assert!(text.contains("      → 2026-10-08T10:10:00Z  5xx spike\n"));
        assert!(text.ends_with("  …\n"));
    }
}
