//! The report: lines comparing HTTP and direct, checked against the targets of issue 3, the
//! server's memory and start time, and the machine it ran on. Printed as Markdown, saved as
//! JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::measure::Measurement;
use crate::workload::Generated;

/// One line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub key: String,
    pub label: String,
    pub http: Option<Measurement>,
    pub direct: Option<Measurement>,
    /// HTTP / direct: the ratio of rates for inserts (below 1: the service costs throughput),
    /// of p50 latencies for queries (above 1: the service adds time).
    pub ratio: Option<f64>,
    pub targets: Vec<Check>,
}

/// A target and whether this run met it (`None`: nothing to judge it on).
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub target: String,
    pub met: Option<bool>,
}

/// What a target constrains.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    MinRate(f64),
    MaxP99Ms(f64),
    MinRatio(f64),
}

impl Goal {
    pub fn check(self, line: &Line) -> Check {
        // Targets are about the service: judged on HTTP, or on the store when HTTP was skipped.
        let measured = |side: &Option<Measurement>| side.clone().filter(|m| m.samples > 0);
        let side = measured(&line.http).or_else(|| measured(&line.direct));
        let side = side.as_ref();
        match self {
            Goal::MinRate(rate) => Check {
                target: format!("≥ {} events/s", thousands(rate)),
                met: side
                    .and_then(|m| m.events_per_second)
                    .map(|measured| measured >= rate),
            },
            Goal::MaxP99Ms(ms) => Check {
                target: format!("p99 ≤ {ms} ms"),
                met: side.and_then(|m| m.p99_ms).map(|measured| measured <= ms),
            },
            Goal::MinRatio(ratio) => Check {
                target: format!("HTTP/direct ≥ {ratio}"),
                met: line.ratio.map(|measured| measured >= ratio),
            },
        }
    }
}

/// The machine, as far as the benchmark can tell.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_bytes: Option<u64>,
    /// Device, file system and whether it spins, of the work directory's mount.
    pub disk: Option<String>,
    pub kernel: Option<String>,
    /// `/proc/loadavg` when the run started: other work on the machine skews the figures.
    pub load_average_at_start: Option<String>,
    /// 4 KiB appends each followed by `fdatasync`, per second, in the work directory: the
    /// ceiling of durable commits one after another.
    pub fsyncs_per_second: Option<f64>,
}

/// Facts about the server process.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerFacts {
    pub tfr_binary: String,
    /// `VmHWM` when the workload was done: the peak resident set of the whole run.
    pub peak_rss_bytes: Option<u64>,
    /// Peak `VmRSS` sampled during each phase.
    pub rss_by_phase: Vec<PhaseRss>,
    /// CPU time of the server's threads over each insert phase.
    pub cpu_by_phase: Vec<PhaseCpu>,
    /// Resident set right after a restart with the data loaded.
    pub rss_after_restart_bytes: Option<u64>,
    /// From spawning `tfr serve` to the first `200` from `/readyz`, one per restart.
    pub start_to_ready_ms: Vec<f64>,
    /// From SIGTERM to exit after the workload.
    pub stop_ms: Option<f64>,
    pub database_bytes: Option<u64>,
}

/// The CPU time threads used over one insert phase, until the full-text index held every
/// event: what storing an event costs, whichever thread does it.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseCpu {
    pub phase: String,
    /// Events the phase stored.
    pub events: u64,
    /// From the phase's last answer until the full-text index held every event (SQLite).
    pub index_catch_up_ms: Option<f64>,
    pub threads: Vec<ThreadCpu>,
}

impl PhaseCpu {
    /// CPU seconds of the threads named `name` (0 when none worked).
    pub fn seconds_of(&self, name: &str) -> f64 {
        self.sum(|thread| thread.thread == name)
    }

    /// CPU seconds of all the threads.
    pub fn seconds_of_all(&self) -> f64 {
        self.sum(|_| true)
    }

    fn sum(&self, keep: impl Fn(&ThreadCpu) -> bool) -> f64 {
        // Starting from 0.0: an empty sum of floats is -0.0.
        self.threads
            .iter()
            .filter(|thread| keep(thread))
            .fold(0.0, |sum, thread| sum + thread.seconds)
    }
}

/// CPU seconds of the threads of one name (as Linux shows it, cut at 15 bytes).
#[derive(Clone, Debug, Serialize)]
pub struct ThreadCpu {
    pub thread: String,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseRss {
    pub phase: String,
    pub bytes: u64,
}

/// Facts about the store opened in-process.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirectFacts {
    /// Opening the store with the data loaded, then a successful `ping`, one per reopening.
    pub open_to_ready_ms: Vec<f64>,
    /// CPU time of the store's threads over each insert phase.
    pub cpu_by_phase: Vec<PhaseCpu>,
    pub database_bytes: Option<u64>,
}

