//! What can go wrong on an upstream connection once a request was written to it: the
//! upstream broke HTTP/1.1, closed too early, or the socket failed. Each says why in
//! words the gateway's 502 and the try's span carry.

use std::fmt;

#[derive(Debug)]
pub enum UpstreamError {
    /// The upstream's bytes are not a valid HTTP/1.1 response (or one too large).
    Malformed(&'static str),
    /// The upstream closed the connection before the response was complete.
    Closed(&'static str),
    Io(std::io::Error),
    /// The client's streamed request body broke off while it was being sent.
    RequestBody(super::BoxError),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Malformed(why) => write!(f, "malformed response: {why}"),
            UpstreamError::Closed(when) => write!(f, "connection closed {when}"),
            UpstreamError::Io(e) => write!(f, "connection failed: {e}"),
            UpstreamError::RequestBody(e) => write!(f, "the request body broke off: {e}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

impl From<std::io::Error> for UpstreamError {
    fn from(e: std::io::Error) -> Self {
        UpstreamError::Io(e)
    }
}
