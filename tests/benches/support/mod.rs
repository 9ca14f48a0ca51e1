//! What the benches share: a quiet host deployment with a module folder, and reading
//! where a spawned `apollo serve` listens. Not a bench itself (benches are
//! `benches/*.rs`; this folder has no `main.rs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result};

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
