//! The workload, the same for both sides: what is inserted, how, and which queries are timed.
//! A [`Target`] is one side (the HTTP server, or the store called directly); [`run`] drives it
//! through every phase and times only the calls to it: generating events and preparing
//! requests happen before the clock starts.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::Timestamp;
use tfr_core::EventId;
use tfr_store::Cursor;

use crate::history::{ABSENT_WORD, COMMON_WORD, GeneratedEvent, History, RARE_WORD};
use crate::measure::{Latencies, Measurement};
use crate::report::{PhaseCpu, ThreadCpu};
use crate::server::{RssSampler, cpu_by_thread, cpu_used};

/// Events generated at a time: a chunk is made, prepared, then sent.
const CHUNK_EVENTS: u64 = 20_000;
/// A bulk request is also cut at this size, as `tfr import` does.
pub const BULK_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The page size of the feed.
pub const PAGE_SIZE: usize = 50;
/// The deep page sits this many events from the newest (page 10,000 of 50).
const DEEP_POSITION: u64 = 500_000;
/// Untimed repetitions of each query before the timed ones.
const WARMUP: usize = 2;
/// The longest the benchmark waits after an insert phase for the full-text index to hold
/// every event.
const INDEX_WAIT: Duration = Duration::from_secs(300);

/// One timed query.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    /// Stable name in the JSON output.
    pub key: &'static str,
    /// What the table says.
    pub label: String,
    pub kind: QueryKind,
}

#[derive(Clone, Debug)]
pub enum QueryKind {
    /// A feed page of [`PAGE_SIZE`], newest first.
    Page { q: String, cursor: Option<Cursor> },
    /// The most recent matching event (`/api/v1/events/last`).
    Last { q: String },
    /// Day × kind counts over `[from, to)` (`/api/v1/stats/histogram`).
    Histogram { from: Timestamp, to: Timestamp },
}

/// One side of the benchmark.
pub trait Target: Send + Sync + 'static {
    /// A bulk request, ready to send.
    type Bulk: Send + 'static;
    /// A single event, ready to send.
    type Post: Send + Sync + 'static;

    fn prepare_bulk(&self, events: &[GeneratedEvent]) -> anyhow::Result<Self::Bulk>;
    /// Stores a bulk request; returns how many events were created.
    fn send_bulk(&self, bulk: Self::Bulk) -> impl Future<Output = anyhow::Result<u64>> + Send;
    fn prepare_post(&self, event: &GeneratedEvent) -> anyhow::Result<Self::Post>;
    /// Stores one event (an error unless it was created).
    fn send_post(&self, post: &Self::Post) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Runs a query; returns how many events (or buckets) the answer held.
    fn query(&self, plan: &QueryPlan) -> impl Future<Output = anyhow::Result<u64>> + Send;
    /// Events stored but not yet in the full-text index; `None` for a store that indexes in
    /// the insert's transaction.
    fn index_lag(&self) -> impl Future<Output = anyhow::Result<Option<u64>>> + Send;
}

/// Whose CPU time a run reads after each insert phase, and which of its threads count.
#[derive(Clone, Copy, Debug)]
pub struct CpuProbe {
    pub pid: u32,
    /// Only the store's threads (`tfr-sqlite-*`): the direct side runs in the benchmark's own
    /// process, beside its clients and generators.
    pub store_threads_only: bool,
}

impl CpuProbe {
    /// The threads' CPU time so far: read before a phase, handed to [`CpuProbe::phase`].
    fn start(&self) -> std::collections::BTreeMap<String, Duration> {
        cpu_by_thread(self.pid)
    }

    /// Once the full-text index holds every event, what the threads used since `before`,
    /// for a phase that stored `events`.
    async fn phase<T: Target>(
        &self,
        target: &T,
        phase: &str,
        events: u64,
        before: &std::collections::BTreeMap<String, Duration>,
    ) -> anyhow::Result<PhaseCpu> {
        let index_catch_up = index_caught_up(target).await?;
        let after = cpu_by_thread(self.pid);
        let threads = cpu_used(before, &after, |name| {
            !self.store_threads_only || name.starts_with("tfr-sqlite")
        })
        .into_iter()
        .map(|(thread, seconds)| ThreadCpu { thread, seconds })
        .collect();
        Ok(PhaseCpu {
            phase: phase.to_owned(),
            events,
            index_catch_up_ms: index_catch_up.map(|wait| wait.as_secs_f64() * 1000.0),
            threads,
        })
    }
}

