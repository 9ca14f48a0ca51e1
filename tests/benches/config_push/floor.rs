//! The machine's floor for a push, measured beside the host: the same N parked HTTP/1.1
//! requests, held by a bare child process (this bench's own binary, started with
//! `APOLLO_BENCH_FLOOR_POLLS`) whose two threads (as many as the host's runtime
//! workers) each `write` a prebuilt answer to their half of the connections, one call
//! per answer and nothing else — no runtime, no HTTP server, no module. What the host
//! takes beyond this is its own; what this takes is loopback TCP and the clients.
//!
//! The parent speaks to the child over its stdin and stdout, a line each way: the child
//! prints its address, then `parked` once every request head is in; a line on its stdin
//! releases the answers; it holds the connections until its stdin closes or the parent
//! ends it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Barrier};

use anyhow::{Context, Result, ensure};

/// Threads that answer, like the host's two runtime workers.
const WRITERS: usize = 2;
const POLLS_VAR: &str = "APOLLO_BENCH_FLOOR_POLLS";
const BODY_VAR: &str = "APOLLO_BENCH_FLOOR_BODY";

/// The floor child, listening.
#[derive(Debug)]
pub struct Floor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    pub addr: String,
}

impl Floor {
    /// Starts the child for `polls` requests, each to be answered 200 with `body` (JSON).
    pub fn start(polls: usize, body: &[u8]) -> Result<Self> {
        let body = std::str::from_utf8(body).context("the answer body is not UTF-8")?;
        let mut child = Command::new(std::env::current_exe()?)
            .env(POLLS_VAR, polls.to_string())
            .env(BODY_VAR, body)
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
    Some(serve(polls, &body))
}

fn serve(polls: usize, body: &str) -> Result<()> {
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
