//! Reads an upstream's response head out of the connection's read buffer with
//! `httparse`: the status, version and headers the server half returns to the client
//! (header values are slices of the buffer, not copies), how the body that follows is
//! framed, and whether the connection may carry another request. Hop-by-hop fields
//! (RFC 9110 §7.6.1) are left out of the map the client's side gets, except on a 101,
//! and so is `Content-Length` when it frames the body: the client's side (hyper) writes
//! the same field from the body's exact size, which it reads anyway.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::error::UpstreamError;
use super::framing::{Chunk, Framing};
use crate::proxy::headers::is_hop_by_hop;

/// A response head larger than this is refused (hyper's client allowed ~400 KiB of
/// buffer; real heads are a few hundred bytes).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
// `parse` marks fields by their index in a `u128`.
const _: () = assert!(MAX_HEADERS <= u128::BITS as usize);
/// Heads with up to this many fields keep their field positions on the stack.
const INLINE_SPANS: usize = 24;

#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// HTTP/1.1 without `Connection: close`, and a body that does not run to the close.
    pub keep_alive: bool,
}

/// Takes one complete response head off the front of `buf`; `None` while it is
/// incomplete. `method` is the request's (a HEAD's response has no body).
pub fn parse(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, UpstreamError> {
    // Uninitialised slots: filling 128 of them costs more than parsing a typical head.
    let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Ok(None),
        Ok(_) => return Err(UpstreamError::Malformed("response head larger than 64 KiB")),
        Err(e) => return Err(UpstreamError::Malformed(describe(e))),
    };
    let code = response.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| UpstreamError::Malformed("invalid status code"))?;
    let version = if response.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };

    // Where each name and value sits in the head, so the values can be slices of it
    // once it is cut off the buffer (the parser borrows the buffer until then).
    let base = buf.as_ptr() as usize;
    let count = response.headers.len();
    let mut inline = [(0u32, 0u32, 0u32, 0u32); INLINE_SPANS];
    let mut spilled = Vec::new();
    let spans = match count <= INLINE_SPANS {
        true => &mut inline[..count],
        false => {
            spilled.resize(count, (0, 0, 0, 0));
            &mut spilled[..]
        }
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_coded = false;
    let mut close = version == Version::HTTP_10;
    // A `Connection` option other than `keep-alive` (itself hop-by-hop) may name a
    // field of this head; most heads have none, and their fields are not checked.
    let mut connection_names = false;
    // Which fields are hop-by-hop by name and which are `Content-Length` (one bit each:
    // at most 128 fields), so no name is compared twice.
    let (mut hop_by_hop, mut length_fields) = (0u128, 0u128);
    for (i, (header, span)) in response.headers.iter().zip(spans.iter_mut()).enumerate() {
        let name = header.name.as_bytes();
        let value = header.value;
        *span = (
            (name.as_ptr() as usize - base) as u32,
            name.len() as u32,
            (value.as_ptr() as usize - base) as u32,
            value.len() as u32,
        );
        if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(UpstreamError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(UpstreamError::Malformed("conflicting Content-Length values"));
            }
            length = Some(parsed);
            length_fields |= 1 << i;
            continue;
        }
        if is_hop_by_hop(name) {
            hop_by_hop |= 1 << i;
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_coded = true;
            // Chunked counts only as the last coding applied.
            chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= option.eq_ignore_ascii_case(b"close");
                connection_names |= !option.is_empty() && !option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }

    // RFC 9112 §6.3, in its order.
    let framing = if status.is_informational()
        || *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Done
    } else if chunked {
        Framing::Chunked(Chunk::Size)
    } else if transfer_coded {
        Framing::UntilClose
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };

    // Hop-by-hop fields stay on this hop: marked here (an empty name) and never put in
    // the map, rather than inserted and removed again by the client's side. A 101
    // keeps them for the relay, which passes the switch's own on. A length that frames
    // the body is written again from the body's size; any other (a HEAD's, a 304's)
    // passes as the upstream sent it.
    let mut left_out = 0u128;
    if status != StatusCode::SWITCHING_PROTOCOLS {
        left_out = hop_by_hop;
        if matches!(framing, Framing::Length(_)) {
            left_out |= length_fields;
        }
        let fields = &response.headers;
        for (i, (header, span)) in fields.iter().zip(spans.iter_mut()).enumerate() {
            if left_out & (1 << i) != 0 {
                span.1 = 0;
            } else if connection_names && listed_by_connection(fields, header.name.as_bytes()) {
                left_out |= 1 << i;
                span.1 = 0;
            }
        }
    }

    let head = buf.split_to(len).freeze();
    // The fields kept and the `X-Apollo-Attempts` the relay adds: no map grows on the
    // way, and none is made larger than that.
    let mut headers = HeaderMap::with_capacity(count - left_out.count_ones() as usize + 1);
    for &(name_at, name_len, value_at, value_len) in spans.iter() {
        if name_len == 0 {
            continue;
        }
        let name = &head[name_at as usize..(name_at + name_len) as usize];
        let name = HeaderName::from_bytes(name).map_err(|_| UpstreamError::Malformed("invalid header name"))?;
        let value = head.slice(value_at as usize..(value_at + value_len) as usize);
        let value =
            HeaderValue::from_maybe_shared(value).map_err(|_| UpstreamError::Malformed("invalid header value"))?;
        headers.append(name, value);
    }

    // A message with both framings may be a smuggling attempt: its connection is not
    // trusted with another request.
    let keep_alive = !close && framing != Framing::UntilClose && !(transfer_coded && length.is_some());
    Ok(Some(ResponseHead { status, version, headers, framing, keep_alive }))
}