/// Waits until the full-text index holds every stored event, so that the CPU time read after
/// a phase includes indexing its events; returns how long that took after the phase's last
/// answer (`None` for a store without a separate index).
async fn index_caught_up<T: Target>(target: &T) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    loop {
        match target.index_lag().await? {
            None => return Ok(None),
            Some(0) => return Ok(Some(started.elapsed())),
            Some(lag) if started.elapsed() > INDEX_WAIT => {
                bail!("the full-text index was still {lag} events behind after {INDEX_WAIT:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// How much to do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Events per bulk request.
    pub bulk_batch: usize,
    /// Bulk requests sent before the first answer is awaited.
    pub bulk_in_flight: usize,
    /// Single posts from one client.
    pub posts: u64,
    /// Single posts from `clients` concurrent clients.
    pub concurrent_posts: u64,
    pub clients: usize,
    /// Timed repetitions of each query.
    pub queries: usize,
}

/// What the whole history holds, counted while it was generated.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Generated {
    pub events: u64,
    pub ndjson_bytes: u64,
    pub with_diff: u64,
    pub common_word_events: u64,
    pub rare_word_events: u64,
    pub seconds_generating: f64,
}

/// Everything one side measured.
#[derive(Debug, Default)]
pub struct Results {
    pub bulk: Measurement,
    pub posts: Measurement,
    pub concurrent_posts: Measurement,
    pub queries: Vec<(QueryPlan, Measurement)>,
    /// The largest resident set of each phase (HTTP side only), in bytes.
    pub rss_by_phase: Vec<(String, u64)>,
    /// CPU time by thread over each insert phase, until the full-text index caught up.
    pub cpu_by_phase: Vec<PhaseCpu>,
    pub generated: Generated,
}

/// The queries timed, for a history with `posts` single posts after it.
pub fn query_plans(history: &History, posts: u64) -> Vec<QueryPlan> {
    let total = history.len() + posts;
    let deep = DEEP_POSITION.min(total / 2);
    // The `deep`-th newest event: a post, or a history event (whose time grows with its index).
    let deep_time = if deep < posts {
        history.post_time(posts - 1 - deep)
    } else {
        history.base_time(history.len() - 1 - (deep - posts))
    };
    let deep_cursor = Cursor {
        occurred_at: deep_time,
        // The largest id: the page resumes with the events of that very instant.
        id: "ffffffff-ffff-ffff-ffff-ffffffffffff"
            .parse::<EventId>()
            .unwrap_or_default(),
    };
    let (popular, popular_share) = history.system(0);
    let (rare, rare_share) = history.system(150);
    let newest = if posts > 0 {
        history.post_time(posts - 1)
    } else {
        history.post_time(0)
    };
    let page = |q: String, cursor| QueryKind::Page { q, cursor };
    vec![
        QueryPlan {
            key: "feed_first_page",
            label: "feed, first page".into(),
            kind: page(String::new(), None),
        },
        QueryPlan {
            key: "feed_deep_page",
            label: format!("feed, deep page (page {})", deep / PAGE_SIZE as u64 + 1),
            kind: page(String::new(), Some(deep_cursor)),
        },
        QueryPlan {
            key: "feed_system_popular",
            label: format!(
                "feed, `system:` popular ({:.1}% of events)",
                popular_share * 100.0
            ),
            kind: page(format!("system:{popular}"), None),
        },
        QueryPlan {
            key: "feed_system_rare",
            label: format!(
                "feed, `system:` rare ({:.2}% of events)",
                rare_share * 100.0
            ),
            kind: page(format!("system:{rare}"), None),
        },
        QueryPlan {
            key: "search_common_word",
            label: format!("full text, common word `{COMMON_WORD}` (~5%)"),
            kind: page(COMMON_WORD.into(), None),
        },
        QueryPlan {
            key: "search_rare_word",
            label: format!("full text, rare word `{RARE_WORD}` (~0.02%)"),
            kind: page(RARE_WORD.into(), None),
        },
        QueryPlan {
            key: "search_zero_hits",
            label: format!("full text, zero hits `{ABSENT_WORD}`"),
            kind: page(ABSENT_WORD.into(), None),
        },
        QueryPlan {
            key: "last",
            label: format!("`last system:{popular} kind:deploy`"),
            kind: QueryKind::Last {
                q: format!("system:{popular} kind:deploy"),
            },
        },
        QueryPlan {
            key: "histogram_day_kind",
            label: "histogram day × kind, everything".into(),
            kind: QueryKind::Histogram {
                from: history.start(),
                to: newest
                    .checked_add(jiff::SignedDuration::from_secs(1))
                    .unwrap_or(newest),
            },
        },
    ]
}

/// Runs every phase on `target`: bulk ingest of the history, single posts from one client,
/// then from `clients` at once, then the queries.
pub async fn run<T: Target>(
    target: Arc<T>,
    history: &History,
    workload: &Workload,
    plans: &[QueryPlan],
    rss: Option<&RssSampler>,
    cpu: CpuProbe,
    side: &str,
) -> anyhow::Result<Results> {
    let mut results = Results::default();
    let phase_done = |results: &mut Results, phase: &str| {
        if let Some(rss) = rss {
            results
                .rss_by_phase
                .push((phase.to_owned(), rss.take_peak()));
        }
    };

    let cpu_before = cpu.start();
    let (bulk, generated) = bulk_ingest(&target, history, workload, side).await?;
    results.cpu_by_phase.push(
        cpu.phase(&*target, "bulk ingest", history.len(), &cpu_before)
            .await?,
    );
    results.bulk = bulk;
    results.generated = generated;
    phase_done(&mut results, "bulk ingest");

    let posts = prepare_posts(&*target, history, 0..workload.posts)?;
    eprintln!("[{side}] {} single posts, 1 client", posts.len());
    let mut latencies = Latencies::default();
    let cpu_before = cpu.start();
    let started = Instant::now();
    for post in &posts {
        let sent = Instant::now();
        target.send_post(post).await?;
        latencies.record(sent.elapsed());
    }
    results.posts =
        Measurement::throughput(posts.len() as u64, started.elapsed(), Some(&latencies));
    results.cpu_by_phase.push(
        cpu.phase(
            &*target,
            "single posts, 1 client",
            posts.len() as u64,
            &cpu_before,
        )
        .await?,
    );
    phase_done(&mut results, "single posts, 1 client");

    let first = workload.posts;
    let posts = prepare_posts(&*target, history, first..first + workload.concurrent_posts)?;
    eprintln!(
        "[{side}] {} single posts, {} clients",
        posts.len(),
        workload.clients
    );
    let count = posts.len() as u64;
    let cpu_before = cpu.start();
    results.concurrent_posts = concurrent_posts(&target, posts, workload.clients).await?;
    results.cpu_by_phase.push(
        cpu.phase(
            &*target,
            &format!("single posts, {} clients", workload.clients),
            count,
            &cpu_before,
        )
        .await?,
    );
    phase_done(&mut results, "single posts, concurrent clients");

    for plan in plans {
        eprintln!("[{side}] query: {}", plan.label);
        let mut latencies = Latencies::default();
        let mut answer = 0;
        for round in 0..WARMUP + workload.queries {
            let sent = Instant::now();
            answer = target
                .query(plan)
                .await
                .with_context(|| format!("query '{}'", plan.label))?;
            if round >= WARMUP {
                latencies.record(sent.elapsed());
            }
        }
        let mut measurement = Measurement::latency(&latencies);
        measurement.result_events = Some(answer);
        results.queries.push((plan.clone(), measurement));
    }
    phase_done(&mut results, "queries");
    Ok(results)
}

async fn bulk_ingest<T: Target>(
    target: &Arc<T>,
    history: &History,
    workload: &Workload,
    side: &str,
) -> anyhow::Result<(Measurement, Generated)> {
    let mut generated = Generated::default();
    let mut sending = Duration::ZERO;
    let mut created = 0;
    let mut requests = 0;
    let mut reported = 0;
    let mut start = 0;
    while start < history.len() {
        let end = (start + CHUNK_EVENTS).min(history.len());
        let making = Instant::now();
        let batches = make_bulk_chunk(
            &**target,
            history,
            start..end,
            workload.bulk_batch,
            &mut generated,
        )?;
        generated.seconds_generating += making.elapsed().as_secs_f64();
        // Only the requests are timed: from the first sent to the last answered.
        let sent = Instant::now();
        let mut in_flight = std::collections::VecDeque::new();
        for batch in batches {
            if in_flight.len() >= workload.bulk_in_flight.max(1)
                && let Some(oldest) = in_flight.pop_front()
            {
                created += answered(oldest).await?;
            }
            let target = Arc::clone(target);
            in_flight.push_back(tokio::spawn(async move { target.send_bulk(batch).await }));
            requests += 1;
        }
        while let Some(oldest) = in_flight.pop_front() {
            created += answered(oldest).await?;
        }
        sending += sent.elapsed();
        start = end;
        if start * 10 / history.len() > reported || start == history.len() {
            reported = start * 10 / history.len();
            eprintln!(
                "[{side}] bulk ingest: {start}/{} events, {:.0} events/s",
                history.len(),
                created as f64 / sending.as_secs_f64().max(1e-9)
            );
        }
    }
    generated.events = history.len();
    if created != history.len() {
        anyhow::bail!(
            "bulk ingest created {created} events of {}; is the store empty?",
            history.len()
        );
    }
    let mut measurement = Measurement::throughput(created, sending, None);
    measurement.samples = requests;
    Ok((measurement, generated))
}

/// The events a bulk request sent on its own task created.
async fn answered(task: tokio::task::JoinHandle<anyhow::Result<u64>>) -> anyhow::Result<u64> {
    task.await
        .map_err(|error| anyhow::anyhow!("a bulk request's task failed: {error}"))?
}

/// Generates events `range` on two threads and cuts them into prepared bulk requests of at
/// most `batch` events and [`BULK_REQUEST_BYTES`].
fn make_bulk_chunk<T: Target>(
    target: &T,
    history: &History,
    range: std::ops::Range<u64>,
    batch: usize,
    generated: &mut Generated,
) -> anyhow::Result<Vec<T::Bulk>> {
    let middle = range.start + (range.end - range.start) / 2;
    let halves = [range.start..middle, middle..range.end];
    let made: Vec<anyhow::Result<(Vec<T::Bulk>, Generated)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .into_iter()
            .map(|half| scope.spawn(move || make_batches(target, history, half, batch)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the generator thread panicked")))
            })
            .collect()
    });
    let mut batches = Vec::new();
    for half in made {
        let (half_batches, counts) = half?;
        batches.extend(half_batches);
        generated.ndjson_bytes += counts.ndjson_bytes;
        generated.with_diff += counts.with_diff;
        generated.common_word_events += counts.common_word_events;
        generated.rare_word_events += counts.rare_word_events;
    }
    Ok(batches)
}

