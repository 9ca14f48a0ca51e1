//! The real Ctrip Apollo clients driven as subprocesses (npm `ctrip-apollo` through
//! `tests/clients/ctrip_apollo_client.js`, PyPI `apollo-client-python` through
//! `tests/clients/apollo_client_python.py`, installed by `.ci/node-clients-up.sh` and `.ci/python-clients-up.sh`):
//! each prints one JSON line per event, collected here for the tests to wait on. Used by
//! the module-config tests and the dashboard's "a real client sees a release" step.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

/// How long [`Client::wait_for`] waits for an event.
const WAIT: Duration = Duration::from_secs(20);

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

pub fn venv_python() -> PathBuf {
    let venv = std::env::var("APOLLO_TEST_VENV").unwrap_or_else(|_| "/var/tmp/apollo-test-venv".into());
    Path::new(&venv).join("bin/python")
}

const INSTALL: &str = "run ./.ci/node-clients-up.sh and ./.ci/python-clients-up.sh (make test-deps does)";

/// Whether node and the npm ctrip-apollo package are installed, or else skip/fail.
pub fn node_client() -> bool {
    let present = super::components::on_path("node")
        && clients_dir().join("node/node_modules/ctrip-apollo/package.json").is_file();
    super::components::require("npm ctrip-apollo", present, INSTALL)
}

/// Whether the venv imports `apollo` (apollo-client-python), or else skip/fail.
pub fn python_client() -> bool {
    let present = std::process::Command::new(venv_python())
        .args(["-c", "import apollo.apollo_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    super::components::require("PyPI apollo-client-python", present, INSTALL)
}

/// A client driver: its JSON event lines, collected as they come. `wait_for` looks at
/// the events after the last `mark()` without consuming them, so events whose order the
/// client does not fix (ready vs saved) can be awaited in any order.
#[derive(Debug)]
pub struct Client {
    name: String,
    child: tokio::process::Child,
    /// Held so the driver's stdin stays open: it exits when the test drops it.
    _stdin: tokio::process::ChildStdin,
    rx: mpsc::UnboundedReceiver<Value>,
    events: Vec<Value>,
    cursor: usize,
    stderr: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Client {
    /// Runs `program args` in `home` (also its HOME), proxies unset, loopback exempt.
    pub fn spawn(name: &str, program: &Path, args: &[String], home: &Path, env: &[(&str, &str)]) -> Client {
        let mut command = tokio::process::Command::new(program);
        command.args(args).current_dir(home).env("HOME", home);
        for var in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
            command.env_remove(var);
        }
        // The drivers' own fallbacks: only what the test passes counts.
        for var in ["APOLLO_HOST", "APOLLO_CONFIG_URL", "APOLLO_APP_ID", "APOLLO_CLUSTER", "APOLLO_NAMESPACE"] {
            command.env_remove(var);
        }
        for var in ["APOLLO_NAMESPACES", "APOLLO_CACHE_PATH", "APOLLO_IP", "APOLLO_SECRET", "APOLLO_APP_SECRET"] {
            command.env_remove(var);
        }
        command.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let (tx, rx) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        let out = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let event = serde_json::from_str(&line).unwrap_or_else(|_| json!({"event": "stdout", "line": line}));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut err_pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        let err = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf).await {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take().unwrap();
        Client {
            name: name.to_string(),
            child,
            _stdin: stdin,
            rx,
            events: Vec::new(),
            cursor: 0,
            stderr,
            readers: vec![out, err],
        }
    }

    /// npm ctrip-apollo with its defaults; `extra` are driver options (`--ip=…`).
    pub fn node(home: &Path, base: &str, app: &str, extra: &[String]) -> Client {
        let mut args = vec![
            clients_dir().join("ctrip_apollo_client.js").display().to_string(),
            format!("--host={base}"),
            format!("--app-id={app}"),
            "--max-secs=120".to_string(),
        ];
        args.extend_from_slice(extra);
        // NODE_DEBUG: the client's debug lines become events (a 304 is one of them).
        Client::spawn(&format!("ctrip-apollo {app}"), Path::new("node"), &args, home, &[("NODE_DEBUG", "ctrip-apollo")])
    }

    /// apollo-client-python; `extra` are driver options (`--secret`, `--watch`, …).
    pub fn python(home: &Path, base: &str, app: &str, extra: &[&str]) -> Client {
        let mut args = vec![
            clients_dir().join("apollo_client_python.py").display().to_string(),
            "--config-url".to_string(),
            base.to_string(),
            "--app-id".to_string(),
            app.to_string(),
            "--max-secs".to_string(),
            "120".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Client::spawn(&format!("apollo-client-python {app}"), &venv_python(), &args, home, &[])
    }

    pub fn drain(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.events.push(event);
        }
    }

    /// From now on `wait_for` only looks at events that arrive after this call.
    pub fn mark(&mut self) {
        self.drain();
        self.cursor = self.events.len();
    }

    /// Every event so far.
    pub fn seen(&mut self) -> &[Value] {
        self.drain();
        &self.events
    }

    pub fn report(&self) -> String {
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        format!(
            "{} (pid {:?}) events:\n  {}\nstderr:\n{}",
            self.name,
            self.child.id(),
            events.join("\n  "),
            self.stderr.lock().unwrap()
        )
    }

    /// The first event since the last `mark()` that satisfies `matches`; fails after [`WAIT`].
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(event) = self.events[self.cursor..].iter().find(|e| matches(e)) {
                return event.clone();
            }
            match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), self.rx.recv()).await {
                Ok(Some(event)) => self.events.push(event),
                Ok(None) => {
                    // Let stderr catch up before reporting.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    panic!("{} exited while the test waited for {what}\n{}", self.name, self.report())
                }
                Err(_) => panic!("timed out after {WAIT:?} waiting for {what}\n{}", self.report()),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // kill_on_drop ends the child (ours, by pid); the readers end with its pipes.
        for reader in &self.readers {
            reader.abort();
        }
    }
}

pub fn is(event: &Value, kind: &str) -> bool {
    event["event"] == kind
}

/// ctrip-apollo's debug line for a 304 on its long poll.
pub fn is_poll_304(event: &Value) -> bool {
    is(event, "debug") && event["message"] == "polling: no changes, start polling again"
}
