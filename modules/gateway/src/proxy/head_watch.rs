//! Slowloris protection without a timer per request: a client connection must have a
//! request head read whole within `limits.header_read_timeout_ms` of opening or of its
//! last response's end, or it is closed. hyper's own `header_read_timeout` boxes and
//! arms a timer for every head it reads; here one interval per connection looks every
//! half timeout at a counter the requests move: a connection idle and unchanged for two
//! looks in a row — between one and one and a half timeouts — is done. A request in
//! flight, its bodies included, is never cut by it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};

/// One client connection's activity: moved by one when a request starts and by one when
/// its response ends, so an odd value means a request in flight (HTTP/1.1 serves one at
/// a time).
#[derive(Debug, Default)]
pub struct HeadWatch {
    activity: AtomicU64,
}

impl HeadWatch {
    /// A request's head was read; the returned mark ends it when dropped (with the
    /// response body that carries it).
    pub fn request_started(self: &Arc<Self>) -> RequestMark {
        self.activity.fetch_add(1, Ordering::Relaxed);
        RequestMark(Arc::clone(self))
    }

    /// Resolves once the connection has waited for a request head longer than
    /// `timeout`.
    pub async fn expired(&self, timeout: Duration) {
        let period = (timeout / 2).max(Duration::from_millis(1));
        let mut looks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        let mut idle_looks = 0;
        loop {
            looks.tick().await;
            let now = self.activity.load(Ordering::Relaxed);
            if now.is_multiple_of(2) && last == Some(now) {
                idle_looks += 1;
                if idle_looks == 2 {
                    return;
                }
            } else {
                idle_looks = 0;
            }
            last = Some(now);
        }
    }
}

/// Ends its request's activity when dropped.
#[derive(Debug)]
pub struct RequestMark(Arc<HeadWatch>);

impl Drop for RequestMark {
    fn drop(&mut self) {
        self.0.activity.fetch_add(1, Ordering::Relaxed);
    }
}

/// A response body that ends its request's activity when hyper is done with it (sent
/// whole or given up).
#[derive(Debug)]
pub struct Marked<B> {
    body: B,
    /// Held for its drop.
    _mark: RequestMark,
}

impl<B> Marked<B> {
    pub fn new(body: B, mark: RequestMark) -> Self {
        Self { body, _mark: mark }
    }
}

impl<B: Body + Unpin> Body for Marked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_idle_connection_expires_between_one_and_one_and_a_half_timeouts() {
        let watch = Arc::new(HeadWatch::default());
        let started = tokio::time::Instant::now();
        watch.expired(Duration::from_secs(10)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(15), "a connection that never sent a head");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_request_in_flight_is_never_cut_and_its_end_starts_the_wait_again() {
        let watch = Arc::new(HeadWatch::default());
        let mark = watch.request_started();
        let expiry = watch.expired(Duration::from_secs(10));
        tokio::pin!(expiry);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), expiry.as_mut()).await.is_err(),
            "a long request is not a slow head"
        );
        let ended = tokio::time::Instant::now();
        drop(mark);
        expiry.await;
        let waited = ended.elapsed();
        assert!(waited >= Duration::from_secs(10) && waited <= Duration::from_secs(15), "{waited:?}");
    }
}
