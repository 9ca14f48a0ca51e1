//! Module routing benchmark: the cost of serving a route from a module `.so` instead of
//! from the host itself, measured in one run against one host process.
//!
//! Two routes with the same answer, `{"pong":true}`, behind the same auth and layers:
//! - native: `GET /api/ping`, an axum handler in the host;
//! - module: `GET /api/module/hello/ping`, served by the real hello-module library
//!   (route match, FFI request, the module's own tokio runtime, FFI response).
//!
//! Load: CONNECTIONS keep-alive HTTP/1.1 connections over TCP on 127.0.0.1, each sending
//! its next request as soon as the previous answer is in (closed loop), with a bearer
//! token. After a warm-up of each route, rounds alternate native/module/native/module so
//! that drift (CPU frequency, caches, other load) hits both alike. Per round and in
//! total it prints requests/s, p50/p99 latency, the host's CPU time per request and the
//! CPU other processes used meanwhile (a build next to the bench skews a round), then
//! where the host's CPU went, by thread name, and the module/native ratios (throughput
//! target >= 0.9). It asserts nothing: the figures depend on the machine.
//!
//! Run (about 40 s; the module is not a dependency of this crate, so build it first):
//!   cargo build --release -p hello-module
//!   cargo bench -p apollo-tests --bench modules
//!
//! The load generator is a minimal HTTP/1.1 client written here (request bytes prepared
//! once, status line + Content-Length body parsed), on a single-threaded runtime: it
//! adds no dependency, and costs the host as little of the machine's CPU as possible.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use apollo_host::cli::{ApiClient, Endpoint};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Concurrent keep-alive connections per round. Eight keep a 2-core machine saturated,
/// so req/s is the host's capacity rather than the client's round-trip rate; with four,
/// the native route's p99 swung between 1 and 3.5 ms from round to round.
const CONNECTIONS: usize = 8;
/// Unrecorded load on each route before the first round, so that allocator pools, caches
/// and the threads of both runtimes settle before anything is recorded.
const WARMUP: Duration = Duration::from_secs(1);
const ROUND: Duration = Duration::from_secs(5);
/// Native/module pairs of rounds.
const PAIRS: usize = 3;
const PASSWORD: &str = "bench-password-123";
const EXPECTED_BODY: &[u8] = br#"{"pong":true}"#;
/// Linux reports thread CPU times in /proc in USER_HZ ticks, 100 per second on every
/// mainstream architecture (nix's sysconf is not enabled in this crate).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Native,
    Module,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Self::Native => "/api/ping",
            Self::Module => "/api/module/hello/ping",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Module => "module",
        }
    }
}

fn main() -> ExitCode {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_apollo-under-test"));
    let so = bin.parent().map(|dir| dir.join("libhello_module.so")).unwrap_or_default();
    if !so.is_file() {
        eprintln!(
            "{} is missing: cargo bench does not build the module (it is not a dependency of this crate); \
             build it first with `cargo build --release -p hello-module`",
            so.display()
        );
        return ExitCode::FAILURE;
    }
    match bench(&bin, &so) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modules bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(bin: &Path, so: &Path) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "modules bench: GET {} vs GET {}, {CONNECTIONS} keep-alive connections, {PAIRS} x {} s rounds per route \
         after {} s warm-up each, {cores} cores",
        Route::Native.path(),
        Route::Module.path(),
        ROUND.as_secs(),
        WARMUP.as_secs()
    );
    let host = support::ServedHost::launch(bin, PASSWORD, |_| {}, &[(so, "hello.so")])?;
    // One thread for the load generator: on a small machine the host keeps the rest.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(&host, so))
    // `host` is dropped here, also on any error above: SIGTERM, then wait.
}

