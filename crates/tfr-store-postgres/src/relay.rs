//! TCP connections with `TCP_NODELAY`, which sqlx 0.9.0 does not set.
//!
//! sqlx 0.9.0 dropped the `set_nodelay(true)` its earlier releases made on every TCP connection
//! (upstream issue 4335; the fix is merged but not released). With Nagle's algorithm on, a
//! statement longer than one TCP segment — a group of events, a bulk request — sends its last
//! partial segment only once the server acknowledges the previous one, and the server delays
//! that acknowledgement by up to 40 ms on Linux. Measured on loopback with 64 clients posting
//! single events: 402 events/s through sqlx's own TCP connections, 1,167 over a Unix socket.
//!
//! Until a release has the fix, the store's pools connect through this relay: sqlx connects to
//! a Unix socket in a private directory (mode 0700), and the relay opens the TCP connection to
//! the server with `TCP_NODELAY` and copies bytes both ways. Everything else — TLS and its
//! host name check, authentication, the protocol — stays between sqlx and the server, end to
//! end. Connections to a Unix socket (`host=/path`) need no relay.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx_postgres::PgConnectOptions;
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A listening relay; stops listening and removes its socket when dropped. Connections already
/// relayed end when either side closes them.
pub struct Relay {
    directory: PathBuf,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay to the TCP server `options` name, and returns it with the options that
    /// connect through it. `None` if `options` already name a Unix socket.
    /// A connection the server refuses is tried again for up to `patience`.
    pub fn start(
        options: &PgConnectOptions,
        patience: Duration,
    ) -> io::Result<Option<(Self, PgConnectOptions)>> {
        if options.get_socket().is_some() || options.get_host().starts_with('/') {
            return Ok(None);
        }
        let port = options.get_port();
        let target = Target {
            host: options.get_host().to_owned(),
            port,
            patience,
        };
        let directory = private_directory()?;
        // sqlx connects to `<socket directory>/.s.PGSQL.<port>`, as libpq does.
        let listener = match UnixListener::bind(directory.join(format!(".s.PGSQL.{port}"))) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&directory);
                return Err(error);
            }
        };
        let accept = tokio::spawn(accept_loop(listener, target));
        let relayed = options.clone().socket(&directory);
        Ok(Some((Self { directory, accept }, relayed)))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A new directory only this user can enter, under the system's temporary directory.
fn private_directory() -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let name = format!(
        "tfr-pg-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    remove_abandoned(&std::env::temp_dir());
    let directory = std::env::temp_dir().join(name);
    // `create`, not `create_all`: an existing path (someone else's) is an error, never reused.
    std::fs::DirBuilder::new().mode(0o700).create(&directory)?;
    Ok(directory)
}

/// Where the relay connects, and for how long it keeps trying.
struct Target {
    host: String,
    port: u16,
    patience: Duration,
}

