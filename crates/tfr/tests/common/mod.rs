//! Starting the real `tfr` binary as a server on 127.0.0.1, for black-box tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `tfr serve` process on an ephemeral loopback port.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Log lines after the "listening" line, for tests that check what the server said.
    pub log: mpsc::Receiver<String>,
}

/// Where a test server keeps its events.
#[derive(Clone, Copy, Debug)]
pub enum Storage<'a> {
    /// The embedded SQLite store in this directory (`--data`).
    Data(&'a Path),
    /// The PostgreSQL database at this URL (`--database`).
    Database(&'a str),
}

impl Server {
    /// Starts `tfr serve` on `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_on(Storage::Data(data_dir), extra)
    }

    /// Starts `tfr serve` on the given store and waits until it listens.
    pub fn start_on(storage: Storage<'_>, extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tfr"));
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        match storage {
            Storage::Data(dir) => command.arg("--data").arg(dir),
            Storage::Database(url) => command.args(["--database", url]),
        };
        let mut child = command
            .args(extra)
            .env("TFR_LOG", "info")
            .env_remove("TFR_CONFIG")
            .env_remove("TFR_DATA")
            .env_remove("TFR_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tfr serve");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(at) = line.find("listening on http://") {
                        let base = line[at + "listening on ".len()..]
                            .split_whitespace()
                            .next()
                            .expect("address")
                            .to_owned();
                        return Server {
                            child,
                            base,
                            log: receiver,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("tfr serve did not start listening within 30 s");
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn crash(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        self.child.wait().expect("wait for tfr serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