async fn run(host: &support::ServedHost, so: &Path) -> Result<()> {
    let token = support::login(&host.addr, PASSWORD).await?;
    let module = loaded_hello(&host.addr, &token).await?;
    println!(
        "host pid {}, module {} {} generation {} from {}",
        host.pid(),
        module["name"].as_str().unwrap_or("?"),
        module["version"].as_str().unwrap_or("?"),
        module["generation"],
        so.display()
    );
    for route in [Route::Native, Route::Module] {
        // A wrong answer (401, 404, another body) would make the figures meaningless.
        let mut conn = Conn::open(&host.addr, route.path(), &token).await?;
        conn.round_trip().await.with_context(|| format!("first request to {}", route.path()))?;
    }
    for route in [Route::Native, Route::Module] {
        measure(host, &token, route, WARMUP).await?;
    }

    let mut rounds = Vec::new();
    for pair in 1..=PAIRS {
        for route in [Route::Native, Route::Module] {
            let round = measure(host, &token, route, ROUND).await?;
            rounds.push((pair, round));
        }
    }
    report(&rounds);
    Ok(())
}

// ----- one round -----------------------------------------------------------------------

/// What one round (or several merged) measured.
#[derive(Debug, Clone)]
struct Round {
    route: Route,
    /// Wall time from the first request to the last answer.
    elapsed: Duration,
    /// Per request, sorted.
    latencies: Vec<Duration>,
    /// Non-200 answers, unexpected bodies, broken connections.
    errors: usize,
    /// Host CPU ticks per thread name over the round.
    cpu: BTreeMap<String, u64>,
    /// CPU ticks of processes other than the host and this bench (a build running next
    /// to the bench, say), and the machine's capacity (all cores) over the round.
    others: u64,
    capacity: u64,
}

impl Round {
    fn new(route: Route) -> Self {
        Self {
            route,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            errors: 0,
            cpu: BTreeMap::new(),
            others: 0,
            capacity: 0,
        }
    }

    #[allow(clippy::cast_precision_loss)] // request counts are far below 2^52
    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: usize) -> Duration {
        // Nearest rank.
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.latencies[(p * n).div_ceil(100).clamp(1, n) - 1]
    }

    /// Host CPU time (all threads) per answered request, in microseconds.
    #[allow(clippy::cast_precision_loss)]
    fn cpu_us_per_request(&self) -> f64 {
        let ticks: u64 = self.cpu.values().sum();
        ticks as f64 / TICKS_PER_SEC * 1e6 / self.latencies.len().max(1) as f64
    }

    /// The rounds of one route as one sample: total requests over total time.
    fn merge(route: Route, rounds: &[&Round]) -> Self {
        let mut all = Self::new(route);
        for r in rounds {
            all.elapsed += r.elapsed;
            all.others += r.others;
            all.capacity += r.capacity;
            all.latencies.extend_from_slice(&r.latencies);
            all.errors += r.errors;
            for (name, ticks) in &r.cpu {
                *all.cpu.entry(name.clone()).or_default() += ticks;
            }
        }
        all.latencies.sort_unstable();
        all
    }
}

/// Drives `route` over CONNECTIONS fresh keep-alive connections for `duration`.
async fn measure(host: &support::ServedHost, token: &str, route: Route, duration: Duration) -> Result<Round> {
    // Connected before the clock starts: the TCP handshake is not what is measured.
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(&host.addr, route.path(), token).await?);
    }
    let cpu_before = thread_ticks(host.pid())?;
    let machine_before = machine_ticks()?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for conn in conns {
        tasks.spawn(drive(conn, deadline));
    }
    let mut round = Round::new(route);
    while let Some(done) = tasks.join_next().await {
        let (latencies, errors) = done.context("load task failed")?;
        round.latencies.extend(latencies);
        round.errors += errors;
    }
    round.elapsed = start.elapsed();
    round.cpu = cpu_delta(&cpu_before, &thread_ticks(host.pid())?);
    let machine = machine_ticks()?;
    let busy = machine.busy.saturating_sub(machine_before.busy);
    let ours = machine.bench.saturating_sub(machine_before.bench) + round.cpu.values().sum::<u64>();
    round.others = busy.saturating_sub(ours);
    round.capacity = machine.total.saturating_sub(machine_before.total);
    round.latencies.sort_unstable();
    Ok(round)
}

