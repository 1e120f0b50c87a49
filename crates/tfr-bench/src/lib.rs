//! `tfr-bench`: loads a realistic synthetic history into a real `tfr serve` and measures it over
//! HTTP, then does the same on the store in-process, and reports both side by side with the
//! targets of issue 3. See `docs/benchmarks.md`.
//!
//! The binary is a thin wrapper over [`run`], so a test can run the whole benchmark at a small
//! scale. It is a tool, not a library for others: errors are `anyhow`, reported by `main`.

pub mod direct;
pub mod history;
pub mod http;
pub mod measure;
pub mod report;
pub mod rng;
pub mod server;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tfr_store::Store;
use tfr_store_sqlite::SqliteStore;

use crate::direct::DirectTarget;
use crate::history::History;
use crate::http::HttpTarget;
use crate::measure::Measurement;
use crate::report::{
    Check, DirectFacts, Goal, Line, Machine, PhaseRss, Report, ServerFacts, Settings,
    directory_size,
};
use crate::server::{RssSampler, Server, StoreLocation};
use crate::workload::{CpuProbe, Results, Workload};

/// The benchmark's options.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "tfr-bench",
    version,
    about = "Benchmark tfr: a realistic history over HTTP (a real `tfr serve`) and on the store directly"
)]
pub struct Options {
    /// Events of history to load (bulk NDJSON), before the single posts.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub events: u64,

    /// Seed of the history: the same seed gives the same events.
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,

    /// Timed repetitions of each query (after two untimed ones).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub queries: u64,

    /// Single-event POSTs sent one after another by one client.
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    pub posts: u64,

    /// Single-event POSTs sent by `--clients` concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub concurrent_posts: u64,

    /// Concurrent clients for `--concurrent-posts`.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub clients: u64,

    /// Events per bulk request (and per direct batch); requests are also cut at 4 MiB.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub bulk_batch: u64,

    /// Bulk requests (direct: batches) sent before the first answer is awaited: 1 sends one
    /// at a time; `tfr import` keeps 2 in flight, so that the server parses one while it
    /// stores the other.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub bulk_in_flight: u64,

    /// Restarts of the server with the data loaded, each timed until `/readyz` answers.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub restarts: u64,

    /// Run the server on this database (`postgres://...`) instead of a fresh SQLite data
    /// directory. The database must hold no events.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,

    /// Skip the direct (in-process store) part.
    #[arg(long)]
    pub skip_direct: bool,

    /// Skip the HTTP part (to profile the store alone).
    #[arg(long)]
    pub skip_http: bool,

    /// The `tfr` binary to run. Default: `tfr` next to this program in the target directory.
    #[arg(long, value_name = "PATH")]
    pub tfr_bin: Option<PathBuf>,

    /// Where the data directories and the server's log go (a fresh folder is made inside).
    /// Default: the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Keep the data directories and the server log after the run.
    #[arg(long)]
    pub keep_data: bool,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,

    /// Only write the history (`--events`, `--seed`) as NDJSON to this file, and stop: the
    /// same events to load with `tfr import` or to replay elsewhere.
    #[arg(long, value_name = "FILE")]
    pub write_history: Option<PathBuf>,
}

impl Options {
    fn workload(&self) -> Workload {
        Workload {
            bulk_batch: self.bulk_batch as usize,
            bulk_in_flight: self.bulk_in_flight as usize,
            posts: self.posts,
            concurrent_posts: self.concurrent_posts,
            clients: self.clients as usize,
            queries: self.queries as usize,
        }
    }
}

