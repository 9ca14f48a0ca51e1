//! Supervisor benchmark: Apollo side by side with supervisord and PM2, in one run.
//!
//! For each manager, with N services that are all `/bin/sleep 100000`, for N = 200,
//! 1 000 and 2 000 (a manager is launched afresh for each N):
//! - the manager's own RSS with the N services registered but stopped, and running;
//! - the time from "start all" until the manager reports all N running;
//! - the time from "stop all" until the manager reports none running;
//! - at N = 200 only: crash -> running-again latency, p50 and p99 over 100 SIGKILLs,
//!   restart delay zero.
//!
//! Then Apollo's own RSS with the demo's four standard modules (the Makefile's
//! `DEMO_MODULE_FILES`, from `modules-dist/` or the cdylibs beside the bench's apollo
//! binary) loaded and no service: the demo host.
//!
//! It prints tables and Apollo-vs-peer ratios and asserts nothing: the figures depend
//! on the machine. Apollo is the real `apollo serve` binary (release build under
//! `cargo bench`), driven through its unix socket. A peer is measured when its binaries
//! are on PATH (`supervisord` + `supervisorctl` from Debian's `supervisor`, `pm2` from
//! npm), else its column says "not installed". `APOLLO_BENCH_SCALES=200` (a comma
//! list) limits the sizes measured.
//!
//! Run: `cargo bench -p apollo-tests --bench supervise` (a few minutes with both peers).
//!
//! Every manager lives in its own temp dir (pm2 with its own PM2_HOME, so no global
//! state is touched), talks over unix sockets only, and is stopped with everything it
//! started before the next one runs, also when a step fails.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use apollo_host::cli::{ApiClient, Endpoint};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// The sizes measured; crash latencies at the first only.
const SCALES: [usize; 3] = [200, 1_000, 2_000];
const CRASHES: usize = 100;
const SERVICE_ARGV: [&str; 2] = ["/bin/sleep", "100000"];
/// Lets a manager finish the previous step's work (allocations, log files, replies)
/// before its RSS is read, so the figure is not caught mid-operation.
const SETTLE: Duration = Duration::from_secs(1);
/// Interval between status polls while waiting for a restart.
const POLL: Duration = Duration::from_millis(1);
const START_TIMEOUT: Duration = Duration::from_secs(300);
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a manager gets to stop its services and exit at the end.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> Result<()> {
    let scales = scales()?;
    println!(
        "supervise bench: N = {} services ({}), {CRASHES} crashes at N = {} per manager, {} cores",
        scales.iter().map(usize::to_string).collect::<Vec<_>>().join(" / "),
        SERVICE_ARGV.join(" "),
        scales[0],
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Apollo is the subject: if it cannot be measured the bench fails.
    let apollo = scales
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            measure(&mut Apollo::launch(n)?, n, i == 0).with_context(|| format!("measuring apollo, N = {n}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let supervisord = peer(&["supervisord", "supervisorctl"], &scales, |n| Ok(Box::new(Supervisord::launch(n)?)));
    let pm2 = peer(&["pm2"], &scales, |n| Ok(Box::new(Pm2::launch(n)?)));
    let demo = demo_host_rss();
    report(&apollo, &[("supervisord", supervisord), ("pm2", pm2)], &demo);
    Ok(())
}

/// `APOLLO_BENCH_SCALES` (e.g. `200,1000`), else `SCALES`.
fn scales() -> Result<Vec<usize>> {
    let Ok(list) = std::env::var("APOLLO_BENCH_SCALES") else { return Ok(SCALES.to_vec()) };
    let scales: Vec<usize> = list
        .split(',')
        .map(|n| n.trim().parse().with_context(|| format!("APOLLO_BENCH_SCALES={list:?}: {n:?} is not a count")))
        .collect::<Result<_>>()?;
    if scales.is_empty() || scales.contains(&0) || scales[0] < CRASHES.min(200) {
        bail!("APOLLO_BENCH_SCALES={list:?}: give counts > 0, the first at least 200 (it gets the crash loop)");
    }
    Ok(scales)
}

// ----- what is measured, the same way for every manager ------------------------------

/// One process manager, set up with every service registered and none running.
/// Dropping it stops the manager and everything it started.
trait Manager {
    /// The manager's own process, whose RSS is reported.
    fn host_pid(&self) -> i32;
    /// Untimed preparation right before the timed start.
    fn before_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Asks the manager to start every service, through its usual interface.
    fn start_all(&mut self) -> Result<()>;
    /// Asks the manager to stop every service, through its usual interface.
    fn stop_all(&mut self) -> Result<()>;
    /// How many services the manager reports as running.
    fn running(&mut self) -> Result<usize>;
    /// Untimed cross-check after `running` reached `n`, for managers whose cheap
    /// `running` signal is not their own status API.
    fn confirm_running(&mut self, _n: usize) -> Result<()> {
        Ok(())
    }
    /// The pid of `name` while the manager reports it running.
    fn running_pid(&mut self, name: &str) -> Result<Option<i32>>;
    /// One status query of `name` through the manager's CLI, for the overhead row.
    fn cli_status(&self, name: &str) -> Result<()>;
    /// What was measured, for the report.
    fn version(&self) -> String;
}

/// What one manager measured with `n` services.
#[derive(Debug, Clone)]
struct Figures {
    version: String,
    n: usize,
    start: Duration,
    stop: Duration,
    rss_idle: u64,
    rss_running: u64,
    /// Measured at the first size only.
    crashes: Option<Crashes>,
}

#[derive(Debug, Clone)]
struct Crashes {
    /// Sorted.
    restarts: Vec<Duration>,
    /// Crashes not followed by a running process within RESTART_TIMEOUT.
    missed: usize,
    /// Mean cost of the status poll used to detect restarts.
    poll: Duration,
    /// Mean cost of one status call through the manager's CLI.
    cli: Duration,
}

impl Crashes {
    fn percentile(&self, p: usize) -> Option<Duration> {
        // Nearest rank: of 100 samples p50 is the 50th, p99 the 99th.
        let n = self.restarts.len();
        (n > 0).then(|| self.restarts[(p * n).div_ceil(100).clamp(1, n) - 1])
    }
}

/// How often "all running" / "none running" is polled: the listing itself costs the
/// manager work proportional to `n`, which should not dominate what is measured.
fn status_poll(n: usize) -> Duration {
    Duration::from_micros(25 * n as u64)
}

fn measure(m: &mut dyn Manager, n: usize, crashes: bool) -> Result<Figures> {
    std::thread::sleep(SETTLE);
    let rss_idle = rss_bytes(m.host_pid())?;

    m.before_start()?;
    let t0 = Instant::now();
    m.start_all()?;
    wait_running(m, n, |running| running == n, "running")?;
    let start = t0.elapsed();
    m.confirm_running(n)?;

    std::thread::sleep(SETTLE);
    let rss_running = rss_bytes(m.host_pid())?;

    let crashes = if crashes {
        let probe = service_name(n - 1);
        let poll = mean_time(50, || m.running_pid(&probe).map(drop))?;
        // A few calls only: a node or python CLI costs hundreds of milliseconds each.
        let cli = mean_time(3, || m.cli_status(&probe))?;
        let (restarts, missed) = crash_latencies(m, n)?;
        Some(Crashes { restarts, missed, poll, cli })
    } else {
        None
    };

    std::thread::sleep(SETTLE);
    let t0 = Instant::now();
    m.stop_all()?;
    wait_running(m, n, |running| running == 0, "stopped")?;
    let stop = t0.elapsed();
    Ok(Figures { version: m.version(), n, start, stop, rss_idle, rss_running, crashes })
}

/// Polls `running` until `done` says so, or START_TIMEOUT.
fn wait_running(m: &mut dyn Manager, n: usize, done: impl Fn(usize) -> bool, what: &str) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let running = m.running()?;
        if done(running) {
            return Ok(());
        }
        if t0.elapsed() > START_TIMEOUT {
            bail!("not all {n} services {what} after {START_TIMEOUT:?} ({running} running)");
        }
        std::thread::sleep(status_poll(n));
    }
}

/// SIGKILLs a running service's process and polls the manager every POLL until it
/// reports the service running with another pid. Each sample therefore includes up to
/// one poll interval plus one poll (both printed), the same for every manager.
fn crash_latencies(m: &mut dyn Manager, n: usize) -> Result<(Vec<Duration>, usize)> {
    let mut samples = Vec::with_capacity(CRASHES);
    let mut missed = 0;
    for i in 0..CRASHES {
        // A different service each time: no sample is a restart of a restart.
        let name = service_name(i % n);
        let old = m.running_pid(&name)?.with_context(|| format!("{name} is not running before its crash"))?;
        kill(Pid::from_raw(old), Signal::SIGKILL).with_context(|| format!("SIGKILL {name} (pid {old})"))?;
        let t0 = Instant::now();
        loop {
            match m.running_pid(&name)? {
                Some(pid) if pid != old => {
                    samples.push(t0.elapsed());
                    break;
                }
                _ if t0.elapsed() > RESTART_TIMEOUT => {
                    missed += 1;
                    break;
                }
                _ => std::thread::sleep(POLL),
            }
        }
        // The manager's after-work for one restart (logs, bookkeeping) should not
        // overlap the next crash.
        std::thread::sleep(Duration::from_millis(10));
    }
    samples.sort();
    Ok((samples, missed))
}

fn mean_time(n: u32, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let t0 = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t0.elapsed() / n)
}