/// Whether a `Connection` field of the head names `name` (its options are hop-by-hop).
fn listed_by_connection(fields: &[httparse::Header<'_>], name: &[u8]) -> bool {
    fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
        .any(|f| f.value.split(|&b| b == b',').any(|option| option.trim_ascii().eq_ignore_ascii_case(name)))
}

fn last_token(value: &[u8]) -> &[u8] {
    value.rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii()
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "more than 128 header fields",
        httparse::Error::Version => "not an HTTP/1.x response",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(wire: &str, method: Method) -> Result<Option<ResponseHead>, UpstreamError> {
        parse(&mut BytesMut::from(wire.as_bytes()), &method)
    }

    #[test]
    fn a_head_parses_to_status_headers_and_framing_and_leaves_the_body() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"[..]);
        let head = parse(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(
            (head.status, head.version, head.framing, head.keep_alive),
            (StatusCode::OK, Version::HTTP_11, Framing::Length(5), true)
        );
        assert_eq!(head.headers.get_all("x-a").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert!(!head.headers.contains_key("content-length"), "written again from the body's size");
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn a_head_with_more_fields_than_kept_on_the_stack_keeps_them_all() {
        let fields: String = (0..INLINE_SPANS + 6).map(|i| format!("x-{i}: {i}\r\n")).collect();
        let wire = format!("HTTP/1.1 200 OK\r\n{fields}content-length: 0\r\n\r\n");
        let head = head(&wire, Method::GET).unwrap().unwrap();
        assert_eq!(head.headers.len(), INLINE_SPANS + 6);
        assert_eq!(head.headers[format!("x-{}", INLINE_SPANS + 5)], (INLINE_SPANS + 5).to_string());
        assert_eq!(head.framing, Framing::Length(0));
    }

    #[test]
    fn an_incomplete_head_asks_for_more_and_an_oversize_one_is_refused() {
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le", Method::GET).unwrap().is_none());
        let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
        let err = head(&huge, Method::GET).unwrap_err();
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
        let complete_but_huge = format!("{huge}\r\n\r\n");
        assert!(head(&complete_but_huge, Method::GET).is_err());
    }

    #[test]
    fn malformed_heads_say_what_is_wrong() {
        for (wire, says) in [
            ("HTTP/1.1 2000 OK\r\n\r\n", "status"),
            ("SMTP ready\r\n\r\n", "HTTP/1.x"),
            ("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "Content-Length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"),
            ("HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n", "header name"),
        ] {
            let err = head(wire, Method::GET).unwrap_err();
            assert!(matches!(err, UpstreamError::Malformed(_)) && err.to_string().contains(says), "{wire:?}: {err}");
        }
    }

    #[test]
    fn head_204_304_and_1xx_have_no_body_whatever_their_headers_say() {
        let with_length = |status: &str, method: Method| {
            head(&format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\n"), method).unwrap().unwrap()
        };
        assert_eq!(with_length("200 OK", Method::HEAD).framing, Framing::Done);
        assert_eq!(with_length("204 No Content", Method::GET).framing, Framing::Done);
        assert_eq!(with_length("304 Not Modified", Method::GET).framing, Framing::Done);
        // Not the body's length: it passes as sent (a HEAD's is the GET's length).
        assert_eq!(with_length("200 OK", Method::HEAD).headers["content-length"], "9");
        assert_eq!(with_length("304 Not Modified", Method::GET).headers["content-length"], "9");
        let continuing = with_length("100 Continue", Method::POST);
        assert!(continuing.status.is_informational());
        assert_eq!(continuing.framing, Framing::Done);
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let chunked =
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Method::GET).unwrap().unwrap();
        assert_eq!((chunked.framing, chunked.keep_alive), (Framing::Chunked(Chunk::Size), true));
        let not_last =
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Method::GET).unwrap().unwrap();
        assert_eq!((not_last.framing, not_last.keep_alive), (Framing::UntilClose, false));
        let both = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Method::GET);
        let both = both.unwrap().unwrap();
        assert_eq!((both.framing, both.keep_alive), (Framing::Chunked(Chunk::Size), false));
        let unframed = head("HTTP/1.1 200 OK\r\n\r\n", Method::GET).unwrap().unwrap();
        assert_eq!((unframed.framing, unframed.keep_alive), (Framing::UntilClose, false));
        let close = head("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(!close.unwrap().unwrap().keep_alive);
        let old = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET).unwrap().unwrap();
        assert_eq!((old.version, old.keep_alive), (Version::HTTP_10, false));
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_are_left_out_except_on_a_switch() {
        let wire = "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\nConnection: keep-alive, X-Secret\r\n\
                    Transfer-Encoding: chunked\r\nUpgrade: h2c\r\nTrailer: x-t\r\nX-Kept: 1\r\n\r\n";
        let ok = head(wire, Method::GET).unwrap().unwrap();
        assert_eq!(ok.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"]);
        assert_eq!((ok.framing, ok.keep_alive), (Framing::Chunked(Chunk::Size), true), "framing still read from them");
        let plain =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        let plain = head(plain, Method::GET).unwrap().unwrap();
        assert_eq!(plain.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["content-type"]);
        let switch = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let switched = head(switch, Method::GET).unwrap().unwrap();
        assert_eq!(switched.headers["connection"], "Upgrade");
        assert_eq!(switched.headers["upgrade"], "websocket");
    }
}
