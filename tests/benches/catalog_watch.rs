//! Catalog watch benchmark: how fast a write reaches a parked Consul blocking query,
//! beside etcd's watch on the same machine, with many other watchers parked that the
//! write must not slow down. Prints figures, asserts nothing about them.
//!
//! One `apollo serve` child with the real module-catalog on its own listener, and
//! (when Debian's `etcd-server` is installed, by `.ci/etcd-up.sh`: `etcd` on PATH or in
//! /usr/bin) one etcd 3.4 single node in a temp dir on loopback ports. On each side,
//! `APOLLO_BENCH_OTHERS` (1000) watchers are parked on other keys first. Then,
//! `APOLLO_BENCH_WRITES` (1000) times: the catalog's `GET /v1/health/service/x?index=N`
//! parked, then a register (or deregister) of `x`;
//! the catalog's `GET /v1/kv/k?index=N`, then `PUT /v1/kv/k`; etcd's `/v3/watch` stream
//! on `k`, then `/v3/kv/put`. Printed: write → wake-up p50/p99 for each, the catalog's
//! registration throughput, and the host's RSS per parked blocking query beyond its
//! connection (targets in the catalog issue: p99 ≤ etcd's p99 and ≤ 5 ms, ≤ 2 KiB).
//!
//! Run (the module is not a dependency of this crate, so build it first):
//!   ./.ci/etcd-up.sh   # the peer, once (as root: apt)
//!   cargo build --release -p module-catalog
//!   cargo bench -p apollo-tests --bench catalog_watch
//!   APOLLO_BENCH_WRITES=200 APOLLO_BENCH_OTHERS=200 cargo bench -p apollo-tests --bench catalog_watch

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use apollo_host::cli::{ApiClient, Endpoint};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "bench-password-123";

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> ExitCode {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_apollo-under-test"));
    let so = bin.parent().map(|dir| dir.join("libmodule_catalog.so")).unwrap_or_default();
    if !so.is_file() {
        eprintln!("{} is missing: build it first with `cargo build --release -p module-catalog`", so.display());
        return ExitCode::FAILURE;
    }
    let writes = env_count("APOLLO_BENCH_WRITES", 1000);
    let others = env_count("APOLLO_BENCH_OTHERS", 1000);
    let run = || -> Result<()> {
        raise_fd_limit(2 * others + 512)?;
        let listen = |pig: &mut Value| {
            pig["server"]["max_connections"] = json!(others + 256);
            pig["modules"]["listeners"] = json!({"catalog": "127.0.0.1:0"});
        };
        let host = support::ServedHost::launch(&bin, PASSWORD, listen, &[(&so, "module_catalog.so")])?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let catalog = catalog_side(&host, writes, others).await?;
            match etcd_side(writes, others).await? {
                Some(etcd) => {
                    println!("etcd 3.4  /v3/watch vs put:            p50 {:>7.3} ms  p99 {:>7.3} ms", etcd.0, etcd.1);
                    println!(
                        "catalog p99 / etcd p99: health {:.2}, kv {:.2}",
                        catalog.0 / etcd.1.max(f64::EPSILON),
                        catalog.1 / etcd.1.max(f64::EPSILON)
                    );
                }
                None => println!("etcd: not installed (run .ci/etcd-up.sh as root); the catalog figures stand alone"),
            }
            Ok(())
        })
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("catalog_watch bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn raise_fd_limit(wanted: usize) -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let wanted = (wanted as u64).min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)?;
    Ok(())
}

/// A keep-alive HTTP/1.1 connection that reads Content-Length and chunked answers.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One answer: status and `X-Consul-Index` (when sent); the body is read and dropped.
struct Answer {
    status: u16,
    index: Option<u64>,
}

impl Conn {
    async fn open(addr: &str) -> Result<Self> {
        Ok(Self { stream: TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?, buf: Vec::new() })
    }

