//! Durability: every event the server acknowledged survives `kill -9`, exactly once, and
//! clients retrying with their idempotency keys after the crash create nothing twice.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use serde_json::{Value, json};

const WRITERS: usize = 16;

/// Posts events with unique keys until stopped by the crash; returns what was acknowledged
/// and what was attempted without an answer.
async fn write_until_refused(
    base: String,
    writer: usize,
    acknowledged: Arc<Mutex<HashMap<String, String>>>,
) -> Vec<Value> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut unanswered = Vec::new();
    for i in 0.. {
        let key = format!("crash-{writer}-{i}");
        let event = json!({
            "title": format!("write {i} of writer {writer}"),
            "system": "durability",
            "author": "crash-test",
            "idempotency_key": key,
            // Half the events carry a diff, to exercise the second table.
            "diff": if i % 2 == 0 { Value::String(format!("+line {i}\n")) } else { Value::Null },
        });
        match client
            .post(format!("{base}/api/v1/events"))
            .json(&event)
            .send()
            .await
        {
            Ok(response) if response.status().as_u16() == 201 => {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                match body["id"].as_str() {
                    Some(id) => {
                        acknowledged.lock().unwrap().insert(key, id.to_owned());
                    }
                    // Acknowledged but the body was cut by the crash: we can't know the id.
                    None => unanswered.push(event),
                }
            }
            Ok(response) => panic!("unexpected status {}", response.status()),
            Err(error) => {
                if i == 0 {
                    eprintln!("writer {writer}: first request failed: {error:?}");
                }
                unanswered.push(event);
                break;
            }
        }
    }
    unanswered
}

async fn export(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let text = client
        .get(format!("{base}/api/v1/export?q=system:durability"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(HashMap::new()));
    for round in 0..3 {
        let server = Server::start(dir.path(), &[]);
        let base = server.base.clone();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(write_until_refused(
                    base.clone(),
                    round * 100 + w,
                    Arc::clone(&acknowledged),
                ))
            })
            .collect();
        // Crash under load: once a good number of writes were acknowledged this round.
        let before = acknowledged.lock().unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while acknowledged.lock().unwrap().len() < before + 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: writes too slow"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::task::spawn_blocking(move || server.crash())
            .await
            .unwrap();
        let mut unanswered = Vec::new();
        for writer in writers {
            unanswered.extend(writer.await.unwrap());
        }

        eprintln!(
            "round {round}: {} acknowledged so far, {} unanswered at the crash",
            acknowledged.lock().unwrap().len(),
            unanswered.len()
        );
        let server = Server::start(dir.path(), &[]);
        // Every acknowledged event is there, with the id it was acknowledged with.
        let stored = export(&client, &server.base).await;
        let by_key: HashMap<&str, &str> = stored
            .iter()
            .map(|e| {
                (
                    e["idempotency_key"].as_str().unwrap(),
                    e["id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(by_key.len(), stored.len(), "no key stored twice");
        let acked = acknowledged.lock().unwrap().clone();
        for (key, id) in &acked {
            assert_eq!(
                by_key.get(key.as_str()),
                Some(&id.as_str()),
                "acknowledged {key} lost"
            );
        }
        // Clients retry what got no answer: each is stored once, whether or not it had landed.
        for event in &unanswered {
            let response = client
                .post(server.url("/api/v1/events"))
                .json(event)
                .send()
                .await
                .unwrap();
            assert!(
                matches!(response.status().as_u16(), 200 | 201),
                "retry answered {}",
                response.status()
            );
            let body: Value = response.json().await.unwrap();
            let key = event["idempotency_key"].as_str().unwrap().to_owned();
            acknowledged
                .lock()
                .unwrap()
                .insert(key, body["id"].as_str().unwrap().to_owned());
        }
        let stored = export(&client, &server.base).await;
        let keys: HashSet<&str> = stored
            .iter()
            .map(|e| e["idempotency_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), stored.len(), "no duplicates after retries");
        assert_eq!(stored.len(), acknowledged.lock().unwrap().len());
        for event in &stored {
            let i: u64 = event["idempotency_key"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                event["has_diff"],
                i.is_multiple_of(2),
                "diff kept with its event"
            );
        }
        let status = server.terminate();
        assert!(status.success(), "clean stop after round {round}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    // A bulk request still streaming its body when SIGTERM arrives must be completed.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(receiver));
    let request = client
        .post(server.url("/api/v1/events/bulk"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send();
    let in_flight = tokio::spawn(request);
    sender
        .send(Ok(json!({"title": "first", "system": "s", "author": "a"})
            .to_string()
            + "\n"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let terminated = tokio::task::spawn_blocking(move || server.terminate());
    tokio::time::sleep(Duration::from_millis(300)).await;
    sender
        .send(Ok(json!({"title": "second", "system": "s", "author": "a"})
            .to_string()
            + "\n"))
        .await
        .unwrap();
    drop(sender);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["created"], 2, "{outcome}");
    let status = terminated.await.unwrap();
    assert!(status.success(), "exit status {status}");

    // Both events are on disk, and the WAL was checkpointed away.
    let wal = dir.path().join("tfr.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
    let server = Server::start(dir.path(), &[]);
    let page: Value = client
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
}

/// Adapts a channel receiver into a stream for a request body.
fn tokio_stream_from(
    receiver: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
