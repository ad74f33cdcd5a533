//! The server's bounds against a real listener on loopback, with raw TCP
//! clients: slow headers are cut off, the connection cap holds, and shutdown
//! keeps its deadline whatever the clients do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use governor_dashboard::{Config, Fixed, Limits, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// Far longer than anything here should take; every wait is bounded by it.
const BOUND: Duration = Duration::from_secs(10);

struct Running {
    addr: std::net::SocketAddr,
    server: Server,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(app: Router, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(limits);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().run(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            server,
            stop: Some(stop),
            task,
        }
    }

    fn dashboard() -> Router {
        governor_dashboard::router(Fixed::default(), Config::default())
    }

    /// Triggers shutdown and waits (bounded) for the server to return.
    async fn stop(mut self) -> Duration {
        let t = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(BOUND, self.task)
            .await
            .expect("the server returns after shutdown")
            .unwrap()
            .unwrap();
        t.elapsed()
    }
}

/// Reads until the server closes; `None` if it has not within `within`.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.is_ok().then_some(got)
}

/// Polls `f` until it holds, failing after `BOUND`.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
        max_connections: 64,
        shutdown_timeout: Duration::from_secs(10),
    }
}

const PARTIAL: &[u8] = b"GET / HTTP/1.1\r\nHost: dashboard\r\nUser-Agent: slow";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: dashboard\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn a_request_whose_headers_never_finish_is_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_secs(1);
    let server = Running::start(
        Running::dashboard(),
        Limits {
            header_read_timeout: timeout,
            ..limits()
        },
    )
    .await;
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let t = Instant::now();
    partial.write_all(PARTIAL).await.unwrap();
    let got = read_to_close(&mut partial, timeout + Duration::from_secs(3))
        .await
        .expect("the server closes a connection whose headers stop coming");
    let waited = t.elapsed();
    assert!(
        waited >= timeout - Duration::from_millis(100),
        "closed after {waited:?}, before the timeout"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains(" 200 "), "{text}");
    // A connection that sends nothing at all goes the same way.
    read_to_close(&mut silent, timeout + Duration::from_secs(3))
        .await
        .expect("the server closes a silent connection");
    assert_eq!(server.server.open_connections(), 0);
    // And the server still serves.
    let mut ok = TcpStream::connect(server.addr).await.unwrap();
    ok.write_all(HEALTHZ).await.unwrap();
    let reply = read_to_close(&mut ok, BOUND).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200"));
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_and_the_server_serves_again_when_slots_free() {
    let cap = 4;
    let server = Running::start(
        Running::dashboard(),
        Limits {
            max_connections: cap,
            ..limits()
        },
    )
    .await;
    // Twice the cap of idle connections: the kernel completes every handshake,
    // the server takes only `cap` of them.
    let mut idle = Vec::new();
    for _ in 0..cap * 2 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    eventually("the server holds `cap` connections", || {
        server.server.open_connections() == cap
    })
    .await;
    // A request beyond the cap waits: not answered while the slots are taken.
    let mut waiting = TcpStream::connect(server.addr).await.unwrap();
    waiting.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");
    assert_eq!(server.server.open_connections(), cap);
    // The idle clients leave; the waiting request is served.
    drop(idle);
    let reply = read_to_close(&mut waiting, BOUND)
        .await
        .expect("answered once slots free");
    assert!(reply.starts_with(b"HTTP/1.1 200"), "{reply:?}");
    assert!(
        server.server.peak_connections() <= cap,
        "{} open at once over a cap of {cap}",
        server.server.peak_connections()
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_keeps_its_deadline_despite_a_half_open_connection()
 {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let app = {
        let (entered, release) = (entered.clone(), release.clone());
        Router::new().route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }),
        )
    };
    let deadline = Duration::from_secs(1);
    let server = Running::start(
        app,
        Limits {
            shutdown_timeout: deadline,
            ..limits()
        },
    )
    .await;
    // One connection stuck in the middle of its headers (the header-read
    // timeout, 30 s, is far beyond the shutdown deadline).
    let mut half_open = TcpStream::connect(server.addr).await.unwrap();
    half_open.write_all(PARTIAL).await.unwrap();
    // One request in flight.
    let mut in_flight = TcpStream::connect(server.addr).await.unwrap();
    in_flight
        .write_all(b"GET /slow HTTP/1.1\r\nHost: dashboard\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(BOUND, entered.notified())
        .await
        .expect("the slow handler starts");
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    // New connections are no longer taken once the listener is gone.
    let deadline_at = Instant::now() + BOUND;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline_at,
            "still accepting after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The in-flight request finishes, and its connection closes after it.
    release.notify_one();
    let reply = read_to_close(&mut in_flight, BOUND)
        .await
        .expect("the in-flight connection closes after its response");
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("done"),
        "{text}"
    );
    // The half-open one does not hold shutdown past the deadline.
    let took = tokio::time::timeout(BOUND, stopping)
        .await
        .expect("shutdown returns")
        .unwrap();
    assert!(
        took < deadline + Duration::from_secs(1),
        "shutdown took {took:?} with a deadline of {deadline:?}"
    );
    read_to_close(&mut half_open, Duration::from_secs(1))
        .await
        .expect("the half-open connection is dropped at the deadline");
}

/// A handler slower than the request timeout is answered 408 at the timeout.
#[tokio::test]
async fn a_slow_response_is_cut_off_at_the_request_timeout() {
    let app = Router::new().route("/hang", get(std::future::pending::<&'static str>));
    let timeout = Duration::from_secs(1);
    let server = Running::start(
        app,
        Limits {
            request_timeout: timeout,
            ..limits()
        },
    )
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let t = Instant::now();
    s.write_all(b"GET /hang HTTP/1.1\r\nHost: dashboard\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_to_close(&mut s, BOUND).await.expect("an answer");
    assert!(reply.starts_with(b"HTTP/1.1 408"), "{reply:?}");
    assert!(t.elapsed() >= timeout - Duration::from_millis(100));
    server.stop().await;
}
