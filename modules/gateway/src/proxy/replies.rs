//! The answers the gateway gives itself, when no upstream answers: JSON
//! `{error, route, attempts}` with the status that says why (404 no route, 502 the
//! upstream failed, 503 none healthy or overloaded — with `Retry-After` —, 504 out of
//! time), or the route's configured fallback in their place.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use serde_json::json;

use crate::settings::Fallback;
use crate::upstream::{BoxError, PooledBody};

/// What goes back to the client: a relayed upstream body as it is (no box per
/// request), or one the gateway made.
#[derive(Debug)]
pub enum ResponseBody {
    Relayed(PooledBody),
    Made(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Relayed(body) => {
                Pin::new(body).poll_frame(cx).map(|frame| frame.map(|frame| frame.map_err(BoxError::from)))
            }
            ResponseBody::Made(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Relayed(body) => body.is_end_stream(),
            ResponseBody::Made(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Relayed(body) => body.size_hint(),
            ResponseBody::Made(body) => body.size_hint(),
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    ResponseBody::Made(Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync())
}

/// Why the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NoRoute,
    /// No instance is known or healthy.
    NoInstance,
    /// `circuit.max_requests` / `max_pending` reached.
    Overloaded,
    /// Connect errors, resets, broken responses on every try.
    Upstream,
    /// The route's deadline passed, or the last try timed out.
    Timeout,
    /// The client's request body broke off or was too large to hold.
    BadRequest,
}

impl Failure {
    pub fn status(self) -> StatusCode {
        match self {
            Failure::NoRoute => StatusCode::NOT_FOUND,
            Failure::NoInstance | Failure::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Upstream => StatusCode::BAD_GATEWAY,
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::BadRequest => StatusCode::BAD_REQUEST,
        }
    }

    /// The label in metrics and the access log.
    pub fn reason(self) -> &'static str {
        match self {
            Failure::NoRoute => "no_route",
            Failure::NoInstance => "no_healthy_upstream",
            Failure::Overloaded => "overloaded",
            Failure::Upstream => "upstream_failed",
            Failure::Timeout => "timeout",
            Failure::BadRequest => "bad_request",
        }
    }
}

pub fn failure(why: Failure, route: Option<&str>, attempts: u32, detail: &str) -> Response<ResponseBody> {
    let body = json!({"error": detail, "reason": why.reason(), "route": route, "attempts": attempts});
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = why.status();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if why.status() == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The route's own answer (checked when the table was built).
pub fn fallback(f: &Fallback) -> Response<ResponseBody> {
    let mut response = Response::new(full(f.body.clone()));
    *response.status_mut() = StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    for (name, value) in &f.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
