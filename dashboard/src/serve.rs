//! Serving a router over TCP within bounds: a deadline for each request's
//! headers (which also closes idle connections), a deadline for each response,
//! a cap on open connections, and a shutdown that lets in-flight requests
//! finish but drops whatever is left at a deadline.
//!
//! `axum::serve` has none of these knobs, so this is its own accept loop over
//! hyper's HTTP/1 connection builder.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_http::timeout::TimeoutLayer;

/// The bounds a server keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's headers, from when the server
    /// starts waiting for them: a connection that sends nothing (idle, or
    /// kept alive between requests) is closed after this too.
    pub header_read_timeout: Duration,
    /// Time to produce a response once the headers are in; then 408.
    pub request_timeout: Duration,
    /// Connections open at once. Beyond it the server accepts no more until
    /// one closes: new ones wait in the kernel's listen backlog.
    pub max_connections: usize,
    /// After the shutdown signal: how long in-flight requests may take before
    /// every connection still open is dropped.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 512,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A server with its limits and a count of its open connections.
#[derive(Clone, Debug, Default)]
pub struct Server {
    limits: Limits,
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// Counts a connection open for as long as it lives (its task may be aborted).
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: &Arc<AtomicUsize>, peak: &AtomicUsize) -> Self {
        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        Self(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: Limits {
                max_connections: limits.max_connections.max(1),
                ..limits
            },
            open: Arc::default(),
            peak: Arc::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections open now (accepted and not yet closed).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Most connections open at once so far.
    pub fn peak_connections(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Serves `app` on `listener` until `shutdown` completes; then stops
    /// accepting, lets in-flight requests finish (their connections close
    /// after the response) and, at the shutdown deadline, drops what is left.
    pub async fn run<F>(self, listener: TcpListener, app: Router, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send,
    {
        let limits = self.limits;
        let app = app.layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let (stop, stopping) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        'accept: loop {
            // A free slot first: at the cap, nothing is accepted.
            let permit = tokio::select! {
                () = &mut shutdown => break 'accept,
                Some(_) = connections.join_next() => continue 'accept,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break 'accept,
                },
            };
            let stream = loop {
                tokio::select! {
                    () = &mut shutdown => break 'accept,
                    Some(_) = connections.join_next() => {}
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => break stream,
                        Err(e) if is_per_connection(&e) => {}
                        Err(e) => {
                            // Out of file descriptors and the like: wait a
                            // little rather than spin.
                            tracing::warn!(error = %e, "dashboard: accepting a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            };
            let _ = stream.set_nodelay(true);
            let counted = Counted::new(&self.open, &self.peak);
            let conn = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
            let mut stopping = stopping.clone();
            connections.spawn(async move {
                let _slot = (permit, counted);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => done(r),
                    _ = stopping.changed() => {
                        conn.as_mut().graceful_shutdown();
                        done(conn.await);
                    }
                }
            });
        }
        drop(listener);
        let _ = stop.send(true);
        let drained = tokio::time::timeout(limits.shutdown_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::info!(
                connections = connections.len(),
                "dashboard: shutdown deadline reached, dropping the connections left"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

fn done(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "dashboard: connection ended");
    }
}

/// Errors of one connection (it went away before it was accepted), not of the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` with `limits` until `shutdown`; see [`Server::run`].
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    Server::new(limits).run(listener, app, shutdown).await
}
