//! Detaching a request's head from its connection's read buffer, so a request held for
//! a long time (a long poll, a blocking query) does not pin that buffer.
//!
//! Why: hyper parses the URI and every header value as slices of the bytes it read,
//! which share its 8 KiB read buffer. While a request is in flight hyper keeps reading
//! (to notice a client that goes away); finding the buffer still shared by the request,
//! it allocates a second one. A parked request would then cost its connection two read
//! buffers for as long as it waits. Copied into one allocation of their own (a few
//! hundred bytes) before hyper's next read, the head no longer shares the buffer and
//! hyper reuses it in place.
//!
//! It deliberately changes nothing a handler sees: the same URI, the same values (and
//! their sensitivity); a part that would not parse again is left as hyper made it.

use std::fmt::Write;

use bytes::BytesMut;
use http::{HeaderValue, Request, Uri};

/// Replaces `request`'s URI and header values with equal ones over one fresh buffer.
pub fn detach<B>(request: &mut Request<B>) {
    let values: usize = request.headers().values().map(HeaderValue::len).sum();
    let target = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let mut own = BytesMut::with_capacity(target + values);
    // The URI's own rendering is its received form: origin-form stays `path?query`,
    // absolute-form keeps its scheme and authority.
    let _ = write!(own, "{}", request.uri());
    let uri_end = own.len();
    for value in request.headers().values() {
        own.extend_from_slice(value.as_bytes());
    }
    let own = own.freeze();
    if let Ok(uri) = Uri::from_maybe_shared(own.slice(..uri_end)) {
        *request.uri_mut() = uri;
    }
    let mut at = uri_end;
    for value in request.headers_mut().values_mut() {
        let end = at + value.len();
        if let Ok(mut copy) = HeaderValue::from_maybe_shared(own.slice(at..end)) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::detach;
    use bytes::Bytes;
    use http::{HeaderValue, Request, Uri};

    /// A request whose URI and values are slices of one buffer, as hyper makes them:
    /// the target up to the first space, one header value after it.
    fn parsed(received: &Bytes) -> Request<()> {
        let space = received.iter().position(|b| *b == b' ').unwrap();
        let mut request = Request::new(());
        *request.uri_mut() = Uri::from_maybe_shared(received.slice(..space)).unwrap();
        let mut value = HeaderValue::from_maybe_shared(received.slice(space + 1..)).unwrap();
        value.set_sensitive(true);
        request.headers_mut().insert("x-signature", value);
        request.headers_mut().append("accept", HeaderValue::from_static("*/*"));
        request
    }

    #[test]
    fn the_head_is_equal_and_no_longer_shares_the_read_buffer() {
        let buffer = Bytes::from(b"/notifications/v2?appId=a%20b&x=1 sig\xe9 \xff".to_vec());
        let mut request = parsed(&buffer);
        let before = (request.uri().clone(), request.headers().clone());
        detach(&mut request);
        assert_eq!((request.uri(), request.headers()), (&before.0, &before.1));
        assert!(request.headers()["x-signature"].is_sensitive(), "sensitivity is kept");
        drop(before);
        // Only this handle is left: the request holds none of the received bytes.
        assert!(buffer.is_unique(), "the request still shares the read buffer");
    }

    #[test]
    fn absolute_form_targets_keep_their_authority() {
        let buffer = Bytes::from_static(b"http://example.com:8500/v1/kv/k?index=3 v");
        let mut request = parsed(&buffer);
        detach(&mut request);
        assert_eq!(request.uri().authority().map(|a| a.as_str()), Some("example.com:8500"));
        assert_eq!(request.uri().path_and_query().map(|pq| pq.as_str()), Some("/v1/kv/k?index=3"));
    }
}
