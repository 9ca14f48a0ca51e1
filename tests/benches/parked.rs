//! Parked-request benchmark: what thousands of long-held module requests cost the host.
//! A configuration center's clients each hold a 60 s long poll; a host with thousands
//! of clients must hold that many requests in flight for little memory and no thread
//! each.
//!
//! One `apollo serve` child with the real hello-module. N keep-alive TCP connections
//! each make one quick request (`GET /api/ping`) and stay open: the floor, what an idle
//! connection costs. Then every connection sends `GET /api/module/hello/park`, a route
//! with its own 10-minute timeout that waits until `POST /api/module/hello/release`.
//! Printed: the host's RSS and thread count idle, with N idle connections, and with N
//! parked requests; the RSS per idle connection and per parked request beyond it; the
//! time to release them all. Every parked request must answer 200 after the release.
//! It asserts nothing about the figures: they depend on the machine.
//!
//! Run (the module is not a dependency of this crate, so build it first):
//!   cargo build --release -p hello-module
//!   cargo bench -p apollo-tests --bench parked            # N = 5000
//!   APOLLO_BENCH_PARKED=1000 cargo bench -p apollo-tests --bench parked

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use apollo_host::cli::{ApiClient, Endpoint};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "bench-password-123";
const DEFAULT_PARKED: usize = 5000;

fn main() -> ExitCode {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_apollo-under-test"));
    let so = bin.parent().map(|dir| dir.join("libhello_module.so")).unwrap_or_default();
    if !so.is_file() {
        eprintln!("{} is missing: build it first with `cargo build --release -p hello-module`", so.display());
        return ExitCode::FAILURE;
    }
    let parked = std::env::var("APOLLO_BENCH_PARKED").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_PARKED);
    let run = || -> Result<()> {
        raise_fd_limit(parked)?;
        // More connections allowed than the bench opens.
        let allow = |pig: &mut Value| pig["server"]["max_connections"] = json!(parked + 64);
        let host = support::ServedHost::launch(&bin, PASSWORD, allow, &[(&so, "hello.so")])?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(bench(&host, parked))
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parked bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Both ends of every connection live on this machine: this process and the host
/// child (which inherits the limit) each need one descriptor per connection.
fn raise_fd_limit(parked: usize) -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let wanted = (parked as u64 + 1024).min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)?;
    ensure!(wanted >= parked as u64 + 256, "the hard limit on open files ({hard}) is too low for {parked} connections");
    Ok(())
}

async fn bench(host: &support::ServedHost, parked: usize) -> Result<()> {
    let token = support::login(&host.addr, PASSWORD).await?;
    println!("parked bench: {parked} connections to host pid {} on {}", host.pid(), host.addr);
    let idle = sample(host)?;
    let mut conns = Vec::with_capacity(parked);
    for _ in 0..parked {
        conns.push(TcpStream::connect(&host.addr).await?);
    }
    for conn in &mut conns {
        round_trip(conn, &request("GET", "/api/ping", &token)).await?;
    }
    let open = settle(host).await?;
    let before = requests_served(&host.addr, &token).await?;
    for conn in &mut conns {
        conn.write_all(request("GET", "/api/module/hello/park", &token).as_bytes()).await?;
    }
    // Every request has reached the handler once the module has counted them all.
    let deadline = Instant::now() + Duration::from_secs(120);
    while requests_served(&host.addr, &token).await? < before + parked as u64 {
        ensure!(Instant::now() < deadline, "the parked requests did not all reach the module in 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let held = settle(host).await?;

    let released_at = Instant::now();
    let client = ApiClient::new(Endpoint::Tcp(host.addr.clone()), Some(token.clone()));
    let release: Value = client.post("/api/module/hello/release", None).await.context("release")?;
    let answers = try_join_all(conns.iter_mut().map(read_response)).await?;
    let release_time = released_at.elapsed();
    let not_ok = answers.iter().filter(|status| **status != 200).count();
    ensure!(not_ok == 0, "{not_ok} of {parked} parked requests did not answer 200");

    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let per = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / parked as f64 / 1024.0;
    println!("                      RSS KiB   threads");
    println!("host idle          {:>10.0} {:>9}", kib(idle.rss), idle.threads);
    println!("{parked} idle conns  {:>10.0} {:>9}", kib(open.rss), open.threads);
    println!("{parked} parked      {:>10.0} {:>9}", kib(held.rss), held.threads);
    println!("per idle connection (floor): {:.2} KiB", per(open.rss, idle.rss));
    println!("per parked request beyond its connection: {:.2} KiB", per(held.rss, open.rss));
    println!(
        "parked / idle-connection cost: {:.2}; threads added by parking: {}",
        per(held.rss, open.rss) / per(open.rss, idle.rss).max(f64::EPSILON),
        held.threads as i64 - open.threads as i64
    );
    println!(
        "released {} waiters, all {parked} answered 200 in {:.0} ms",
        release["released"],
        release_time.as_secs_f64() * 1e3
    );
    Ok(())
}

fn request(method: &str, path: &str, token: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n")
}

async fn round_trip(conn: &mut TcpStream, request: &str) -> Result<u16> {
    conn.write_all(request.as_bytes()).await?;
    read_response(conn).await
}

/// Reads one response with a Content-Length body; returns its status.
async fn read_response(conn: &mut TcpStream) -> Result<u16> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = conn.read(&mut chunk).await?;
        ensure!(n > 0, "the host closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status")?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no content-length")?;
        while buf.len() < end + 4 + length {
            let n = conn.read(&mut chunk).await?;
            ensure!(n > 0, "the host closed the connection mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        return Ok(status);
    }
}

/// Requests the hello module has been handed so far.
async fn requests_served(addr: &str, token: &str) -> Result<u64> {
    let client = ApiClient::new(Endpoint::Tcp(addr.to_string()), Some(token.to_string()));
    let list: Value = client.get("/api/modules").await.context("GET /api/modules")?;
    match list["modules"].as_array().into_iter().flatten().find(|m| m["name"] == "hello") {
        Some(hello) => hello["requests"].as_u64().context("no request count"),
        None => bail!("module hello is not loaded: {list}"),
    }
}

/// RSS and threads once RSS has stopped moving (allocators settle after a burst).
async fn settle(host: &support::ServedHost) -> Result<Sample> {
    let mut last = sample(host)?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = sample(host)?;
        if now.rss.abs_diff(last.rss) < 64 * 1024 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    rss: u64,
    threads: u64,
}

/// RSS and thread count of the host child, from `/proc/<pid>/status`.
fn sample(host: &support::ServedHost) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.pid()))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {name} in /proc/pid/status"))
    };
    Ok(Sample { rss: field("VmRSS:")? * 1024, threads: field("Threads:")? })
}
