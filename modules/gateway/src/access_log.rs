//! The access log: one JSON line per request, appended to a file or handed to the
//! host's log, written by a task of its own behind a bounded queue — a slow disk drops
//! lines (counted, and said once a minute) rather than slowing requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plugin_api::Host;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::settings::AccessLogSettings;

const QUEUE: usize = 8192;

/// One request as the log tells it.
#[derive(Debug, Serialize)]
pub struct Line {
    /// RFC 3339 UTC, milliseconds.
    pub time: String,
    pub trace_id: String,
    pub client: String,
    pub method: String,
    pub host: String,
    pub path: String,
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub instance: Option<String>,
    pub status: u16,
    pub attempts: u32,
    pub duration_ms: f64,
    /// Why the gateway answered itself, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct AccessLog {
    queue: Option<mpsc::Sender<Line>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    pub fn disabled() -> Self {
        Self { queue: None, dropped: Arc::default() }
    }

    /// Starts the writer on the current runtime.
    pub fn start(settings: &AccessLogSettings, host: Host) -> Self {
        if !settings.enabled {
            return Self::disabled();
        }
        let (queue, lines) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(write(lines, settings.path.clone(), host, Arc::clone(&dropped)));
        Self { queue: Some(queue), dropped }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    pub fn record(&self, line: Line) {
        if let Some(queue) = &self.queue
            && queue.try_send(line).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write(mut lines: mpsc::Receiver<Line>, path: Option<String>, host: Host, dropped: Arc<AtomicU64>) {
    let mut file = match &path {
        Some(path) => match tokio::fs::OpenOptions::new().create(true).append(true).open(path).await {
            Ok(f) => Some(tokio::io::BufWriter::new(f)),
            Err(e) => {
                host.error(&format!("gateway: cannot open the access log {path}: {e}; logging to the host's log"));
                None
            }
        },
        None => None,
    };
    let mut said_dropped = Instant::now();
    let mut batch = Vec::with_capacity(256);
    while lines.recv_many(&mut batch, 256).await > 0 {
        for line in batch.drain(..) {
            let Ok(json) = serde_json::to_string(&line) else { continue };
            match &mut file {
                Some(f) => {
                    if f.write_all(json.as_bytes()).await.and(f.write_all(b"\n").await).is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => host.info(&json),
            }
        }
        if let Some(f) = &mut file {
            let _ = f.flush().await;
        }
        if said_dropped.elapsed() > Duration::from_secs(60) {
            let n = dropped.swap(0, Ordering::Relaxed);
            if n > 0 {
                host.warn(&format!("gateway: {n} access log lines dropped (the writer fell behind)"));
            }
            said_dropped = Instant::now();
        }
    }
}