/// One connection in a closed loop until `deadline`. A failed request is counted and
/// the connection replaced, so one hiccup does not end the round for this connection.
async fn drive(mut conn: Conn, deadline: Instant) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        match conn.round_trip().await {
            Ok(()) => latencies.push(t0.elapsed()),
            Err(_) => {
                errors += 1;
                if conn.reconnect().await.is_err() {
                    break;
                }
            }
        }
    }
    (latencies, errors)
}

// ----- a minimal HTTP/1.1 keep-alive client ---------------------------------------------

struct Conn {
    addr: String,
    stream: TcpStream,
    /// The whole request, built once: the same bytes every time.
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str, path: &str, token: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        // One small write per request: Nagle would only add delay.
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
        )
        .into_bytes();
        Ok(Self { addr: addr.to_string(), stream, request, buf: vec![0; 4096] })
    }

    /// A fresh connection for the same request, after an error left this one unusable.
    async fn reconnect(&mut self) -> Result<()> {
        self.stream = TcpStream::connect(&self.addr).await?;
        self.stream.set_nodelay(true)?;
        Ok(())
    }

    /// Sends the request and reads one answer, which must be 200 with EXPECTED_BODY.
    async fn round_trip(&mut self) -> Result<()> {
        self.stream.write_all(&self.request).await?;
        // No pipelining: the previous answer was consumed whole, nothing is buffered.
        let mut filled = 0;
        let (head_end, status, length) = loop {
            if filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[filled..]).await?;
            ensure!(n > 0, "connection closed by the host");
            filled += n;
            if let Some(end) = self.buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buf[..end])?;
                break (end + 4, status, length);
            }
        };
        let total = head_end + length;
        if self.buf.len() < total {
            self.buf.resize(total, 0);
        }
        while filled < total {
            let n = self.stream.read(&mut self.buf[filled..total]).await?;
            ensure!(n > 0, "connection closed by the host mid-body");
            filled += n;
        }
        let body = &self.buf[head_end..total];
        ensure!(status == 200 && body == EXPECTED_BODY, "status {status}, body {:?}", String::from_utf8_lossy(body));
        Ok(())
    }
}

/// Status code and Content-Length of a response head (without the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, usize)> {
    let head = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        // Both handlers answer a body of known size; chunked would be a surprise.
        .context("response without Content-Length")?;
    Ok((status, length))
}

// ----- setup -----------------------------------------------------------------------------

/// The `hello` entry of `GET /api/modules`, or why it is not loaded.
async fn loaded_hello(addr: &str, token: &str) -> Result<Value> {
    let client = ApiClient::new(Endpoint::Tcp(addr.to_string()), Some(token.to_string()));
    let list: Value = client.get("/api/modules").await.context("GET /api/modules")?;
    if let Some(hello) = list["modules"].as_array().into_iter().flatten().find(|m| m["name"] == "hello") {
        return Ok(hello.clone());
    }
    bail!("module hello is not loaded; GET /api/modules: {list}")
}

// ----- host CPU by thread ------------------------------------------------------------------

/// utime + stime of every thread of `pid`, by thread id, with the thread's name.
fn thread_ticks(pid: i32) -> Result<HashMap<u32, (String, u64)>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).with_context(|| format!("threads of pid {pid}"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else { continue };
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // "tid (comm) state ..." — comm may hold spaces and parentheses, so split at the last ") ".
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let name = head.split_once(" (").map_or("?", |(_, n)| n).to_string();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after "state".
        let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        out.insert(tid, (name, ticks));
    }
    Ok(out)
}

/// The whole machine's CPU ticks (all cores) from /proc/stat, and this process's own.
struct MachineTicks {
    busy: u64,
    total: u64,
    bench: u64,
}

