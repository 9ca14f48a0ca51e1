//! The webhook notifier: one HTTP/1.1 POST of the alarm as JSON to an `http://` URL.
//! A 2xx answer is success; anything else (refused, timeout, other status) is an error
//! that `notify` retries.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// `http://host[:port][/path]` split into the address to dial, the Host header and the
/// request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub authority: String,
    pub address: String,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<HttpTarget, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: needs a host (and no user info)"));
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| !p.ends_with(']') && !p.is_empty());
    let address = if has_port { authority.to_string() } else { format!("{authority}:80") };
    Ok(HttpTarget { authority: authority.to_string(), address, path: path.to_string() })
}

/// Sends `body` once within `timeout`.
pub async fn post(url: &str, body: &[u8], timeout: Duration) -> Result<(), String> {
    let target = parse_url(url)?;
    let attempt = async {
        let stream =
            TcpStream::connect(&target.address).await.map_err(|e| format!("connect {}: {e}", target.address))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        let driver = tokio::spawn(conn);
        let request = Request::post(&target.path)
            .header(hyper::header::HOST, &target.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, concat!("apollo/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(bytes::Bytes::copy_from_slice(body)))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"));
        let outcome = match response {
            Ok(response) => {
                let status = response.status();
                // Drain the body so the peer sees a complete exchange.
                let _ = response.into_body().collect().await;
                if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
            }
            Err(e) => Err(e),
        };
        driver.abort();
        outcome
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_and_only_http_is_accepted() {
        let t = parse_url("http://127.0.0.1:8080/hooks/a?x=1").unwrap();
        assert_eq!((t.address.as_str(), t.path.as_str()), ("127.0.0.1:8080", "/hooks/a?x=1"));
        assert_eq!(parse_url("http://example.com").unwrap().address, "example.com:80");
        assert!(parse_url("https://example.com/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