/// Connects to the server, trying again while it refuses for up to `patience` (the pool's
/// acquire timeout): the pool would do the same with a direct connection refused while the
/// server restarts, but through the relay it sees only a closed socket, which it does not
/// retry. Each attempt is bounded by what is left of `patience`, so a server that drops
/// packets does not hold the relay for the system's two-minute connect timeout.
async fn connect(target: &Target) -> Option<TcpStream> {
    let deadline = Instant::now() + target.patience;
    let mut pause = Duration::from_millis(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let address = (target.host.as_str(), target.port);
        let error = match tokio::time::timeout(left, TcpStream::connect(address)).await {
            Ok(Ok(remote)) => return Some(remote),
            Ok(Err(error)) => error,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"),
        };
        if error.kind() != io::ErrorKind::ConnectionRefused || Instant::now() + pause >= deadline {
            tracing::warn!(%error, host = %target.host, port = target.port, "cannot connect to PostgreSQL");
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Removes the directories of relays whose process is gone (killed, so never dropped): on
/// Linux, a `tfr-pg-<pid>-…` directory whose pid has no `/proc` entry and whose socket no
/// longer answers (the pid may be of another pid namespace sharing the directory).
/// Directories of other users stay (removing them fails, quietly), and so does anything else
/// in `parent`.
fn remove_abandoned(parent: &std::path::Path) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("tfr-pg-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new("/proc").join(pid.to_string()).exists() || listening(&entry.path())
        {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Whether a socket in `directory` accepts connections.
fn listening(directory: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return false;
    };
    entries
        .flatten()
        .any(|entry| std::os::unix::net::UnixStream::connect(entry.path()).is_ok())
}

async fn accept_loop(listener: UnixListener, target: Target) {
    let target = Arc::new(target);
    loop {
        match listener.accept().await {
            Ok((local, _)) => {
                tokio::spawn(relay(local, Arc::clone(&target)));
            }
            Err(error) => {
                // Out of file descriptors, say: the pool's connect fails and retries.
                tracing::warn!(%error, "PostgreSQL relay cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn relay(mut local: UnixStream, target: Arc<Target>) {
    let Some(mut remote) = connect(&target).await else {
        // sqlx sees the connection close (and its pool retries, or answers unavailable).
        return;
    };
    if let Err(error) = remote.set_nodelay(true) {
        tracing::warn!(%error, "cannot set TCP_NODELAY on the PostgreSQL connection");
    }
    // Either side closing (or failing) ends the relayed connection, as it would a direct one.
    let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn a_unix_socket_needs_no_relay() {
        let options = PgConnectOptions::from_str("postgres://u@localhost/db?host=/run/pg").unwrap();
        assert!(
            Relay::start(&options, Duration::from_secs(1))
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn bytes_go_both_ways_and_the_socket_goes_at_drop() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let options = PgConnectOptions::new().host("127.0.0.1").port(port);
        let (relay, relayed) = Relay::start(&options, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        let directory = relayed.get_socket().unwrap().clone();
        let path = directory.join(format!(".s.PGSQL.{port}"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&directory).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);

        let mut client = UnixStream::connect(&path).await.unwrap();
        let (mut accepted, _) = server.accept().await.unwrap();
        // A message larger than a loopback segment arrives whole, and the answer comes back.
        let message = vec![7_u8; 200_000];
        client.write_all(&message).await.unwrap();
        let mut received = vec![0_u8; message.len()];
        accepted.read_exact(&mut received).await.unwrap();
        assert_eq!(received, message);
        accepted.write_all(b"answer").await.unwrap();
        let mut answer = [0_u8; 6];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");

        drop(relay);
        assert!(!directory.exists());
        assert!(UnixStream::connect(&path).await.is_err());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn directories_of_dead_relays_are_removed() {
        let parent = std::env::temp_dir().join(format!("tfr-relay-test-{}", std::process::id()));
        std::fs::create_dir_all(&parent).unwrap();
        // pid_max is at most 2^22: this pid cannot be running.
        let dead = parent.join("tfr-pg-4194305-0-1");
        let alive = parent.join(format!("tfr-pg-{}-0-2", std::process::id()));
        // Of a pid this namespace does not see, but listening: kept.
        let elsewhere = parent.join("tfr-pg-4194306-0-3");
        let other = parent.join("tfr-data");
        for directory in [&dead, &alive, &elsewhere, &other] {
            std::fs::create_dir_all(directory).unwrap();
        }
        let gone = std::os::unix::net::UnixListener::bind(dead.join(".s.PGSQL.5432")).unwrap();
        drop(gone);
        let _listening =
            std::os::unix::net::UnixListener::bind(elsewhere.join(".s.PGSQL.5432")).unwrap();
        remove_abandoned(&parent);
        assert!(!dead.exists());
        assert!(alive.exists() && elsewhere.exists() && other.exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }

    /// A relay to `port` on loopback, and a connection through it.
    async fn relayed_client(port: u16, patience: Duration) -> (Relay, UnixStream) {
        let options = PgConnectOptions::new().host("127.0.0.1").port(port);
        let (relay, relayed) = Relay::start(&options, patience).unwrap().unwrap();
        let path = relayed
            .get_socket()
            .unwrap()
            .join(format!(".s.PGSQL.{port}"));
        (relay, UnixStream::connect(&path).await.unwrap())
    }

    /// A free port on loopback, with nothing listening on it.
    async fn refusing_port() -> u16 {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_server_that_refuses_for_a_moment_is_waited_for() {
        let port = refusing_port().await;
        let (_relay, mut client) = relayed_client(port, Duration::from_secs(5)).await;
        client.write_all(b"hello").await.unwrap();
        // The server comes up a little later, as after a restart.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let server = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let (mut accepted, _) = server.accept().await.unwrap();
        let mut greeting = [0_u8; 5];
        accepted.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"hello");
    }

    #[tokio::test]
    async fn a_server_that_keeps_refusing_closes_the_connection() {
        let port = refusing_port().await;
        let (_relay, mut client) = relayed_client(port, Duration::from_millis(200)).await;
        let mut buffer = [0_u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buffer))
            .await
            .expect("the relay gives up within its patience");
        assert_eq!(read.unwrap(), 0, "closed, nothing sent");
    }
}