/// Writes the history of `options` as NDJSON to `path`.
pub fn write_history(options: &Options, path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let history = History::new(options.seed, options.events);
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut line = Vec::new();
    for index in 0..history.len() {
        line.clear();
        history.event(index).to_ndjson(&mut line);
        out.write_all(&line)?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the benchmark and returns its report (progress goes to standard error).
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    if options.events == 0 {
        bail!("--events must be at least 1");
    }
    if options.skip_http && options.skip_direct {
        bail!("--skip-http and --skip-direct leave nothing to measure");
    }
    let base = options.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let work = tempfile::Builder::new()
        .prefix("tfr-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a work directory in {}", base.display()))?;
    let machine = Machine::detect(work.path());
    // Read when the run starts: a commit made while a long run goes on is not what it runs.
    let tfr_commit = git_commit();
    eprintln!("tfr-bench: working in {}", work.path().display());

    let history = History::new(options.seed, options.events);
    let workload = options.workload();
    let total_posts = workload.posts + workload.concurrent_posts;
    let plans = workload::query_plans(&history, total_posts);

    let http = if options.skip_http {
        None
    } else {
        Some(run_http(options, work.path(), &history, &workload, &plans).await?)
    };
    let direct = if options.skip_direct {
        None
    } else if options.database.is_some() {
        eprintln!(
            "tfr-bench: the direct part runs on SQLite only for now; skipped with --database"
        );
        None
    } else {
        let data = work.path().join("direct-data");
        Some(run_direct(&data, &history, &workload, &plans, options.restarts).await?)
    };

    let (http_results, server) = match http {
        Some((results, facts)) => (Some(results), Some(facts)),
        None => (None, None),
    };
    let (direct_results, direct_facts) = match direct {
        Some((results, facts)) => (Some(results), Some(facts)),
        None => (None, None),
    };
    let generated = http_results
        .as_ref()
        .or(direct_results.as_ref())
        .map(|results| results.generated.clone())
        .unwrap_or_default();
    let lines = lines(http_results.as_ref(), direct_results.as_ref(), options);

    if options.keep_data {
        let kept = work.keep();
        eprintln!("tfr-bench: data kept in {}", kept.display());
    }
    Ok(Report {
        date: jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string(),
        tfr_commit,
        machine,
        settings: Settings {
            events: options.events,
            seed: options.seed,
            store: if options.database.is_some() {
                "PostgreSQL".into()
            } else {
                "SQLite".into()
            },
            bulk_batch: workload.bulk_batch,
            bulk_in_flight: workload.bulk_in_flight,
            posts: workload.posts,
            concurrent_posts: workload.concurrent_posts,
            clients: workload.clients,
            queries: workload.queries,
        },
        generated,
        lines,
        server,
        direct: direct_facts,
        seconds_total: started.elapsed().as_secs_f64(),
    })
}

async fn run_http(
    options: &Options,
    work: &Path,
    history: &History,
    workload: &Workload,
    plans: &[workload::QueryPlan],
) -> anyhow::Result<(Results, ServerFacts)> {
    let binary = server::find_tfr_binary(options.tfr_bin.as_deref())?;
    let data = work.join("http-data");
    let store = match &options.database {
        Some(url) => StoreLocation::Database(url.clone()),
        None => StoreLocation::Data(data.clone()),
    };
    let log = work.join("server.log");
    let client = http::client()?;
    eprintln!("tfr-bench: starting {}", binary.display());
    let server = Server::start(&binary, &store, work, &log)?;
    server.wait_ready(&client).await?;
    let target = Arc::new(HttpTarget::new(client.clone(), &server.base_url));
    target.check_empty().await?;
    let sampler = RssSampler::start(server.pid());
    let results = workload::run(
        Arc::clone(&target),
        history,
        workload,
        plans,
        Some(&sampler),
        CpuProbe {
            pid: server.pid(),
            store_threads_only: false,
        },
        "http",
    )
    .await?;
    drop(sampler);
    let mut facts = ServerFacts {
        tfr_binary: binary.display().to_string(),
        peak_rss_bytes: server::memory(server.pid()).map(|memory| memory.peak),
        rss_by_phase: results
            .rss_by_phase
            .iter()
            .map(|(phase, bytes)| PhaseRss {
                phase: phase.clone(),
                bytes: *bytes,
            })
            .collect(),
        cpu_by_phase: results.cpu_by_phase.clone(),
        ..ServerFacts::default()
    };
    facts.stop_ms = Some(millis(server.stop()?));
    if options.database.is_none() {
        facts.database_bytes = directory_size(&data);
    }
    for restart in 0..options.restarts {
        let spawned = Instant::now();
        let server = Server::start(&binary, &store, work, &log)?;
        server.wait_ready(&client).await?;
        facts.start_to_ready_ms.push(millis(spawned.elapsed()));
        if restart == 0 {
            facts.rss_after_restart_bytes = server::memory(server.pid()).map(|memory| memory.rss);
        }
        server.stop()?;
    }
    eprintln!(
        "tfr-bench: server stopped; start to ready {:?} ms",
        facts.start_to_ready_ms
    );
    if !options.keep_data && options.database.is_none() {
        // At 10M events each database takes tens of GB: make room for the direct part's.
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("cannot remove {}", data.display()))?;
    }
    Ok((results, facts))
}

