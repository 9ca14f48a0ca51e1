//! `demo-http`: the tiny HTTP/1.1 service the demo deployment (`examples/demo/`)
//! registers and manages through its manage scripts.
//!
//! It answers `GET /healthz` and `GET /` (name, pid, uptime, request counter and, with
//! `--upstream`, whether the upstream's `/healthz` answers 200) on 127.0.0.1 only.
//! It is deliberately std-only and minimal: one thread per connection (capped), one
//! request per connection, no keep-alive, no TLS, no graceful shutdown (SIGTERM's
//! default action is the stop path the scripts rely on).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: demo-http [--port N] [--name NAME] [--upstream HOST:PORT]";
/// Beyond this many open connections new ones get a 503 instead of a thread.
const MAX_CONNECTIONS: usize = 64;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(1);
/// Request line + headers larger than this are rejected (we never read bodies).
const MAX_HEAD: u64 = 8 * 1024;

struct State {
    name: String,
    upstream: Option<String>,
    started: Instant,
    requests: AtomicU64,
    active: AtomicUsize,
}

fn main() -> ExitCode {
    let (port, name, upstream) = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("demo-http: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-http: cannot bind 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("demo-http {name} listening on 127.0.0.1:{port}");
    let _ = io::stdout().flush();
    let state = Arc::new(State {
        name,
        upstream,
        started: Instant::now(),
        requests: AtomicU64::new(0),
        active: AtomicUsize::new(0),
    });
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        if state.active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            state.active.fetch_sub(1, Ordering::SeqCst);
            let _ = respond(&mut stream, 503, &error_json("busy", "too many connections"));
            continue;
        }
        let state = Arc::clone(&state);
        thread::spawn(move || {
            let _ = handle(&state, stream);
            state.active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    ExitCode::SUCCESS
}

fn parse_args() -> Result<(u16, String, Option<String>), String> {
    let mut port = None;
    let mut name = String::from("demo-http");
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?);
            }
            "--name" => name = value()?,
            "--upstream" => upstream = Some(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    // The host passes the ports in effect as `PORTS="p1 p2 ..."`: the first one is ours.
    let from_env = || {
        let ports = std::env::var("PORTS").ok()?;
        ports.split_whitespace().find_map(|p| p.parse().ok())
    };
    Ok((port.or_else(from_env).unwrap_or(8080), name, upstream))
}

fn handle(state: &State, mut stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new((&stream).take(MAX_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers so the client does not see a reset before our answer.
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    drop(reader);
    state.requests.fetch_add(1, Ordering::Relaxed);
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let name = json_str(&state.name);
    let (status, body) = match (method, path) {
        ("GET", "/healthz") => (200, format!(r#"{{"status":"ok","name":{name}}}"#)),
        ("GET", "/") => {
            let upstream = match &state.upstream {
                Some(addr) if upstream_ok(addr) => r#","upstream":"ok""#,
                Some(_) => r#","upstream":"down""#,
                None => "",
            };
            let body = format!(
                r#"{{"name":{name},"pid":{},"uptime_secs":{},"requests":{}{upstream}}}"#,
                std::process::id(),
                state.started.elapsed().as_secs(),
                state.requests.load(Ordering::Relaxed),
            );
            (200, body)
        }
        (_, "/healthz" | "/") => (405, error_json("method_not_allowed", "only GET is served")),
        _ => (404, error_json("not_found", "no such route")),
    };
    respond(&mut stream, status, &body)
}

/// Plain TCP `GET /healthz` against the upstream; anything but a 200 means "down".
fn upstream_ok(addr: &str) -> bool {
    let probe = || -> io::Result<bool> {
        let target: SocketAddr = addr.to_socket_addrs()?.next().ok_or_else(|| io::Error::other("no address"))?;
        let mut s = TcpStream::connect_timeout(&target, UPSTREAM_TIMEOUT)?;
        s.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
        s.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
        write!(s, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut status_line = String::new();
        BufReader::new(s.take(1024)).read_line(&mut status_line)?;
        Ok(status_line.split_whitespace().nth(1) == Some("200"))
    };
    probe().unwrap_or(false)
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Same error shape as the Apollo API: `{"error":{"code","message"}}`.
fn error_json(code: &str, message: &str) -> String {
    let (code, message) = (json_str(code), json_str(message));
    format!(r#"{{"error":{{"code":{code},"message":{message}}}}}"#)
}

/// A JSON string literal (quotes included) for `s`.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
