//! Health probes: http (2xx), tcp connect, script (exit 0), ttl (the service calls the
//! heartbeat route). Each probe has a timeout and reports one line on failure; the
//! actor counts consecutive failures.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::logs::ServiceLog;
use super::script::run_script;
use crate::model::{HealthCheck, HealthKind};

/// Everything a probe needs, captured when the service starts.
#[derive(Debug, Clone)]
pub struct Probe {
    pub check: HealthCheck,
    /// Where the service listens (`run_data.host`); the unspecified address means loopback.
    pub host: std::net::IpAddr,
    pub first_port: Option<u16>,
    pub script: Option<PathBuf>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub log: ServiceLog,
}

impl Probe {
    /// `Ok` when healthy. TTL is judged by the actor (it holds the last heartbeat).
    pub async fn run(&self) -> Result<(), String> {
        let timeout = Duration::from_secs(self.check.timeout_secs);
        match self.check.kind {
            HealthKind::None | HealthKind::Ttl => Ok(()),
            HealthKind::Tcp => {
                let port = if self.check.port != 0 { Some(self.check.port) } else { self.first_port };
                let port = port.ok_or("tcp check: no port (set health.port or run_data.ports)")?;
                let host = if self.host.is_unspecified() { std::net::IpAddr::from([127, 0, 0, 1]) } else { self.host };
                let addr = std::net::SocketAddr::new(host, port);
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("tcp {addr}: {e}")),
                    Err(_) => Err(format!("tcp {addr}: no answer within {timeout:?}")),
                }
            }
            HealthKind::Http => {
                let url = self.check.url.replace("{port}", &self.first_port.map(|p| p.to_string()).unwrap_or_default());
                match tokio::time::timeout(timeout, http_status(&url)).await {
                    Ok(Ok(code)) if (200..300).contains(&code) => Ok(()),
                    Ok(Ok(code)) => Err(format!("GET {url}: HTTP {code}")),
                    Ok(Err(e)) => Err(format!("GET {url}: {e}")),
                    Err(_) => Err(format!("GET {url}: no answer within {timeout:?}")),
                }
            }
            HealthKind::Script => {
                let script =
                    self.script.as_ref().ok_or("script check: no check script (manage_cmd.check or health.script)")?;
                match run_script(script, &self.cwd, &self.env, timeout, &self.log).await {
                    Ok(outcome) if outcome.success() => Ok(()),
                    Ok(outcome) => Err(outcome.describe()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

/// A minimal HTTP/1.0 GET to `http://host:port/path`: only the status line matters.
async fn http_status(url: &str) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: apollo-health\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    // The status line may arrive in several pieces: read until its end (or 1 KiB / EOF).
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not an HTTP response: {line:?}"))
}
