//! The writer task: drains the buffer into InfluxDB in batches, woken by each sampling
//! round, by `POST /flush`, or by the end of a backoff. A batch leaves the buffer only
//! after a 2xx; a retryable failure stops the drain and schedules the next attempt
//! with backoff (new points keep buffering meanwhile); a batch InfluxDB refuses as
//! invalid is dropped and counted, since sending it again would fail forever.
//!
//! On shutdown it makes one last, time-boxed attempt to deliver what is buffered: the
//! buffer lives in memory, so whatever is still in it when the module goes is lost
//! (and counted in the log).

use std::sync::Arc;
use std::time::Duration;

use plugin_api::tokio::sync::{Notify, mpsc, oneshot, watch};
use plugin_api::tokio::{self, time::Instant};
use plugin_api::{Host, Level};

use serde::Serialize;

use crate::backoff::Backoff;
use crate::influx::{Client, WriteError};
use crate::reports::FailureReports;
use crate::state::{Shared, now_ms};

/// The last attempt at shutdown: the host gives a module's `shutdown` 5 s in all.
pub const FINAL_FLUSH: Duration = Duration::from_secs(3);

/// What a drain did: the answer of `POST /flush`.
#[derive(Debug, Clone, Serialize)]
pub struct FlushOutcome {
    pub written: u64,
    pub rejected: u64,
    pub buffered: usize,
    pub error: Option<String>,
}

pub type FlushRequest = oneshot::Sender<FlushOutcome>;

/// Where the writer's messages go: the host's log in the module; a closure in unit
/// tests, which have no host.
#[derive(Clone)]
pub struct Log(Arc<LogFn>);

type LogFn = dyn Fn(Level, &str) + Send + Sync;

impl Log {
    pub fn host(host: Host) -> Self {
        Self(Arc::new(move |level, message| host.log(level, message)))
    }

    fn say(&self, level: Level, message: &str) {
        (self.0)(level, message);
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
    }
}

#[derive(Debug)]
pub struct Writer {
    pub log: Log,
    pub client: Client,
    pub shared: Arc<Shared>,
    pub batch_size: usize,
    pub create_database: bool,
    pub backoff: Backoff,
    /// `CREATE DATABASE` succeeded (only tried when `create_database` is set).
    pub database_ready: bool,
    /// Which failures get a log line (an absent InfluxDB must not flood the host's log).
    pub reports: FailureReports,
}

enum Trigger {
    Flush(FlushRequest),
    Wake,
}

