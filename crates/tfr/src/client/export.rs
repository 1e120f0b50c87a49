//! `tfr export`: write matching events as NDJSON, oldest first, in the format `tfr import`
//! reads. The body is streamed from the server to the output chunk by chunk, so an export
//! of millions of events needs no more memory than one chunk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::http::{Api, chain};
use super::{ClientOptions, build_query, ignore_broken_pipe, parse_bound};

/// Flags of `tfr export`.
#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// Query (design §3) selecting the events; all events when absent. With a negated term,
    /// end the options with `--`: `tfr export -- -kind:deploy`.
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    /// Only events at or after this time (a date or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// Only events before this time (a date or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// Write to FILE instead of stdout. The file appears only once the export is complete
    /// (it is written as FILE.partial, then renamed), so a cut-off export never passes for
    /// a whole one.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `tfr export`; reports the number of events on stderr.
pub async fn run(args: ExportArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    ignore_broken_pipe(export(&args, options).await)
}

async fn export(args: &ExportArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    let from = args
        .from
        .as_deref()
        .map(|t| parse_bound("--from", t))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| parse_bound("--to", t))
        .transpose()?;
    let from = from.map(|t| t.to_string()).unwrap_or_default();
    let to = to.map(|t| t.to_string()).unwrap_or_default();
    let query = build_query(&args.query, None);

    let api = Api::new(options)?;
    let response = api
        .get_stream(
            "/api/v1/export",
            &[("q", &query), ("from", &from), ("to", &to)],
        )
        .await?;

    let count = match &args.output {
        None => copy(response, &mut tokio::io::stdout()).await?,
        Some(path) => {
            let partial = partial_path(path);
            let mut file = tokio::fs::File::create(&partial)
                .await
                .with_context(|| format!("cannot create {}", partial.display()))?;
            match copy(response, &mut file).await {
                Ok(count) => {
                    file.sync_all()
                        .await
                        .with_context(|| format!("cannot write {}", partial.display()))?;
                    drop(file);
                    tokio::fs::rename(&partial, path).await.with_context(|| {
                        format!("cannot rename {} to {}", partial.display(), path.display())
                    })?;
                    count
                }
                Err(error) => {
                    drop(file);
                    // Best effort: the error being reported matters more than the leftover.
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(error);
                }
            }
        }
    };
    let noun = if count == 1 { "event" } else { "events" };
    match &args.output {
        Some(path) => eprintln!("exported {count} {noun} to {}", path.display()),
        None => eprintln!("exported {count} {noun}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies the response body to `output` as it arrives; returns the number of lines (events).
async fn copy(
    response: reqwest::Response,
    output: &mut (impl AsyncWrite + Unpin),
) -> anyhow::Result<u64> {
    let mut lines: u64 = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            anyhow!(
                "the export was interrupted after {lines} events: {}",
                chain(&error)
            )
        })?;
        lines += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
        output.write_all(&chunk).await?;
    }
    output.flush().await?;
    Ok(lines)
}

/// `events.ndjson` → `events.ndjson.partial`, beside the final file so the rename is atomic.
fn partial_path(path: &Path) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_sit_beside_the_output() {
        assert_eq!(
            partial_path(Path::new("/tmp/backup/events.ndjson")),
            PathBuf::from("/tmp/backup/events.ndjson.partial")
        );
    }
}