/// A peer's outcome: measured (at every size that worked; a failed size is reported
/// and the bench goes on), or absent.
enum Peer {
    Measured(Vec<Result<Figures, String>>),
    NotInstalled,
}

impl Peer {
    fn at(&self, n: usize) -> Cell<'_> {
        match self {
            Self::NotInstalled => Cell::NotInstalled,
            Self::Measured(all) => {
                match all.iter().find(|f| f.as_ref().map_or_else(|e| e.starts_with(&format!("N = {n}:")), |f| f.n == n))
                {
                    Some(Ok(f)) => Cell::Measured(f),
                    Some(Err(_)) | None => Cell::Failed,
                }
            }
        }
    }
}

enum Cell<'a> {
    Measured(&'a Figures),
    Failed,
    NotInstalled,
}

fn peer(binaries: &[&str], scales: &[usize], launch: impl Fn(usize) -> Result<Box<dyn Manager>>) -> Peer {
    if !binaries.iter().all(|b| on_path(b)) {
        return Peer::NotInstalled;
    }
    // The manager is dropped (stopped and cleaned up) before the next one starts, so
    // two managers never share the two cores.
    Peer::Measured(
        scales
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                launch(n).and_then(|mut m| measure(m.as_mut(), n, i == 0)).map_err(|e| format!("N = {n}: {e:#}"))
            })
            .collect(),
    )
}

