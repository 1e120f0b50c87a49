//! Request metrics in the Prometheus text format, and the request-timeout middleware.
//!
//! A handful of counters and fixed-bucket histograms behind one mutex: cheap next to the
//! fsync every write pays, and no metrics framework to learn.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    /// `(method, route, status)` → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency histogram.
    latencies: Mutex<BTreeMap<String, Histogram>>,
    /// Events this process stored (not duplicates).
    events_created: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut latencies) = self.latencies.lock() {
            let histogram = latencies.entry(route.to_owned()).or_default();
            for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *count += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    pub fn events_created(&self, count: usize) {
        self.events_created
            .fetch_add(u64::try_from(count).unwrap_or(0), Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `stored` is the store's event count, if it answered;
    /// `full_text_lag` the events its full-text index has yet to take, for a store that builds
    /// it behind the writer.
    pub fn render(&self, stored: Option<u64>, full_text_lag: Option<u64>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP tfr_build_info Version of the running server.");
        let _ = writeln!(out, "# TYPE tfr_build_info gauge");
        let _ = writeln!(
            out,
            "tfr_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(out, "# HELP tfr_events_stored Events in the store.");
        let _ = writeln!(out, "# TYPE tfr_events_stored gauge");
        if let Some(stored) = stored {
            let _ = writeln!(out, "tfr_events_stored {stored}");
        }
        if let Some(lag) = full_text_lag {
            let _ = writeln!(
                out,
                "# HELP tfr_fulltext_index_lag_events Events committed but not yet in the \
                 full-text index (searches still find them)."
            );
            let _ = writeln!(out, "# TYPE tfr_fulltext_index_lag_events gauge");
            let _ = writeln!(out, "tfr_fulltext_index_lag_events {lag}");
        }
        let _ = writeln!(
            out,
            "# HELP tfr_events_created_total Events stored by this process."
        );
        let _ = writeln!(out, "# TYPE tfr_events_created_total counter");
        let _ = writeln!(
            out,
            "tfr_events_created_total {}",
            self.events_created.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tfr_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE tfr_http_requests_total counter");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "tfr_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tfr_http_request_duration_seconds Time to answer HTTP requests."
        );
        let _ = writeln!(out, "# TYPE tfr_http_request_duration_seconds histogram");
        if let Ok(latencies) = self.latencies.lock() {
            for (route, histogram) in latencies.iter() {
                let route = escape(route);
                for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "tfr_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "tfr_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    histogram.count
                );
                let _ = writeln!(
                    out,
                    "tfr_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "tfr_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    histogram.count
                );
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records every request's route, status and latency. Unmatched paths count as one route, so
/// scanners cannot grow the label set.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Answers `503` with a JSON error when a read takes longer than the configured timeout.
///
/// Writes are not cut short: once a write is queued for the store it will be committed, and
/// answering "failed" for a write that then lands would invite a duplicate on retry. They are
/// bounded by the store's own busy timeout instead.
pub async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit.as_secs()).into_response(),
    }
}