    async fn send(&mut self, method: &str, target: &str, body: &str) -> Result<()> {
        let request =
            format!("{method} {target} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        self.stream.write_all(request.as_bytes()).await?;
        Ok(())
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        ensure!(n > 0, "the peer closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one whole answer with a Content-Length body.
    async fn answer(&mut self) -> Result<Answer> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status")?;
                let field = |name: &str| head.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
                let index = field("x-consul-index:").and_then(|v| v.parse().ok());
                if field("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
                    // Unary answers only here: read up to the last chunk, keep the body raw.
                    let rest = |buf: &[u8]| buf[end + 4..].windows(5).position(|w| w == b"0\r\n\r\n");
                    while rest(&self.buf).is_none() {
                        self.fill().await?;
                    }
                    let stop = end + 4 + rest(&self.buf).unwrap_or(0) + 5;
                    self.buf.drain(..stop);
                    return Ok(Answer { status, index });
                }
                let length: usize = field("content-length:").and_then(|v| v.parse().ok()).unwrap_or(0);
                while self.buf.len() < end + 4 + length {
                    self.fill().await?;
                }
                self.buf.drain(..end + 4 + length);
                return Ok(Answer { status, index });
            }
            self.fill().await?;
        }
    }

    async fn call(&mut self, method: &str, target: &str, body: &str) -> Result<Answer> {
        self.send(method, target, body).await?;
        self.answer().await
    }
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    (at(0.50), at(0.99))
}

fn rss(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    Ok(kib * 1024)
}

