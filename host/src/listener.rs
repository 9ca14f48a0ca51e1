//! Serving one router on one listener while shedding clients that hold a connection
//! without using it (slowloris): a request head must arrive within
//! `header_read_timeout`; a connection is closed after `idle_timeout` with no request
//! in flight and no bytes moving, or with a response the client stopped reading; and
//! at most `max_connections` are open at once (beyond that, new ones wait in the
//! kernel's backlog until one closes). HTTP/1 only: the API has no use for HTTP/2, whose
//! pings would keep a connection "active" forever. Every listener the host serves goes
//! through [`serve_listener`].
//!
//! Each request's head is copied off hyper's read buffer before anything holds it
//! (`head.rs`), so a request parked for a minute does not cost its connection a second
//! read buffer.
//!
//! It deliberately does not know about routes, auth or transports: the caller hands it
//! a finished router (or, for a module's own listener, a plain request-to-response
//! function, [`serve_listener_with`]) and says how to label each connection's requests.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

mod activity;
mod head;
mod in_flight;

use activity::{Activity, Shed, Tracked};
use in_flight::{Counted, InFlight};

/// How long clients may hold a connection, and how many may.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// At shutdown, the longest wait for requests in flight.
    pub drain_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(server.keepalive_timeout_secs.max(1)),
            max_connections: server.max_connections.max(1),
            drain_timeout: Duration::from_secs(server.shutdown_drain_secs),
        }
    }
}

/// A source of connections: the TCP listener, the owner-only unix socket, a module's
/// listener.
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Peer: Clone + Send + Sync + 'static;
    fn accept(&mut self) -> impl Future<Output = (Self::Io, Self::Peer)> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Peer = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Peer) {
        loop {
            match tokio::net::TcpListener::accept(self).await {
                Ok((stream, peer)) => {
                    // Small JSON answers: do not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    return (stream, peer);
                }
                // Transient (EMFILE and the like): back off instead of spinning; said
                // at debug level after the first, which is enough to see it.
                Err(e) => {
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    let mut first = false;
                    WARNED.call_once(|| first = true);
                    if first {
                        tracing::warn!("TCP accept failed: {e} (retried every 100 ms; later failures at debug level)");
                    } else {
                        tracing::debug!("TCP accept failed: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Serves `router` on `listener` until `cancel` fires, then lets in-flight requests
/// finish. `label` adds per-connection extensions (the peer address) to every request
/// of that connection.
pub async fn serve_listener<L, F>(
    listener: L,
    router: Router,
    limits: ConnectionLimits,
    label: F,
    cancel: CancellationToken,
) where
    L: Accept,
    F: Fn(&mut http::Extensions, &L::Peer) + Clone + Send + Sync + 'static,
{
    let service = move |request: hyper::Request<Incoming>| router.clone().oneshot(request.map(axum::body::Body::new));
    serve_listener_with(listener, service, limits, label, cancel).await;
}

/// [`serve_listener`] with any request-to-response function in place of a router.
pub async fn serve_listener_with<L, F, S, Fut, B>(
    mut listener: L,
    service: S,
    limits: ConnectionLimits,
    label: F,
    cancel: CancellationToken,
) where
    L: Accept,
    F: Fn(&mut http::Extensions, &L::Peer) + Clone + Send + Sync + 'static,
    S: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<http::Response<B>, Infallible>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    // The head's timeout is the connection watchdog's (`activity.rs`), not hyper's.
    builder.http1().header_read_timeout(None);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let connections = TaskTracker::new();
    // Cancelled when the drain at shutdown is over: what still runs is cut.
    let drain_over = CancellationToken::new();
    let mut warned_full = None::<Instant>;
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        if slots.available_permits() == 0 && warned_full.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
            warned_full = Some(Instant::now());
            tracing::warn!(
                max = limits.max_connections,
                "connection cap reached: new connections wait until one closes (server.max_connections)"
            );
        }
        let (io, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked { inner: io, activity: Arc::clone(&activity) });
        let service = {
            let service = service.clone();
            let label = label.clone();
            let activity = Arc::clone(&activity);
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                // Here, synchronously: hyper's next read follows this call.
                activity.head_complete();
                head::detach(&mut request);
                label(request.extensions_mut(), &peer);
                // A request stays in flight until its body is sent: a quiet log
                // follow or event stream is not an idle connection.
                Counted::new(service(request), InFlight::enter(Arc::clone(&activity)))
            })
        };
        let builder = Arc::clone(&builder);
        let connection = graceful.watch(builder.serve_connection_with_upgrades(io, service).into_owned());
        let drain_over = drain_over.clone();
        connections.spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended with an error: {e}");
                    }
                }
                shed = activity.shed_after(limits.header_read_timeout, limits.idle_timeout) => match shed {
                    Shed::SlowHead => tracing::debug!("connection closed: no whole request head within server.header_read_timeout_secs"),
                    Shed::Idle => tracing::debug!("idle connection closed"),
                },
                () = drain_over.cancelled() => tracing::debug!("connection closed at the end of the shutdown drain"),
            }
            drop(permit);
        });
    }
    // Stop accepting, then let the connections finish their in-flight requests, for
    // as long as the drain allows.
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            secs = limits.drain_timeout.as_secs(),
            "requests still in flight after server.shutdown_drain_secs: closing their connections"
        );
        drain_over.cancel();
    }
    connections.close();
    connections.wait().await;
}
