//! Stopping the server: requests in flight are finished, and connections that have not sent
//! anything (HTTP clients keep spare ones open) do not hold the stop for their idle timeout.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tfr_server::{AppState, ServerConfig};
use tfr_store::Store;
use tfr_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_does_not_hold_the_stop() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tfr_server::serve(
        listener,
        AppState::new(Arc::clone(&store), config),
        async move {
            let _ = stopped.await;
        },
    ));
    // A request answered on a kept-alive connection, and a connection that says nothing.
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("a response");
    assert!(answer.status().is_success());
    let mut silent = TcpStream::connect(address).expect("connect");
    // Let the server accept it.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    stop.send(()).expect("the server is running");
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the server stopped before the idle timeout")
        .expect("the server task")
        .expect("serve");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "the stop took {took:?}");
    // The silent connection was closed, not left open.
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    let mut buffer = [0_u8; 16];
    let read = silent.read(&mut buffer);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the silent connection is still open: {read:?}"
    );
    store.shutdown().await.expect("shutdown");
}
