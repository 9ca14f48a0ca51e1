//! Config-push benchmark: how fast a release reaches N parked Ctrip Apollo long polls,
//! what holding them costs, and how many `/configs` fetches per second the module
//! answers — measured against the real host with the real `module_config.so`.
//!
//! Per N (default 1 000 and 10 000; `APOLLO_BENCH_POLLS=1000,5000` to choose), a fresh
//! `apollo serve` child: app `bench` with one item in `application`, released. N
//! keep-alive HTTP/1.1 connections on loopback each make one quick request
//! (`GET /healthz`) and stay open: the floor, what an idle connection costs. Then each
//! sends `GET /api/module/config/notifications/v2` with the namespace's current
//! notification id, so it parks; once the module's `/admin/status` counts N parked
//! polls, the host's RSS is read (`/proc/PID/status`), an item is edited (untimed: an
//! edit reaches no client), one release is made through the Open API, and from the
//! moment that call returns each poll's time to its 200 is
//! taken (and, since the module wakes the polls before it answers the release call,
//! also from the moment the call was sent). WAVES times per host: the polls park again
//! on the same connections with the new id and the next release answers them. Printed
//! per wave: p50 / p99 / max, wake-ups per second, the CPU time the host and the
//! clients spent from the call to the last answer; RSS per parked poll beyond its idle
//! connection (first wave); the median wave; and next to it Ctrip's published push
//! path for the same N as a MODEL (not measured here): a 1 s release-message scan, then
//! waiters released 100 per 100 ms — worst case 1 s + ceil(N/100) × 100 ms.
//!
//! The park-and-release round runs twice per N, each in a fresh host: through the
//! admin API's mount (`/api/module/config/...`, behind its gate, audit, metrics and
//! deadline) and through the module's own listener (`modules.listeners.config`, routes
//! at its root), which a fleet gives the config service as Ctrip does (port 8080).
//! Then three floors for the same N (`config_push/floor.rs`), read by the same clients,
//! WAVES times each, each wave on a fresh child: the polls parked on a bare process
//! whose two threads write the host's answer once per connection — what loopback TCP
//! and the clients cost on this machine, with nothing of an HTTP server in between —;
//! on a minimal tokio + hyper server whose requests await one `watch` channel — what
//! the host's HTTP stack costs with nothing of the host —; and on that server's requests
//! served through the host's own connection layer (`listener::serve_listener_with`) —
//! what the host's request and module layers add is each way over this one. Then each
//! way's median wave over each floor's, less tied than a wave's milliseconds to how fast
//! this shared machine runs that minute (the same binary's waves move by a third from
//! one minute to the next).
//!
//! Then `/configs` throughput: CONNECTIONS keep-alive clients in a closed loop for
//! ROUND each, with the current `releaseKey` (answers 304) and without (answers 200),
//! rounds alternating.
//!
//! It asserts nothing about the figures (they depend on the machine), only that every
//! poll answered 200 with the new notification id.
//!
//! Run (the module is not a dependency of this crate, so build it first):
//!   cargo build --release -p module-config
//!   cargo bench -p apollo-tests --bench config_push
//! `APOLLO_BENCH_PROFILE_PAUSE=3` waits 3 s before each release and prints the host's
//! pid first, so a profiler (`perf record -p PID`) can attach for the wave.
//!
//! The clients are raw TCP streams: tokio's on this process's runtime (two threads) to
//! connect and park, then, for the release, one thread of their own reading every parked
//! connection over one epoll set as a load generator does (`config_push/responses.rs`).
//! A poll's time includes the moment that thread got to read it, so on a loaded 2-core
//! machine the figures are upper bounds of the host's own delay.

#[path = "config_push/floor.rs"]
mod floor;
#[path = "config_push/responses.rs"]
mod responses;
#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use apollo_host::cli::{ApiClient, Endpoint};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const PASSWORD: &str = "bench-password-123";
const DEFAULT_POLLS: &[usize] = &[1_000, 10_000];
const MOUNT: &str = "/api/module/config";
const APP: &str = "bench";
const NS: &str = "application";
/// Closed-loop clients of the `/configs` rounds: enough to keep 2 cores busy.
const CONNECTIONS: usize = 8;
const ROUND: Duration = Duration::from_secs(3);
/// 304/200 round pairs: alternating, so drift (other load, CPU frequency) hits both.
const PAIRS: usize = 2;
/// Releases per host, each to all N polls parked again on the same connections: the
/// wave's time varies by a fifth from one to the next on a shared 2-core machine.
const WAVES: usize = 3;

