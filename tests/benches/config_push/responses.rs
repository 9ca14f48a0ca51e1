//! The config_push bench's HTTP/1.1 answers: parsing one from the bytes read so far,
//! reading one on a tokio stream, and reading the parked polls' answers the way a load
//! generator does — one thread of their own over one epoll set.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// One complete answer: its status and body (Content-Length, chunked, or none for
/// 304/204), or `None` while more bytes are due.
pub fn complete(buf: &[u8]) -> Result<Option<(u16, Vec<u8>)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(buf)? else { return Ok(None) };
    let status = response.code.context("no status")?;
    let header =
        |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim_ascii());
    let length = header("content-length")
        .map(|v| std::str::from_utf8(v).ok().and_then(|v| v.parse::<usize>().ok()).context("bad content-length"))
        .transpose()?;
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
    let body = &buf[head..];
    if let Some(length) = length {
        Ok((body.len() >= length).then(|| (status, body[..length].to_vec())))
    } else if chunked {
        body.ends_with(b"0\r\n\r\n").then(|| dechunk(body).map(|body| (status, body))).transpose()
    } else {
        ensure!(status == 304 || status == 204, "a {status} answer with neither Content-Length nor chunked encoding");
        Ok(Some((status, Vec::new())))
    }
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = raw.windows(2).position(|w| w == b"\r\n").context("bad chunk")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line]).trim(), 16)?;
        raw = &raw[line + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Reads one answer on `conn`, into one buffer sized for a small answer.
pub async fn read(conn: &mut TcpStream) -> Result<(u16, Vec<u8>)> {
    let mut buf = Vec::with_capacity(512);
    loop {
        if conn.read_buf(&mut buf).await? == 0 {
            bail!("the host closed the connection");
        }
        if let Some(answer) = complete(&buf)? {
            return Ok(answer);
        }
    }
}

/// A parked poll's answer and when its last byte was read.
#[derive(Debug)]
pub struct Answer {
    pub at: Instant,
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends `request` on each of `conns` (non-blocking sockets with nothing in flight: a
/// request this small goes out in one call).
pub fn send_all(conns: &[std::net::TcpStream], request: &[u8]) -> Result<()> {
    for mut conn in conns {
        let sent = conn.write(request)?;
        ensure!(sent == request.len(), "only {sent} of {} request bytes went out at once", request.len());
    }
    Ok(())
}

/// Reads one answer on each of `conns` on a thread of its own: every connection in one
/// epoll set (edge-triggered), each read until its answer is complete, stamped then.
/// This is how wrk reads; a tokio task per connection would add a task wake-up, a
/// scheduling pass and a join per answer to the clients' side of the machine the host
/// shares. Resolves `ready` once every connection is registered (start the release
/// after it); answers in the order of `conns`, with what `at_last` returned right after
/// the last one was read (on this thread, while it still runs: its CPU time counts in
/// its process's), and the streams back, open.
pub fn read_on_own_thread<T: Send + 'static>(
    conns: Vec<std::net::TcpStream>,
    within: Duration,
    at_last: impl FnOnce() -> T + Send + 'static,
) -> (oneshot::Receiver<()>, oneshot::Receiver<Result<Answers<T>>>) {
    let (ready_tx, ready) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    std::thread::spawn(move || {
        let read = read_all(&conns, within, ready_tx).map(|answers| {
            // The kernel adds a thread's running slice to its schedstat time only when
            // the thread is switched out: a reader that ran through a short wave without
            // a break would read as nearly free. A short sleep books it first.
            std::thread::sleep(Duration::from_millis(1));
            Answers { answers, at_last: at_last(), streams: conns }
        });
        let _ = done_tx.send(read);
    });
    (ready, done)
}

/// What [`read_on_own_thread`] read.
#[derive(Debug)]
pub struct Answers<T> {
    pub answers: Vec<Answer>,
    pub at_last: T,
    pub streams: Vec<std::net::TcpStream>,
}

fn read_all(conns: &[std::net::TcpStream], within: Duration, ready: oneshot::Sender<()>) -> Result<Vec<Answer>> {
    // The epoll set goes with `poll`: the streams leave it registered nowhere.
    let mut poll = Poll::new()?;
    for (i, conn) in conns.iter().enumerate() {
        poll.registry().register(&mut SourceFd(&conn.as_raw_fd()), Token(i), Interest::READABLE)?;
    }
    let _ = ready.send(());
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); conns.len()];
    let mut answers: Vec<Option<Answer>> = std::iter::repeat_with(|| None).take(conns.len()).collect();
    let mut left = conns.len();
    let mut events = Events::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let deadline = Instant::now() + within;
    while left > 0 {
        let wait = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
        let Some(wait) = wait else { bail!("{left} of {} polls unanswered after {within:?}", conns.len()) };
        poll.poll(&mut events, Some(wait))?;
        for event in &events {
            let i = event.token().0;
            if answers[i].is_some() {
                continue;
            }
            // Edge-triggered: read until the answer is complete or the socket is drained.
            loop {
                match (&conns[i]).read(&mut chunk) {
                    Ok(0) => bail!("the host closed a parked poll's connection"),
                    Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
                if let Some((status, body)) = complete(&bufs[i])? {
                    answers[i] = Some(Answer { at: Instant::now(), status, body });
                    left -= 1;
                    break;
                }
            }
        }
    }
    answers.into_iter().collect::<Option<Vec<_>>>().context("a connection was left unanswered")
}
