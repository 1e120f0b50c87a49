//! The benchmark still works end to end, at a small scale: a real `tfr serve` (the debug build
//! in this target directory), every phase on both sides, a report. Timings are never asserted,
//! only that each line measured what it should have.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use tfr_bench::Options;

const EVENTS: u64 = 3_000;
const POSTS: u64 = 50;
const CONCURRENT_POSTS: u64 = 640;

/// `target/debug/tfr`: built by `cargo test --workspace` before any test runs; built here when
/// only this crate's tests were asked for.
fn tfr_binary() -> PathBuf {
    if let Ok(path) = tfr_bench::server::find_tfr_binary(None) {
        return path;
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "tfr"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p tfr failed");
    tfr_bench::server::find_tfr_binary(None).expect("tfr was just built")
}

#[test]
fn the_benchmark_runs_end_to_end() {
    let binary = tfr_binary();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("report.json");
    let mut arguments: Vec<OsString> = ["tfr-bench", "--queries", "3", "--restarts", "1"]
        .map(OsString::from)
        .into();
    for (flag, value) in [
        ("--events", EVENTS),
        ("--posts", POSTS),
        ("--concurrent-posts", CONCURRENT_POSTS),
    ] {
        arguments.extend([flag.into(), value.to_string().into()]);
    }
    arguments.extend(["--tfr-bin".into(), binary.into_os_string()]);
    arguments.extend(["--work-dir".into(), work.path().as_os_str().to_owned()]);
    let options = Options::parse_from(arguments);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(tfr_bench::run(&options)).unwrap();

    let line = |key: &str| {
        report
            .lines
            .iter()
            .find(|line| line.key == key)
            .unwrap_or_else(|| panic!("no line {key}"))
    };
    let answer = |key: &str| {
        let line = line(key);
        let http = line.http.as_ref().unwrap().result_events.unwrap();
        let direct = line.direct.as_ref().unwrap().result_events.unwrap();
        assert_eq!(http, direct, "{key}: HTTP and direct disagree");
        http
    };
    assert_eq!(answer("bulk_ingest"), EVENTS);
    assert_eq!(answer("posts_1_client"), POSTS);
    assert_eq!(answer("posts_concurrent"), CONCURRENT_POSTS);
    assert_eq!(answer("feed_first_page"), 50);
    assert_eq!(answer("feed_deep_page"), 50);
    assert_eq!(answer("feed_system_popular"), 50);
    assert_eq!(answer("search_common_word"), 50);
    assert_eq!(answer("search_zero_hits"), 0);
    assert_eq!(answer("last"), 1);
    // The histogram over everything counts every event stored.
    assert_eq!(
        answer("histogram_day_kind"),
        EVENTS + POSTS + CONCURRENT_POSTS
    );
    for line in &report.lines {
        for side in [&line.http, &line.direct] {
            let measured = side.as_ref().unwrap();
            assert!(measured.samples > 0, "{}", line.key);
            assert!(
                measured.events_per_second.is_some() || measured.p99_ms.is_some(),
                "{}",
                line.key
            );
        }
        assert!(line.ratio.is_some(), "{}", line.key);
    }
    let server = report.server.as_ref().unwrap();
    assert!(server.peak_rss_bytes.unwrap() > 0);
    assert_eq!(server.start_to_ready_ms.len(), 1);
    assert!(server.database_bytes.unwrap() > 0);
    assert_eq!(report.generated.events, EVENTS);
    // CPU by thread: on both sides the writer and the full-text indexer worked in every insert
    // phase, the index caught up after each, and the server's HTTP workers show on its side.
    let direct = report.direct.as_ref().unwrap();
    for (side, phases) in [
        ("http", &server.cpu_by_phase),
        ("direct", &direct.cpu_by_phase),
    ] {
        assert_eq!(phases.len(), 3, "{side}");
        assert_eq!(phases[0].events, EVENTS, "{side}");
        for phase in phases.iter() {
            let used = |name: &str| phase.seconds_of(name);
            assert!(used("tfr-sqlite-writ") > 0.0, "{side} {}", phase.phase);
            assert!(used("tfr-sqlite-fts") > 0.0, "{side} {}", phase.phase);
            assert!(phase.index_catch_up_ms.is_some(), "{side} {}", phase.phase);
            let http_workers = used("tokio-rt-worker") > 0.0;
            assert_eq!(http_workers, side == "http", "{side} {}", phase.phase);
        }
    }

    let table = report.markdown();
    assert!(table.contains("| measure | HTTP | direct (store) | HTTP/direct | target |"));
    assert!(table.matches("\n| ").count() > report.lines.len());
    assert!(table.contains("| CPU per event, µs: server thread (HTTP) | bulk ingest |"));
    assert!(table.contains("| CPU per event, µs: store thread (direct) | bulk ingest |"));
    assert!(table.contains("| `tfr-sqlite-writ` |"));
    report.write_json(&json).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written["settings"]["events"], EVENTS);
    // The work directory is cleaned up unless --keep-data.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1);
}