fn main() -> ExitCode {
    if let Some(served) = floor::serve_if_child() {
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("config_push floor child failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_apollo-under-test"));
    let so = bin.parent().map(|dir| dir.join("libmodule_config.so")).unwrap_or_default();
    if !so.is_file() {
        eprintln!("{} is missing: build it first with `cargo build --release -p module-config`", so.display());
        return ExitCode::FAILURE;
    }
    let counts: Vec<usize> = match std::env::var("APOLLO_BENCH_POLLS") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => DEFAULT_POLLS.to_vec(),
    };
    let run = || -> Result<()> {
        let most = counts.iter().copied().max().context("APOLLO_BENCH_POLLS names no count")?;
        raise_fd_limit(most)?;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        // A fresh host per count and way in: a second round in one host would park its
        // polls in memory the first round freed, and read as cheaper than it is.
        let rounds = counts.iter().flat_map(|&polls| [(polls, Way::AdminMount), (polls, Way::OwnListener)]);
        let total = 2 * counts.len();
        let mut median_waves = Vec::with_capacity(2);
        for (i, (polls, way)) in rounds.enumerate() {
            let last = i + 1 == total;
            let allow = |pig: &mut Value| {
                pig["server"]["max_connections"] = json!(polls + 256);
                // The longest hold the module allows: parking 10 000 polls must not
                // outlast it.
                pig["modules"]["config"]["config"] = json!({"envs": ["DEV"], "long_poll_timeout_secs": 69});
                // The module's own listener, as a fleet gives the config service its own port.
                pig["modules"]["listeners"] = json!({"config": "127.0.0.1:0"});
            };
            let host = support::ServedHost::launch(&bin, PASSWORD, allow, &[(&so, "module_config.so")])?;
            let (answer, median_wave) = rt.block_on(bench(&host, polls, way, last))?;
            drop(host);
            median_waves.push((way, median_wave));
            if let Way::OwnListener = way {
                let floors = [floor::Kind::Bare, floor::Kind::Hyper, floor::Kind::Listener]
                    .into_iter()
                    .map(|kind| Ok((kind, rt.block_on(floor_waves(kind, polls, &answer))?)))
                    .collect::<Result<Vec<_>>>()?;
                print_over_floors(polls, &std::mem::take(&mut median_waves), &floors);
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("config_push bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Both ends of every connection live on this machine: this process and the host
/// child (which inherits the limit) each need one descriptor per connection.
fn raise_fd_limit(polls: usize) -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let wanted = (polls as u64 + 1024).min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)?;
    ensure!(wanted >= polls as u64 + 256, "the hard limit on open files ({hard}) is too low for {polls} connections");
    Ok(())
}

/// Where the polls reach the module.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// Under the admin API's mount, behind its gate, audit, metrics and deadline.
    AdminMount,
    /// The module's own listener, routes at its root.
    OwnListener,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::AdminMount => "admin mount",
            Way::OwnListener => "own listener",
        }
    }
}

/// One park-and-release round (and the `/configs` rounds when `with_throughput`);
/// returns the body the polls were answered with and the median wave's last answer.
async fn bench(
    host: &support::ServedHost,
    polls: usize,
    way: Way,
    with_throughput: bool,
) -> Result<(Vec<u8>, Duration)> {
    let token = support::login(&host.addr, PASSWORD).await?;
    let api = ApiClient::new(Endpoint::Tcp(host.addr.clone()), Some(token));
    setup(&api).await?;
    let (_, release_key) = current(&host.addr, MOUNT).await?;
    let listener = support::module_listener(&api, "config").await?;
    let (addr, prefix) = match way {
        Way::AdminMount => (host.addr.as_str(), MOUNT),
        Way::OwnListener => (listener.as_str(), ""),
    };
    let answered = park_and_release(host, &api, polls, way.label(), addr, prefix).await?;
    if with_throughput {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, release_key_now) = current(&host.addr, MOUNT).await?;
        let key = if release_key_now.is_empty() { release_key } else { release_key_now };
        configs_rounds(host, &key).await?;
    }
    Ok(answered)
}