fn machine_ticks() -> Result<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"; guest time
    // is already counted in user and nice.
    let all: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .take(8)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let total: u64 = all.iter().sum();
    let idle = all.get(3).copied().unwrap_or(0) + all.get(4).copied().unwrap_or(0);
    let own = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> =
        own.rsplit_once(") ").map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let bench = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    Ok(MachineTicks { busy: total - idle, total, bench })
}

/// CPU ticks spent between two snapshots, summed by thread name.
fn cpu_delta(before: &HashMap<u32, (String, u64)>, after: &HashMap<u32, (String, u64)>) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    for (tid, (name, ticks)) in after {
        let spent = ticks - before.get(tid).map_or(0, |(_, t)| *t).min(*ticks);
        *by_name.entry(name.clone()).or_default() += spent;
    }
    by_name.retain(|_, t| *t > 0);
    by_name
}

// ----- the report ----------------------------------------------------------------------------

fn report(rounds: &[(usize, Round)]) {
    println!();
    println!(
        "{:<7}{:<8}{:>10}{:>10}{:>10}{:>10}{:>14}{:>8}{:>9}",
        "round", "route", "requests", "req/s", "p50 us", "p99 us", "host CPU us", "errors", "others"
    );
    let row = |label: &str, r: &Round| {
        println!(
            "{:<7}{:<8}{:>10}{:>10.0}{:>10.0}{:>10.0}{:>14.1}{:>8}{:>8.0}%",
            label,
            r.route.label(),
            r.latencies.len(),
            r.per_sec(),
            us(r.percentile(50)),
            us(r.percentile(99)),
            r.cpu_us_per_request(),
            r.errors,
            pct(r.others, r.capacity.max(1))
        );
    };
    for (pair, round) in rounds {
        row(&pair.to_string(), round);
    }
    let of = |route: Route| {
        Round::merge(route, &rounds.iter().map(|(_, r)| r).filter(|r| r.route == route).collect::<Vec<_>>())
    };
    let (native, module) = (of(Route::Native), of(Route::Module));
    row("all", &native);
    row("all", &module);
    println!("host CPU us = the host's CPU time, all threads, per answered request;");
    println!("others = CPU used by other processes during the round, share of all cores");
    if rounds.iter().any(|(_, r)| pct(r.others, r.capacity.max(1)) >= 5.0) {
        println!("other processes were busy in some rounds: the figures are noisy, rerun on a quiet machine");
    }

    println!();
    for r in [&native, &module] {
        let total: u64 = r.cpu.values().sum::<u64>().max(1);
        let mut threads: Vec<(&String, u64)> = r.cpu.iter().map(|(name, ticks)| (name, *ticks)).collect();
        threads.sort_by_key(|(_, ticks)| std::cmp::Reverse(*ticks));
        let split: Vec<String> =
            threads.iter().map(|(name, ticks)| format!("{name} {:.0}%", pct(*ticks, total))).collect();
        println!("host CPU by thread, {} rounds: {}", r.route.label(), split.join(", "));
    }

    println!();
    let throughput = module.per_sec() / native.per_sec();
    println!(
        "module/native throughput: {throughput:.3} (target >= 0.9: {})",
        if throughput >= 0.9 { "met" } else { "NOT met" }
    );
    println!(
        "module/native p50 latency: {:.3}, p99 latency: {:.3}, host CPU per request: {:.3}",
        ratio(module.percentile(50), native.percentile(50)),
        ratio(module.percentile(99), native.percentile(99)),
        module.cpu_us_per_request() / native.cpu_us_per_request()
    );
    for r in [&native, &module] {
        if r.errors > 0 {
            println!("{}: {} failed requests (not counted in the figures)", r.route.label(), r.errors);
        }
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[allow(clippy::cast_precision_loss)] // ticks are far below 2^52
fn pct(part: u64, total: u64) -> f64 {
    part as f64 * 100.0 / total as f64
}
