//! Keep-alive HTTP/1.1 connections to one instance: a stack of idle ones, a new
//! connection when none is idle, and a connection taken back when its response body has
//! been read to its end (see `connection.rs`: the request that uses a connection drives
//! it, so an idle one is driven by nobody and is checked when it is taken out).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::connection::{Link, OpenCount, UpstreamConnection};
use crate::settings::CircuitSettings;

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
    link: Link,
    since: Instant,
}

/// Why a connection could not be had: nothing was sent, any request may go elsewhere.
#[derive(Debug)]
pub struct ConnectError(pub String);

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

    /// The most recently used idle connection that is still open and fresh; the ones
    /// found closed or stale are dropped on the way.
    pub fn checkout(self: &Arc<Self>) -> Option<UpstreamConnection> {
        // The driver is polled here only to learn whether the upstream closed the
        // connection; the request that takes it polls it again with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            let entry = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            let Idle { mut link, since } = entry;
            if since.elapsed() < self.idle_timeout && link.reusable(&mut cx) {
                return Some(UpstreamConnection::Kept { link, pool: Arc::clone(self) });
            }
        }
    }

    /// A new connection; `upgrades` makes it one for a protocol switch (WebSocket),
    /// driven by a task of its own since its upgraded stream outlives the request.
    pub async fn connect(self: &Arc<Self>, upgrades: bool) -> Result<UpstreamConnection, ConnectError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ConnectError(format!("connect to {} timed out", self.addr)))?
            .map_err(|e| ConnectError(format!("connect to {}: {e}", self.addr)))?;
        // Small writes of heads and chunks must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError(format!("handshake with {}: {e}", self.addr)))?;
        let open = OpenCount::new(&self.open);
        if upgrades {
            tokio::spawn(async move {
                // The connection's errors reach the request that was using it.
                let _ = driver.with_upgrades().await;
                drop(open);
            });
            return Ok(UpstreamConnection::Spawned(sender));
        }
        Ok(UpstreamConnection::Kept {
            link: Link { sender, driver: Some(Box::new(driver)), _open: open },
            pool: Arc::clone(self),
        })
    }

    /// Takes a connection back (its caller checked it is reusable); beyond
    /// `max_idle_per_instance` it is closed. Idle ones past `idle_timeout` go first.
    pub fn checkin(&self, link: Link) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // The oldest sit at the bottom of the stack: nobody drives them, so they are
        // closed here rather than left half-closed until the stack reaches them.
        if idle.first().is_some_and(|oldest| now.duration_since(oldest.since) >= self.idle_timeout) {
            idle.retain(|entry| now.duration_since(entry.since) < self.idle_timeout);
        }
        if idle.len() < self.max_idle {
            idle.push(Idle { link, since: now });
        }
    }
}
