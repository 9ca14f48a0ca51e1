//! The keep-alive pool against a scripted upstream on 127.0.0.1: a connection driven by
//! the request that uses it is reused after its body is read, not reused when the
//! upstream says `Connection: close` or closed it while idle, and closed when its body
//! is dropped half-read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::Method;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

use super::connection::{RequestBody, SendError, UpstreamConnection};
use super::pool::Pool;
use super::request_head::RequestHead;
use crate::settings::CircuitSettings;

/// How the scripted upstream answers each request on a connection.
#[derive(Clone, Copy)]
enum Script {
    /// `body_len` bytes, kept alive.
    KeepAlive { body_len: usize },
    /// One answer with `Connection: close`, then the socket closes.
    Close,
    /// One kept-alive answer, then the socket closes when the test says (an upstream's
    /// idle timeout).
    AnswerThenHangUp,
}

/// A scripted upstream: its address, the connections it accepted, and a message each
/// time it closes one.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: mpsc::UnboundedReceiver<()>,
    hang_up: Arc<Notify>,
}

async fn upstream(script: Script) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (closing, closed) = mpsc::unbounded_channel();
    let hang_up = Arc::new(Notify::new());
    let told = Arc::clone(&hang_up);
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let closing = closing.clone();
            let told = Arc::clone(&told);
            tokio::spawn(async move {
                serve(stream, script, &told).await;
                let _ = closing.send(());
            });
        }
    });
    Upstream { addr, accepted, closed, hang_up }
}

/// Answers requests until the script ends the connection (the stream drops with it).
async fn serve(mut stream: TcpStream, script: Script, hang_up: &Notify) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // The pool's requests are bodiless GETs: a head ends at the blank line.
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        head.clear();
        let answer = match script {
            Script::KeepAlive { body_len } => {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\n\r\n{}", "x".repeat(body_len))
            }
            Script::Close => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_owned(),
            Script::AnswerThenHangUp => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned(),
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        match script {
            Script::KeepAlive { .. } => {}
            Script::Close => return,
            Script::AnswerThenHangUp => return hang_up.notified().await,
        }
    }
}

fn head() -> RequestHead<'static> {
    super::connection_tests::head(&Method::GET)
}

async fn connection(pool: &Arc<Pool>) -> UpstreamConnection {
    match pool.checkout(std::time::Instant::now()) {
        Some(kept) => kept,
        None => pool.connect().await.unwrap(),
    }
}

/// One request through the pool, its body read to the end; the body's length.
async fn exchange(pool: &Arc<Pool>) -> Result<usize, String> {
    let response = match connection(pool).await.send(&head(), RequestBody::Empty).await {
        Ok(response) => response,
        Err(SendError::NotSent(_)) => return Err("not sent".into()),
        Err(SendError::Sent(e)) => return Err(e.to_string()),
    };
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(body.len())
}

fn pool(addr: SocketAddr) -> Arc<Pool> {
    Arc::new(Pool::new(addr, &CircuitSettings::default()))
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_is_reused_once_its_body_was_read() {
    // Larger than one read buffer: the body's frames are read by the driver it polls.
    let up = upstream(Script::KeepAlive { body_len: 300_000 }).await;
    let pool = pool(up.addr);
    for _ in 0..3 {
        assert_eq!(exchange(&pool).await, Ok(300_000));
        assert_eq!((pool.open(), pool.idle()), (1, 1));
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn connection_close_is_not_kept() {
    let up = upstream(Script::Close).await;
    let pool = pool(up.addr);
    assert_eq!(exchange(&pool).await, Ok(2));
    assert_eq!((pool.open(), pool.idle()), (0, 0));
    assert_eq!(exchange(&pool).await, Ok(2));
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    let mut up = upstream(Script::AnswerThenHangUp).await;
    let pool = pool(up.addr);
    assert_eq!(exchange(&pool).await, Ok(2));
    assert_eq!((pool.open(), pool.idle()), (1, 1));
    up.hang_up.notify_one();
    up.closed.recv().await.unwrap();
    // Lets the runtime's reactor see the hang-up: nothing drives an idle connection,
    // so it is found only when the connection is taken out.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(pool.checkout(std::time::Instant::now()).is_none());
    assert_eq!((pool.open(), pool.idle()), (0, 0));
    assert_eq!(exchange(&pool).await, Ok(2));
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_dropped_half_read_closes_its_connection() {
    let up = upstream(Script::KeepAlive { body_len: 1_000_000 }).await;
    let pool = pool(up.addr);
    let Ok(response) = connection(&pool).await.send(&head(), RequestBody::Empty).await else { panic!("send failed") };
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| d.len() < 1_000_000));
    drop(body);
    assert_eq!((pool.open(), pool.idle()), (0, 0));
    assert_eq!(exchange(&pool).await, Ok(1_000_000));
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}
