//! Writes the request head a try sends upstream straight into its connection's write
//! buffer: the client's method, target and headers less the hop-by-hop ones (RFC 9110
//! §7.6.1, and those `Connection` names), `X-Forwarded-For/Proto/Host`, the try span's
//! `traceparent`/`tracestate`, and the body's framing — no header map copied per try,
//! no intermediate strings.

use std::io::Write;
use std::net::IpAddr;

use http::Method;
use http::header::{self, HeaderMap, HeaderName};

use crate::proxy::headers::{
    HOP_BY_HOP, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, connection_options, lists,
};
use crate::trace::{TRACEPARENT, TRACESTATE};

/// What one try sends ahead of its body.
#[derive(Debug)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// Origin-form target: path and query.
    pub target: &'a str,
    /// The client's headers as received.
    pub headers: &'a HeaderMap,
    pub client: IpAddr,
    /// A protocol switch: `Upgrade` passes through with `Connection: upgrade`.
    pub upgrading: bool,
    /// `00-<trace id>-<span id>-<flags>` of the try's span.
    pub traceparent: [u8; 55],
    pub tracestate: Option<&'a str>,
}

/// How the body after the head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: `content-length: 0` if the client declared a length, else no framing
    /// field.
    None,
    Length(u64),
    Chunked,
}

impl RequestHead<'_> {
    pub fn write(&self, length: BodyLength, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        // The fields this hop reads, in one pass: each map lookup hashes its name.
        let (mut connection, mut forwarded_for, mut host, mut declared_length) = (false, None, None, false);
        for (name, value) in self.headers {
            if name == header::CONTENT_LENGTH {
                declared_length = true;
            } else if name == header::CONNECTION {
                connection = true;
            } else if name == X_FORWARDED_FOR {
                forwarded_for.get_or_insert(value);
            } else if name == header::HOST {
                host.get_or_insert(value);
            }
        }
        // Names a `Connection` header lists are hop-by-hop too; most heads have none.
        let named: Vec<&str> = match connection {
            true => connection_options(self.headers).collect(),
            false => Vec::new(),
        };
        for (name, value) in self.headers {
            if self.replaced_or_hop_by_hop(name, &named) {
                continue;
            }
            field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        out.extend_from_slice(X_FORWARDED_FOR.as_str().as_bytes());
        out.extend_from_slice(b": ");
        match forwarded_for.map(|v| v.as_bytes().trim_ascii()) {
            Some(earlier) if !earlier.is_empty() => {
                out.extend_from_slice(earlier);
                out.extend_from_slice(b", ");
            }
            _ => {}
        }
        write_ip(out, self.client);
        out.extend_from_slice(b"\r\n");
        field(out, X_FORWARDED_PROTO.as_str().as_bytes(), b"http");
        if let Some(host) = host {
            field(out, X_FORWARDED_HOST.as_str().as_bytes(), host.as_bytes());
        }
        field(out, TRACEPARENT.as_bytes(), &self.traceparent);
        if let Some(state) = self.tracestate {
            field(out, TRACESTATE.as_bytes(), state.as_bytes());
        }
        if self.upgrading {
            field(out, b"connection", b"upgrade");
        }
        match length {
            BodyLength::None if declared_length => field(out, b"content-length", b"0"),
            BodyLength::None => {}
            BodyLength::Length(n) => {
                let _ = write!(out, "content-length: {n}\r\n");
            }
            BodyLength::Chunked => field(out, b"transfer-encoding", b"chunked"),
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Headers this hop writes itself or must not forward.
    fn replaced_or_hop_by_hop(&self, name: &HeaderName, named: &[&str]) -> bool {
        if HOP_BY_HOP.contains(name) || (name == header::UPGRADE && !self.upgrading) {
            return true;
        }
        if name == header::CONTENT_LENGTH
            || name == X_FORWARDED_FOR
            || name == X_FORWARDED_PROTO
            || name == X_FORWARDED_HOST
            || name.as_str() == TRACEPARENT
            || name.as_str() == TRACESTATE
        {
            return true;
        }
        lists(named, name) && !(self.upgrading && name == header::UPGRADE)
    }
}

/// The client's address as text: IPv4 digit by digit (`fmt` costs most of a head's
/// writing), IPv6 through `fmt`.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const TRACEPARENT_SAMPLE: &[u8; 55] = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn written(headers: &HeaderMap, upgrading: bool, length: BodyLength, tracestate: Option<&str>) -> String {
        let head = RequestHead {
            method: &Method::POST,
            target: "/a?b=1",
            headers,
            client: "127.0.0.1".parse().unwrap(),
            upgrading,
            traceparent: *TRACEPARENT_SAMPLE,
            tracestate,
        };
        let mut out = Vec::new();
        head.write(length, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_head_keeps_end_to_end_headers_and_adds_forwarding_and_trace_fields() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("api.example.com"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("https-spoofed"));
        h.insert("traceparent", HeaderValue::from_static("00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"));
        h.insert("tracestate", HeaderValue::from_static("other=1"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let head = written(&h, false, BodyLength::Length(3), Some("vendor=x"));
        assert_eq!(
            head,
            "POST /a?b=1 HTTP/1.1\r\nhost: api.example.com\r\nx-a: 1\r\nx-a: 2\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: api.example.com\r\n\
             traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\
             tracestate: vendor=x\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let head = written(&h, false, BodyLength::Chunked, None);
        assert_eq!(
            head,
            "POST /a?b=1 HTTP/1.1\r\nx-kept: 1\r\nx-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn a_declared_length_without_a_body_goes_as_zero_and_no_declaration_as_none() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let head = written(&h, false, BodyLength::None, None);
        assert!(head.ends_with("\r\ncontent-length: 0\r\n\r\n"), "{head}");
        let head = written(&HeaderMap::new(), false, BodyLength::None, None);
        assert!(!head.contains("content-length"), "{head}");
    }

    #[test]
    fn client_addresses_are_written_as_their_display_text() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.100.255", "192.168.9.99", "::1", "2001:db8::8a2e:370:7334"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
    }

    #[test]
    fn an_upgrade_keeps_its_upgrade_header_and_says_connection_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let head = written(&h, true, BodyLength::None, None);
        assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
        assert_eq!(head.matches("connection").count(), 1, "{head}");
    }
}
