//! The real `tfr serve`, run as a child process on 127.0.0.1 with a port the system picks; and
//! its memory and CPU time, read from `/proc/<pid>`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a start may take before the benchmark gives up.
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a clean stop may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the server keeps its events.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// `--data DIR`: the embedded SQLite store.
    Data(PathBuf),
    /// `--database URL`.
    Database(String),
}

/// A running `tfr serve`.
pub struct Server {
    child: Child,
    pub base_url: String,
    log_reader: Option<JoinHandle<()>>,
}

/// The `tfr` binary to run: `explicit` if given, else the one built next to this program (in
/// the same target directory: `target/release/tfr` beside `target/release/tfr-bench`, or beside
/// the `deps/` folder a test runs from).
pub fn find_tfr_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            // The server runs in the work directory: a relative path would not lead there.
            return std::fs::canonicalize(path)
                .with_context(|| format!("--tfr-bin {}", path.display()));
        }
        bail!("--tfr-bin {}: no such file", path.display());
    }
    let exe = std::env::current_exe().context("cannot locate this program")?;
    let name = format!("tfr{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join(&name));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(&name));
        }
    }
    candidates
        .into_iter()
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "no tfr binary next to {}: build it first (`cargo build --release -p tfr`) or pass --tfr-bin",
                exe.display()
            )
        })
}

impl Server {
    /// Starts `tfr serve` on 127.0.0.1 (port 0: the system picks one) and returns once it
    /// listens, with its address read from its log. Its standard error goes to `log`.
    pub fn start(
        binary: &Path,
        store: &StoreLocation,
        work_dir: &Path,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .current_dir(work_dir)
            .env("TFR_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("TFR_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match store {
            StoreLocation::Data(dir) => command.arg("--data").arg(dir),
            StoreLocation::Database(url) => command.arg("--database").arg(url),
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let mut log_file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot write {}", log.display()))?;
        let (found, address) = mpsc::channel();
        // The log must be drained for as long as the server runs, or it would block writing it.
        let log_reader = std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_file, "{line}");
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on ".len()..];
                    let url: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !c.is_control())
                        .collect();
                    if let Some(sender) = found.take() {
                        let _ = sender.send(url);
                    }
                }
            }
        });
        let mut server = Server {
            child,
            base_url: String::new(),
            log_reader: Some(log_reader),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match address.recv_timeout(Duration::from_millis(1)) {
                Ok(url) => {
                    server.base_url = url;
                    return Ok(server);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Some(status) = server.child.try_wait()? {
                        bail!(
                            "tfr serve exited ({status}) before listening; see {}",
                            log.display()
                        );
                    }
                }
                Err(_) => bail!(
                    "tfr serve did not report its address; see {}",
                    log.display()
                ),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.base_url);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("tfr serve at {} never became ready", self.base_url);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Asks the server to stop (SIGTERM, as a service manager would) and waits until it has;
    /// returns how long the stop took. A server that does not stop in time is killed.
    pub fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                if let Some(reader) = self.log_reader.take() {
                    let _ = reader.join();
                }
                if !status.success() {
                    bail!("tfr serve stopped with {status}");
                }
                return Ok(started.elapsed());
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = self.child.kill();
                bail!("tfr serve did not stop within {STOP_TIMEOUT:?}; killed it");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    /// A benchmark that fails half-way leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The resident set of a process, from `/proc/<pid>/status`: now (`VmRSS`) and its peak so far
/// (`VmHWM`), in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
}

pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// Samples a process's resident set every few milliseconds on a thread of its own, and keeps
/// the largest value seen since the last [`RssSampler::take_peak`].
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let peak = Arc::clone(&peak);
            let stop = Arc::clone(&stop);
            move || {
                while !stop.load(Ordering::Relaxed) {
                    match memory(pid) {
                        Some(memory) => {
                            peak.fetch_max(memory.rss, Ordering::Relaxed);
                        }
                        None => break,
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// The largest resident set seen since the last call, in bytes.
    pub fn take_peak(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// CPU time each thread of a process has used so far, summed over the threads that share a
/// name, from `/proc/<pid>/task/*/schedstat` (nanoseconds on a CPU). Empty where Linux does
/// not say; a thread that ended between two readings is missing from the second.
pub fn cpu_by_thread(pid: u32) -> BTreeMap<String, Duration> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(name), Ok(schedstat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        let Some(nanos) = schedstat
            .split_whitespace()
            .next()
            .and_then(|field| field.parse::<u64>().ok())
        else {
            continue;
        };
        *threads
            .entry(name.trim().to_owned())
            .or_insert(Duration::ZERO) += Duration::from_nanos(nanos);
    }
    threads
}

/// The CPU time threads used between two readings of [`cpu_by_thread`], those of `keep`
/// only, in seconds; threads that used none are left out.
pub fn cpu_used(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, f64)> {
    after
        .iter()
        .filter(|(name, _)| keep(name))
        .map(|(name, time)| {
            let earlier = before.get(name).copied().unwrap_or(Duration::ZERO);
            (name.clone(), time.saturating_sub(earlier).as_secs_f64())
        })
        .filter(|(_, seconds)| *seconds > 0.0)
        .collect()
}
