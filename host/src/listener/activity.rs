//! What one connection's watchdog looks at, and the stream that reports to it: when
//! bytes last moved, how many requests are in flight, since when a request head has
//! been arriving, and whether the client stopped reading.
//!
//! Why our own watch of the head rather than hyper's `header_read_timeout`: hyper arms
//! that timer afresh for every request on a keep-alive connection (a boxed `Sleep`, in
//! and out of the timer wheel), so each of the ten thousand long polls a release wakes
//! paid a timer and an allocation just to wait for its next request. Here the head's
//! start is one atomic store on the first bytes read, checked by the watchdog's one
//! timer that the connection has anyway.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `head_since_ms` when no request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shed {
    /// A request head began to arrive and was not complete within the head timeout.
    SlowHead,
    /// No bytes moved for the idle timeout, with no request in flight or with a
    /// response the client stopped reading.
    Idle,
}

/// What the watchdog of one connection looks at.
#[derive(Debug)]
pub(super) struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last byte read or written.
    last_io_ms: AtomicU64,
    /// Milliseconds since `started` of the first byte of a request head not yet
    /// complete, or [`NO_HEAD`].
    head_since_ms: AtomicU64,
    /// Requests not yet fully answered (a long poll or a quiet stream moves no bytes).
    pub(super) in_flight: AtomicUsize,
    /// The last write could not go out: the client is not reading its response.
    write_blocked: AtomicBool,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(NO_HEAD),
            in_flight: AtomicUsize::new(0),
            write_blocked: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn touch(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Bytes arrived: with no request in flight they are a new request's head, whose
    /// clock starts now unless it already runs.
    fn read(&self) {
        let now = self.now_ms();
        self.last_io_ms.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_since_ms.load(Ordering::Relaxed) == NO_HEAD {
            self.head_since_ms.store(now, Ordering::Relaxed);
        }
    }

    /// A whole request head was read (hyper hands the request to the service).
    pub(super) fn head_complete(&self) {
        self.head_since_ms.store(NO_HEAD, Ordering::Relaxed);
    }

    /// Resolves when the connection should be closed: a head still incomplete after
    /// `head_limit`, or no bytes moved for `idle_limit` while the connection had no
    /// request in flight or was stuck writing a response nobody reads. Wakes at most
    /// once per quarter of the shorter limit (a timer per connection, not a thread or
    /// a busy loop), so it closes within 1.25 times a limit.
    pub(super) async fn shed_after(&self, head_limit: Duration, idle_limit: Duration) -> Shed {
        let step = (head_limit.min(idle_limit) / 4).max(Duration::from_millis(50));
        let (head_limit_ms, idle_limit_ms) = (head_limit.as_millis() as u64, idle_limit.as_millis() as u64);
        loop {
            tokio::time::sleep(step).await;
            let now = self.now_ms();
            let head_since = self.head_since_ms.load(Ordering::Relaxed);
            if head_since != NO_HEAD && now.saturating_sub(head_since) >= head_limit_ms {
                return Shed::SlowHead;
            }
            if self.in_flight.load(Ordering::Relaxed) > 0 && !self.write_blocked.load(Ordering::Relaxed) {
                continue;
            }
            if now.saturating_sub(self.last_io_ms.load(Ordering::Relaxed)) >= idle_limit_ms {
                return Shed::Idle;
            }
        }
    }
}

/// The connection's stream, telling its [`Activity`] when bytes move.
pub(super) struct Tracked<T> {
    pub(super) inner: T,
    pub(super) activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        self.activity.write_blocked.store(polled.is_pending(), Ordering::Relaxed);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(400);

    #[tokio::test]
    async fn a_head_that_stops_arriving_is_shed_after_the_head_limit() {
        let activity = Activity::new();
        activity.read();
        assert_eq!(activity.shed_after(HEAD, Duration::from_secs(30)).await, Shed::SlowHead);
    }

    #[tokio::test]
    async fn a_parked_request_is_neither_a_slow_head_nor_idle() {
        let activity = Activity::new();
        activity.read();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_complete();
        let watched = tokio::time::timeout(3 * IDLE, activity.shed_after(HEAD, IDLE));
        assert!(watched.await.is_err(), "a request in flight keeps its connection");
    }

    #[tokio::test]
    async fn a_quiet_keep_alive_connection_is_idle_not_a_slow_head() {
        let activity = Activity::new();
        assert_eq!(activity.shed_after(HEAD, IDLE).await, Shed::Idle);
    }

    #[tokio::test]
    async fn bytes_read_while_a_request_is_in_flight_start_no_head_clock() {
        let activity = Activity::new();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.read();
        assert_eq!(activity.head_since_ms.load(Ordering::Relaxed), NO_HEAD);
    }
}
