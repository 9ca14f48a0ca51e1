//! The client's request body, readied for one or more tries: none, held in memory (up
//! to `limits.retry_buffer_bytes`, so any try may resend it), or streamed straight
//! through — then it can be resent only if no try has started reading it (the
//! connection failed first), and a 1 GiB upload never sits in memory.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming};

use crate::upstream::{BoxError, RequestBody};

pub enum Outgoing {
    Empty,
    Held(Bytes),
    /// The client's stream, taken by the first try that reads it, and its declared
    /// length (when it has one, it goes upstream as is; else chunked).
    Stream(Arc<Mutex<Option<Incoming>>>, Option<u64>),
}

impl Outgoing {
    /// Holds small bodies with a declared length; streams the rest.
    pub async fn ready(body: Incoming, headers: &HeaderMap, hold_up_to: usize) -> Result<Outgoing, BoxError> {
        if body.is_end_stream() {
            return Ok(Outgoing::Empty);
        }
        let declared =
            headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len <= hold_up_to as u64 => {
                let held = Limited::new(body, hold_up_to).collect().await?.to_bytes();
                Ok(Outgoing::Held(held))
            }
            _ => Ok(Outgoing::Stream(Arc::new(Mutex::new(Some(body))), declared)),
        }
    }

    /// The body of the next try.
    pub fn for_try(&self) -> RequestBody {
        match self {
            Outgoing::Empty => RequestBody::Empty,
            Outgoing::Held(bytes) => RequestBody::Held(bytes.clone()),
            Outgoing::Stream(slot, length) => RequestBody::Stream {
                body: TakenOnRead { slot: Arc::clone(slot), taken: None }.boxed_unsync(),
                length: *length,
            },
        }
    }

    /// Whether another try can still send the whole body.
    pub fn can_resend(&self) -> bool {
        match self {
            Outgoing::Empty | Outgoing::Held(_) => true,
            Outgoing::Stream(slot, _) => slot.lock().unwrap_or_else(|e| e.into_inner()).is_some(),
        }
    }
}

/// A streamed body that leaves its slot only when the upstream connection first reads.
struct TakenOnRead {
    slot: Arc<Mutex<Option<Incoming>>>,
    taken: Option<Incoming>,
}

impl Body for TakenOnRead {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.taken.is_none() {
            let taken = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            match taken {
                Some(body) => self.taken = Some(body),
                None => return Poll::Ready(Some(Err("the request body was read by an earlier try".into()))),
            }
        }
        let body = self.taken.as_mut().expect("taken above");
        Pin::new(body).poll_frame(cx).map_err(Into::into)
    }
}