/// Settings the run was made with.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub events: u64,
    pub seed: u64,
    pub store: String,
    pub bulk_batch: usize,
    pub bulk_in_flight: usize,
    pub posts: u64,
    pub concurrent_posts: u64,
    pub clients: usize,
    pub queries: usize,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub tfr_commit: Option<String>,
    pub machine: Machine,
    pub settings: Settings,
    pub generated: Generated,
    pub lines: Vec<Line>,
    pub server: Option<ServerFacts>,
    pub direct: Option<DirectFacts>,
    pub seconds_total: f64,
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Milliseconds with the precision they deserve.
fn ms(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn bytes(value: u64) -> String {
    let mib = value as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

fn cell(measurement: Option<&Measurement>) -> String {
    let Some(m) = measurement.filter(|m| m.samples > 0) else {
        return "—".into();
    };
    let mut parts = Vec::new();
    if let Some(rate) = m.events_per_second {
        parts.push(format!("{} ev/s", thousands(rate)));
    }
    if let (Some(p50), Some(p99)) = (m.p50_ms, m.p99_ms) {
        parts.push(format!("p50 {} · p99 {} ms", ms(p50), ms(p99)));
    }
    parts.join(" · ")
}

fn verdict(checks: &[Check]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    checks
        .iter()
        .map(|check| {
            let mark = match check.met {
                Some(true) => "✓",
                Some(false) => "✗ missed",
                None => "?",
            };
            format!("{} {mark}", check.target)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Report {
    /// The report as Markdown: a heading line, the comparison table, the server's facts.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let m = &self.machine;
        let _ = writeln!(
            out,
            "**{} events** (+{} single posts) on **{}**, seed {}, bulk requests of {} ({} in flight), {} timed repetitions per query — {}{}",
            thousands(s.events as f64),
            thousands((s.posts + s.concurrent_posts) as f64),
            s.store,
            s.seed,
            s.bulk_batch,
            s.bulk_in_flight,
            s.queries,
            self.date,
            self.tfr_commit
                .as_ref()
                .map(|c| format!(", tfr {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "\nMachine: {} CPUs ({}), {} memory, disk {} ({} fsyncs/s), Linux {}; load average at start {}.\n",
            m.cpus,
            m.cpu_model.as_deref().unwrap_or("unknown model"),
            m.memory_bytes.map_or("unknown".into(), bytes),
            m.disk.as_deref().unwrap_or("unknown"),
            m.fsyncs_per_second.map_or("?".into(), thousands),
            m.kernel.as_deref().unwrap_or("?"),
            m.load_average_at_start.as_deref().unwrap_or("?"),
        );
        out.push_str("| measure | HTTP | direct (store) | HTTP/direct | target |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for line in &self.lines {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                line.label,
                cell(line.http.as_ref()),
                cell(line.direct.as_ref()),
                line.ratio.map_or("—".into(), |r| format!("{r:.2}")),
                verdict(&line.targets)
            );
        }
        out.push_str("\nHTTP/direct: ratio of rates for inserts, of p50 latencies for queries.\n");
        if let Some(server) = &self.server {
            out.push_str("\n| server | value | target |\n| --- | --- | --- |\n");
            if let Some(peak) = server.peak_rss_bytes {
                let met = peak <= 256 * 1024 * 1024;
                let _ = writeln!(
                    out,
                    "| peak RSS, whole run (VmHWM) | {} | ≤ 256 MB {} |",
                    bytes(peak),
                    if met { "✓" } else { "✗ missed" }
                );
            }
            for phase in &server.rss_by_phase {
                let _ = writeln!(
                    out,
                    "| peak RSS during {} | {} | |",
                    phase.phase,
                    bytes(phase.bytes)
                );
            }
            if let Some(rss) = server.rss_after_restart_bytes {
                let _ = writeln!(out, "| RSS after a restart, idle | {} | |", bytes(rss));
            }
            if let Some(worst) = server.start_to_ready_ms.iter().copied().reduce(f64::max) {
                let all: Vec<String> = server.start_to_ready_ms.iter().map(|v| ms(*v)).collect();
                let _ = writeln!(
                    out,
                    "| start to ready with the data (worst of {}: {} ms) | {} ms | ≤ 1 s {} |",
                    all.len(),
                    all.join(", "),
                    ms(worst),
                    if worst <= 1000.0 { "✓" } else { "✗ missed" }
                );
            }
            if let Some(stop) = server.stop_ms {
                let _ = writeln!(out, "| clean stop (SIGTERM to exit) | {} ms | |", ms(stop));
            }
            if let Some(size) = server.database_bytes {
                let _ = writeln!(out, "| database on disk | {} | |", bytes(size));
            }
        }
        if let Some(direct) = &self.direct
            && let Some(worst) = direct.open_to_ready_ms.iter().copied().reduce(f64::max)
        {
            let _ = writeln!(
                out,
                "\nDirect store: open to ready {} ms (worst of {}); database on disk {}.",
                ms(worst),
                direct.open_to_ready_ms.len(),
                direct.database_bytes.map_or("?".into(), bytes)
            );
        }
        if let Some(server) = &self.server {
            out.push_str(&cpu_table("server thread (HTTP)", &server.cpu_by_phase));
        }
        if let Some(direct) = &self.direct {
            out.push_str(&cpu_table("store thread (direct)", &direct.cpu_by_phase));
        }
        let g = &self.generated;
        if g.events > 0 {
            let _ = writeln!(
                out,
                "\nHistory: {} events, {} of NDJSON, {:.1}% with a diff, common word in {:.2}%, rare word in {} events; total run {:.0} s.",
                thousands(g.events as f64),
                bytes(g.ndjson_bytes),
                g.with_diff as f64 * 100.0 / g.events as f64,
                g.common_word_events as f64 * 100.0 / g.events as f64,
                thousands(g.rare_word_events as f64),
                self.seconds_total
            );
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }
}

/// CPU per event by thread and insert phase, in µs, with the time the full-text index took to
/// catch up after each phase; empty without figures.
fn cpu_table(title: &str, phases: &[PhaseCpu]) -> String {
    let mut names: Vec<&str> = phases
        .iter()
        .flat_map(|phase| phase.threads.iter().map(|thread| thread.thread.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    // Threads that did next to nothing (the main thread, waiting) are left out.
    names.retain(|name| {
        phases.iter().any(|phase| {
            phase.events > 0 && phase.seconds_of(name) * 1e6 / phase.events as f64 >= 0.5
        })
    });
    if names.is_empty() {
        return String::new();
    }
    let per_event = |phase: &PhaseCpu, seconds: f64| {
        if phase.events == 0 {
            "—".to_owned()
        } else {
            format!("{:.0}", seconds * 1e6 / phase.events as f64)
        }
    };
    let mut out = format!("\n| CPU per event, µs: {title} |");
    for phase in phases {
        let _ = write!(out, " {} |", phase.phase);
    }
    out.push_str("\n| --- |");
    out.push_str(&" --- |".repeat(phases.len()));
    out.push('\n');
    for name in &names {
        let _ = write!(out, "| `{name}` |");
        for phase in phases {
            let _ = write!(out, " {} |", per_event(phase, phase.seconds_of(name)));
        }
        out.push('\n');
    }
    out.push_str("| all |");
    for phase in phases {
        let _ = write!(out, " {} |", per_event(phase, phase.seconds_of_all()));
    }
    out.push_str("\n| full-text index caught up after the phase |");
    for phase in phases {
        let wait = phase
            .index_catch_up_ms
            .map_or("—".to_owned(), |wait| format!("{} ms", ms(wait)));
        let _ = write!(out, " {wait} |");
    }
    out.push_str(
        "\n\nOver each phase until the full-text index held its events: `tfr-sqlite-writ` is the \
         writer, `tfr-sqlite-fts` the full-text indexer, `tfr-sqlite-chec` the checkpoints, \
         `tokio-rt-worker` the HTTP server (requests, JSON, validation, digests).\n",
    );
    out
}

impl Machine {
    /// Reads what Linux says about this machine and the disk under `dir`.
    pub fn detect(dir: &Path) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let cpu_model = read("/proc/cpuinfo").and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        });
        let memory_bytes = read("/proc/meminfo").and_then(|info| {
            let line = info.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kib: u64 = line["MemTotal:".len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        });
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_bytes,
            disk: disk_of(dir),
            kernel: read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_owned()),
            load_average_at_start: read("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
            fsyncs_per_second: fsync_rate(dir),
        }
    }
}

/// Times 200 appends of 4 KiB, each made durable with `fdatasync`, in a scratch file.
fn fsync_rate(dir: &Path) -> Option<f64> {
    use std::io::Write;
    const ROUNDS: u32 = 200;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).ok()?;
    let block = [b'x'; 4096];
    let started = std::time::Instant::now();
    for _ in 0..ROUNDS {
        file.write_all(&block).ok()?;
        file.sync_data().ok()?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Some(f64::from(ROUNDS) / elapsed)
}

/// `device (fstype, rotational=0|1)` of the mount holding `dir`.
fn disk_of(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let (device, fstype) = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let point = fields.next()?;
            let fstype = fields.next()?;
            dir.starts_with(point)
                .then(|| (point.len(), device.to_owned(), fstype.to_owned()))
        })
        .max_by_key(|(length, _, _)| *length)
        .map(|(_, device, fstype)| (device, fstype))?;
    let name = device.rsplit('/').next().unwrap_or(&device);
    // A partition's queue lives under its disk: vda1 → vda, nvme0n1p2 → nvme0n1.
    let disk: String = name
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('p')
        .to_owned();
    let rotational = [
        name,
        disk.as_str(),
        name.trim_end_matches(|c: char| c.is_ascii_digit()),
    ]
    .iter()
    .find_map(|candidate| {
        std::fs::read_to_string(format!("/sys/block/{candidate}/queue/rotational")).ok()
    })
    .map(|flag| {
        if flag.trim() == "1" {
            "rotational=1"
        } else {
            "rotational=0"
        }
    });
    Some(match rotational {
        Some(kind) => format!("{device} ({fstype}, {kind})"),
        None => format!("{device} ({fstype})"),
    })
}

/// The size of every file under `dir`.
pub fn directory_size(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let metadata = entry.metadata().ok()?;
        total += if metadata.is_dir() {
            directory_size(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(ms(0.123), "0.12");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.00 GiB");
    }
}