async fn run_direct(
    data: &Path,
    history: &History,
    workload: &Workload,
    plans: &[workload::QueryPlan],
    reopenings: u64,
) -> anyhow::Result<(Results, DirectFacts)> {
    eprintln!("tfr-bench: opening the SQLite store in {}", data.display());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(data).with_context(|| format!("cannot open {}", data.display()))?,
    );
    let target = Arc::new(DirectTarget::new(Arc::clone(&store)));
    let cpu = CpuProbe {
        pid: std::process::id(),
        store_threads_only: true,
    };
    let results = workload::run(target, history, workload, plans, None, cpu, "direct").await?;
    store.shutdown().await.context("closing the store")?;
    drop(store);
    let mut facts = DirectFacts {
        database_bytes: directory_size(data),
        cpu_by_phase: results.cpu_by_phase.clone(),
        ..DirectFacts::default()
    };
    for _ in 0..reopenings {
        let opening = Instant::now();
        let store = SqliteStore::open(data)?;
        store.ping().await?;
        facts.open_to_ready_ms.push(millis(opening.elapsed()));
        store.shutdown().await?;
    }
    Ok((results, facts))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The HTTP and direct measurements of one line.
type Sides<'a> = (Option<&'a Measurement>, Option<&'a Measurement>);

fn line(
    key: &str,
    label: String,
    (http, direct): Sides<'_>,
    ratio: Option<f64>,
    goals: &[Goal],
) -> Line {
    let mut line = Line {
        key: key.to_owned(),
        label,
        http: http.cloned(),
        direct: direct.cloned(),
        ratio,
        targets: Vec::new(),
    };
    line.targets = goals
        .iter()
        .map(|goal| goal.check(&line))
        .collect::<Vec<Check>>();
    line
}

/// The table's lines, in the order of the workload, with their targets (issue 3).
fn lines(http: Option<&Results>, direct: Option<&Results>, options: &Options) -> Vec<Line> {
    let rate_ratio = |h: Option<&Measurement>, d: Option<&Measurement>| match (h, d) {
        (Some(h), Some(d)) => match (h.events_per_second, d.events_per_second) {
            (Some(h), Some(d)) if h > 0.0 && d > 0.0 => Some(h / d),
            _ => None,
        },
        _ => None,
    };
    let p50_ratio = |h: Option<&Measurement>, d: Option<&Measurement>| match (h, d) {
        (Some(h), Some(d)) => match (h.p50_ms, d.p50_ms) {
            (Some(h), Some(d)) if d > 0.0 => Some(h / d),
            _ => None,
        },
        _ => None,
    };
    let mut lines = Vec::new();
    let mut push = |key: &str, label: String, sides: Sides<'_>, ratio, goals: &[Goal]| {
        lines.push(line(key, label, sides, ratio, goals));
    };
    let h = |pick: fn(&Results) -> &Measurement| http.map(pick);
    let d = |pick: fn(&Results) -> &Measurement| direct.map(pick);
    let bulk = (h(|r| &r.bulk), d(|r| &r.bulk));
    push(
        "bulk_ingest",
        format!(
            "bulk NDJSON ingest (requests of {}, {} in flight)",
            options.bulk_batch, options.bulk_in_flight
        ),
        bulk,
        rate_ratio(bulk.0, bulk.1),
        &[Goal::MinRate(20_000.0), Goal::MinRatio(0.7)],
    );
    let posts = (h(|r| &r.posts), d(|r| &r.posts));
    push(
        "posts_1_client",
        "single POSTs, 1 client".into(),
        posts,
        rate_ratio(posts.0, posts.1),
        &[],
    );
    let concurrent = (h(|r| &r.concurrent_posts), d(|r| &r.concurrent_posts));
    push(
        "posts_concurrent",
        format!("single POSTs, {} clients", options.clients),
        concurrent,
        rate_ratio(concurrent.0, concurrent.1),
        &[Goal::MinRate(5_000.0), Goal::MaxP99Ms(25.0)],
    );
    let plans = http.or(direct).map(|r| r.queries.len()).unwrap_or(0);
    for index in 0..plans {
        let hq = http.map(|r| &r.queries[index]);
        let dq = direct.map(|r| &r.queries[index]);
        let Some((plan, _)) = hq.or(dq) else { continue };
        let (hm, dm) = (hq.map(|(_, m)| m), dq.map(|(_, m)| m));
        let goals: &[Goal] = match plan.key {
            "feed_first_page" | "feed_deep_page" => &[Goal::MaxP99Ms(10.0)],
            "feed_system_popular" | "feed_system_rare" => &[Goal::MaxP99Ms(25.0)],
            "search_common_word" | "search_rare_word" | "search_zero_hits" => {
                &[Goal::MaxP99Ms(50.0)]
            }
            "histogram_day_kind" => &[Goal::MaxP99Ms(50.0)],
            _ => &[],
        };
        push(
            plan.key,
            plan.label.clone(),
            (hm, dm),
            p50_ratio(hm, dm),
            goals,
        );
    }
    lines
}

/// The commit of the working tree the benchmark runs in, `+dirty` when it has changes.
fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty=+dirty"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|commit| !commit.is_empty())
}
