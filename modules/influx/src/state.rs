//! What the sampler, the writer and the routes share: the buffer and the counters the
//! status route reports. One mutex guards all of it, held only for in-memory work
//! (never across an await), so a status read sees one consistent moment: for instance,
//! `buffered == 0` together with `last_sample_ms` means every point up to that time
//! was handed to InfluxDB.

use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::buffer::Buffer;

#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
}

#[derive(Debug)]
pub struct State {
    pub buffer: Buffer,
    /// Sampling rounds whose points entered the buffer.
    pub samples: u64,
    /// The timestamp of the latest round's points.
    pub last_sample_ms: Option<i64>,
    pub points_written: u64,
    pub batches_written: u64,
    /// Points InfluxDB refused as invalid (4xx): dropped, not retried.
    pub points_rejected: u64,
    /// Write attempts that failed and will be retried.
    pub write_failures: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<(i64, String)>,
    pub last_success_ms: Option<i64>,
    /// When the writer tries again after a failure (None: not backing off).
    pub next_retry_ms: Option<i64>,
}

impl Shared {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                buffer: Buffer::new(capacity),
                samples: 0,
                last_sample_ms: None,
                points_written: 0,
                batches_written: 0,
                points_rejected: 0,
                write_failures: 0,
                consecutive_failures: 0,
                last_error: None,
                last_success_ms: None,
                next_retry_ms: None,
            }),
        }
    }

    /// A panic while the lock was held cannot leave the counters half-updated in a way
    /// that matters more than stopping the module would, so a poisoned lock is used.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The figures of `GET /status` (the config is added by the caller).
    pub fn status(&self) -> Value {
        let s = self.lock();
        json!({
            "buffered": s.buffer.len(),
            "dropped": s.buffer.dropped(),
            "samples": s.samples,
            "last_sample_ms": s.last_sample_ms,
            "written": s.points_written,
            "batches_written": s.batches_written,
            "rejected": s.points_rejected,
            "write_failures": s.write_failures,
            "consecutive_failures": s.consecutive_failures,
            "last_error": s.last_error.as_ref().map(|(at, message)| json!({"at_ms": at, "message": message})),
            "last_success_ms": s.last_success_ms,
            "next_retry_ms": s.next_retry_ms,
        })
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