// ----- the report ----------------------------------------------------------------------

/// One reported figure: where it comes from and how to say it. Lower is better for all.
struct Metric {
    /// The table's row label, with `{n}` for the size.
    row: &'static str,
    unit: &'static str,
    get: fn(&Figures) -> Option<f64>,
    /// For a ratio line: its label (with `{n}`), and how Apollo's lower / higher figure is put.
    ratio: Option<(&'static str, &'static str, &'static str)>,
}

/// Measured at every size.
const SCALE_METRICS: [Metric; 4] = [
    Metric {
        row: "start {n} -> all running (s)",
        unit: "s",
        get: |f| Some(f.start.as_secs_f64()),
        ratio: Some(("start {n}", "faster", "slower")),
    },
    Metric {
        row: "stop {n} -> none running (s)",
        unit: "s",
        get: |f| Some(f.stop.as_secs_f64()),
        ratio: Some(("stop {n}", "faster", "slower")),
    },
    Metric {
        row: "RSS idle, {n} registered (MiB)",
        unit: "MiB",
        get: |f| Some(mib(f.rss_idle)),
        ratio: Some(("RSS idle {n}", "smaller", "larger")),
    },
    Metric {
        row: "RSS with {n} running (MiB)",
        unit: "MiB",
        get: |f| Some(mib(f.rss_running)),
        ratio: Some(("RSS {n} running", "smaller", "larger")),
    },
];

/// Measured at the first size.
const CRASH_METRICS: [Metric; 4] = [
    Metric {
        row: "crash -> running p50 (ms)",
        unit: "ms",
        get: |f| f.crashes.as_ref()?.percentile(50).map(ms),
        ratio: Some(("crash->running p50", "faster", "slower")),
    },
    Metric {
        row: "crash -> running p99 (ms)",
        unit: "ms",
        get: |f| f.crashes.as_ref()?.percentile(99).map(ms),
        ratio: Some(("crash->running p99", "faster", "slower")),
    },
    Metric {
        row: "status poll used above (ms)",
        unit: "ms",
        get: |f| f.crashes.as_ref().map(|c| ms(c.poll)),
        ratio: None,
    },
    Metric {
        row: "one status call via CLI (ms)",
        unit: "ms",
        get: |f| f.crashes.as_ref().map(|c| ms(c.cli)),
        ratio: None,
    },
];

/// Every row of the table: (size, metric), sizes in order, crash rows after the first.
fn rows(scales: &[usize]) -> Vec<(usize, &'static Metric)> {
    let mut rows = Vec::new();
    for (i, &n) in scales.iter().enumerate() {
        rows.extend(SCALE_METRICS.iter().map(|m| (n, m)));
        if i == 0 {
            rows.extend(CRASH_METRICS.iter().map(|m| (n, m)));
        }
    }
    rows
}

fn report(apollo: &[Figures], peers: &[(&str, Peer)], demo: &Result<DemoFigures>) {
    let scales: Vec<usize> = apollo.iter().map(|f| f.n).collect();
    let managers: Vec<(&str, Peer)> =
        std::iter::once(("apollo", Peer::Measured(apollo.iter().cloned().map(Ok).collect())))
            .chain(peers.iter().map(|(name, p)| {
                (
                    *name,
                    match p {
                        Peer::Measured(all) => Peer::Measured(all.clone()),
                        Peer::NotInstalled => Peer::NotInstalled,
                    },
                )
            }))
            .collect();
    let versions: Vec<String> = managers
        .iter()
        .filter_map(|(_, p)| match p {
            Peer::Measured(all) => all.iter().find_map(|f| f.as_ref().ok()).map(|f| f.version.clone()),
            Peer::NotInstalled => None,
        })
        .collect();
    println!("measured: {}", versions.join(", "));
    println!();
    print!("{:<34}", "");
    for (name, _) in &managers {
        print!("{name:>16}");
    }
    println!();
    for (n, metric) in rows(&scales) {
        print!("{:<34}", metric.row.replace("{n}", &n.to_string()));
        for (_, p) in &managers {
            let text = match p.at(n) {
                Cell::Measured(f) => cell((metric.get)(f)),
                Cell::Failed => "failed".into(),
                Cell::NotInstalled => "not installed".into(),
            };
            print!("{text:>16}");
        }
        println!();
    }
    // What one more registered service costs, from the smallest to the largest size.
    if let (Some(&small), Some(&large)) = (scales.first(), scales.last())
        && large > small
    {
        print!("{:<34}", format!("RSS per registered svc (KiB)"));
        for (_, p) in &managers {
            let text = match (p.at(small), p.at(large)) {
                (Cell::Measured(a), Cell::Measured(b)) => cell(Some(per_service_kib(a, b))),
                (Cell::NotInstalled, _) => "not installed".into(),
                _ => "failed".into(),
            };
            print!("{text:>16}");
        }
        println!();
    }
    match demo {
        Ok(d) => println!(
            "{:<34}{:>16}",
            format!("RSS demo host, {} modules (MiB)", d.modules.len()),
            cell(Some(mib(d.rss)))
        ),
        Err(e) => println!("RSS demo host with modules: not measured: {e:#}"),
    }
    for (name, p) in &managers {
        let Peer::Measured(all) = p else { continue };
        for f in all {
            match f {
                Ok(f) => {
                    if let Some(c) = f.crashes.as_ref().filter(|c| c.missed > 0) {
                        println!("{name}: {} of {CRASHES} crashes not restarted within {RESTART_TIMEOUT:?}", c.missed);
                    }
                }
                Err(e) => println!("{name} failed at {e}"),
            }
        }
    }

    println!();
    println!("how: every service is `{}`; restart delay zero everywhere.", SERVICE_ARGV.join(" "));
    println!("  start = from the start request until the manager reports all N running:");
    println!("    apollo POST /api/apps/start-all, then GET /api/apps (unix socket);");
    println!("    supervisord XML-RPC startAllProcesses, then getAllProcessInfo (unix socket, no CLI);");
    println!("    pm2 `pm2 start eco.json` (includes one node CLI start-up, see the CLI row) until");
    println!("    all pid files hold live pids; `pm2 jlist` confirms all online afterwards, untimed.");
    println!("  stop = from the stop request until the same poll finds none running: apollo POST");
    println!("    /api/apps/stop-all, supervisord XML-RPC stopAllProcesses, pm2 `pm2 stop all`.");
    println!("  crash = SIGKILL of the service's pid until a poll (every ~1 ms) shows running + a new pid;");
    println!("    a sample includes up to one poll interval + one poll (row \"status poll\"). Polls:");
    println!("    apollo GET /api/apps/NAME/status; supervisord XML-RPC getProcessInfo (what supervisorctl");
    println!("    calls, without starting python each time); pm2 its pid file, written in the same tick it");
    println!("    marks the process online (pm2's status RPC collects CPU/RSS of all processes per call).");
    println!("    Polling through the CLIs instead would add the last row's cost to every poll.");
    println!("  RSS = VmRSS of the manager process: apollo serve, supervisord, the PM2 God Daemon.");
    println!("    Per registered service: (idle RSS at the largest N - at the smallest) / the difference in N.");
    if let Ok(d) = demo {
        println!(
            "  demo host = apollo serve with {} loaded from {}, no service, after 2 s idle.",
            d.modules.join(", "),
            d.from.display()
        );
    }

    println!();
    for (n, metric) in rows(&scales) {
        let Some((label, lower, higher)) = metric.ratio else { continue };
        let Some(ours) = apollo.iter().find(|f| f.n == n).and_then(|f| (metric.get)(f)) else { continue };
        let mut line = format!("{}: apollo {}", label.replace("{n}", &n.to_string()), with_unit(ours, metric.unit));
        for (name, p) in peers {
            line += &match p.at(n) {
                Cell::Measured(f) => match (metric.get)(f) {
                    Some(theirs) => {
                        format!(
                            ", {name} {} ({})",
                            with_unit(theirs, metric.unit),
                            compare(ours, theirs, (lower, higher))
                        )
                    }
                    None => format!(", {name} no samples"),
                },
                Cell::Failed => format!(", {name} failed"),
                Cell::NotInstalled => format!(", {name} not installed"),
            };
        }
        println!("{line}");
    }
}

#[allow(clippy::cast_precision_loss)] // sizes and byte counts are far below 2^52
fn per_service_kib(small: &Figures, large: &Figures) -> f64 {
    (large.rss_idle as f64 - small.rss_idle as f64) / 1024.0 / (large.n - small.n) as f64
}

/// "apollo 3.7x faster" / "apollo 1.2x slower".
fn compare(ours: f64, theirs: f64, (lower, higher): (&str, &str)) -> String {
    if ours <= 0.0 || theirs <= 0.0 {
        "no ratio".into()
    } else if ours <= theirs {
        format!("apollo {:.1}x {lower}", theirs / ours)
    } else {
        format!("apollo {:.1}x {higher}", ours / theirs)
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.*}", decimals(v)))
}

fn with_unit(v: f64, unit: &str) -> String {
    format!("{v:.*} {unit}", decimals(v))
}

/// Three significant digits or so, without scientific notation.
fn decimals(v: f64) -> usize {
    match v.abs() {
        x if x >= 100.0 => 0,
        x if x >= 10.0 => 1,
        x if x >= 1.0 => 2,
        _ => 3,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[allow(clippy::cast_precision_loss)] // RSS in bytes is far below 2^52
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----- Apollo --------------------------------------------------------------------------

/// `apollo serve` as a child, with `n` supervised models.
struct Apollo {
    rt: tokio::runtime::Runtime,
    client: ApiClient,
    child: Child,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Apollo {
    fn launch(n: usize) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-apollo-").tempdir()?;
        let config = dir.path().join("apollo.pig");
        let pig = json!({
            "service_root": ".",
            "server": {"host": "127.0.0.1", "port": 0},
            "log": {"enable_log": false},
            "supervisor": {"stop_services_on_exit": true}
        });
        std::fs::write(&config, serde_json::to_vec_pretty(&pig)?)?;
        let models = dir.path().join("app/.octopus");
        std::fs::create_dir_all(&models)?;
        for i in 0..n {
            let name = service_name(i);
            // The least delay Apollo accepts (1 ms; 0 is refused) and every run counted
            // stable, like supervisord's startsecs=0 and pm2's restart_delay 0: the
            // figure is the supervisor's own reaction, not a policy.
            let model = json!({
                "name": name, "id": format!("app_{name}"),
                "run_data": {"command": SERVICE_ARGV},
                "supervise": {"restart": "always", "backoff_initial_ms": 1, "min_uptime_ms": 1, "max_restarts": 100_000}
            });
            std::fs::write(models.join(format!("{name}.pig")), serde_json::to_vec(&model)?)?;
        }

        let apollo = Self::serve(config, dir)?;
        // The model folder is read at start; wait until all are registered.
        let t0 = Instant::now();
        while apollo.apps()?.len() < n {
            if t0.elapsed() > START_TIMEOUT {
                bail!("apollo registered only {} of {n} models", apollo.apps()?.len());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(apollo)
    }

    /// Runs `apollo serve` on `config` (in `dir`, which it keeps) until dropped.
    fn serve(config: PathBuf, dir: tempfile::TempDir) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_apollo-under-test"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("APOLLO_ADMIN_PASSWORD", "bench-password-123")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawn apollo serve")?;
        let socket = match support::listening(&mut child).map(|(_, socket)| socket) {
            Ok(s) => s,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = ApiClient::new(Endpoint::Unix(socket), None);
        Ok(Self { rt, client, child, config, _dir: dir })
    }

    fn apps(&self) -> Result<Vec<Value>> {
        let list: Value = self.rt.block_on(self.client.get("/api/apps"))?;
        Ok(list.as_array().cloned().unwrap_or_default())
    }
}

impl Manager for Apollo {
    fn host_pid(&self) -> i32 {
        child_pid(&self.child)
    }

    fn start_all(&mut self) -> Result<()> {
        let outcomes: Value = self.rt.block_on(self.client.post("/api/apps/start-all", None))?;
        if let Some(failed) = outcomes.as_array().into_iter().flatten().find(|o| o["ok"] != true) {
            bail!("start-all: {failed}");
        }
        Ok(())
    }

    fn stop_all(&mut self) -> Result<()> {
        let outcomes: Value = self.rt.block_on(self.client.post("/api/apps/stop-all", None))?;
        if let Some(failed) = outcomes.as_array().into_iter().flatten().find(|o| o["ok"] != true) {
            bail!("stop-all: {failed}");
        }
        Ok(())
    }

    fn running(&mut self) -> Result<usize> {
        Ok(self.apps()?.iter().filter(|a| a["state"] == "running").count())
    }

    fn running_pid(&mut self, name: &str) -> Result<Option<i32>> {
        let status: Value = self.rt.block_on(self.client.get(&format!("/api/apps/{name}/status")))?;
        Ok(if status["state"] == "running" { status["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) } else { None })
    }

    fn cli_status(&self, name: &str) -> Result<()> {
        let config = self.config.to_str().context("utf-8 config path")?;
        run_quiet(
            Command::new(env!("CARGO_BIN_EXE_apollo-under-test")).args(["--config", config, "app", "status", name]),
        )
    }

    fn version(&self) -> String {
        format!("apollo {} (release build)", env!("CARGO_PKG_VERSION"))
    }
}

impl Drop for Apollo {
    fn drop(&mut self) {
        let pids: Vec<i32> =
            self.apps().unwrap_or_default().iter().filter_map(|a| a["pid"].as_i64()?.try_into().ok()).collect();
        // SIGTERM: with stop_services_on_exit the host stops its services, then exits.
        let _ = kill(Pid::from_raw(child_pid(&self.child)), Signal::SIGTERM);
        stop_child(&mut self.child, STOP_TIMEOUT);
        kill_leftovers(&pids);
    }
}

// ----- the demo host -------------------------------------------------------------------

/// Apollo with the standard modules loaded and no service.
struct DemoFigures {
    rss: u64,
    modules: Vec<String>,
    from: PathBuf,
}

/// The modules `make demo` gives the demo host: the Makefile's `DEMO_MODULE_FILES`
/// (read from it, so the bench measures what the demo loads and nothing else).
fn demo_module_files() -> Result<Vec<String>> {
    let makefile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Makefile");
    let text = std::fs::read_to_string(&makefile).with_context(|| format!("read {}", makefile.display()))?;
    let files = text
        .lines()
        .find_map(|line| line.strip_prefix("DEMO_MODULE_FILES :="))
        .with_context(|| format!("no `DEMO_MODULE_FILES :=` line in {}", makefile.display()))?;
    Ok(files.split_whitespace().map(str::to_string).collect())
}

/// The demo's module libraries as `make modules` stages them (`modules-dist/`), else
/// the cdylibs built beside the bench's apollo binary (`lib` + the same name).
fn standard_modules() -> Result<(PathBuf, Vec<PathBuf>)> {
    let wanted = demo_module_files()?;
    let staged = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules-dist");
    let built = Path::new(env!("CARGO_BIN_EXE_apollo-under-test")).parent().map(Path::to_path_buf).unwrap_or_default();
    let in_staged: Vec<PathBuf> = wanted.iter().map(|file| staged.join(file)).collect();
    if in_staged.iter().all(|p| p.is_file()) {
        return Ok((staged, in_staged));
    }
    let in_built: Vec<PathBuf> = wanted.iter().map(|file| built.join(format!("lib{file}"))).collect();
    if let Some(missing) = in_built.iter().find(|p| !p.is_file()) {
        bail!(
            "{} is missing (and modules-dist/ lacks the demo's modules): run `make modules` first",
            missing.display()
        );
    }
    Ok((built, in_built))
}

fn demo_host_rss() -> Result<DemoFigures> {
    let (from, libraries) = standard_modules()?;
    let dir = tempfile::Builder::new().prefix("bench-demo-").tempdir()?;
    let (config, modules) = support::quiet_host_config(dir.path())?;
    for library in &libraries {
        // The host names a module by its file name; `make modules` already strips `lib`.
        let name = library.file_name().and_then(|n| n.to_str()).unwrap_or_default().trim_start_matches("lib");
        std::fs::copy(library, modules.join(name)).with_context(|| format!("copy {}", library.display()))?;
    }
    let apollo = Apollo::serve(config, dir)?;
    let t0 = Instant::now();
    let loaded = loop {
        let listed: Value = apollo.rt.block_on(apollo.client.get("/api/modules"))?;
        let loaded: Vec<String> = listed["modules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(str::to_string))
            .collect();
        if loaded.len() == libraries.len() {
            break loaded;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("{} of {} modules loaded after 30 s: {listed}", loaded.len(), libraries.len());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Modules start their timers at init (influx samples every interval): let them run.
    std::thread::sleep(2 * SETTLE);
    Ok(DemoFigures { rss: rss_bytes(apollo.host_pid())?, modules: loaded, from })
}

// ----- supervisord ---------------------------------------------------------------------

/// `supervisord -n` as a child, with `n` programs, none autostarted.
struct Supervisord {
    child: Child,
    config: PathBuf,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Supervisord {
    fn launch(n: usize) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-supervisord-").tempdir()?;
        let root = dir.path();
        let socket = root.join("supervisor.sock");
        std::fs::create_dir_all(root.join("log"))?;
        let mut conf = format!(
            "[unix_http_server]\nfile={sock}\n\n\
             [supervisord]\nlogfile={root}/supervisord.log\npidfile={root}/supervisord.pid\n\
             childlogdir={root}/log\nnodaemon=true\n\
             ; each program holds a few pipes and log files: 1024 descriptors are too few\n\
             minfds={minfds}\n\n\
             [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{sock}\n",
            sock = socket.display(),
            root = root.display(),
            minfds = (8 * n).max(4096)
        );
        for i in 0..n {
            // startsecs=0: RUNNING as soon as spawned, as Apollo's services without a
            // health check; startretries: never give up during the crash loop.
            conf += &format!(
                "\n[program:{}]\ncommand={}\nautostart=false\nautorestart=true\nstartsecs=0\nstartretries=100000\n",
                service_name(i),
                SERVICE_ARGV.join(" ")
            );
        }
        let config = root.join("supervisord.conf");
        std::fs::write(&config, conf)?;
        // In the foreground as our child: its pid is the one to measure, wait on and,
        // if it hangs at the end, kill.
        let child = Command::new("supervisord")
            .arg("-n")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn supervisord")?;
        let s = Self { child, config, socket, _dir: dir };
        let t0 = Instant::now();
        while !xmlrpc(&s.socket, "supervisor.getState", &[]).is_ok_and(|r| r.contains("RUNNING")) {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("supervisord did not answer on {} within 30 s", s.socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    fn all_info(&self) -> Result<String> {
        xmlrpc(&self.socket, "supervisor.getAllProcessInfo", &[])
    }
}

impl Manager for Supervisord {
    fn host_pid(&self) -> i32 {
        child_pid(&self.child)
    }

    fn start_all(&mut self) -> Result<()> {
        // What `supervisorctl start all` sends; answers once all have been spawned.
        xmlrpc(&self.socket, "supervisor.startAllProcesses", &[]).map(drop)
    }

    fn stop_all(&mut self) -> Result<()> {
        // What `supervisorctl stop all` sends; answers once all have stopped.
        xmlrpc(&self.socket, "supervisor.stopAllProcesses", &[]).map(drop)
    }

    fn running(&mut self) -> Result<usize> {
        Ok(self.all_info()?.matches("<string>RUNNING</string>").count())
    }

    fn running_pid(&mut self, name: &str) -> Result<Option<i32>> {
        let info = xmlrpc(&self.socket, "supervisor.getProcessInfo", &[name])?;
        if xml_member(&info, "statename") != Some("RUNNING") {
            return Ok(None);
        }
        Ok(xml_member(&info, "pid").and_then(|p| p.parse().ok()).filter(|p| *p > 0))
    }

    fn cli_status(&self, name: &str) -> Result<()> {
        run_quiet(Command::new("supervisorctl").arg("-c").arg(&self.config).args(["status", name]))
    }

    fn version(&self) -> String {
        let version = xmlrpc(&self.socket, "supervisor.getSupervisorVersion", &[]);
        format!("supervisord {}", version.ok().and_then(|v| xml_string(&v).map(str::to_string)).unwrap_or_default())
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        let pids: Vec<i32> = self
            .all_info()
            .map(|xml| {
                xml.split("<name>pid</name>")
                    .skip(1)
                    .filter_map(|s| xml_member(&format!("<name>pid</name>{s}"), "pid")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // supervisord stops its programs on shutdown, then exits.
        let _ = xmlrpc(&self.socket, "supervisor.shutdown", &[]);
        stop_child(&mut self.child, STOP_TIMEOUT);
        kill_leftovers(&pids);
    }
}

/// One XML-RPC call to supervisord over its unix socket (HTTP/1.0: it closes the
/// connection after answering). Returns the response body.
fn xmlrpc(socket: &Path, method: &str, params: &[&str]) -> Result<String> {
    let params: String = params.iter().map(|p| format!("<param><value><string>{p}</string></value></param>")).collect();
    let body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>{params}</params></methodCall>"
    );
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(START_TIMEOUT))?;
    write!(
        stream,
        "POST /RPC2 HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").with_context(|| format!("{method}: no HTTP response"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        bail!("{method}: {}", head.lines().next().unwrap_or_default());
    }
    if body.contains("<fault>") {
        bail!("{method}: {body}");
    }
    Ok(body.to_string())
}

/// The first string in an XML-RPC response, e.g. the version from getSupervisorVersion.
fn xml_string(xml: &str) -> Option<&str> {
    let text = &xml[xml.find("<string>")? + "<string>".len()..];
    Some(&text[..text.find('<')?])
}

/// The scalar text of the first struct member called `key`, e.g. `RUNNING` or `1234`
/// from `<name>pid</name><value><int>1234</int></value>`.
fn xml_member<'a>(xml: &'a str, key: &str) -> Option<&'a str> {
    let rest = &xml[xml.find(&format!("<name>{key}</name>"))?..];
    let value = &rest[rest.find("<value>")? + "<value>".len()..];
    // Skip the type tag (<int>, <string>, …) when there is one.
    let text = if value.starts_with('<') { &value[value.find('>')? + 1..] } else { value };
    Some(&text[..text.find('<')?])
}

// ----- pm2 -----------------------------------------------------------------------------

/// A pm2 daemon with its own PM2_HOME, `n` apps registered with autostart off.
struct Pm2 {
    home: PathBuf,
    ecosystem: PathBuf,
    daemon: i32,
    _dir: tempfile::TempDir,
}

impl Pm2 {
    fn launch(n: usize) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-pm2-").tempdir()?;
        let home = dir.path().join("pm2home");
        std::fs::create_dir_all(&home)?;
        // pm2's first run in a fresh PM2_HOME calls home for a version check unless
        // this marker exists; the bench stays on this machine.
        std::fs::write(home.join("touch"), "bench")?;
        let apps = |autostart: bool| {
            let apps: Vec<Value> = (0..n)
                .map(|i| {
                    json!({
                        "name": service_name(i),
                        "script": SERVICE_ARGV[0], "args": SERVICE_ARGV[1..].join(" "),
                        // Exec the binary itself, not through node.
                        "interpreter": "none", "exec_mode": "fork",
                        "autostart": autostart, "autorestart": true, "restart_delay": 0,
                        // 100 ms is the least pm2 accepts (it refuses the file below
                        // that); every service runs far longer before its crash.
                        "min_uptime": 100, "max_restarts": 100_000
                    })
                })
                .collect();
            json!({ "apps": apps })
        };
        let registered = dir.path().join("registered.json");
        let ecosystem = dir.path().join("eco.json");
        std::fs::write(&registered, serde_json::to_vec_pretty(&apps(false))?)?;
        std::fs::write(&ecosystem, serde_json::to_vec_pretty(&apps(true))?)?;
        let mut pm2 = Self { home, ecosystem, daemon: 0, _dir: dir };
        // Starts the daemon and registers every app without running it: the idle state.
        let registering = pm2.run(&["start", registered.to_str().context("utf-8 path")?]);
        pm2.daemon = std::fs::read_to_string(pm2.home.join("pm2.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .context("no pm2.pid in PM2_HOME: the daemon did not start")?;
        registering?;
        Ok(pm2)
    }

    fn command(&self) -> Command {
        let mut c = Command::new("pm2");
        c.env("PM2_HOME", &self.home).env("PM2_DISABLE_VERSION_CHECK", "1").stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        run_quiet(self.command().args(args))
    }

    /// Service name -> the pid pm2 recorded for it, from `PM2_HOME/pids/NAME-ID.pid`.
    fn pid_files(&self) -> Result<HashMap<String, i32>> {
        let mut pids = HashMap::new();
        for entry in std::fs::read_dir(self.home.join("pids"))? {
            let path = entry?.path();
            let Some((name, _id)) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.rsplit_once('-')) else {
                continue;
            };
            // pm2 rewrites the file in place: an empty read means "not yet".
            if let Some(pid) = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok()) {
                pids.insert(name.to_string(), pid);
            }
        }
        Ok(pids)
    }
}

impl Manager for Pm2 {
    fn host_pid(&self) -> i32 {
        self.daemon
    }

    fn before_start(&mut self) -> Result<()> {
        // `pm2 start eco.json` is how a pm2 user starts a set of apps; the registered
        // (stopped) copies used for the idle figure go first.
        self.run(&["delete", "all"])
    }

    fn start_all(&mut self) -> Result<()> {
        self.run(&["start", self.ecosystem.to_str().context("utf-8 path")?])
    }

    fn running(&mut self) -> Result<usize> {
        Ok(self.pid_files()?.values().filter(|pid| alive(**pid)).count())
    }

    fn stop_all(&mut self) -> Result<()> {
        self.run(&["stop", "all"])
    }

    fn confirm_running(&mut self, n: usize) -> Result<()> {
        let out = self.command().arg("jlist").stderr(Stdio::null()).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let list: Value = serde_json::from_str(&text[text.find('[').unwrap_or(0)..]).context("pm2 jlist output")?;
        let online = list.as_array().into_iter().flatten().filter(|p| p["pm2_env"]["status"] == "online").count();
        if online != n {
            bail!("pm2 jlist shows {online} of {n} apps online");
        }
        Ok(())
    }

    fn running_pid(&mut self, name: &str) -> Result<Option<i32>> {
        let mut files = std::fs::read_dir(self.home.join("pids"))?;
        let prefix = format!("{name}-");
        let Some(path) = files.find_map(|e| {
            let path = e.ok()?.path();
            path.file_name()?.to_str()?.starts_with(&prefix).then_some(path)
        }) else {
            return Ok(None);
        };
        Ok(std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()).filter(|pid| alive(*pid)))
    }

    fn cli_status(&self, name: &str) -> Result<()> {
        self.run(&["pid", name])
    }

    fn version(&self) -> String {
        // Asked with this PM2_HOME: a bare `pm2 --version` would start a daemon in ~/.pm2.
        let pm2 =
            self.command().arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let node = Command::new("node")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        format!("pm2 {} (node {})", pm2.unwrap_or_default(), node.unwrap_or_default())
    }
}

impl Drop for Pm2 {
    fn drop(&mut self) {
        let pids: Vec<i32> = self.pid_files().map(|p| p.into_values().collect()).unwrap_or_default();
        // `pm2 kill` stops every app, then the daemon.
        let _ = self.run(&["kill"]);
        let t0 = Instant::now();
        while self.daemon > 0 && alive(self.daemon) && t0.elapsed() < STOP_TIMEOUT {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.daemon > 0 && alive(self.daemon) {
            let _ = kill(Pid::from_raw(self.daemon), Signal::SIGKILL);
        }
        kill_leftovers(&pids);
    }
}

// ----- helpers -------------------------------------------------------------------------

fn service_name(i: usize) -> String {
    format!("s{:03}", i + 1)
}

fn child_pid(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("pids fit in i32")
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
}

fn run_quiet(command: &mut Command) -> Result<()> {
    let out = command.stdin(Stdio::null()).output().with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?}: {}; {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn rss_bytes(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("pid {pid}"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS for pid {pid}"))?;
    Ok(kib * 1024)
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Waits for our child to exit, then SIGKILLs it if it has not.
fn stop_child(child: &mut Child, timeout: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILLs service processes a manager left behind. Only pids recorded as our
/// services, and only while they still run our service command (a pid may be reused).
fn kill_leftovers(pids: &[i32]) {
    let ours = SERVICE_ARGV.join("\0") + "\0";
    for &pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if alive(pid) && cmdline == ours.as_bytes() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
