//! The listeners shed clients that hold connections without using them (slowloris):
//! half-sent request heads and idle keep-alive connections are closed on time, the
//! connection cap holds, and the host keeps answering everyone else meanwhile.

use crate::common;

use std::time::{Duration, Instant};

use common::Deployment;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for "closed on time" with 1–2 s limits: a slow CI machine must not
/// fail the test, a connection held forever must.
const CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// Resolves when the server closes `stream` (EOF or reset), or fails after `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(start.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            // A 408 or similar answer before the close is fine: keep reading to the end.
            Ok(Ok(_)) => continue,
            Err(_) => panic!("connection still open after {within:?}"),
        }
    }
}

async fn half_open(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_closed_while_the_host_keeps_answering() {
    let d = Deployment::with(json!({"server": {"header_read_timeout_secs": 1, "keepalive_timeout_secs": 30}}));
    let host = d.start().await;
    let addr = host.host.http_addr;
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(half_open(addr).await);
    }
    // Everyone else is served while the 300 hang (client and server ends share this
    // process: 600 fds stay under the common 1 024 soft limit).
    let health: Value = host.tcp().get("/healthz").await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    for stream in &mut slow {
        closed_by_server(stream, CLOSE_WITHIN).await;
    }
    let health: Value = host.tcp().get("/healthz").await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let d = Deployment::with(json!({"server": {"keepalive_timeout_secs": 1}}));
    let host = d.start().await;
    let mut stream = TcpStream::connect(host.host.http_addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "answered first");
    // Then the client says nothing more: the keep-alive connection is dropped.
    closed_by_server(&mut stream, CLOSE_WITHIN).await;
    host.shutdown().await;
}

/// The head timeout runs from a head's first byte, not from the last answer: a
/// keep-alive connection may stay quiet for longer than the head timeout and is kept
/// until the keep-alive timeout (as nginx's `client_header_timeout` and
/// `keepalive_timeout` do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_keep_alive_connection_outlives_the_head_timeout() {
    let d = Deployment::with(json!({"server": {"header_read_timeout_secs": 1, "keepalive_timeout_secs": 30}}));
    let host = d.start().await;
    let mut stream = TcpStream::connect(host.host.http_addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    for round in 0..2 {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "answered in round {round}");
        // Three head timeouts of silence between the two requests.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_frees_with_the_timeouts() {
    let d = Deployment::with(json!({"server": {"max_connections": 4, "header_read_timeout_secs": 1}}));
    let host = d.start().await;
    let addr = host.host.http_addr;
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(half_open(addr).await);
    }
    // A fifth client waits for a slot: it is answered only once the header timeout has
    // shed the slow ones, never while all four still hold theirs.
    let answered: Value = host.tcp().get("/healthz").await.unwrap();
    assert_eq!(answered["status"], "ok");
    let mut probe = [0u8; 1];
    let mut shed = 0;
    for stream in &mut slow {
        if matches!(tokio::time::timeout(Duration::from_millis(10), stream.read(&mut probe)).await, Ok(Ok(0) | Err(_)))
        {
            shed += 1;
        }
    }
    assert!(shed >= 1, "the fifth client got in before any of the four capped connections closed");
    host.shutdown().await;
}
