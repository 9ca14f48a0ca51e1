//! `demo-http`: the tiny HTTP/1.1 service the demo deployment (`examples/demo/`)
//! registers and manages through its manage scripts.
//!
//! It answers `GET /healthz` and `GET /` (name, pid, uptime, request counter and, with
//! `--upstream`, whether the upstream's `/healthz` answers 200) on 127.0.0.1 only, and,
//! for the gateway's tests and benchmark, `POST /upload` (reads a body of any size in
//! chunks and says how many bytes came), `GET /status/{code}` (answers that status) and
//! `GET /sleep/{ms}` (answers after that long).
//! It is deliberately std-only and minimal: one thread per connection (capped),
//! HTTP/1.1 keep-alive (bodies by `Content-Length` only), no TLS, no graceful shutdown
//! (SIGTERM's default action is the stop path the scripts rely on).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: demo-http [--port N] [--name NAME] [--upstream HOST:PORT]";
/// Beyond this many open connections new ones get a 503 instead of a thread.
const MAX_CONNECTIONS: usize = 256;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(1);
/// Request line + headers larger than this end the connection.
const MAX_HEAD: u64 = 8 * 1024;
/// `/sleep/{ms}` waits at most this long.
const MAX_SLEEP_MS: u64 = 60_000;

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
            let _ = respond(&mut stream, 503, &error_json("busy", "too many connections"), true);
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

/// Serves requests on one connection until the client closes it, asks to, or idles
/// past the read timeout.
fn handle(state: &State, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let Some(head) = read_head(&mut reader)? else { return Ok(()) };
        state.requests.fetch_add(1, Ordering::Relaxed);
        let (status, body) = answer(state, &head, &mut reader)?;
        let close = head.close || status == 400;
        respond(&mut writer, status, &body, close)?;
        if close {
            return Ok(());
        }
    }
}

struct Head {
    method: String,
    target: String,
    content_length: u64,
    close: bool,
}

/// The request line and headers; None when the client closed between requests.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut limited = reader.take(MAX_HEAD);
    let mut request_line = String::new();
    if limited.read_line(&mut request_line)? == 0 {
        return Ok(None);
    }
    let mut parts = request_line.split_whitespace();
    let (method, target, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let mut head = Head {
        method: method.to_owned(),
        target: target.to_owned(),
        content_length: 0,
        close: version != Some("HTTP/1.1"),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if limited.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "head cut short"));
        }
        if line == "\r\n" || line == "\n" {
            return Ok(Some(head));
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not read here: answer and end the connection.
            head.close = true;
        }
    }
}

fn answer(state: &State, head: &Head, body: &mut BufReader<TcpStream>) -> io::Result<(u16, String)> {
    let path = head.target.split('?').next().unwrap_or("");
    // Read (and count) the body whatever the route, so the connection stays in step.
    let received = io::copy(&mut body.take(head.content_length), &mut io::sink())?;
    if received < head.content_length {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut short"));
    }
    let name = json_str(&state.name);
    Ok(match (head.method.as_str(), path) {
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
        ("POST", "/upload") => (200, format!(r#"{{"name":{name},"bytes":{received}}}"#)),
        ("GET", p) if p.starts_with("/status/") => match p["/status/".len()..].parse::<u16>() {
            Ok(code @ 200..=599) => (code, format!(r#"{{"name":{name},"status":{code}}}"#)),
            _ => (400, error_json("bad_status", "give a status 200..=599")),
        },
        ("GET", p) if p.starts_with("/sleep/") => match p["/sleep/".len()..].parse::<u64>() {
            Ok(ms) => {
                thread::sleep(Duration::from_millis(ms.min(MAX_SLEEP_MS)));
                (200, format!(r#"{{"name":{name},"slept_ms":{ms}}}"#))
            }
            _ => (400, error_json("bad_duration", "give milliseconds")),
        },
        (_, "/healthz" | "/") => (405, error_json("method_not_allowed", "only GET is served")),
        _ => (404, error_json("not_found", "no such route")),
    })
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

fn respond(stream: &mut TcpStream, status: u16, body: &str, close: bool) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    let connection = if close { "close" } else { "keep-alive" };
    // One write: head and body in one segment.
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
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
