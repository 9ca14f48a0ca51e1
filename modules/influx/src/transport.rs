//! A minimal HTTP/1.1 client over hyper: one TCP connection per request, a deadline on
//! the whole exchange and a cap on the answer's size. A fresh connection per request
//! costs one local handshake every few seconds and means a restarted InfluxDB never
//! meets a stale pooled connection. Plain `http://` only: the module carries no TLS
//! stack (put a local TLS-terminating proxy in front of a remote InfluxDB).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use plugin_api::tokio;

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Sends `request` to `host:port` and reads the whole answer, within `timeout`.
/// Errors are one-line messages for the status route and the log.
pub async fn send(
    host: &str,
    port: u16,
    request: http::Request<Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
) -> Result<Answer, String> {
    match tokio::time::timeout(timeout, exchange(host, port, request, max_body)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer from {host}:{port} within {} ms", timeout.as_millis())),
    }
}

async fn exchange(
    host: &str,
    port: u16,
    request: http::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Answer, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port} failed: {e}"))?;
    // The connection future moves the bytes; it lives exactly as long as this call
    // (aborted on return or when the caller's timeout drops us).
    let driver = AbortOnDrop(tokio::spawn(connection));
    let response = sender.send_request(request).await.map_err(|e| format!("request to {host}:{port} failed: {e}"))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), max_body)
        .collect()
        .await
        .map_err(|e| format!("reading the answer from {host}:{port} failed: {e}"))?
        .to_bytes();
    drop(driver);
    Ok(Answer { status, body })
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Percent-encodes a query-string component (everything but RFC 3986 unreserved bytes).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode_component("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(encode_component("SELECT \"x\" & 'y'=1"), "SELECT%20%22x%22%20%26%20%27y%27%3D1");
        assert_eq!(encode_component("é"), "%C3%A9");
    }
}