async fn settled_rss(pid: i32) -> Result<u64> {
    let mut last = rss(pid)?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = rss(pid)?;
        if now.abs_diff(last) < 64 * 1024 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Parks a blocking query on `watcher`, makes the write on `writer`, and returns the
/// time from the write to the watcher's answer (which must carry a new index).
async fn wake(watcher: &mut Conn, writer: &mut Conn, watch: &str, write: (&str, &str, &str)) -> Result<f64> {
    let index = watcher.call("GET", watch, "").await?.index.context("no X-Consul-Index")?;
    let sep = if watch.contains('?') { '&' } else { '?' };
    watcher.send("GET", &format!("{watch}{sep}index={index}&wait=30s"), "").await?;
    // Let the query reach the module and park.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let started = Instant::now();
    writer.send(write.0, write.1, write.2).await?;
    let (woken, written) = tokio::join!(
        async {
            let a = watcher.answer().await;
            (a, started.elapsed())
        },
        writer.answer()
    );
    let (answer, took) = woken;
    let answer = answer?;
    ensure!(written?.status == 200, "the write failed");
    ensure!(answer.status == 200 || answer.status == 404, "the watch answered {}", answer.status);
    ensure!(answer.index.unwrap_or(0) > index, "woken without a new index");
    Ok(took.as_secs_f64() * 1e3)
}

/// Returns the catalog's (health p99, kv p99) in ms.
async fn catalog_side(host: &support::ServedHost, writes: usize, others: usize) -> Result<(f64, f64)> {
    let token = support::login(&host.addr, PASSWORD).await?;
    let api = ApiClient::new(Endpoint::Tcp(host.addr.clone()), Some(token));
    let addr = support::module_listener(&api, "catalog").await?;
    println!("catalog_watch: host pid {} catalog on {addr}; {others} other watchers; {writes} writes", host.pid());
    // The other watchers: connected and idle first (the floor), then parked.
    let mut parked = Vec::with_capacity(others);
    for i in 0..others {
        let mut conn = Conn::open(&addr).await?;
        let index = conn.call("GET", &format!("/v1/kv/other/{i}"), "").await?.index.context("no index")?;
        parked.push((conn, index));
    }
    let idle = settled_rss(host.pid()).await?;
    for (i, (conn, index)) in parked.iter_mut().enumerate() {
        conn.send("GET", &format!("/v1/kv/other/{i}?index={index}&wait=10m"), "").await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = settled_rss(host.pid()).await?;
    let per_query = held.saturating_sub(idle) as f64 / others.max(1) as f64 / 1024.0;

    let (mut watcher, mut writer) = (Conn::open(&addr).await?, Conn::open(&addr).await?);
    let mut health = Vec::with_capacity(writes);
    for i in 0..writes {
        let write = if i % 2 == 0 {
            ("PUT", "/v1/agent/service/register", r#"{"Name":"x","ID":"x-1","Port":1}"#)
        } else {
            ("PUT", "/v1/agent/service/deregister/x-1", "")
        };
        health.push(wake(&mut watcher, &mut writer, "/v1/health/service/x", write).await?);
    }
    let mut kv = Vec::with_capacity(writes);
    for i in 0..writes {
        let value = format!("v{i}");
        kv.push(wake(&mut watcher, &mut writer, "/v1/kv/k", ("PUT", "/v1/kv/k", &value)).await?);
    }
    let registrations = writes.max(1);
    let started = Instant::now();
    for i in 0..registrations {
        let body = format!(r#"{{"Name":"load","ID":"load-{i}","Port":{}}}"#, 10000 + i % 50000);
        let answer = writer.call("PUT", "/v1/agent/service/register", &body).await?;
        ensure!(answer.status == 200, "registration {i} answered {}", answer.status);
    }
    let per_sec = registrations as f64 / started.elapsed().as_secs_f64();
    // The parked queries are still there: a write elsewhere did not answer them.
    let still = parked.len();
    drop(parked);

    let (h50, h99) = percentiles(health);
    let (k50, k99) = percentiles(kv);
    println!("catalog   health/service vs register:  p50 {h50:>7.3} ms  p99 {h99:>7.3} ms");
    println!("catalog   kv/k vs PUT /v1/kv/k:        p50 {k50:>7.3} ms  p99 {k99:>7.3} ms");
    println!("catalog   registrations: {per_sec:.0}/s (sequential, one keep-alive connection)");
    println!("catalog   RSS per parked blocking query beyond its connection: {per_query:.2} KiB ({still} parked)");
    Ok((h99, k99))
}

/// A free loopback port (bound and released: etcd takes it right after).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// etcd as a child, killed (by pid) when dropped.
struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}

fn b64(text: &str) -> String {
    plugin_api::signing::base64_encode(text.as_bytes())
}

async fn start_etcd(bin: &Path) -> Result<(Etcd, String)> {
    let dir = tempfile::Builder::new().prefix("bench-etcd-").tempdir()?;
    let (client, peer) = (free_port()?, free_port()?);
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
        .arg("--name=bench")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=bench={peer_url}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn etcd")?;
    let etcd = Etcd { child, _dir: dir };
    let addr = format!("127.0.0.1:{client}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut conn) = Conn::open(&addr).await
            && conn
                .call("POST", "/v3/kv/put", &json!({"key": b64("ready"), "value": b64("1")}).to_string())
                .await
                .is_ok_and(|a| a.status == 200)
        {
            return Ok((etcd, addr));
        }
        if Instant::now() > deadline {
            bail!("etcd did not answer on {addr} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens a `/v3/watch` stream on `key` and waits for its `created` message.
async fn etcd_watch(addr: &str, key: &str) -> Result<Conn> {
    let mut conn = Conn::open(addr).await?;
    conn.send("POST", "/v3/watch", &json!({"create_request": {"key": b64(key)}}).to_string()).await?;
    while !String::from_utf8_lossy(&conn.buf).contains("\"created\":true") {
        conn.fill().await?;
    }
    conn.buf.clear();
    Ok(conn)
}

/// Returns etcd's (p50, p99) in ms, or `None` without etcd.
async fn etcd_side(writes: usize, others: usize) -> Result<Option<(f64, f64)>> {
    // Debian's package puts it in /usr/bin, which a trimmed PATH may lack.
    let installed = Some(PathBuf::from("/usr/bin/etcd")).filter(|p| p.is_file());
    let Some(bin) = on_path("etcd").or(installed) else { return Ok(None) };
    let (_etcd, addr) = start_etcd(&bin).await?;
    let mut parked = Vec::with_capacity(others);
    for i in 0..others {
        parked.push(etcd_watch(&addr, &format!("other/{i}")).await?);
    }
    let mut watcher = etcd_watch(&addr, "k").await?;
    let mut writer = Conn::open(&addr).await?;
    let mut took = Vec::with_capacity(writes);
    for i in 0..writes {
        let body = json!({"key": b64("k"), "value": b64(&format!("v{i}"))}).to_string();
        let started = Instant::now();
        writer.send("POST", "/v3/kv/put", &body).await?;
        let (event, put) = tokio::join!(
            async {
                while !String::from_utf8_lossy(&watcher.buf).contains("\"events\"") {
                    watcher.fill().await?;
                }
                watcher.buf.clear();
                Ok::<Duration, anyhow::Error>(started.elapsed())
            },
            writer.answer()
        );
        ensure!(put?.status == 200, "etcd put failed");
        took.push(event?.as_secs_f64() * 1e3);
    }
    drop(parked);
    Ok(Some(percentiles(took)))
}
