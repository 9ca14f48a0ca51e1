//! Counting a request "in flight" on its connection from the moment its head is read
//! until its response body is fully sent, so the idle watchdog never closes a
//! connection whose long poll is parked or whose quiet stream is still open.
//!
//! Written as two small wrappers (of the response future, then of its body) rather than
//! an async block and a `map_frame` closure: a parked request holds exactly the
//! service's own future and one pointer more, and answering allocates nothing here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::activity::Activity;

/// Counts a request in flight for as long as it lives.
pub(super) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(super) fn enter(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// A response future that keeps its request counted, then hands the count on to
    /// the response's body.
    pub(super) struct Counted<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F> Counted<F> {
    pub(super) fn new(inner: F, in_flight: InFlight) -> Self {
        Self { inner, in_flight: Some(in_flight) }
    }
}

impl<F, B, E> Future for Counted<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CountedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.inner.poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(outcome.map(|response| response.map(|body| CountedBody { body, _in_flight: in_flight })))
    }
}

pin_project! {
    /// A response body that keeps its request counted until it is sent (or dropped).
    pub struct CountedBody<B> {
        #[pin]
        body: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
