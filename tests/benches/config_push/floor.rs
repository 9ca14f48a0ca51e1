//! The machine's floors for a push, measured beside the host: the same N parked HTTP/1.1
//! requests, held by a child process (this bench's own binary, started with
//! `APOLLO_BENCH_FLOOR_POLLS`) with two threads, as many as the host's runtime workers.
//! Three kinds:
//! - **bare**: each thread `write`s a prebuilt answer to its half of the connections, one
//!   call per answer and nothing else — no runtime, no HTTP server, no module. What the
//!   host takes beyond this is its own; what this takes is loopback TCP and the clients.
//! - **hyper**: a minimal server on the host's own HTTP stack (tokio's multi-thread
//!   runtime with two workers, hyper's HTTP/1 connections writing each response in one
//!   call, as the host's do) whose every request awaits one `watch` channel, as
//!   module-config's polls do, and answers the same body. What the host takes beyond
//!   this is its own layers (routing, the module boundary, metrics, deadlines); what
//!   this takes beyond the bare floor is the HTTP stack's.
//! - **listener**: the same requests and answers served through the host's own
//!   connection layer (`apollo_host::listener::serve_listener_with`: the slowloris
//!   watchdog, in-flight accounting, graceful shutdown), with nothing of the host behind
//!   it. What this takes beyond the hyper floor is that layer's; what a host way takes
//!   beyond this is its request and module layers (routing, the module boundary,
//!   metrics, the route's deadline).
//!
//! The parent speaks to the child over its stdin and stdout, a line each way: the child
//! prints its address, then `parked` once every request head is in; a line on its stdin
//! releases the answers; it holds the connections until its stdin closes or the parent
//! ends it.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use anyhow::{Context, Result, ensure};
use apollo_host::listener::{ConnectionLimits, serve_listener_with};
use tokio::io::AsyncBufReadExt;

/// Threads that answer, like the host's two runtime workers.
const WRITERS: usize = 2;
const POLLS_VAR: &str = "APOLLO_BENCH_FLOOR_POLLS";
const BODY_VAR: &str = "APOLLO_BENCH_FLOOR_BODY";
const KIND_VAR: &str = "APOLLO_BENCH_FLOOR_KIND";

/// What holds the polls in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Two threads writing one prebuilt answer per connection.
    Bare,
    /// A minimal tokio + hyper server, each request awaiting one `watch` channel.
    Hyper,
    /// The hyper floor's requests through the host's connection layer.
    Listener,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Bare => "bare floor",
            Kind::Hyper => "hyper floor",
            Kind::Listener => "listener floor",
        }
    }

    /// How the child holds and answers the polls, for the bench's headings.
    pub fn description(self) -> &'static str {
        match self {
            Kind::Bare => "a bare process, two threads writing one answer each per call",
            Kind::Hyper => "a minimal tokio + hyper server (two workers), every request awaiting one watch channel",
            Kind::Listener => "the hyper floor's server behind the host's connection layer (serve_listener_with)",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Hyper => "hyper",
            Kind::Listener => "listener",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Kind::Bare, Kind::Hyper, Kind::Listener].into_iter().find(|kind| kind.name() == name)
    }
}

/// The floor child, listening.
#[derive(Debug)]
pub struct Floor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    pub addr: String,
}

impl Floor {
    /// Starts a `kind` child for `polls` requests, each to be answered 200 with `body`
    /// (JSON).
    pub fn start(kind: Kind, polls: usize, body: &[u8]) -> Result<Self> {
        let body = std::str::from_utf8(body).context("the answer body is not UTF-8")?;
        let mut child = Command::new(std::env::current_exe()?)
            .env(POLLS_VAR, polls.to_string())
            .env(BODY_VAR, body)
            .env(KIND_VAR, kind.name())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the floor child")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut addr = String::new();
        stdout.read_line(&mut addr)?;
        let addr = addr.trim().to_string();
        ensure!(!addr.is_empty(), "the floor child printed no address");
        Ok(Self { child, stdin, stdout, addr })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits until the child has read every request head.
    pub fn parked(&mut self) -> Result<()> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        ensure!(line.trim() == "parked", "the floor child said {line:?}, not parked");
        Ok(())
    }

    /// Sends the answers.
    pub fn release(&mut self) -> Result<()> {
        self.stdin.write_all(b"go\n")?;
        Ok(self.stdin.flush()?)
    }
}

