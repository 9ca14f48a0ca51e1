//! One upstream HTTP/1.1 connection in use, driven by the request that uses it: the
//! request's own task polls hyper's connection future beside the send and, through
//! [`PooledBody`], beside the response body, so a proxied request costs one task and no
//! cross-task wake-ups. The connection goes back to its pool when the body has been
//! read to its end; one given up mid-body is dropped, which closes it. A connection
//! made for a protocol switch (WebSocket) runs on a task of its own, as its upgraded
//! stream outlives the request.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::pool::Pool;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What the gateway sends upstream: a replayable buffer or the client's stream.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;
/// hyper's half that does the I/O of one upstream connection.
pub type Driver = http1::Connection<TokioIo<TcpStream>, RequestBody>;

/// Counts a connection as open until it is dropped (with its driver, wherever that is).
#[derive(Debug)]
pub struct OpenCount(Arc<AtomicUsize>);

impl OpenCount {
    pub fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(open))
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A kept-alive connection: the sender and the driver that does its I/O.
pub struct Link {
    pub sender: SendRequest<RequestBody>,
    /// `None` once the connection ended (its sender then reports closed). Boxed: hyper's
    /// connection state is large, and a link moves with every request that uses it.
    pub driver: Option<Box<Driver>>,
    /// Held for its drop: the connection counts as open while this lives.
    pub _open: OpenCount,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("driving", &self.driver.is_some()).finish_non_exhaustive()
    }
}

impl Link {
    /// Polls the driver once; a driver that finished (closed, failed) is dropped, which
    /// fails whatever still waits on the connection.
    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = self.driver.as_mut()
            && Pin::new(&mut **driver).poll(cx).is_ready()
        {
            self.driver = None;
        }
    }

    /// Whether the connection can take another request: its driver still runs and has
    /// not seen the upstream close (polled once, as nothing drove it since its last use).
    pub fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        self.poll_driver(cx);
        self.driver.is_some() && !self.sender.is_closed()
    }
}

/// Why a send failed.
pub enum SendError {
    /// The connection was found closed before the request left: it comes back intact.
    NotSent(Box<Request<RequestBody>>),
    /// The request (or part of it) left; the upstream reset or broke the response.
    Sent(hyper::Error),
}

/// A connection checked out of the pool (or just made) for one request.
pub enum UpstreamConnection {
    /// Driven by the request; back to `pool` when the response body ends.
    Kept { link: Link, pool: Arc<Pool> },
    /// Driven by a task of its own (a protocol switch); never back idle.
    Spawned(SendRequest<RequestBody>),
}

impl UpstreamConnection {
    /// Sends the request; the response body gives the connection back when read.
    pub async fn send(self, request: Request<RequestBody>) -> Result<Response<PooledBody>, SendError> {
        match self {
            UpstreamConnection::Spawned(mut sender) => {
                if sender.ready().await.is_err() {
                    return Err(SendError::NotSent(Box::new(request)));
                }
                let response = sender.try_send_request(request).await.map_err(sent_or_not)?;
                let (parts, inner) = response.into_parts();
                Ok(Response::from_parts(parts, PooledBody { inner, back: None }))
            }
            UpstreamConnection::Kept { mut link, pool } => {
                if driving(&mut link, |link, cx| link.sender.poll_ready(cx)).await.is_err() {
                    return Err(SendError::NotSent(Box::new(request)));
                }
                let mut sending = pin!(link.sender.try_send_request(request));
                let response = driving(&mut link, |_, cx| sending.as_mut().poll(cx)).await.map_err(sent_or_not)?;
                let (parts, inner) = response.into_parts();
                Ok(Response::from_parts(parts, PooledBody { inner, back: Some((link, pool)) }))
            }
        }
    }
}

fn sent_or_not(mut e: hyper::client::conn::TrySendError<Request<RequestBody>>) -> SendError {
    match e.take_message() {
        Some(request) => SendError::NotSent(Box::new(request)),
        None => SendError::Sent(e.into_error()),
    }
}

/// Polls `work` until it is ready, driving the connection between polls: the driver
/// writes what `work` queued and reads what it waits for, both waking this same task.
async fn driving<T>(link: &mut Link, mut work: impl FnMut(&mut Link, &mut Context<'_>) -> Poll<T>) -> T {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = work(link, cx) {
            return Poll::Ready(done);
        }
        link.poll_driver(cx);
        work(link, cx)
    })
    .await
}

/// An upstream response body that drives its connection while it is read and returns
/// the connection to the pool at its end.
pub struct PooledBody {
    inner: Incoming,
    back: Option<(Link, Arc<Pool>)>,
}

impl PooledBody {
    /// The body has ended: the connection is idle again unless the upstream closes it
    /// (`Connection: close`, which one more poll of the driver reveals).
    fn give_back(&mut self, cx: &mut Context<'_>) {
        if let Some((mut link, pool)) = self.back.take()
            && link.reusable(cx)
        {
            pool.checkin(link);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let mut polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending()
            && let Some((link, _)) = this.back.as_mut()
        {
            // The next frame is read by the driver, on this task.
            link.poll_driver(cx);
            polled = Pin::new(&mut this.inner).poll_frame(cx);
        }
        match &polled {
            Poll::Ready(None) => this.give_back(cx),
            Poll::Ready(Some(Err(_))) => this.back = None,
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
        // A body that was never polled to its end (an empty one the server did not read)
        // still leaves the connection between messages; one dropped mid-body does not,
        // and dropping its driver closes it.
        if self.inner.is_end_stream() {
            self.give_back(&mut Context::from_waker(Waker::noop()));
        }
    }
}
