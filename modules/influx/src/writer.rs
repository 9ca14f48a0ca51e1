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

#[derive(Debug)]
pub struct Writer {
    pub host: Host,
    pub client: Client,
    pub shared: Arc<Shared>,
    pub batch_size: usize,
    pub create_database: bool,
    pub backoff: Backoff,
    /// `CREATE DATABASE` succeeded (only tried when `create_database` is set).
    pub database_ready: bool,
}

enum Trigger {
    Flush(FlushRequest),
    Wake,
}

impl Writer {
    pub async fn run(mut self, wake: Arc<Notify>, mut flushes: mpsc::Receiver<FlushRequest>, mut stop: watch::Receiver<bool>) {
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
            self.host.warn(&format!("stopping with {left} points not written to InfluxDB: {why}"));
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
        if self.create_database
            && !self.database_ready
            && !self.shared.lock().buffer.is_empty()
        {
            match self.client.create_database().await {
                Ok(()) => self.database_ready = true,
                Err(e) => {
                    self.failed(format!("creating the database failed: {e}"), &mut outcome);
                    return outcome;
                }
            }
        }
        loop {
            let Some(batch) = self.shared.lock().buffer.peek(self.batch_size) else { break };
            match self.client.write(&batch.body).await {
                Ok(()) => {
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
                        self.host.info(&format!("InfluxDB writes succeed again after {failures} failed attempts"));
                    }
                    outcome.written += batch.points as u64;
                }
                Err(WriteError::Rejected(message)) => {
                    let mut s = self.shared.lock();
                    s.buffer.ack(batch.last_seq);
                    s.points_rejected += batch.points as u64;
                    s.last_error = Some((now_ms(), message.clone()));
                    drop(s);
                    self.host.log(Level::Error, &format!("InfluxDB refused a batch of {} points, dropped: {message}", batch.points));
                    outcome.rejected += batch.points as u64;
                    outcome.error = Some(message);
                }
                Err(WriteError::Retry(message)) => {
                    // The database may have been dropped or InfluxDB reset: create it again.
                    if message.contains("HTTP 404") {
                        self.database_ready = false;
                    }
                    self.failed(message, &mut outcome);
                    break;
                }
            }
        }
        outcome.buffered = self.shared.lock().buffer.len();
        outcome
    }

    /// Records a retryable failure and schedules the next attempt. Logged on the
    /// first failure of a run and then at growing intervals, not on every retry.
    fn failed(&self, message: String, outcome: &mut FlushOutcome) {
        let mut s = self.shared.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.write_failures += 1;
        let failures = s.consecutive_failures;
        let delay = self.backoff.delay(failures);
        s.next_retry_ms = Some(now_ms() + delay.as_millis() as i64);
        s.last_error = Some((now_ms(), message.clone()));
        let buffered = s.buffer.len();
        drop(s);
        if failures.is_power_of_two() {
            self.host.warn(&format!(
                "InfluxDB write failed ({failures} in a row, {buffered} points buffered, next try in {} ms): {message}",
                delay.as_millis()
            ));
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
