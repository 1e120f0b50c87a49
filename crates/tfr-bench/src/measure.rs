//! What one side (HTTP or direct) of a benchmark line measured: a rate, latency percentiles
//! from an HDR histogram, or both.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies recorded in microseconds, from 1 µs to 10 minutes, with 3 significant digits.
pub struct Latencies {
    histogram: Histogram<u64>,
}

const HIGHEST_MICROS: u64 = 600_000_000;

impl Default for Latencies {
    fn default() -> Self {
        Self {
            // Bounds and precision are constants HdrHistogram accepts.
            histogram: Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
                .expect("constant bounds that HdrHistogram accepts"),
        }
    }
}

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
    }

    /// Adds the samples of another recorder (both have the same bounds, so this cannot fail).
    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn samples(&self) -> u64 {
        self.histogram.len()
    }

    fn millis_at(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// One side of a line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measurement {
    /// Events per second, for inserts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_ms: Option<f64>,
    /// Requests (or store calls) timed.
    pub samples: u64,
    /// Events the last answer held (pages), or events stored (inserts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_events: Option<u64>,
    /// Seconds the timed part took in all.
    pub seconds: f64,
}

impl Measurement {
    /// Inserts: `events` stored in `elapsed`, with per-request latencies when there were some.
    pub fn throughput(events: u64, elapsed: Duration, latencies: Option<&Latencies>) -> Self {
        let seconds = elapsed.as_secs_f64();
        let mut measurement = latencies.map_or_else(Self::default, Self::latency);
        measurement.events_per_second = Some(if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        });
        measurement.result_events = Some(events);
        measurement.seconds = seconds;
        measurement
    }

    /// Queries: percentiles of the recorded latencies.
    pub fn latency(latencies: &Latencies) -> Self {
        let histogram = &latencies.histogram;
        Self {
            events_per_second: None,
            p50_ms: Some(latencies.millis_at(0.50)),
            p99_ms: Some(latencies.millis_at(0.99)),
            max_ms: Some(histogram.max() as f64 / 1000.0),
            mean_ms: Some(histogram.mean() / 1000.0),
            samples: histogram.len(),
            result_events: None,
            seconds: histogram.mean() * histogram.len() as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let measured = Measurement::latency(&latencies);
        assert!((measured.p50_ms.unwrap() - 50.0).abs() < 0.1);
        assert!((measured.p99_ms.unwrap() - 99.0).abs() < 0.1);
        assert_eq!(measured.samples, 100);
        let rate = Measurement::throughput(1000, Duration::from_secs(2), Some(&latencies));
        assert_eq!(rate.events_per_second, Some(500.0));
        assert_eq!(rate.samples, 100);
    }
}
