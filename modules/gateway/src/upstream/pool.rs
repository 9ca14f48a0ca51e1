//! Keep-alive HTTP/1.1 connections to one instance: a stack of idle ones, a new
//! connection when none is idle, and a connection taken back when its response body has
//! been read to its end (see `connection.rs`: the request that uses a connection does
//! its I/O, so an idle one is watched by nobody and is checked when it is taken out).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

    /// The most recently used idle connection that is still open and fresh at `now`;
    /// the ones found closed or stale are dropped on the way.
    pub fn checkout(self: &Arc<Self>, now: Instant) -> Option<UpstreamConnection> {
        loop {
            let entry = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            let Idle { mut link, since } = entry;
            if now.saturating_duration_since(since) < self.idle_timeout && link.reusable() {
                return Some(UpstreamConnection { link, pool: Arc::clone(self) });
            }
        }
    }

    /// A new connection.
    pub async fn connect(self: &Arc<Self>) -> Result<UpstreamConnection, ConnectError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ConnectError(format!("connect to {} timed out", self.addr)))?
            .map_err(|e| ConnectError(format!("connect to {}: {e}", self.addr)))?;
        // Small writes of heads and chunks must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let link = Link::new(stream, OpenCount::new(&self.open));
        Ok(UpstreamConnection { link, pool: Arc::clone(self) })
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