fn make_batches<T: Target>(
    target: &T,
    history: &History,
    range: std::ops::Range<u64>,
    batch: usize,
) -> anyhow::Result<(Vec<T::Bulk>, Generated)> {
    let mut counts = Generated::default();
    let mut batches = Vec::new();
    let mut pending: Vec<GeneratedEvent> = Vec::with_capacity(batch);
    let mut pending_bytes = 0;
    let mut line = Vec::new();
    for index in range {
        let event = history.event(index);
        line.clear();
        event.to_ndjson(&mut line);
        if !pending.is_empty() && pending_bytes + line.len() > BULK_REQUEST_BYTES {
            batches.push(target.prepare_bulk(&pending)?);
            pending.clear();
            pending_bytes = 0;
        }
        counts.ndjson_bytes += line.len() as u64;
        counts.with_diff += u64::from(event.diff.is_some());
        counts.common_word_events += u64::from(event.mentions(COMMON_WORD));
        counts.rare_word_events += u64::from(event.mentions(RARE_WORD));
        pending_bytes += line.len();
        pending.push(event);
        if pending.len() >= batch {
            batches.push(target.prepare_bulk(&pending)?);
            pending.clear();
            pending_bytes = 0;
        }
    }
    if !pending.is_empty() {
        batches.push(target.prepare_bulk(&pending)?);
    }
    Ok((batches, counts))
}

fn prepare_posts<T: Target>(
    target: &T,
    history: &History,
    range: std::ops::Range<u64>,
) -> anyhow::Result<Vec<T::Post>> {
    range
        .map(|index| target.prepare_post(&history.post(index)))
        .collect()
}

/// `clients` tasks share the posts (round robin) and each sends its own, one at a time, all
/// starting together. The rate is all posts over the time until the last one was stored.
async fn concurrent_posts<T: Target>(
    target: &Arc<T>,
    posts: Vec<T::Post>,
    clients: usize,
) -> anyhow::Result<Measurement> {
    let clients = clients.max(1);
    let total = posts.len() as u64;
    let mut shares: Vec<Vec<T::Post>> = (0..clients).map(|_| Vec::new()).collect();
    for (index, post) in posts.into_iter().enumerate() {
        shares[index % clients].push(post);
    }
    let start = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for share in shares {
        let target = Arc::clone(target);
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            start.wait().await;
            for post in &share {
                let sent = Instant::now();
                target.send_post(post).await?;
                latencies.record(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.merge(&task.await.context("a client task failed")??);
    }
    Ok(Measurement::throughput(
        total,
        started.elapsed(),
        Some(&latencies),
    ))
}