impl Writer {
    pub async fn run(
        mut self,
        wake: Arc<Notify>,
        mut flushes: mpsc::Receiver<FlushRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut retry_at: Option<Instant> = None;
        loop {
            let trigger = tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(reply) = flushes.recv() => Trigger::Flush(reply),
                _ = wake.notified(), if retry_at.is_none() => Trigger::Wake,
                _ = sleep_until(retry_at), if retry_at.is_some() => Trigger::Wake,
            };
            // A write in flight is abandoned on stop: its points are still buffered,
            // and the final flush below sends them.
            let outcome = tokio::select! {
                biased;
                _ = stop.changed() => break,
                outcome = self.drain() => outcome,
            };
            retry_at = self.retry_at();
            if let Trigger::Flush(reply) = trigger {
                let _ = reply.send(outcome);
            }
        }
        let outcome = tokio::time::timeout(FINAL_FLUSH, self.drain()).await;
        let left = self.shared.lock().buffer.len();
        if left > 0 {
            let why = match outcome {
                Ok(o) => o.error.unwrap_or_default(),
                Err(_) => format!("no answer within {} s", FINAL_FLUSH.as_secs()),
            };
            self.log.say(Level::Warn, &format!("stopping with {left} points not written to InfluxDB: {why}"));
        }
    }

    fn retry_at(&self) -> Option<Instant> {
        let next = self.shared.lock().next_retry_ms?;
        let wait = u64::try_from(next - now_ms()).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }

    /// Writes batches until the buffer is empty or a write fails.
    pub async fn drain(&mut self) -> FlushOutcome {
        let mut outcome = FlushOutcome { written: 0, rejected: 0, buffered: 0, error: None };
        // A failed CREATE DATABASE does not stop the write: a user with write rights
        // only cannot create databases, and the database may well exist. Its error
        // matters only if the write then finds no database.
        let mut create_error = None;
        if self.create_database && !self.database_ready && !self.shared.lock().buffer.is_empty() {
            match self.client.create_database().await {
                Ok(()) => self.database_ready = true,
                Err(e) => create_error = Some(e),
            }
        }
        loop {
            let Some(batch) = self.shared.lock().buffer.peek(self.batch_size) else { break };
            match self.client.write(&batch.body).await {
                Ok(()) => {
                    self.database_ready = true;
                    let mut s = self.shared.lock();
                    s.buffer.ack(batch.last_seq);
                    s.points_written += batch.points as u64;
                    s.batches_written += 1;
                    s.last_success_ms = Some(now_ms());
                    s.next_retry_ms = None;
                    if s.consecutive_failures > 0 {
                        let failures = s.consecutive_failures;
                        s.consecutive_failures = 0;
                        drop(s);
                        self.reports.reset();
                        self.log.say(
                            Level::Info,
                            &format!("InfluxDB writes succeed again after {failures} failed attempts"),
                        );
                    }
                    outcome.written += batch.points as u64;
                }
                Err(WriteError::Rejected(message)) => {
                    let mut s = self.shared.lock();
                    s.buffer.ack(batch.last_seq);
                    s.points_rejected += batch.points as u64;
                    s.last_error = Some((now_ms(), message.clone()));
                    drop(s);
                    self.log.say(
                        Level::Error,
                        &format!("InfluxDB refused a batch of {} points, dropped: {message}", batch.points),
                    );
                    outcome.rejected += batch.points as u64;
                    outcome.error = Some(message);
                }
                Err(WriteError::NoDatabase(message)) => {
                    // Dropped, or InfluxDB was reset: create it again on the next try.
                    self.database_ready = false;
                    let message = match (self.create_database, create_error.take()) {
                        (true, Some(e)) => format!("{message}; creating the database failed: {e}"),
                        (true, None) => message,
                        (false, _) => format!("{message} (create_database is off: create it in InfluxDB)"),
                    };
                    self.failed(message, &mut outcome);
                    break;
                }
                Err(WriteError::Retry(message)) => {
                    self.failed(message, &mut outcome);
                    break;
                }
            }
        }
        outcome.buffered = self.shared.lock().buffer.len();
        outcome
    }

    /// Records a retryable failure and schedules the next attempt. Logged on the
    /// first failure of a run (saying what happens meanwhile) and then at growing gaps
    /// (`reports.rs`), not on every retry: status and health show every one.
    fn failed(&mut self, message: String, outcome: &mut FlushOutcome) {
        let mut s = self.shared.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.write_failures += 1;
        let failures = s.consecutive_failures;
        let delay = self.backoff.delay(failures);
        let now = now_ms();
        s.next_retry_ms = Some(now + delay.as_millis() as i64);
        s.last_error = Some((now, message.clone()));
        let buffered = s.buffer.len();
        let capacity = s.buffer.capacity();
        drop(s);
        if self.reports.due(now) {
            let line = if failures == 1 {
                format!(
                    "InfluxDB at {} cannot take writes: {message}. Points are buffered (up to {capacity}, oldest \
                     dropped first) and retried with backoff; this is reported again only at growing intervals \
                     (up to hourly) while it lasts: GET /api/module/influx/status shows the state",
                    self.client.url()
                )
            } else {
                format!(
                    "InfluxDB writes still failing ({failures} in a row, {buffered} points buffered, next try in \
                     {} ms): {message}",
                    delay.as_millis()
                )
            };
            self.log.say(Level::Warn, &line);
        }
        outcome.error = Some(message);
        outcome.buffered = buffered;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::sync::Mutex;

    use plugin_api::tokio::io::{AsyncReadExt, AsyncWriteExt};
    use plugin_api::tokio::net::TcpListener;

    use super::*;
    use crate::config::Config;

    /// What the fake InfluxDB saw of one request.
    #[derive(Debug, Clone)]
    struct Seen {
        head: String,
        body: String,
    }

    /// A fake InfluxDB on 127.0.0.1 answering each request with the next status of
    /// `statuses`, recording each request (body un-gzip'd).
    async fn fake_influx(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let server = tokio::spawn(async move {
            for status in statuses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut data = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    data.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if data.len() >= end + 4 + length {
                            break (head, data[end + 4..end + 4 + length].to_vec());
                        }
                    }
                    assert!(n > 0, "client closed early");
                };
                let mut body_text = String::new();
                if !body.is_empty() {
                    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut body_text).unwrap();
                }
                record.lock().unwrap().push(Seen { head, body: body_text });
                let answer = if status == 400 { r#"{"error":"partial write: field type conflict"}"# } else { "" };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (port, seen, server)
    }

    fn writer(port: u16, points: usize) -> Writer {
        let section = serde_json::from_value(serde_json::json!({
            "url": format!("http://127.0.0.1:{port}"), "database": "db one", "retention_policy": "rp",
            "username": "u", "password": "p", "batch_size": 2, "create_database": false, "timeout_secs": 2
        }))
        .unwrap();
        let config = Config::from_section(&section, "h").unwrap();
        let shared = Arc::new(Shared::new(100));
        for i in 0..points {
            shared.lock().buffer.push(format!("m v={i}i {i}"));
        }
        Writer {
            log: Log(Arc::new(|_, _| {})),
            client: Client::new(&config),
            shared,
            batch_size: config.batch_size,
            create_database: config.create_database,
            backoff: Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(20) },
            database_ready: false,
            reports: FailureReports::default(),
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn points_leave_the_buffer_only_after_a_2xx_and_bad_batches_are_dropped() {
        run(async {
            let (port, seen, server) = fake_influx(vec![500, 204, 400, 204]).await;
            let mut w = writer(port, 5);

            let failed = w.drain().await;
            assert_eq!((failed.written, failed.buffered), (0, 5));
            assert!(failed.error.unwrap().contains("HTTP 500"));
            {
                let s = w.shared.lock();
                assert_eq!((s.consecutive_failures, s.write_failures), (1, 1));
                assert!(s.next_retry_ms.is_some());
            }

            let ok = w.drain().await;
            assert_eq!((ok.written, ok.rejected, ok.buffered), (3, 2, 0));
            assert!(ok.error.unwrap().contains("field type conflict"));
            {
                let s = w.shared.lock();
                assert_eq!((s.points_written, s.batches_written, s.points_rejected), (3, 2, 2));
                assert_eq!((s.consecutive_failures, s.next_retry_ms), (0, None));
            }
            server.await.unwrap();

            let seen = seen.lock().unwrap().clone();
            let bodies: Vec<&str> = seen.iter().map(|s| s.body.as_str()).collect();
            assert_eq!(
                bodies,
                ["m v=0i 0\nm v=1i 1\n", "m v=0i 0\nm v=1i 1\n", "m v=2i 2\nm v=3i 3\n", "m v=4i 4\n"],
                "the retry sends the very same points"
            );
            let head = &seen[0].head;
            assert!(head.starts_with("post /write?db=db%20one&precision=ms&rp=rp http/1.1"), "{head}");
            assert!(head.contains("content-encoding: gzip"), "{head}");
            assert!(head.contains("authorization: basic dtpw"), "Basic base64(u:p): {head}");
        });
    }

    #[test]
    fn a_missing_database_is_created_and_the_write_retried() {
        run(async {
            // Write: 404; next drain: CREATE DATABASE (200), write (204).
            let (port, seen, server) = fake_influx(vec![404, 200, 204]).await;
            let mut w = writer(port, 1);
            w.create_database = true;
            w.database_ready = true;
            let missing = w.drain().await;
            assert!(missing.error.unwrap().contains("HTTP 404"));
            assert!(!w.database_ready);
            let ok = w.drain().await;
            assert_eq!((ok.written, ok.buffered), (1, 0));
            server.await.unwrap();
            let seen = seen.lock().unwrap();
            assert!(seen[1].head.starts_with("post /query?q=create%20database%20%22db%20one%22"), "{}", seen[1].head);
        });
    }

    #[test]
    fn influx_down_keeps_everything() {
        run(async {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut w = writer(port, 3);
            let down = w.drain().await;
            assert_eq!((down.written, down.buffered), (0, 3));
            assert!(down.error.unwrap().contains("cannot connect"));
        });
    }
}
