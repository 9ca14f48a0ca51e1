//! What the benches share: a quiet host deployment with a module folder, reading
//! where a spawned `apollo serve` listens, that host as a child stopped on drop, and a
//! login. Not a bench itself (benches are `benches/*.rs`; this folder has no
//! `main.rs`); each bench uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use apollo_host::cli::{ApiClient, Endpoint};
use serde_json::{Value, json};

/// Writes `<dir>/apollo.pig` for a host on any free loopback port that logs warnings
/// only (per-request logging would be measured, not the host), with modules loaded from
/// `<dir>/modules/` (created). Returns `(config, modules folder)`.
pub fn quiet_host_config(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let config = dir.join("apollo.pig");
    let pig = serde_json::json!({
        "service_root": ".",
        "server": {"host": "127.0.0.1", "port": 0},
        "log": {"enable_log": false},
        "modules": {"dir": "modules"}
    });
    std::fs::write(&config, serde_json::to_vec_pretty(&pig)?)?;
    let modules = dir.join("modules");
    std::fs::create_dir_all(&modules)?;
    Ok((config, modules))
}

/// Reads `apollo listening on http://ADDR and unix:PATH` from the host's stdout and
/// returns `(ADDR, PATH)`. The rest of stdout keeps being drained: a closed pipe would
/// make a later `println!` in the host fail.
pub fn listening(child: &mut Child) -> Result<(String, PathBuf)> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).context("apollo serve printed no listening line in 30 s")?;
    let (addr, socket) = line
        .trim()
        .strip_prefix("apollo listening on http://")
        .and_then(|rest| rest.split_once(" and unix:"))
        .with_context(|| format!("unexpected first line from apollo serve: {line:?}"))?;
    Ok((addr.to_string(), PathBuf::from(socket)))
}

/// `apollo serve` as a child on a quiet config, with module libraries in its modules
/// folder; stopped (SIGTERM, then SIGKILL after 15 s) when dropped.
pub struct ServedHost {
    pub child: Child,
    /// `127.0.0.1:PORT` of its TCP listener.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl ServedHost {
    /// `adjust` may change the config (JSON) before the host reads it; `modules` are
    /// `(library, file name)` pairs copied into its modules folder.
    pub fn launch(
        bin: &Path,
        password: &str,
        adjust: impl FnOnce(&mut Value),
        modules: &[(&Path, &str)],
    ) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-host-").tempdir()?;
        let (config, folder) = quiet_host_config(dir.path())?;
        let mut pig: Value = serde_json::from_slice(&std::fs::read(&config)?)?;
        adjust(&mut pig);
        std::fs::write(&config, serde_json::to_vec_pretty(&pig)?)?;
        for (library, name) in modules {
            std::fs::copy(library, folder.join(name)).with_context(|| format!("copy {}", library.display()))?;
        }
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env("APOLLO_ADMIN_PASSWORD", password)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawn apollo serve")?;
        match listening(&mut child) {
            Ok((addr, _)) => Ok(Self { child, addr, _dir: dir }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pids fit in i32")
    }
}

impl Drop for ServedHost {
    /// Our child only, by pid: SIGTERM for a graceful exit, SIGKILL if it hangs.
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = kill(nix::unistd::Pid::from_raw(self.pid()), Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bearer token for `admin`.
pub async fn login(addr: &str, password: &str) -> Result<String> {
    let client = ApiClient::new(Endpoint::Tcp(addr.to_string()), None);
    let answer: Value = client
        .post("/api/auth/login", Some(&json!({"username": "admin", "password": password})))
        .await
        .context("login")?;
    Ok(answer["token"].as_str().context("login answer has no token")?.to_string())
}

/// Where the module `name`'s own listener is bound, from `GET /api/modules` (waits up
/// to 30 s for the host to open it).
pub async fn module_listener(api: &ApiClient, name: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = api.get("/api/modules").await.context("GET /api/modules")?;
        let bound = list["modules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["name"] == name)
            .and_then(|m| m["listener"]["bound"].as_str().map(str::to_string));
        if let Some(addr) = bound {
            return Ok(addr);
        }
        anyhow::ensure!(Instant::now() < deadline, "the {name} module's listener is not bound: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
