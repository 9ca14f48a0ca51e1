//! Gateway benchmark: module-gateway as an HTTP reverse proxy beside nginx 1.22, both in
//! front of the same two upstream processes, loaded by Debian's `wrk`. Prints figures
//! and ratios against nginx measured in the same run; asserts nothing about them.
//!
//! One `apollo serve` child supervises two instances of the demo HTTP service
//! (`examples/demo-http`, registered as models with static ports and started through
//! the host API) and, when `libmodule_gateway.so` is built, loads module-gateway with
//! one round-robin route over both (`modules.config.gateway`; its data-plane address
//! from `GET /api/module/gateway/listeners`). nginx runs as a plain child with a private
//! prefix and a generated config: an upstream block with both instances, `max_fails=1`,
//! `keepalive 64`, HTTP/1.1 and an empty `Connection` header towards them (the keepalive
//! baseline of consul-seneca-gateway.md §4). demo-http keeps connections alive, so both
//! proxies reuse their upstream connections (nginx's pool, the gateway's own).
//!
//! Legs, each `wrk -t1 -c32 -d5s --latency` against `GET /`: the upstream direct (one
//! instance), nginx, the gateway; `APOLLO_BENCH_RUNS` (3) rounds, interleaved (each round
//! starts one leg later), after a 1 s warm-up per leg. Then a failure leg per proxy: one
//! upstream instance is SIGKILLed (its pid from the host API) 1 s into the run; the host
//! restarts it (its default `on-failure` policy), which the figures include. Printed:
//! req/s, p50, p99, non-2xx and socket errors per run, medians, and gateway / nginx
//! ratios (targets in the gateway issue: req/s ≥ 1.0, p99 ≤ 1.2).
//!
//! With `taskset` and two or more CPUs: nginx and the whole host (every thread, so the
//! gateway's workers too) on cpu 0; wrk and both upstreams on cpu 1 (an upstream the
//! failure leg restarts is moved back there). The proxy under test thus has its core to
//! itself, so its req/s follows its own CPU per request; with the upstreams floating,
//! the scheduler put them on the proxy's core in some rounds and not in others.
//!
//! Run (the module and the upstream service are not dependencies of this crate):
//!   ./.ci/gateway-peers-up.sh
//!   cargo build --release -p demo-http -p module-gateway
//!   cargo bench -p apollo-tests --bench gateway
//!   APOLLO_BENCH_RUNS=1 APOLLO_BENCH_SECS=3 cargo bench -p apollo-tests --bench gateway
//!   APOLLO_BENCH_GATEWAY='{"tracing": {"sample_ratio": 0.0}}' cargo bench -p apollo-tests --bench gateway
//! (`APOLLO_BENCH_GATEWAY`: top-level keys that replace the gateway config's, to compare
//! a variant; the run prints the config it used when set).
//!
//! Without nginx or wrk the bench prints why and exits 0. Everything listens on
//! 127.0.0.1 ephemeral ports; every process it starts is stopped by pid, also when a
//! step fails (guards), and its temp dirs are removed.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use apollo_host::cli::{ApiClient, Endpoint};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

const PASSWORD: &str = "bench-password-123";
const CONNECTIONS: usize = 32;
const UPSTREAMS: [&str; 2] = ["gw-up-a", "gw-up-b"];
/// When the failure leg kills an upstream instance, from the start of its wrk run.
const KILL_AFTER: Duration = Duration::from_secs(1);
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}

