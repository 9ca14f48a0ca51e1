//! Process control with real child processes: the script contract and timeout, crash
//! restarts with backoff up to `errored`, graceful stop escalating to SIGKILL for the
//! whole group, dependency order and stop_chain, random and conflicting ports, health
//! checks, log rotation and follow, re-adoption after `kill -9` of the host, and a
//! registered service running its latest model at its first start (actors are created
//! with a service's first command).

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apollo_host::cli::ApiClient;
use apollo_host::supervisor::procfs;
use common::{Deployment, eventually, merge, model};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A model whose service is the host-owned command `argv`.
fn supervised(name: &str, argv: &[&str], extra: Value) -> Value {
    let mut m = model(name, &format!("app_{name}"), &[]);
    m["run_data"]["command"] = json!(argv);
    merge(&mut m, &extra);
    m
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

async fn status(client: &ApiClient, name: &str) -> Value {
    client.get(&format!("/api/apps/{name}/status")).await.unwrap()
}

async fn wait_state(client: &ApiClient, name: &str, state: &str) -> Value {
    let start = Instant::now();
    loop {
        let s = status(client, name).await;
        if s["state"] == state {
            return s;
        }
        if start.elapsed() > WAIT {
            let log: Value = client.get(&format!("/api/apps/{name}/logs?tail=20")).await.unwrap_or_default();
            panic!("{name} did not become {state} within {WAIT:?}; last status: {s}\nlog: {log:#}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(client: &ApiClient, path: &str) -> Result<Value, apollo_host::cli::ClientError> {
    client.post(path, None).await
}

/// The pid a service wrote, waiting until the file holds a whole number (it may exist
/// before the write finishes).
fn read_pid(path: &Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        assert!(start.elapsed() < WAIT, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_script(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn demo_http() -> PathBuf {
    let path = PathBuf::from(common::apollo_bin()).parent().unwrap().join("demo-http");
    assert!(path.exists(), "build it first: cargo build -p demo-http (cargo test --workspace does)");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_get_the_contract_and_time_out_as_a_group() {
    let d = Deployment::new();
    let mut svc = model("scripted", "app_scripted", &[]);
    svc["run_data"]["envs"] = json!(["MODE=demo"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    svc["run_data"]["ports"] = json!([port]);
    d.write_model("scripted.pig", &svc);
    let manager = d.root().join("manager/scripted");
    write_script(
        &manager,
        "start.sh",
        "env > \"$APP_ROOT/env.txt\"\npwd > \"$APP_ROOT/cwd.txt\"\nsleep 1000 &\necho $! > \"$APP_PID\"",
    );
    let mut hang = model("hang", "app_hang", &[]);
    hang["supervise"] = json!({"script_timeout_secs": 1});
    d.write_model("hang.pig", &hang);
    write_script(
        &d.root().join("manager/hang"),
        "start.sh",
        "sleep 1000 &\necho $! > \"$APP_ROOT/child.pid\"\nsleep 1000",
    );
    // A real `apollo serve` with secrets in its environment: none may reach a script.
    let mut command = std::process::Command::new(common::apollo_bin());
    command
        .env("APOLLO_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("SECRET_SENTINEL", "leaked")
        .stderr(std::process::Stdio::inherit());
    let host = common::HostProcess::spawn_with(&d.config_path(), command);
    let client = host.uds();

    let started = post(&client, "/api/apps/scripted/start").await.unwrap();
    assert_eq!(started["state"], "running");
    assert_eq!(started["mode"], "script");
    let app_root = d.root().join("app/scripted");
    let env = std::fs::read_to_string(app_root.join("env.txt")).unwrap();
    let root = d.root().display().to_string();
    for expected in [
        format!("SERVICE_ROOT={root}"),
        format!("APP_ROOT={root}/app/scripted"),
        format!("APP_LOG={root}/log/scripted/scripted.log"),
        format!("APP_PID={root}/pids/scripted.pid"),
        format!("APP_TMP={root}/tmp/scripted"),
        "APP=scripted".into(),
        format!("PORTS={port}"),
        "MODE=demo".into(),
        "APP_STATUS_OK=0".into(),
        "APP_STATUS_ERR=101".into(),
        "APP_START_ERR=102".into(),
        "APP_RUN_ERR=107".into(),
    ] {
        assert!(env.lines().any(|l| l == expected), "missing {expected} in:\n{env}");
    }
    assert!(!env.contains("APOLLO_ADMIN_PASSWORD") && !env.contains(common::ADMIN_PASSWORD), "{env}");
    assert!(!env.contains("SECRET_SENTINEL"), "only the contract and basics reach scripts: {env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "PATH is passed on");
    assert_eq!(std::fs::read_to_string(app_root.join("cwd.txt")).unwrap().trim(), app_root.display().to_string());
    let daemon = read_pid(&d.root().join("pids/scripted.pid"));
    assert_eq!(started["pid"], daemon);

    // No stop.sh: the recorded process group is stopped instead.
    let stopped = post(&client, "/api/apps/scripted/stop").await.unwrap();
    assert_eq!(stopped["state"], "stopped");
    assert!(!procfs::alive(daemon));

    // A script that hangs is killed with its whole group after its timeout.
    let err = post(&client, "/api/apps/hang/start").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("timed out after"), "{err}");
    let child = read_pid(&d.root().join("app/hang/child.pid"));
    eventually("the hung script's child to be killed", WAIT, || async { (!procfs::alive(child)).then_some(()) }).await;
    assert_eq!(status(&client, "hang").await["state"], "errored");
    assert!(host.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_restart_with_backoff_until_errored() {
    let d = Deployment::new();
    let crash = sh("date +%s%N >> \"$APP_ROOT/starts\"; exit 3");
    let svc = supervised(
        "crashy",
        &crash.iter().map(String::as_str).collect::<Vec<_>>(),
        json!({"supervise": {"backoff_initial_ms": 100, "backoff_max_ms": 1000, "min_uptime_ms": 5000, "max_restarts": 4}}),
    );
    d.write_model("crashy.pig", &svc);
    let host = d.start().await;
    let mut events = host.host.state.events.subscribe();
    let client = host.uds();
    let _ = post(&client, "/api/apps/crashy/start").await.unwrap();
    let errored = wait_state(&client, "crashy", "errored").await;
    assert!(errored["message"].as_str().unwrap().contains("gave up after 4 unstable restarts"), "{errored}");
    assert_eq!(errored["restarts"], 4);

    let starts: Vec<u128> = std::fs::read_to_string(d.root().join("app/crashy/starts"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 5, "one start and four restarts");
    let gaps_ms: Vec<u128> = starts.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
    // The delays grow ×1.5 from 100 ms: 100, 150, 225, 337 (lower bounds; spawning adds a little).
    for (gap, expected) in gaps_ms.iter().zip([100u128, 150, 225, 337]) {
        assert!(*gap >= expected - 5, "gaps {gaps_ms:?} should follow 100/150/225/337 ms");
    }
    assert!(gaps_ms[3] > gaps_ms[0] + 150, "the delay grows: {gaps_ms:?}");

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(serde_json::to_value(&event).unwrap());
    }
    assert!(seen.iter().any(|e| e["kind"] == "restart_limit_reached" && e["name"] == "crashy"), "{seen:#?}");
    assert!(seen.iter().any(|e| e["kind"] == "service_state" && e["state"] == "backoff"));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_sigkill_for_the_whole_group() {
    let d = Deployment::new();
    let stubborn = sh("trap '' TERM; sleep 1000 & echo $! > \"$APP_ROOT/grandchild.pid\"; while :; do sleep 1; done");
    d.write_model(
        "stubborn.pig",
        &supervised(
            "stubborn",
            &stubborn.iter().map(String::as_str).collect::<Vec<_>>(),
            json!({"supervise": {"kill_timeout_ms": 300}}),
        ),
    );
    let polite = sh("sleep 1000 & echo $! > \"$APP_ROOT/grandchild.pid\"; wait");
    d.write_model(
        "polite.pig",
        &supervised("polite", &polite.iter().map(String::as_str).collect::<Vec<_>>(), json!({})),
    );
    let host = d.start().await;
    let client = host.uds();
    for name in ["stubborn", "polite"] {
        let s = post(&client, &format!("/api/apps/{name}/start")).await.unwrap();
        assert_eq!(s["state"], "running");
    }
    let gc_file = |name: &str| d.root().join(format!("app/{name}/grandchild.pid"));
    eventually("grandchildren to start", WAIT, || async {
        (gc_file("stubborn").exists() && gc_file("polite").exists()).then_some(())
    })
    .await;

    let main_pid = status(&client, "stubborn").await["pid"].as_i64().unwrap() as i32;
    let grandchild = read_pid(&gc_file("stubborn"));
    let began = Instant::now();
    let stopped = post(&client, "/api/apps/stubborn/stop").await.unwrap();
    assert_eq!(stopped["state"], "stopped");
    assert!(began.elapsed() >= Duration::from_millis(300), "SIGTERM was ignored, so it waited for kill_timeout");
    assert!(!procfs::alive(main_pid) && !procfs::alive(grandchild), "SIGKILL reached the whole group");
    let log = std::fs::read_to_string(d.root().join("log/stubborn/stubborn.log")).unwrap();
    assert!(log.contains("killed"), "{log}");

    let grandchild = read_pid(&gc_file("polite"));
    let _ = post(&client, "/api/apps/polite/stop").await.unwrap();
    assert!(!procfs::alive(grandchild), "SIGTERM to the group reaches grandchildren");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_start_first_and_stop_together() {
    let d = Deployment::new();
    let run = sh("echo \"$APP\" >> \"$SERVICE_ROOT/order\"; exec sleep 1000");
    let argv: Vec<&str> = run.iter().map(String::as_str).collect();
    let with = |deps: &[&str], chain: &[&str]| json!({"run_data": {"run_dep": deps, "stop_chain": chain}});
    d.write_model("db.pig", &supervised("db", &argv, with(&[], &["logger"])));
    d.write_model("api.pig", &supervised("api", &argv, with(&["db"], &[])));
    d.write_model("front.pig", &supervised("front", &argv, with(&["api"], &[])));
    d.write_model("logger.pig", &supervised("logger", &argv, with(&[], &[])));
    let host = d.start().await;
    let client = host.uds();

    let s = post(&client, "/api/apps/front/start").await.unwrap();
    assert_eq!(s["state"], "running");
    // "running" means spawned: the last shell may not have written its line yet.
    let order_file = d.root().join("order");
    let order = common::eventually("all three services wrote their line", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&order_file).unwrap_or_default();
        async move { (text.lines().count() >= 3).then_some(text) }
    })
    .await;
    assert_eq!(order.lines().collect::<Vec<_>>(), vec!["db", "api", "front"]);
    let _ = post(&client, "/api/apps/logger/start").await.unwrap();

    // Stopping db stops what depends on it and its stop_chain.
    let s = post(&client, "/api/apps/db/stop").await.unwrap();
    assert_eq!(s["stop_operation"], true);
    for name in ["db", "api", "front", "logger"] {
        assert_eq!(status(&client, name).await["state"], "stopped", "{name}");
    }
    assert_eq!(status(&client, "front").await["stop_operation"], false, "only the named service is an operator stop");

    // start-all runs the waves; stop-all stops everything.
    let all: Vec<Value> = client.post("/api/apps/start-all", None).await.unwrap();
    assert!(all.iter().all(|o| o["ok"] == true), "{all:#?}");
    let all: Vec<Value> = client.post("/api/apps/stop-all", None).await.unwrap();
    assert!(all.iter().all(|o| o["ok"] == true && o["state"] == "stopped"), "{all:#?}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ports_are_unique_and_static_conflicts_name_the_holder() {
    let d = Deployment::new();
    let bin = demo_http().display().to_string();
    let names: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    for name in &names {
        let svc = supervised(
            name,
            &[bin.as_str(), "--name", name.as_str()],
            json!({"run_data": {"random_port": true}, "health": {"kind": "http", "url": "http://127.0.0.1:{port}/healthz", "interval_secs": 1}}),
        );
        d.write_model(&format!("{name}.pig"), &svc);
    }
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    d.write_model("clash.pig", &supervised("clash", &[bin.as_str()], json!({"run_data": {"ports": [taken]}})));
    let host = d.start().await;
    let client = host.uds();

    let mut ports = Vec::new();
    for name in &names {
        let _ = post(&client, &format!("/api/apps/{name}/start")).await.unwrap();
        let s = wait_state(&client, name, "running").await;
        ports.push(s["ports"][0].as_u64().unwrap() as u16);
    }
    let mut unique = ports.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "distinct ports: {ports:?}");
    for (name, port) in names.iter().zip(&ports) {
        let health: Value = ApiClient::new(apollo_host::cli::Endpoint::Tcp(format!("127.0.0.1:{port}")), None)
            .get("/healthz")
            .await
            .unwrap();
        assert_eq!(health["name"], name.as_str(), "each service listens on the port it was given");
    }
    let runtime = host.host.state.store.get_runtime("r0").await.unwrap().unwrap();
    assert_eq!(runtime.ports, vec![ports[0]], "persisted in runtime data");
    let _ = post(&client, "/api/apps/r0/stop").await.unwrap();
    assert!(host.host.state.store.get_runtime("r0").await.unwrap().unwrap().ports.is_empty(), "released on stop");

    let err = post(&client, "/api/apps/clash/start").await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(
        err.to_string().contains(&format!("port {taken}"))
            && err.to_string().contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(squatter);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_checks_make_it_unhealthy_and_restart_it() {
    let d = Deployment::new();
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    d.write_model(
        "sick.pig",
        &supervised(
            "sick",
            &["/bin/sleep", "1000"],
            json!({"health": {"kind": "tcp", "port": nobody, "interval_secs": 1, "timeout_secs": 1, "failures_before_unhealthy": 2}}),
        ),
    );
    let host = d.start().await;
    let mut events = host.host.state.events.subscribe();
    let client = host.uds();
    let started = post(&client, "/api/apps/sick/start").await.unwrap();
    assert_eq!(started["state"], "starting", "readiness gates running");
    let first_pid = started["pid"].as_i64().unwrap();
    let restarted = eventually("sick to be restarted", WAIT, || async {
        let s = status(&client, "sick").await;
        (s["restarts"].as_u64().unwrap_or(0) >= 1).then_some(s)
    })
    .await;
    assert_ne!(restarted["pid"].as_i64(), Some(first_pid));
    let mut states = Vec::new();
    while let Ok(e) = events.try_recv() {
        states.push(serde_json::to_value(&e).unwrap());
    }
    assert!(states.iter().any(|e| e["kind"] == "service_state" && e["state"] == "unhealthy"), "{states:#?}");
    assert!(states.iter().any(|e| e["kind"] == "health_failing"));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_rotate_tail_and_follow() {
    let d = Deployment::new();
    let chatty = sh(
        "while :; do echo \"tick padding padding padding padding padding padding padding padding padding\"; sleep 0.005; done",
    );
    d.write_model(
        "chatty.pig",
        &supervised(
            "chatty",
            &chatty.iter().map(String::as_str).collect::<Vec<_>>(),
            json!({"supervise": {"log_max_bytes": 8192, "log_keep": 2}}),
        ),
    );
    let host = d.start().await;
    let client = host.uds();
    let _ = post(&client, "/api/apps/chatty/start").await.unwrap();
    let dir = d.root().join("log/chatty");
    eventually("the log to rotate twice", WAIT, || async { dir.join("chatty.log.2").exists().then_some(()) }).await;
    // Two more housekeeping rounds (every 2 s), each rotating again.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(!dir.join("chatty.log.3").exists(), "keeps only log_keep old files");
    for file in ["chatty.log.1", "chatty.log.2"] {
        assert!(std::fs::metadata(dir.join(file)).unwrap().len() >= 8192, "{file} holds a rotated log");
    }

    let tail: Value = client.get("/api/apps/chatty/logs?tail=3").await.unwrap();
    assert_eq!(tail["lines"].as_array().unwrap().len(), 3);

    // Follow (server-sent events) delivers new lines as they are written.
    let mut got = Vec::new();
    let follow = client.stream_events("/api/apps/chatty/logs?tail=0&follow=true", |line| got.push(line.to_string()));
    let _ = tokio::time::timeout(Duration::from_secs(2), follow).await;
    assert!(got.iter().any(|l| l.starts_with("tick")), "{got:?}");
    host.shutdown().await;
}

/// Processes whose command line is exactly `marker` (NUL-separated argv).
fn copies(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd) == marker)
        .count()
}

#[tokio::test]
async fn host_crash_readopts_and_never_duplicates() {
    let d = Deployment::new();
    // A sleep length no other process uses, to count copies by command line.
    let marker = format!("sleep\0{}\0", 100_000 + std::process::id());
    let run = sh(&format!("exec sleep {}", 100_000 + std::process::id()));
    let argv: Vec<&str> = run.iter().map(String::as_str).collect();
    d.write_model("keep.pig", &supervised("keep", &argv, json!({})));
    d.write_model("parked.pig", &supervised("parked", &argv, json!({})));
    let first = d.spawn();
    let client = first.uds();
    let keep_pid = post(&client, "/api/apps/keep/start").await.unwrap()["pid"].as_i64().unwrap() as i32;
    let _ = post(&client, "/api/apps/parked/start").await.unwrap();
    let _ = post(&client, "/api/apps/parked/stop").await.unwrap();
    first.crash();
    assert!(procfs::alive(keep_pid), "the service outlives a host crash");

    // Restart: the survivor is adopted (same pid), the parked one stays stopped.
    let second = d.spawn();
    let client = second.uds();
    let keep = wait_state(&client, "keep", "running").await;
    assert_eq!(keep["pid"], keep_pid);
    assert_eq!(keep["instances"][0]["adopted"], true);
    assert_eq!(copies(&marker), 1, "adoption did not start a second copy");
    let parked = status(&client, "parked").await;
    assert_eq!(parked["state"], "stopped");
    assert_eq!(parked["stop_operation"], true);
    second.crash();

    // The service dies while the host is down: the next host starts it again, once.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keep_pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    eventually("the old process to go", WAIT, || async { (!procfs::alive(keep_pid)).then_some(()) }).await;
    let third = d.spawn();
    let client = third.uds();
    let keep = wait_state(&client, "keep", "running").await;
    let new_pid = keep["pid"].as_i64().unwrap() as i32;
    assert_ne!(new_pid, keep_pid);
    assert_eq!(copies(&marker), 1, "exactly one copy of the service runs");
    assert!(third.terminate().success());
    assert!(!procfs::alive(new_pid), "stop_services_on_exit stops it with the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_autostart_limits_and_ttl() {
    let d = Deployment::new();
    let run = sh("echo \"$INSTANCE_ID\" >> \"$APP_ROOT/instances\"; exec sleep 1000");
    let argv: Vec<&str> = run.iter().map(String::as_str).collect();
    d.write_model("multi.pig", &supervised("multi", &argv, json!({"supervise": {"instances": 3, "autostart": true}})));
    // Grows past 20 MB of RSS: max_memory_restart must replace it.
    let hog = sh("x=$(head -c 40000000 /dev/zero | tr '\\0' a); sleep 1000");
    let hog: Vec<&str> = hog.iter().map(String::as_str).collect();
    d.write_model("hog.pig", &supervised("hog", &hog, json!({"supervise": {"max_memory_restart": 20_000_000}})));
    d.write_model(
        "capped.pig",
        &supervised(
            "capped",
            &["/bin/sleep", "1000"],
            json!({"resource_limit": {"max_mem": 67_108_864, "max_cpu": 50}}),
        ),
    );
    d.write_model(
        "beating.pig",
        &supervised(
            "beating",
            &["/bin/sleep", "1000"],
            json!({"health": {"kind": "ttl", "ttl_secs": 2, "interval_secs": 1, "failures_before_unhealthy": 1}, "supervise": {"restart": "never"}}),
        ),
    );
    let host = d.start().await;
    let client = host.uds();

    // autostart: running without anyone asking; three instances with their ids.
    let multi = wait_state(&client, "multi", "running").await;
    let pids: Vec<i64> = multi["instances"].as_array().unwrap().iter().map(|i| i["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids.len(), 3);
    assert_eq!(pids.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "distinct processes");
    assert_eq!(read_pid(&d.root().join("pids/multi.pid")), pids[0] as i32, "pid files for supervised instances");
    assert_eq!(read_pid(&d.root().join("pids/multi-2.pid")), pids[2] as i32);
    let ids_file = d.root().join("app/multi/instances");
    eventually("instance ids written", WAIT, || async {
        let text = std::fs::read_to_string(&ids_file).unwrap_or_default();
        let mut ids: Vec<&str> = text.lines().collect();
        ids.sort();
        (ids == ["0", "1", "2"]).then_some(())
    })
    .await;

    // max_memory_restart.
    let _ = post(&client, "/api/apps/hog/start").await.unwrap();
    eventually("hog to be replaced for its memory", WAIT, || async {
        (status(&client, "hog").await["restarts"].as_u64().unwrap_or(0) >= 1).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(d.root().join("log/hog/hog.log")).unwrap();
    assert!(log.contains("max_memory_restart"), "{log}");

    // resource_limit through cgroup v1, where this machine has it writable.
    let capped = post(&client, "/api/apps/capped/start").await.unwrap();
    let pid = capped["pid"].as_i64().unwrap();
    let mem = Path::new("/sys/fs/cgroup/memory/apollo/capped");
    if nix::unistd::geteuid().is_root() && Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert_eq!(std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap().trim(), "67108864");
        assert!(std::fs::read_to_string(mem.join("cgroup.procs")).unwrap().lines().any(|l| l == pid.to_string()));
        let cpu = Path::new("/sys/fs/cgroup/cpu/apollo/capped");
        assert_eq!(std::fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap().trim(), "50000");
    } else {
        assert!(capped["message"].as_str().unwrap().contains("resource_limit not enforced"), "{capped}");
    }
    let _ = post(&client, "/api/apps/capped/stop").await.unwrap();
    assert!(!mem.exists(), "the group is removed with the service");

    // ttl: heartbeats keep it running; silence makes it unhealthy.
    let _ = post(&client, "/api/apps/beating/start").await.unwrap();
    for _ in 0..8 {
        let r = client.send(http::Method::POST, "/api/apps/beating/heartbeat", None).await.unwrap();
        assert_eq!(r.status, 204);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(status(&client, "beating").await["state"], "running");
    wait_state(&client, "beating", "unhealthy").await;
    host.shutdown().await;
}

/// A registered service gets its actor with its first command: until then its status
/// follows its latest model, and the first start runs that model.
#[tokio::test]
async fn a_registered_service_runs_its_latest_model_at_its_first_start() {
    let d = Deployment::new();
    d.write_model("late.pig", &model("late", "app_late", &[]));
    let host = d.start().await;
    let client = host.uds();
    let before = status(&client, "late").await;
    assert_eq!((&before["state"], &before["mode"]), (&json!("stopped"), &json!("script")), "{before}");

    d.write_model("late.pig", &supervised("late", &["/bin/sleep", "1001"], json!({"run_data": {"tags": ["v2"]}})));
    let _: Value = client.post("/api/reload", None).await.unwrap();
    let after = status(&client, "late").await;
    assert_eq!((&after["state"], &after["mode"]), (&json!("stopped"), &json!("supervised")), "{after}");
    assert_eq!(after["tags"], json!(["v2"]));

    let started = post(&client, "/api/apps/late/start").await.unwrap();
    assert_eq!(started["state"], "running", "{started}");
    let pid = started["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"/bin/sleep\x001001\x00");
    let stopped = post(&client, "/api/apps/late/stop").await.unwrap();
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    host.shutdown().await;
}
