//! Shared test harness: a temp deployment (config, model folder, manager folder), the
//! real host started in-process on 127.0.0.1:0 with a temp unix socket, the real
//! `apollo` binary as a child process, and clients for both transports.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod components;
pub mod config_clients;
pub mod http_receiver;
pub mod mongo;
pub mod stores;

use apollo_host::cli::{ApiClient, Endpoint};
use apollo_host::config::Config;
use apollo_host::server::RunningHost;
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

pub fn apollo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_apollo-under-test")
}

/// A module library the workspace builds (`lib<crate>.so`, `-` as `_`), next to the
/// `apollo` binary under test; `make test` builds them all before the tests run.
pub fn module_library(package: &str) -> PathBuf {
    let file = format!("lib{}.so", package.replace('-', "_"));
    let path = PathBuf::from(apollo_bin()).parent().expect("the binary has a folder").join(&file);
    assert!(path.exists(), "{file} is missing: build it first with cargo build -p {package} (make test does)");
    path
}

/// A throwaway deployment: `root/apollo.pig` with everything under `root/`.
#[derive(Debug)]
pub struct Deployment {
    pub dir: tempfile::TempDir,
    /// Extra config keys merged over the defaults, e.g. `{"auth": {"token_ttl_secs": 1}}`.
    pub overrides: Value,
}

impl Deployment {
    pub fn new() -> Self {
        Self::with(json!({}))
    }

    pub fn with(overrides: Value) -> Self {
        let d = Self { dir: tempfile::tempdir().expect("tempdir"), overrides };
        std::fs::create_dir_all(d.models_dir()).unwrap();
        d.write_config();
        d
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("apollo.pig")
    }

    pub fn models_dir(&self) -> PathBuf {
        self.root().join("app/.octopus")
    }

    pub fn socket(&self) -> PathBuf {
        self.root().join("data/apollo.sock")
    }

    fn write_config(&self) {
        let mut config = json!({
            "service_root": ".",
            "server": {"host": "127.0.0.1", "port": 0},
            "log": {"enable_log": true},
            "registry": {"debounce_ms": 50},
            // Tests must not leave services behind when their host stops.
            "supervisor": {"stop_services_on_exit": true}
        });
        merge(&mut config, &self.overrides);
        std::fs::write(self.config_path(), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    pub fn config(&self) -> Config {
        let loaded = Config::load(&self.config_path()).expect("test config loads");
        loaded.config
    }

    /// Writes a model file atomically (write + rename), as an operator's tooling would.
    pub fn write_model(&self, file: &str, model: &Value) {
        self.write_model_text(file, &serde_json::to_string_pretty(model).unwrap());
    }

    pub fn write_model_text(&self, file: &str, text: &str) {
        let tmp = self.models_dir().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.models_dir().join(file)).unwrap();
    }

    pub fn remove_model(&self, file: &str) {
        std::fs::remove_file(self.models_dir().join(file)).unwrap();
    }

    /// Starts the real host in this process.
    pub async fn start(&self) -> TestHost {
        let host = RunningHost::start(self.config(), Some(ADMIN_PASSWORD.into())).await.expect("host starts");
        TestHost { host }
    }

    /// Starts `apollo serve` as a child process and waits for its "listening" line.
    pub fn spawn(&self) -> HostProcess {
        HostProcess::spawn(&self.config_path())
    }

    /// Runs the CLI against this deployment's socket.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let config = self.config_path();
        let mut full = vec!["--config", config.to_str().unwrap()];
        full.extend_from_slice(args);
        run_cli(&full, None)
    }
}

impl Drop for Deployment {
    /// A test that failed half-way must not leave its services running: every process
    /// whose working directory is inside this deployment is killed (by pid).
    fn drop(&mut self) {
        let root = self.root().to_path_buf();
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
            let in_root = std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&root));
            if in_root && pid != std::process::id() as i32 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A minimal valid seed-format model.
pub fn model(name: &str, id: &str, run_dep: &[&str]) -> Value {
    json!({
        "name": name, "id": id, "type": "Service", "release_status": "published",
        "eng_des": format!("{name} service"), "chs_des": "", "link": "",
        "manage_cmd": {"start": "start.sh", "stop": "stop.sh", "restart": "restart.sh", "force_kill": "kill.sh", "check": "check.sh"},
        "meta": {"author": "t", "domain": "", "language": ["rust"], "create_date": "", "version": "1.0.0", "dynamic_conf": false, "conf_type": "", "conf_path": ""},
        "run_data": {"envs": [], "ports": [], "random_port": false, "host": "127.0.0.1", "run_dep": run_dep, "stop_chain": []}
    })
}

#[derive(Debug)]
pub struct TestHost {
    pub host: RunningHost,
}

impl TestHost {
    pub fn tcp(&self) -> ApiClient {
        ApiClient::new(Endpoint::Tcp(self.host.http_addr.to_string()), None)
    }

    pub fn uds(&self) -> ApiClient {
        ApiClient::new(Endpoint::Unix(self.host.uds_path.clone()), None)
    }

    pub async fn login(&self) -> String {
        let r: Value = self
            .tcp()
            .post("/api/auth/login", Some(&json!({"username": "admin", "password": ADMIN_PASSWORD})))
            .await
            .expect("login");
        r["token"].as_str().unwrap().to_string()
    }

    pub async fn authed(&self) -> ApiClient {
        let token = self.login().await;
        self.tcp().with_token(Some(token))
    }

    pub async fn shutdown(self) {
        self.host.shutdown().await.expect("clean shutdown");
    }
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `apollo serve` as a child process.
#[derive(Debug)]
pub struct HostProcess {
    pub child: Child,
    pub http_addr: String,
    pub socket: PathBuf,
}

impl HostProcess {
    pub fn spawn(config: &Path) -> Self {
        let mut command = Command::new(apollo_bin());
        command.env("APOLLO_ADMIN_PASSWORD", ADMIN_PASSWORD).stderr(Stdio::inherit());
        Self::spawn_with(config, command)
    }

    /// Spawns `command` (the binary, with env and stderr set by the caller) as
    /// `serve --config config` and waits up to 30 s for its listening line.
    pub fn spawn_with(config: &Path, mut command: Command) -> Self {
        if !command.get_envs().any(|(k, _)| k == "RUST_LOG") {
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn apollo serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // A host that hangs before printing must fail the test, not hang the suite.
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("apollo serve printed no listening line within 30 s");
            }
        };
        // "apollo listening on http://127.0.0.1:PORT and unix:/path"
        let rest = line
            .trim()
            .strip_prefix("apollo listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (addr, socket) = rest.split_once(" and unix:").expect("listening line has both addresses");
        Self { child, http_addr: addr.to_string(), socket: PathBuf::from(socket) }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn tcp(&self) -> ApiClient {
        ApiClient::new(Endpoint::Tcp(self.http_addr.clone()), None)
    }

    pub fn uds(&self) -> ApiClient {
        ApiClient::new(Endpoint::Unix(self.socket.clone()), None)
    }

    /// SIGKILL, as a crash would.
    pub fn crash(mut self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        // Only our own child, by pid; a test that panicked must not leak a daemon. SIGTERM
        // first: a graceful exit also stops its services (stop_services_on_exit).
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_cli(args: &[&str], stdin: Option<&str>) -> CliOutput {
    use std::io::Write;
    let mut child = Command::new(apollo_bin())
        .args(args)
        .env_remove("APOLLO_CONFIG")
        .env_remove("APOLLO_ADDR")
        .env_remove("APOLLO_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apollo");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