fn main() -> ExitCode {
    let (Some(nginx), Some(wrk)) = (on_path("nginx").or_else(|| sbin("nginx")), on_path("wrk")) else {
        println!(
            "gateway bench skipped: it needs nginx (Debian nginx-light) and wrk on PATH; \
             run ./.ci/gateway-peers-up.sh (as root) to install them"
        );
        return ExitCode::SUCCESS;
    };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_apollo-under-test"));
    let dir = bin.parent().map(Path::to_path_buf).unwrap_or_default();
    let demo_http = dir.join("demo-http");
    if !demo_http.is_file() {
        eprintln!("{} is missing: build it first with `cargo build --release -p demo-http`", demo_http.display());
        return ExitCode::FAILURE;
    }
    let gateway = Some(dir.join("libmodule_gateway.so")).filter(|so| so.is_file());
    let tools = Tools { nginx, wrk, taskset: on_path("taskset") };
    let overrides = match std::env::var("APOLLO_BENCH_GATEWAY") {
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(keys)) => keys,
            _ => {
                eprintln!("APOLLO_BENCH_GATEWAY must be a JSON object: {text:?}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => serde_json::Map::new(),
    };
    let settings =
        Settings { runs: env_count("APOLLO_BENCH_RUNS", 3), secs: env_count("APOLLO_BENCH_SECS", 5), overrides };
    match run(&bin, &demo_http, gateway.as_deref(), &tools, &settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Tools {
    nginx: PathBuf,
    wrk: PathBuf,
    taskset: Option<PathBuf>,
}

struct Settings {
    runs: u64,
    secs: u64,
    /// Top-level keys replacing the gateway config's (`APOLLO_BENCH_GATEWAY`).
    overrides: serde_json::Map<String, Value>,
}

/// Which CPUs what runs on, when pinning is possible: the proxy under test on a core of
/// its own; the load generator and the upstreams on the other.
struct Pinning {
    taskset: PathBuf,
    wrk: &'static str,
    upstreams: &'static str,
    proxy: &'static str,
}

impl Pinning {
    fn new(tools: &Tools) -> Option<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = tools.taskset.clone()?;
        (cpus >= 2).then_some(Self { taskset, wrk: "1", upstreams: "1", proxy: "0" })
    }

    /// `program` under `taskset -c cpus`, or plain without pinning.
    fn command(pinning: Option<&Self>, cpus: impl Fn(&Self) -> &str, program: &Path) -> Command {
        match pinning {
            Some(p) => {
                let mut command = Command::new(&p.taskset);
                command.args(["-c", cpus(p)]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Sets the affinity of `pid` and every thread it has. A thread that ends while
    /// taskset walks them fails the call (demo-http has one per connection), so it is
    /// tried a few times.
    fn set(&self, pid: i32, cpus: &str) -> Result<()> {
        for _ in 0..5 {
            let status = Command::new(&self.taskset)
                .args(["-a", "-c", "-p", cpus, &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if status.success() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("taskset -a -c -p {cpus} {pid} failed five times")
    }
}

fn run(bin: &Path, demo_http: &Path, gateway: Option<&Path>, tools: &Tools, settings: &Settings) -> Result<()> {
    let pinning = Pinning::new(tools);
    let ports = [free_port()?, free_port()?];
    println!(
        "gateway bench: {} cores, load average {} (other work on this machine shows in the figures)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        loadavg()
    );

    // Declared before the host, so dropped after it: whatever upstream pid the host
    // did not stop on its way out is killed here.
    let mut seen = SeenPids::default();
    let models = tempfile::Builder::new().prefix("bench-gw-app-").tempdir()?;
    write_models(models.path(), demo_http, &ports)?;
    let upstream_addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut gateway_config = gateway_config(&upstream_addrs);
    if !settings.overrides.is_empty() {
        for (key, value) in &settings.overrides {
            gateway_config[key] = value.clone();
        }
        println!("gateway config (APOLLO_BENCH_GATEWAY applied): {gateway_config}");
    }
    let app_root = models.path().to_path_buf();
    let adjust = |pig: &mut Value| {
        pig["app_root"] = json!(app_root);
        pig["supervisor"]["stop_services_on_exit"] = json!(true);
        if gateway.is_some() {
            pig["modules"]["config"]["gateway"] = gateway_config;
        }
    };
    let libraries: Vec<(&Path, &str)> = gateway.map(|so| (so, "module_gateway.so")).into_iter().collect();
    let host = support::ServedHost::launch(bin, PASSWORD, adjust, &libraries)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let token = rt.block_on(support::login(&host.addr, PASSWORD))?;
    let api = Api { rt, client: ApiClient::new(Endpoint::Tcp(host.addr.clone()), Some(token)) };

    for (name, port) in UPSTREAMS.iter().zip(ports) {
        let _: Value = api.post(&format!("/api/apps/{name}/start"))?;
        seen.0.push(api.running_pid(name, None)?);
        wait_http(&format!("127.0.0.1:{port}"), "/healthz")?;
    }
    // Every upstream is running: each goes to the load generator's core, then the host
    // (which started them, unpinned) to the proxies' core.
    if let Some(p) = &pinning {
        for &pid in &seen.0 {
            p.set(pid, p.upstreams)?;
        }
        p.set(host.pid(), p.proxy)?;
    }

    let nginx = Nginx::start(&tools.nginx, pinning.as_ref(), &upstream_addrs)?;
    let gateway_addr = match gateway {
        Some(_) => gateway_listener(&api),
        None => Err(anyhow::anyhow!("libmodule_gateway.so is not built (cargo build --release -p module-gateway)")),
    };
    match &pinning {
        Some(p) => println!(
            "pinning (taskset): nginx (master and worker) and the apollo host (all threads) on cpu {}; wrk on cpu {}; \
             the two demo-http upstreams on cpu {}",
            p.proxy, p.wrk, p.upstreams
        ),
        None => println!("pinning: none (taskset missing or a single cpu)"),
    }
    println!(
        "upstreams: demo-http x2 supervised by the host ({}), HTTP/1.1 keep-alive",
        UPSTREAMS.iter().zip(ports).map(|(n, p)| format!("{n} on {p}")).collect::<Vec<_>>().join(", ")
    );
    println!("direct: wrk straight at {} ({}), the one instance alone", UPSTREAMS[0], upstream_addrs[0]);
    println!(
        "nginx: {} on {} (upstream keepalive 64, HTTP/1.1, max_fails=1, access log off)",
        nginx.version, nginx.addr
    );

    let mut legs = vec![
        Leg::new("direct", upstream_addrs[0].clone(), Vec::new()),
        Leg::new("nginx", nginx.addr.clone(), nginx.pids()),
    ];
    match &gateway_addr {
        Ok(addr) => {
            println!("gateway: module-gateway on {addr} (workers 1, access log off)");
            legs.push(Leg::new("gateway", addr.clone(), vec![host.pid()]));
        }
        Err(e) => println!("gateway leg skipped: {e:#}"),
    }
    let wrk = Wrk { bin: tools.wrk.clone(), pinning: pinning.as_ref() };

    for leg in &legs {
        leg.measure(&wrk, 1)?;
    }
    for round in 0..settings.runs as usize {
        let count = legs.len();
        for i in 0..count {
            let leg = &mut legs[(round + i) % count];
            let figures = leg.measure(&wrk, settings.secs)?;
            leg.runs.push(figures);
        }
    }
    report(&legs, settings);

    println!();
    println!(
        "failure leg: wrk -t1 -c{CONNECTIONS} -d{}s GET / through each proxy; {} SIGKILLed (pid from the host API) \
         {:.1} s in",
        settings.secs,
        UPSTREAMS[0],
        KILL_AFTER.as_secs_f64()
    );
    for leg in legs.iter().filter(|l| l.name != "direct") {
        let recorded = || if leg.name == "nginx" { Ok(nginx.recorded()) } else { api.gateway_recorded() };
        let before = recorded()?;
        let outcome = failure_leg(&api, &wrk, pinning.as_ref(), leg, ports[0], settings.secs, &mut seen)?;
        outcome.print(&leg.name, &recorded()?.since(&before));
    }
    drop(nginx);
    drop(host);
    println!("load average at the end: {}", loadavg());
    Ok(())
}

/// Two models running demo-http on the given static ports (the host passes them as
/// `PORTS`), restarted by the host's default `on-failure` policy when killed.
fn write_models(app_root: &Path, demo_http: &Path, ports: &[u16; 2]) -> Result<()> {
    let folder = app_root.join(".octopus");
    std::fs::create_dir_all(&folder)?;
    for (name, port) in UPSTREAMS.iter().zip(ports) {
        let model = json!({
            "name": name, "id": format!("app_{name}"),
            "run_data": {"command": [demo_http, "--name", name], "ports": [port]}
        });
        std::fs::write(folder.join(format!("{name}.pig")), serde_json::to_vec_pretty(&model)?)?;
    }
    Ok(())
}

/// `modules.config.gateway`: one route over both instances, passive ejection after one
/// failure (as nginx's `max_fails=1`), no access log (nginx has none either), and no
/// catalog agent to watch (the upstreams are static, as in nginx's config).
fn gateway_config(upstreams: &[String]) -> Value {
    json!({
        "listen": ["127.0.0.1:0"],
        "workers": 1,
        "catalog": {"address": null},
        "access_log": {"enabled": false},
        "routes": [{
            "name": "demo", "path_prefix": "/",
            "upstreams": upstreams.iter().map(|a| json!({"address": a})).collect::<Vec<_>>(),
            "balance": "round_robin", "retries": 2, "try_timeout_ms": 2000, "timeout_ms": 10000
        }],
        "outlier": {"consecutive_failures": 1, "base_ejection_ms": 10000}
    })
}

/// The gateway's data-plane address, once the module has bound it.
fn gateway_listener(api: &Api) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = api.get("/api/module/gateway/listeners");
        if let Ok(addr) = answer.as_ref().map(|a| a["listeners"][0].as_str().map(str::to_string))
            && let Some(addr) = addr
        {
            wait_http(&addr, "/")?;
            return Ok(addr);
        }
        if Instant::now() > deadline {
            bail!("GET /api/module/gateway/listeners gave no address in 15 s: {answer:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ----- the host API ---------------------------------------------------------------------

/// The host's TCP API with the admin token, on a runtime of its own.
struct Api {
    rt: tokio::runtime::Runtime,
    client: ApiClient,
}

impl Api {
    fn get(&self, path: &str) -> Result<Value> {
        self.rt.block_on(self.client.get(path)).with_context(|| format!("GET {path}"))
    }

    fn post(&self, path: &str) -> Result<Value> {
        self.rt.block_on(self.client.post(path, None)).with_context(|| format!("POST {path}"))
    }

    /// The pid of `name` once the host reports it running (with a pid other than
    /// `not`, to see a restart).
    fn running_pid(&self, name: &str, not: Option<i32>) -> Result<i32> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let status = self.get(&format!("/api/apps/{name}/status"))?;
            let pid = status["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
            if status["state"] == "running"
                && let Some(pid) = pid.filter(|&p| p > 0 && Some(p) != not)
            {
                return Ok(pid);
            }
            ensure!(Instant::now() < deadline, "{name} is not running after {READY_TIMEOUT:?}: {status}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Upstream pids the host reported; on drop (after the host is gone) any still alive
/// is killed, so a failed step leaves no service behind.
#[derive(Default)]
struct SeenPids(Vec<i32>);

impl Drop for SeenPids {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

// ----- nginx ----------------------------------------------------------------------------

/// nginx as a child with a private prefix, config, pid file and logs in a temp dir;
/// stopped by pid on drop (master, then any worker it left).
struct Nginx {
    child: Child,
    addr: String,
    version: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(bin: &Path, pinning: Option<&Pinning>, upstreams: &[String]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-nginx-").tempdir()?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let d = dir.path().display();
        let servers: String = upstreams.iter().map(|a| format!("        server {a} max_fails=1;\n")).collect();
        // Temp paths inside the prefix: the compiled-in ones are system folders.
        let config = format!(
            "worker_processes 1;\ndaemon off;\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             \x20   upstream demo {{\n{servers}        keepalive 64;\n    }}\n\
             \x20   server {{\n        listen {addr};\n        location / {{\n            proxy_pass http://demo;\n\
             \x20           proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }}\n    }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config)?;
        let version = Command::new(bin).arg("-v").output().context("nginx -v")?;
        let version = String::from_utf8_lossy(&version.stderr).trim().trim_start_matches("nginx version: ").to_string();
        let child = Pinning::command(pinning, |p| p.proxy, bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn nginx")?;
        let nginx = Self { child, addr, version, _dir: dir };
        if let Err(e) = wait_http(&nginx.addr, "/") {
            let log = std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default();
            bail!("nginx did not answer: {e:#}\n{log}");
        }
        Ok(nginx)
    }
}

impl Nginx {
    /// The master and its worker, whose CPU time is the proxy's.
    fn pids(&self) -> Vec<i32> {
        let master = self.child.id();
        let workers = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
        std::iter::once(master as i32).chain(workers.split_whitespace().filter_map(|p| p.parse().ok())).collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // taskset execs nginx, so the child's pid is the master's.
        let master = self.child.id();
        let workers = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
        // SIGTERM: the master stops its worker, then exits.
        let _ = kill(Pid::from_raw(master as i32), Signal::SIGTERM);
        let t0 = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in workers.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

// ----- wrk ------------------------------------------------------------------------------

/// A child killed by pid on drop unless it was waited for.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn output(mut self) -> Result<String> {
        let mut child = self.0.take().context("already waited")?;
        let mut out = String::new();
        child.stdout.take().context("no stdout")?.read_to_string(&mut out)?;
        let status = child.wait()?;
        ensure!(status.success(), "wrk exited with {status}: {out}");
        Ok(out)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Wrk<'a> {
    bin: PathBuf,
    pinning: Option<&'a Pinning>,
}

impl Wrk<'_> {
    fn spawn(&self, addr: &str, secs: u64) -> Result<ChildGuard> {
        let child = Pinning::command(self.pinning, |p| p.wrk, &self.bin)
            .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{secs}s"), "--latency"])
            .arg(format!("http://{addr}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn wrk")?;
        Ok(ChildGuard(Some(child)))
    }

    fn run(&self, addr: &str, secs: u64) -> Result<Figures> {
        Figures::parse(&self.spawn(addr, secs)?.output()?)
    }
}

/// What one wrk run reported.
#[derive(Debug, Clone, Default)]
struct Figures {
    requests: u64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    /// connect, read, write, timeout.
    socket: [u64; 4],
    /// What the proxy's processes used during the run (none for the direct leg).
    proxy_cpu: Option<ProxyCpu>,
}

/// User + system CPU time of a proxy over one run.
#[derive(Debug, Clone, Copy)]
struct ProxyCpu {
    /// Of one core (1.0: the proxy's pinned core was busy all along).
    core_share: f64,
    per_request_us: f64,
}

impl Figures {
    fn socket_errors(&self) -> u64 {
        self.socket.iter().sum()
    }

    /// Reads wrk 4.1's report (`--latency`); a missing line means no such error.
    fn parse(out: &str) -> Result<Self> {
        let mut f = Self::default();
        let mut p50 = None;
        let mut p99 = None;
        for line in out.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["50%", v] => p50 = Some(duration_ms(v)?),
                ["99%", v] => p99 = Some(duration_ms(v)?),
                [n, "requests", "in", ..] => f.requests = n.parse()?,
                ["Requests/sec:", v] => f.per_sec = v.parse()?,
                ["Non-2xx", "or", "3xx", "responses:", n] => f.non_2xx = n.parse()?,
                _ if line.starts_with("Socket errors:") => {
                    let counts: Vec<u64> =
                        line.split(',').filter_map(|part| part.split_whitespace().last()?.parse().ok()).collect();
                    ensure!(counts.len() == 4, "unexpected wrk line {line:?}");
                    f.socket.copy_from_slice(&counts);
                }
                _ => {}
            }
        }
        f.p50_ms = p50.with_context(|| format!("no 50% line in wrk's report:\n{out}"))?;
        f.p99_ms = p99.with_context(|| format!("no 99% line in wrk's report:\n{out}"))?;
        ensure!(f.requests > 0, "wrk made no request:\n{out}");
        Ok(f)
    }
}

/// wrk's `1.23ms`, `456.00us`, `1.02s`, `1.50m` as milliseconds.
fn duration_ms(text: &str) -> Result<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).with_context(|| format!("no unit in {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().with_context(|| format!("bad duration {text:?}"))?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => bail!("unknown unit in {text:?}"),
    };
    Ok(number * scale)
}

// ----- the legs and the report -------------------------------------------------------

struct Leg {
    name: String,
    addr: String,
    /// The proxy's processes, whose CPU time each run reports (none for direct).
    cpu_pids: Vec<i32>,
    runs: Vec<Figures>,
}

impl Leg {
    fn new(name: &str, addr: String, cpu_pids: Vec<i32>) -> Self {
        Self { name: name.to_string(), addr, cpu_pids, runs: Vec::new() }
    }

    /// One wrk run, with the CPU time the proxy spent during it.
    fn measure(&self, wrk: &Wrk, secs: u64) -> Result<Figures> {
        let before = cpu_ms(&self.cpu_pids);
        let started = Instant::now();
        let mut figures = wrk.run(&self.addr, secs)?;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        if let (Some(before), Some(after)) = (before, cpu_ms(&self.cpu_pids)) {
            figures.proxy_cpu = Some(ProxyCpu {
                core_share: (after - before) / wall_ms,
                per_request_us: (after - before) * 1e3 / figures.requests as f64,
            });
        }
        Ok(figures)
    }

    fn median(&self, of: impl Fn(&Figures) -> f64) -> f64 {
        let mut values: Vec<f64> = self.runs.iter().map(of).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    }
}

fn report(legs: &[Leg], settings: &Settings) {
    println!();
    println!(
        "wrk -t1 -c{CONNECTIONS} -d{}s --latency GET /: {} rounds, interleaved (round r starts with leg r)",
        settings.secs, settings.runs
    );
    println!(
        "{:<8} {:>3} {:>10} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>11}",
        "leg", "run", "req/s", "p50 ms", "p99 ms", "non-2xx", "sockerr", "requests", "proxy cpu", "cpu us/req"
    );
    for leg in legs {
        for (i, f) in leg.runs.iter().enumerate() {
            let (share, per_request) = match f.proxy_cpu {
                Some(c) => (format!("{:.0}%", c.core_share * 100.0), format!("{:.1}", c.per_request_us)),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:<8} {:>3} {:>10.0} {:>9.3} {:>9.3} {:>8} {:>8} {:>9} {:>9} {:>11}",
                leg.name,
                i + 1,
                f.per_sec,
                f.p50_ms,
                f.p99_ms,
                f.non_2xx,
                f.socket_errors(),
                f.requests,
                share,
                per_request
            );
        }
    }
    println!("medians:");
    for leg in legs {
        println!(
            "{:<8} req/s {:>8.0}  p50 {:>7.3} ms  p99 {:>7.3} ms{}",
            leg.name,
            leg.median(|f| f.per_sec),
            leg.median(|f| f.p50_ms),
            leg.median(|f| f.p99_ms),
            if leg.cpu_pids.is_empty() {
                String::new()
            } else {
                format!("  proxy cpu {:.1} us/req", leg.median(per_request_us))
            }
        );
    }
    let find = |name: &str| legs.iter().find(|l| l.name == name);
    if let (Some(direct), Some(nginx)) = (find("direct"), find("nginx")) {
        println!(
            "nginx / direct:    req/s {:.2}, p99 {:.2}",
            nginx.median(|f| f.per_sec) / direct.median(|f| f.per_sec),
            nginx.median(|f| f.p99_ms) / direct.median(|f| f.p99_ms)
        );
    }
    match (find("gateway"), find("nginx"), find("direct")) {
        (Some(gateway), Some(nginx), Some(direct)) => {
            println!(
                "gateway / direct:  req/s {:.2}, p99 {:.2}",
                gateway.median(|f| f.per_sec) / direct.median(|f| f.per_sec),
                gateway.median(|f| f.p99_ms) / direct.median(|f| f.p99_ms)
            );
            println!(
                "gateway / nginx:   req/s {:.2} (target >= 1.0), p99 {:.2} (target <= 1.2)",
                gateway.median(|f| f.per_sec) / nginx.median(|f| f.per_sec),
                gateway.median(|f| f.p99_ms) / nginx.median(|f| f.p99_ms)
            );
            println!(
                "gateway / nginx:   proxy cpu per request {:.2} (the host process, every thread, vs nginx's master and worker)",
                gateway.median(per_request_us) / nginx.median(per_request_us)
            );
        }
        _ => println!("gateway / nginx: no gateway leg in this run"),
    }
}

fn per_request_us(f: &Figures) -> f64 {
    f.proxy_cpu.map_or(f64::NAN, |c| c.per_request_us)
}

/// What happened in one failure leg.
struct Outcome {
    figures: Figures,
    killed: i32,
    killed_at: Duration,
    /// The restarted instance's pid and the time from the kill to the host reporting
    /// it running and it answering `/healthz`.
    restarted: Option<(i32, Duration)>,
}

impl Outcome {
    fn print(&self, proxy: &str, recorded: &Recorded) {
        let f = &self.figures;
        println!(
            "{proxy:<8} requests {:>7}  non-2xx {:>5}  socket errors {:>4} (connect {}, read {}, write {}, timeout {})  \
             p99 {:.3} ms",
            f.requests,
            f.non_2xx,
            f.socket_errors(),
            f.socket[0],
            f.socket[1],
            f.socket[2],
            f.socket[3],
            f.p99_ms
        );
        match self.restarted {
            Some((pid, after)) => println!(
                "{:<8} pid {} killed at {:.2} s; the host restarted it as pid {pid}, answering {:.0} ms after the kill",
                "",
                self.killed,
                self.killed_at.as_secs_f64(),
                after.as_secs_f64() * 1e3
            ),
            None => println!(
                "{:<8} pid {} killed at {:.2} s; not running again before the run ended",
                "",
                self.killed,
                self.killed_at.as_secs_f64()
            ),
        }
        println!("{:<8} {proxy} recorded: {}", "", recorded.describe());
    }
}

/// One wrk run through `leg` during which the first upstream instance is SIGKILLed;
/// waits for the host's restart (within the run or after it) before returning.
fn failure_leg(
    api: &Api,
    wrk: &Wrk,
    pinning: Option<&Pinning>,
    leg: &Leg,
    port: u16,
    secs: u64,
    seen: &mut SeenPids,
) -> Result<Outcome> {
    let name = UPSTREAMS[0];
    let victim = api.running_pid(name, None)?;
    wait_http(&format!("127.0.0.1:{port}"), "/healthz")?;
    let started = Instant::now();
    let load = wrk.spawn(&leg.addr, secs)?;
    std::thread::sleep(KILL_AFTER.saturating_sub(started.elapsed()));
    let killed_at = started.elapsed();
    kill(Pid::from_raw(victim), Signal::SIGKILL).context("SIGKILL the upstream")?;
    let killed = Instant::now();
    let pid = api.running_pid(name, Some(victim))?;
    seen.0.push(pid);
    wait_http(&format!("127.0.0.1:{port}"), "/healthz")?;
    let after = killed.elapsed();
    let in_run = started.elapsed() < Duration::from_secs(secs);
    // The host is pinned, so is what it starts now: the restarted upstream goes back
    // to the upstreams' core.
    if let Some(p) = pinning
        && let Err(e) = p.set(pid, p.upstreams)
    {
        println!("(could not move the restarted {name}, pid {pid}: {e:#}; it stays on cpu {})", p.proxy);
    }
    let figures = Figures::parse(&load.output()?)?;
    Ok(Outcome { figures, killed: victim, killed_at, restarted: in_run.then_some((pid, after)) })
}

/// What a proxy itself recorded about failed upstream tries, read before and after a
/// failure leg: nginx in its error log (a failed try it passed to the next server, and
/// "upstream server temporarily disabled" when `max_fails` ejects one), the gateway in
/// its counters on the host's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct Recorded {
    failed_tries: f64,
    /// nginx logs no retry count: each failed try there was retried.
    retries: Option<f64>,
    ejections: f64,
}

impl Recorded {
    fn since(&self, before: &Self) -> Self {
        Self {
            failed_tries: self.failed_tries - before.failed_tries,
            retries: self.retries.zip(before.retries).map(|(a, b)| a - b),
            ejections: self.ejections - before.ejections,
        }
    }

    fn describe(&self) -> String {
        let retries = self.retries.map_or_else(|| "retried on the next server".to_string(), |r| format!("{r} retries"));
        format!("{} failed upstream tries ({retries}), {} ejections", self.failed_tries, self.ejections)
    }
}

impl Nginx {
    fn recorded(&self) -> Recorded {
        let log = std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default();
        let ejections = log.lines().filter(|l| l.contains("upstream server temporarily disabled")).count();
        let failed = log.lines().filter(|l| l.contains("upstream") && !l.contains("temporarily disabled")).count();
        Recorded { failed_tries: failed as f64, retries: None, ejections: ejections as f64 }
    }
}

impl Api {
    /// Sums of the gateway's counters in the host's `GET /metrics`: tries without an
    /// answer (`code="0"`), retries, ejections.
    fn gateway_recorded(&self) -> Result<Recorded> {
        let answer = self.rt.block_on(self.client.send(http::Method::GET, "/metrics", None)).context("GET /metrics")?;
        ensure!(answer.status.is_success(), "GET /metrics answered {}", answer.status);
        let text = String::from_utf8_lossy(&answer.body);
        let sum = |family: &str, filter: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']) && l.contains(filter))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum()
        };
        Ok(Recorded {
            failed_tries: sum("gateway_upstream_requests_total", "code=\"0\""),
            retries: Some(sum("gateway_retries_total", "")),
            ejections: sum("gateway_ejections_total", ""),
        })
    }
}

// ----- small helpers ---------------------------------------------------------------------

/// A free loopback port (bound and released: the child takes it right after).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}

/// Debian puts nginx in /usr/sbin, which a user's PATH may lack.
fn sbin(program: &str) -> Option<PathBuf> {
    Some(Path::new("/usr/sbin").join(program)).filter(|p| p.is_file())
}

/// User + system CPU time of `pids` (every thread), in ms; `None` for no pid or when
/// one has gone. `/proc/PID/stat` counts in clock ticks, 100 per second on Linux.
fn cpu_ms(pids: &[i32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the `(comm)`, which may hold spaces: state is the first, utime
        // and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 * 10.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Polls `GET path` on `addr` until it answers 200.
fn wait_http(addr: &str, path: &str) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let probe = || -> Result<bool> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 16];
        let n = s.read(&mut head)?;
        Ok(head[..n].starts_with(b"HTTP/1.1 200") || head[..n].starts_with(b"HTTP/1.0 200"))
    };
    loop {
        if probe().unwrap_or(false) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "GET http://{addr}{path} did not answer 200 within {READY_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
