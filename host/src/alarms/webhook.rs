//! The webhook notifier: one HTTP/1.1 POST of the alarm as JSON to an `http://` URL.
//! A 2xx answer is success; anything else (refused, timeout, other status) is an error
//! that `notify` retries. The URL was checked at config load (`config::HttpTarget`).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::HttpTarget;

/// Sends `body` once within `timeout`.
pub async fn post(url: &str, body: &[u8], timeout: Duration) -> Result<(), String> {
    let target = HttpTarget::parse(url)?;
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
