//! The upstream connection against canned answers from a scripted upstream on
//! 127.0.0.1: 1xx heads skipped, chunked and close-delimited bodies streamed, a
//! malformed answer reported with its reason, a 101's socket handed over with the bytes
//! that followed it, a streamed upload of unknown length sent chunked, and an early
//! answer to an upload relayed though the upstream closed before reading it all.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::connection::{RequestBody, SendError};
use super::pool::Pool;
use super::request_head::RequestHead;
use crate::settings::CircuitSettings;

static HEADERS: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);

/// A try's head with no headers of the client's (the pool tests send it too).
pub(super) fn head(method: &'static Method) -> RequestHead<'static> {
    RequestHead {
        method,
        target: "/",
        headers: &HEADERS,
        client: "127.0.0.1".parse().unwrap(),
        upgrading: false,
        traceparent: *b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate: None,
    }
}

/// Accepts one connection, reads one request (up to `request_end`), sends `answer` in
/// the given pieces, then closes (`close`) or echoes what it gets until the peer
/// closes. Yields the request bytes it read.
fn upstream(
    listener: TcpListener,
    request_end: &'static [u8],
    answer: &'static [&'static [u8]],
    close: bool,
) -> JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(request_end.len()).any(|w| w == request_end) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the gateway closed mid-request");
            request.extend_from_slice(&buf[..n]);
        }
        for piece in answer {
            stream.write_all(piece).await.unwrap();
            stream.flush().await.unwrap();
            // Separate reads on the gateway's side, as far as the kernel allows.
            tokio::task::yield_now().await;
        }
        if !close {
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
        request
    })
}

async fn listener() -> (TcpListener, Arc<Pool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    (listener, Arc::new(Pool::new(addr, &CircuitSettings::default())))
}

#[tokio::test(flavor = "current_thread")]
async fn a_100_continue_is_skipped_and_a_chunked_body_streams_with_the_connection_kept() {
    let (listener, pool) = listener().await;
    let answer: &[&[u8]] = &[
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        b"lo\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
    ];
    let up = upstream(listener, b"\r\n\r\n", answer, false);
    let response = pool.connect().await.unwrap().send(&head(&Method::GET), RequestBody::Empty).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello world");
    assert_eq!((pool.open(), pool.idle()), (1, 1));
    drop(pool);
    let request = String::from_utf8(up.await.unwrap()).unwrap();
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"), "{request}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_close_delimited_body_ends_at_the_close_and_its_connection_is_not_kept() {
    let (listener, pool) = listener().await;
    let answer: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"the end"];
    let _up = upstream(listener, b"\r\n\r\n", answer, true);
    let response = pool.connect().await.unwrap().send(&head(&Method::GET), RequestBody::Empty).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"until the end");
    assert_eq!((pool.open(), pool.idle()), (0, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_head_response_has_no_body_and_its_connection_is_kept() {
    let (listener, pool) = listener().await;
    let answer: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"];
    let _up = upstream(listener, b"\r\n\r\n", answer, false);
    let response = pool.connect().await.unwrap().send(&head(&Method::HEAD), RequestBody::Empty).await.unwrap();
    assert_eq!(response.headers()["content-length"], "1000");
    assert!(response.into_body().collect().await.unwrap().to_bytes().is_empty());
    assert_eq!((pool.open(), pool.idle()), (1, 1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_malformed_answer_fails_the_send_with_its_reason_and_closes_the_connection() {
    const BAD_STATUS: &[&[u8]] = &[b"HTTP/1.1 OK 200\r\n\r\n"];
    const SHORT_BODY: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"];
    for answer in [BAD_STATUS, SHORT_BODY] {
        let (listener, pool) = listener().await;
        let _up = upstream(listener, b"\r\n\r\n", answer, true);
        let sent = pool.connect().await.unwrap().send(&head(&Method::GET), RequestBody::Empty).await;
        let why = match sent {
            Err(SendError::Sent(e)) => e.to_string(),
            Err(SendError::NotSent(_)) => panic!("the request left"),
            Ok(response) => match response.into_body().collect().await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("a broken body read whole"),
            },
        };
        assert!(
            why == "malformed response: invalid status line"
                || why == "connection closed in the middle of the response body",
            "{why}"
        );
        assert_eq!((pool.open(), pool.idle()), (0, 0));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_101_hands_over_the_socket_with_the_bytes_that_followed_it() {
    let (listener, pool) = listener().await;
    let answer: &[&[u8]] = &[b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\nEARLY"];
    let _up = upstream(listener, b"\r\n\r\n", answer, false);
    let response = pool.connect().await.unwrap().send(&head(&Method::GET), RequestBody::Empty).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut body = response.into_body();
    let mut switched = body.take_switched().expect("a 101 hands its socket over");
    drop(body);
    assert_eq!(pool.open(), 1, "the tunnel's socket counts as open");
    let mut early = switched.already_read.to_vec();
    while early.len() < 5 {
        let mut more = [0u8; 16];
        let n = switched.stream.read(&mut more).await.unwrap();
        early.extend_from_slice(&more[..n]);
    }
    assert_eq!(early, b"EARLY");
    switched.stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    switched.stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
}

#[tokio::test(flavor = "current_thread")]
async fn a_streamed_upload_of_unknown_length_goes_chunked() {
    let (listener, pool) = listener().await;
    let answer: &[&[u8]] = &[b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"];
    let up = upstream(listener, b"0\r\n\r\n", answer, true);
    let upload = Full::new(Bytes::from_static(b"some data")).map_err(|never| match never {}).boxed_unsync();
    let body = RequestBody::Stream { body: upload, length: None };
    let response = pool.connect().await.unwrap().send(&head(&Method::POST), body).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    drop(response);
    let request = String::from_utf8(up.await.unwrap()).unwrap();
    assert!(request.contains("\r\ntransfer-encoding: chunked\r\n\r\n9\r\nsome data\r\n0\r\n\r\n"), "{request}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_early_answer_to_a_streamed_upload_is_relayed_though_the_upstream_closed() {
    let (listener, pool) = listener().await;
    let answer: &[&[u8]] =
        &[b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big!"];
    // It reads the head only, answers and closes: the rest of the upload meets a reset.
    let _up = upstream(listener, b"\r\n\r\n", answer, true);
    const SIZE: usize = 16 << 20;
    let upload = Full::new(Bytes::from(vec![b'x'; SIZE])).map_err(|never| match never {}).boxed_unsync();
    let body = RequestBody::Stream { body: upload, length: Some(SIZE as u64) };
    let response = pool.connect().await.unwrap().send(&head(&Method::POST), body).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"too big!");
    assert_eq!((pool.open(), pool.idle()), (0, 0), "a connection whose upload was cut short is not kept");
}