/// Parks `polls` long polls on `addr` (routes under `prefix`) and releases, WAVES times
/// on the same connections; prints each wave. Returns the body the polls were answered
/// with and the median wave's last answer (after the call was sent).
async fn park_and_release(
    host: &support::ServedHost,
    api: &ApiClient,
    polls: usize,
    label: &str,
    addr: &str,
    prefix: &str,
) -> Result<(Vec<u8>, Duration)> {
    let (mut notification_id, _) = current(addr, prefix).await?;
    println!("\nconfig_push: {polls} long polls to host pid {} through its {label} on {addr}", host.pid());

    let idle = settle(host).await?;
    let mut conns = Vec::with_capacity(polls);
    for _ in 0..polls {
        let conn = TcpStream::connect(addr).await?;
        conn.set_nodelay(true)?;
        conns.push(conn);
    }
    // One quick request each first (the module's listener has no /healthz: a meta route).
    let quick = if prefix.is_empty() { get("/services/config") } else { get("/healthz") };
    for conn in &mut conns {
        conn.write_all(quick.as_bytes()).await?;
        let (status, _) = responses::read(conn).await?;
        ensure!(status == 200, "the first request answered {status}");
    }
    let open = settle(host).await?;
    // From here the reader thread reads them (`responses::read_on_own_thread`).
    let mut conns = conns.into_iter().map(|conn| conn.into_std()).collect::<std::io::Result<Vec<_>>>()?;
    let mut answer = Vec::new();
    let mut maxima = Vec::with_capacity(WAVES);
    for wave in 1..=WAVES {
        let parking = Instant::now();
        responses::send_all(&conns, get(&poll_path(prefix, notification_id)).as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let parked = status(api).await?["parked_polls"].as_u64().context("no parked_polls in /admin/status")?;
            if parked as usize >= polls {
                break;
            }
            ensure!(Instant::now() < deadline, "only {parked} of {polls} polls parked after 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let park_time = parking.elapsed();
        if wave == 1 {
            // Memory only in the first wave: later ones park in memory the first freed.
            let held = settle(host).await?;
            let kib = |bytes: u64| bytes as f64 / 1024.0;
            let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / polls as f64 / 1024.0;
            println!("parked {polls} polls in {:.0} ms (current notification id {notification_id})", ms(park_time));
            println!("                      RSS KiB   threads");
            println!("host idle          {:>10.0} {:>9}", kib(idle.rss), idle.threads);
            println!("{polls:>6} idle conns {:>10.0} {:>9}", kib(open.rss), open.threads);
            println!("{polls:>6} parked     {:>10.0} {:>9}", kib(held.rss), held.threads);
            println!("RSS per idle keep-alive connection (floor): {:.2} KiB", per(open.rss, idle.rss));
            println!("RSS per parked poll beyond its connection:  {:.2} KiB", per(held.rss, open.rss));
        }

        let host_pid = host.pid();
        if let Some(secs) = std::env::var("APOLLO_BENCH_PROFILE_PAUSE").ok().and_then(|s| s.parse().ok()) {
            println!("PROFILE host pid {host_pid}: releasing in {secs} s");
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
        // The answers are stamped as each is in and checked once all are in: checking
        // is not timed, and done meanwhile it would take CPU from the reader and the host.
        let cpu_now = move || anyhow::Ok((cpu_time(host_pid)?, cpu_time(std::process::id() as i32)?));
        let (registered, done) = responses::read_on_own_thread(conns, Duration::from_secs(60), cpu_now);
        registered.await.context("the reader thread ended before it registered the connections")?;
        // The edit goes first, untimed: the clock starts with the release call.
        edit(api, &format!("{notification_id}")).await?;
        let cpu_before = cpu_now()?;
        let t_call = Instant::now();
        let release = release(api, &format!("{notification_id}")).await?;
        let t0 = Instant::now();
        let read = done.await.context("the reader thread ended without answers")??;
        let cpu_after = read.at_last?;
        conns = read.streams;
        ensure!(release.is_object(), "the release call answered {release}");
        let mut new_id = None;
        let mut latencies = Vec::with_capacity(polls);
        let mut from_call = Vec::with_capacity(polls);
        let mut early = 0usize;
        for responses::Answer { at, status, body: raw } in read.answers {
            ensure!(status == 200, "a parked poll answered {status} after the release");
            let body: Value = serde_json::from_slice(&raw).context("poll body is not JSON")?;
            let id = body[0]["notificationId"].as_i64().context("poll answer has no notificationId")?;
            ensure!(id > notification_id, "a poll was answered with id {id}, not newer than {notification_id}");
            let expected = *new_id.get_or_insert(id);
            ensure!(id == expected, "polls were answered with two ids, {expected} and {id}");
            if answer.is_empty() {
                answer = raw;
            }
            if at < t0 {
                early += 1;
            }
            latencies.push(at.saturating_duration_since(t0));
            from_call.push(at.saturating_duration_since(t_call));
        }
        latencies.sort();
        println!(
            "wave {wave}/{WAVES}: release call took {:.1} ms; all {polls} polls answered 200, {early} of them before it returned",
            ms(t0 - t_call)
        );
        // Measured from the return, a poll answered before it counts 0: all of them, when
        // the host wakes every poll before it answers the release call.
        println!("{}", spread("after the call returned", &latencies));
        let (host_cpu, clients_cpu) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        maxima.push(print_wave("after the call was sent", from_call, ("host", host_cpu), clients_cpu));
        notification_id = new_id.context("no poll was answered")?;
    }
    maxima.sort();
    println!(
        "{label}, {polls} polls: last answer after the call was sent, median of {WAVES} waves {:.1} ms (waves: {})",
        ms(maxima[WAVES / 2]),
        maxima.iter().map(|m| format!("{:.1}", ms(*m))).collect::<Vec<_>>().join(", ")
    );
    let ctrip = Duration::from_secs(1) + Duration::from_millis(100) * polls.div_ceil(100) as u32;
    println!(
        "  Ctrip's model for {polls} waiters (not measured): <= 1 s scan + ceil({polls}/100) x 100 ms batches = {:.1} s worst case",
        ctrip.as_secs_f64()
    );
    drop(conns);
    Ok((answer, maxima[WAVES / 2]))
}

/// A floor's wave WAVES times, each on a fresh child as each host round is; prints
/// them and returns the median wave's last answer.
async fn floor_waves(kind: floor::Kind, polls: usize, body: &[u8]) -> Result<Duration> {
    println!("\nconfig_push {}: {polls} requests parked on {}", kind.label(), kind.description());
    let mut maxima = Vec::with_capacity(WAVES);
    for wave in 1..=WAVES {
        println!("wave {wave}/{WAVES}:");
        maxima.push(floor_round(kind, polls, body).await?);
    }
    maxima.sort();
    Ok(maxima[WAVES / 2])
}

/// Each way's median wave over each floor's median wave for the same N, measured
/// minutes apart on the same machine: what the host adds to the machine's own cost
/// (bare) and to the cost of its HTTP stack (hyper).
fn print_over_floors(polls: usize, median_waves: &[(Way, Duration)], floors: &[(floor::Kind, Duration)]) {
    for (kind, floor) in floors {
        let ratios: Vec<String> = median_waves
            .iter()
            .map(|(way, wave)| format!("{} {:.2}x", way.label(), wave.as_secs_f64() / floor.as_secs_f64().max(1e-9)))
            .collect();
        println!(
            "{polls} polls, median wave over the {}'s median wave ({:.1} ms): {}",
            kind.label(),
            ms(*floor),
            ratios.join(", ")
        );
    }
}

/// A floor for the same wave (`config_push/floor.rs`): `polls` requests parked on a
/// `kind` child process, answered with the host's answer `body`, read by the same reader
/// thread. Returns the last answer's time.
async fn floor_round(kind: floor::Kind, polls: usize, body: &[u8]) -> Result<Duration> {
    let mut floor = floor::Floor::start(kind, polls, body)?;
    let poll = get(&poll_path("", 0));
    let mut conns = Vec::with_capacity(polls);
    for _ in 0..polls {
        let mut conn = TcpStream::connect(&floor.addr).await?;
        conn.set_nodelay(true)?;
        conn.write_all(poll.as_bytes()).await?;
        conns.push(conn);
    }
    let mut floor = tokio::task::spawn_blocking(move || floor.parked().map(|()| floor)).await??;
    let conns = conns.into_iter().map(|conn| conn.into_std()).collect::<std::io::Result<Vec<_>>>()?;
    let (floor_pid, own) = (floor.pid(), std::process::id() as i32);
    let cpu_now = move || anyhow::Ok((cpu_time(floor_pid)?, cpu_time(own)?));
    let (registered, done) = responses::read_on_own_thread(conns, Duration::from_secs(60), cpu_now);
    registered.await.context("the reader thread ended before it registered the connections")?;
    let before = cpu_now()?;
    let t_release = Instant::now();
    floor.release()?;
    let read = done.await.context("the reader thread ended without answers")??;
    let after = read.at_last?;
    let mut from_release = Vec::with_capacity(polls);
    for responses::Answer { at, status, body: got } in read.answers {
        ensure!(status == 200 && got == body, "the floor's answer came back as {status} {got:?}");
        from_release.push(at.saturating_duration_since(t_release));
    }
    let last = print_wave("after the release", from_release, ("floor", after.0 - before.0), after.1 - before.1);
    drop((floor, read.streams));
    Ok(last)
}

/// p50 / p99 / max of sorted `times`.
fn spread(label: &str, times: &[Duration]) -> String {
    let pick = |q: f64| ms(times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1]);
    format!("  {label}: p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms", pick(0.50), pick(0.99), pick(1.0))
}

/// Each poll's time from the release to its answer, the wake-ups per second that makes,
/// the fixed cost (the release's own work before the first answer) apart from the
/// spread, and whose CPU the wave took: the answering side's or the clients'. Returns
/// the last answer's time.
fn print_wave(
    label: &str,
    mut times: Vec<Duration>,
    (side, side_cpu): (&str, Duration),
    clients_cpu: Duration,
) -> Duration {
    times.sort();
    let (polls, first, last) = (times.len(), times[0], times[times.len() - 1]);
    println!("{}   {:.0} wake-ups/s", spread(label, &times), polls as f64 / last.as_secs_f64().max(1e-6));
    println!(
        "  first answered {:.1} ms after the release; the other {} within {:.1} ms of it",
        ms(first),
        polls - 1,
        ms(last - first)
    );
    let per_poll = |cpu: Duration| cpu.as_secs_f64() * 1e6 / polls as f64;
    println!(
        "  CPU from the release to the last answer: {side} {:.1} ms ({:.1} us per poll), clients {:.1} ms ({:.1} us per poll)",
        ms(side_cpu),
        per_poll(side_cpu),
        ms(clients_cpu),
        per_poll(clients_cpu)
    );
    last
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// App, item and a first release, through the Open API with the host token.
async fn setup(api: &ApiClient) -> Result<()> {
    let app = json!({"app": {"appId": APP, "name": APP, "orgId": "bench", "orgName": "bench",
        "ownerName": "admin", "ownerEmail": "admin@example.com"}, "admins": ["admin"]});
    let _: Value = api.post(&format!("{MOUNT}/openapi/v1/apps"), Some(&app)).await.context("create app")?;
    edit(api, "0").await?;
    release(api, "0").await?;
    Ok(())
}

/// The bench namespace's Open API path.
fn namespace_path() -> String {
    format!("{MOUNT}/openapi/v1/envs/DEV/apps/{APP}/clusters/default/namespaces/{NS}")
}

/// Sets item `timeout` to `value` (an edit: nothing reaches the clients yet).
async fn edit(api: &ApiClient, value: &str) -> Result<()> {
    let item = json!({"key": "timeout", "value": value, "dataChangeLastModifiedBy": "admin",
        "dataChangeCreatedBy": "admin"});
    let path = format!("{}/items/timeout?createIfNotExists=true", namespace_path());
    let put = api.send(http::Method::PUT, &path, Some(&item)).await?;
    ensure!(put.status.is_success(), "PUT item answered {}: {}", put.status, String::from_utf8_lossy(&put.body));
    Ok(())
}

/// Releases `application` (titled after `value`): the call the waves are timed from.
async fn release(api: &ApiClient, value: &str) -> Result<Value> {
    let body = json!({"releaseTitle": format!("bench-{value}"), "releasedBy": "admin"});
    api.post(&format!("{}/releases", namespace_path()), Some(&body)).await.context("release")
}

/// The namespace's current notification id (a poll that knows nothing answers at once)
/// and release key (from `/configs`).
async fn current(addr: &str, prefix: &str) -> Result<(i64, String)> {
    let mut conn = TcpStream::connect(addr).await?;
    conn.write_all(get(&poll_path(prefix, -1)).as_bytes()).await?;
    let (status, body) = responses::read(&mut conn).await?;
    ensure!(status == 200, "a poll with id -1 answered {status}: {}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body)?;
    let id = body[0]["notificationId"].as_i64().with_context(|| format!("no notificationId in {body}"))?;
    conn.write_all(get(&format!("{prefix}/configs/{APP}/default/{NS}")).as_bytes()).await?;
    let (status, body) = responses::read(&mut conn).await?;
    ensure!(status == 200, "/configs answered {status}");
    let body: Value = serde_json::from_slice(&body)?;
    Ok((id, body["releaseKey"].as_str().unwrap_or_default().to_string()))
}

fn poll_path(prefix: &str, id: i64) -> String {
    let notifications = format!(r#"[{{"namespaceName":"{NS}","notificationId":{id}}}]"#);
    let encoded: String = notifications
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("{prefix}/notifications/v2?appId={APP}&cluster=default&notifications={encoded}")
}

async fn status(api: &ApiClient) -> Result<Value> {
    api.get(&format!("{MOUNT}/admin/status")).await.context("GET /admin/status")
}

/// `/configs` req/s with a matching releaseKey (304) and without (200).
async fn configs_rounds(host: &support::ServedHost, release_key: &str) -> Result<()> {
    let base = format!("{MOUNT}/configs/{APP}/default/{NS}?ip=127.0.0.1");
    println!("\n/configs, {CONNECTIONS} keep-alive clients, {} s per round, rounds alternating:", ROUND.as_secs());
    let with_key = format!("{base}&releaseKey={release_key}");
    let rounds = [("releaseKey matches (304)", &with_key, 304), ("no releaseKey (200)", &base, 200)];
    for (label, path, expect) in rounds.iter().cycle().take(2 * PAIRS).cloned() {
        let (count, other) = closed_loop(&host.addr, &get(path), expect).await?;
        println!(
            "  {label:<26} {:>9.0} req/s   ({count} answers{})",
            count as f64 / ROUND.as_secs_f64(),
            if other > 0 { format!(", {other} with another status") } else { String::new() }
        );
    }
    Ok(())
}

/// CONNECTIONS clients, each sending its next request as soon as the answer is in,
/// for ROUND; returns (answers with `expect`, answers with another status).
async fn closed_loop(addr: &str, request: &str, expect: u16) -> Result<(u64, u64)> {
    let good = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut conn = TcpStream::connect(addr).await?;
        conn.set_nodelay(true)?;
        let (good, bad, stop, request) = (good.clone(), bad.clone(), stop.clone(), request.to_string());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                conn.write_all(request.as_bytes()).await?;
                let (status, _) = responses::read(&mut conn).await?;
                if status == expect { &good } else { &bad }.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(ROUND).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    Ok((good.load(Ordering::Relaxed), bad.load(Ordering::Relaxed)))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n")
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

/// CPU time all threads of process `pid` have run so far (`/proc/PID/task/*/schedstat`,
/// nanoseconds; a thread that ended meanwhile is not counted, and none of the host's or
/// this runtime's do during a round).
fn cpu_time(pid: i32) -> Result<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("schedstat")) else { continue };
        total += stat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
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