impl Drop for Floor {
    /// Ends the child (and its connections) by its pid.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: `Some` when this process is the floor child (then serves and returns
/// how it went), `None` when it is the bench.
pub fn serve_if_child() -> Option<Result<()>> {
    let polls = std::env::var(POLLS_VAR).ok()?.parse::<usize>().ok()?;
    let body = std::env::var(BODY_VAR).unwrap_or_default();
    let kind = std::env::var(KIND_VAR).ok().and_then(|name| Kind::from_name(&name)).unwrap_or(Kind::Bare);
    Some(match kind {
        Kind::Bare => serve_bare(polls, &body),
        Kind::Hyper => serve_hyper(polls, body, false),
        Kind::Listener => serve_hyper(polls, body, true),
    })
}

/// The bare floor: accepts every connection, reads its request head, and on release
/// has two threads write the answer, half of the connections each.
fn serve_bare(polls: usize, body: &str) -> Result<()> {
    let answer = Arc::new(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json;charset=UTF-8\r\ncontent-length: {}\r\n\
         date: Sat, 05 Dec 2026 09:00:00 GMT\r\n\r\n{body}",
        body.len()
    ));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    let mut shares: Vec<Vec<TcpStream>> = (0..WRITERS).map(|_| Vec::with_capacity(polls / WRITERS + 1)).collect();
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    for i in 0..polls {
        let (mut conn, _) = listener.accept()?;
        conn.set_nodelay(true)?;
        head.clear();
        while !head.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut chunk)?;
            ensure!(n > 0, "a client closed before its request head was in");
            head.extend_from_slice(&chunk[..n]);
        }
        shares[i % WRITERS].push(conn);
    }
    // The writers wait at `go` for the release, so none starts late, and at `end` for
    // stdin to close: a thread that ended would take its CPU time out of the process's
    // (`/proc/PID/task`), which the bench reads after the last answer.
    let (go, end) = (Arc::new(Barrier::new(WRITERS + 1)), Arc::new(Barrier::new(WRITERS + 1)));
    let writers: Vec<_> = shares
        .into_iter()
        .map(|conns| {
            let (go, end, answer) = (Arc::clone(&go), Arc::clone(&end), Arc::clone(&answer));
            std::thread::spawn(move || -> std::io::Result<()> {
                go.wait();
                let written = conns.iter().try_for_each(|mut conn| conn.write_all(answer.as_bytes()));
                end.wait();
                written
            })
        })
        .collect();
    writeln!(out, "parked")?;
    out.flush()?;
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line)?;
    go.wait();
    // Until the bench closes stdin (or ends this process): the connections stay open,
    // as the host's do.
    let _ = stdin.read_line(&mut line);
    end.wait();
    for writer in writers {
        writer.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    Ok(())
}

/// The hyper floor: every request parks on one `watch` channel until the release, then
/// answers 200 with `body` (hyper adds `content-length` and `date`, as for the host).
/// `through_listener` serves it through the host's connection layer instead of bare
/// hyper connections (the listener floor), with the host's default limits and room for
/// every poll, as the bench's hosts are configured.
fn serve_hyper(polls: usize, body: String, through_listener: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(WRITERS).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut out = std::io::stdout();
        writeln!(out, "{}", listener.local_addr()?)?;
        out.flush()?;
        let (release, released) = tokio::sync::watch::channel(());
        let all_parked = Arc::new(tokio::sync::Notify::new());
        let held = HeldRequest {
            released,
            parked: Arc::new(AtomicUsize::new(0)),
            all_parked: Arc::clone(&all_parked),
            polls,
            body: body.into(),
        };
        let stop = tokio_util::sync::CancellationToken::new();
        if through_listener {
            let server = apollo_host::config::ServerConfig::default();
            let limits = ConnectionLimits { max_connections: polls + 256, ..ConnectionLimits::from_config(&server) };
            let service = move |_request| held.clone().answer();
            tokio::spawn(serve_listener_with(listener, service, limits, |_, _| {}, stop.clone()));
        } else {
            tokio::spawn(async move {
                while let Ok((conn, _)) = listener.accept().await {
                    let _ = conn.set_nodelay(true);
                    let held = held.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |_request| held.clone().answer());
                        // One write per answer, as the host's connections make: their
                        // activity wrapper has no vectored write, so hyper flattens each
                        // response (head and body) into one buffer. With `writev` this
                        // floor's 10 000-poll wave took about 15% longer.
                        let mut http1 = hyper::server::conn::http1::Builder::new();
                        http1.writev(false);
                        // A connection's end (the bench closing it) is no failure of the floor.
                        let _ = http1.serve_connection(hyper_util::rt::TokioIo::new(conn), service).await;
                    });
                }
            });
        }
        all_parked.notified().await;
        writeln!(out, "parked")?;
        out.flush()?;
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let mut line = String::new();
        stdin.read_line(&mut line).await?;
        release.send_replace(());
        // Until the bench closes stdin (or ends this process): the connections stay open.
        let _ = stdin.read_line(&mut line).await;
        stop.cancel();
        anyhow::Ok(())
    })
}

/// What each request of the hyper floor needs to park and answer.
#[derive(Clone)]
struct HeldRequest {
    released: tokio::sync::watch::Receiver<()>,
    parked: Arc<AtomicUsize>,
    all_parked: Arc<tokio::sync::Notify>,
    polls: usize,
    body: bytes::Bytes,
}

impl HeldRequest {
    /// Counts this request in, waits for the release, and answers.
    async fn answer(mut self) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, Infallible> {
        if self.parked.fetch_add(1, Ordering::Relaxed) + 1 == self.polls {
            self.all_parked.notify_one();
        }
        // The sender lives until the bench closes stdin, after the last answer is read.
        let _ = self.released.changed().await;
        let mut response = hyper::Response::new(http_body_util::Full::new(self.body));
        let json = http::HeaderValue::from_static("application/json;charset=UTF-8");
        response.headers_mut().insert(http::header::CONTENT_TYPE, json);
        Ok(response)
    }
}
