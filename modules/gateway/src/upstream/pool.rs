//! Keep-alive HTTP/1.1 connections to one instance: a stack of idle senders, a new
//! connection when none is idle, and the connection given back when the response body
//! has been read to its end (a body dropped half-read closes it instead, since the
//! connection is then mid-message).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::settings::CircuitSettings;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What the gateway sends upstream: a replayable buffer or the client's stream.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    /// Connections open now, idle or busy.
    open: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// Why a connection could not be had: nothing was sent, any request may go elsewhere.
#[derive(Debug)]
pub struct ConnectError(pub String);

/// Why a send failed.
pub enum SendError {
    /// The connection was found closed before the request left: it comes back intact.
    NotSent(Box<Request<RequestBody>>),
    /// The request (or part of it) left; the upstream reset or broke the response.
    Sent(hyper::Error),
}

/// A connection checked out of the pool for one request.
pub struct UpstreamConnection {
    sender: SendRequest<RequestBody>,
    pool: Arc<Pool>,
    /// False for a connection made for a protocol switch: it never goes back idle.
    keep: bool,
}

impl Pool {
    pub fn new(addr: SocketAddr, settings: &CircuitSettings) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
            max_idle: settings.max_idle_per_instance,
            idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The most recently used idle connection that is still open and fresh.
    pub fn checkout(self: &Arc<Self>) -> Option<UpstreamConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < self.idle_timeout {
                return Some(UpstreamConnection { sender: entry.sender, pool: Arc::clone(self), keep: true });
            }
        }
        None
    }

    /// A new connection; `upgrades` keeps it usable for a protocol switch (WebSocket).
    pub async fn connect(self: &Arc<Self>, upgrades: bool) -> Result<UpstreamConnection, ConnectError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ConnectError(format!("connect to {} timed out", self.addr)))?
            .map_err(|e| ConnectError(format!("connect to {}: {e}", self.addr)))?;
        // Small writes of heads and chunks must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError(format!("handshake with {}: {e}", self.addr)))?;
        let open = Arc::clone(&self.open);
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // The connection's errors reach the request that was using it.
            if upgrades {
                let _ = connection.with_upgrades().await;
            } else {
                let _ = connection.await;
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(UpstreamConnection { sender, pool: Arc::clone(self), keep: !upgrades })
    }

    fn checkin(&self, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle { sender, since: Instant::now() });
        }
    }
}

impl UpstreamConnection {
    /// Sends the request; the response body gives the connection back when read.
    pub async fn send(mut self, request: Request<RequestBody>) -> Result<Response<PooledBody>, SendError> {
        if self.sender.ready().await.is_err() {
            return Err(SendError::NotSent(Box::new(request)));
        }
        match self.sender.try_send_request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let back = self.keep.then_some((self.sender, self.pool));
                let pooled = PooledBody { inner: body, back };
                Ok(Response::from_parts(parts, pooled))
            }
            Err(mut e) => match e.take_message() {
                Some(request) => Err(SendError::NotSent(Box::new(request))),
                None => Err(SendError::Sent(e.into_error())),
            },
        }
    }
}

/// An upstream response body that returns its connection to the pool at its end.
pub struct PooledBody {
    inner: Incoming,
    back: Option<(SendRequest<RequestBody>, Arc<Pool>)>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((sender, pool)) = self.back.take() {
            pool.checkin(sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.give_back();
        }
    }
}
