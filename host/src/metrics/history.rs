//! The last hour of each service's CPU % and RSS, for the dashboard's charts
//! (`GET /api/apps/{name}/history`). A sampler reads what the supervisor's status already
//! reports every `metrics.history_interval_secs` (10 s: 360 points an hour) and appends
//! one point per running service to a fixed-size ring. Points are compact (a timestamp,
//! an `f32` and a `u32`: 12 bytes); a service's ring is freed when the service is
//! removed, and a stopped service keeps what was recorded but gains nothing.
//!
//! Deliberately not a time-series store: nothing is persisted, nothing older than the
//! ring is kept. Prometheus (`/metrics`) or module-influx are for longer histories.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::supervisor::{ServiceState, ServiceStatus, Supervisor};

/// Points kept per service: an hour at the default 10 s interval.
pub const CAPACITY: usize = 360;

/// One sample of a service: every running instance's CPU and RSS, summed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    /// Unix seconds (u32 lasts until 2106).
    at_secs: u32,
    /// CPU time used since the previous sample over the time elapsed, in percent of one
    /// core; NaN when no instance had an earlier reading (its first sample).
    cpu_percent: f32,
    /// Resident memory in KiB (u32: up to 4 TiB).
    rss_kib: u32,
}

/// One point as the API serves it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// Unix time of the sample, in milliseconds.
    pub at_ms: i64,
    /// Percent of one core since the previous sample (over 100 with several cores busy);
    /// absent for the first sample of a process.
    pub cpu_percent: Option<f32>,
    pub rss_bytes: u64,
}

/// `GET /api/apps/{name}/history`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceHistoryView {
    pub name: String,
    /// Seconds between samples (`metrics.history_interval_secs`); 0: not sampling.
    pub interval_secs: u64,
    /// Most points kept; the oldest goes when a new one comes.
    pub capacity: usize,
    /// Oldest first.
    pub points: Vec<HistoryPoint>,
}

/// The previous CPU-time reading of one process, to turn the next one into a percentage.
#[derive(Debug, Clone, Copy)]
struct CpuReading {
    cpu_time_ms: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Rings {
    /// Service name -> its points, oldest first, at most [`CAPACITY`].
    points: HashMap<String, VecDeque<Point>>,
    /// (service, pid) -> that process's last CPU-time reading.
    cpu: HashMap<(String, i32), CpuReading>,
}

/// The rings of every service, shared by the sampler and the API.
#[derive(Debug)]
pub struct ServiceHistory {
    interval: Duration,
    rings: Mutex<Rings>,
}

impl ServiceHistory {
    /// `interval_secs` 0: the sampler does not run and every history is empty.
    pub fn new(interval_secs: u64) -> Self {
        Self { interval: Duration::from_secs(interval_secs), rings: Mutex::new(Rings::default()) }
    }

    fn rings(&self) -> MutexGuard<'_, Rings> {
        // A panic while holding the lock leaves whole points behind: keep going.
        self.rings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one sample of every service in `statuses` (all the supervisor knows):
    /// a point for each running one, and frees the rings of services no longer listed.
    fn record(&self, statuses: &[ServiceStatus], now: Instant, wall: SystemTime) {
        let at_secs = wall.duration_since(UNIX_EPOCH).map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let mut rings = self.rings();
        let known: HashSet<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
        rings.points.retain(|name, _| known.contains(name.as_str()));
        let mut readings = HashMap::new();
        for status in statuses.iter().filter(|s| matches!(s.state, ServiceState::Running | ServiceState::Unhealthy)) {
            let mut rss_bytes = 0u64;
            let mut any_rss = false;
            let mut cpu_percent: Option<f32> = None;
            for instance in &status.instances {
                let Some(pid) = instance.pid else { continue };
                if let Some(rss) = instance.rss_bytes {
                    rss_bytes += rss;
                    any_rss = true;
                }
                let Some(cpu_time_ms) = instance.cpu_time_ms else { continue };
                let key = (status.name.clone(), pid);
                if let Some(previous) = rings.cpu.get(&key) {
                    let elapsed_ms = now.saturating_duration_since(previous.at).as_secs_f64() * 1000.0;
                    if elapsed_ms > 0.0 && cpu_time_ms >= previous.cpu_time_ms {
                        let percent = (cpu_time_ms - previous.cpu_time_ms) as f64 / elapsed_ms * 100.0;
                        *cpu_percent.get_or_insert(0.0) += percent as f32;
                    }
                }
                readings.insert(key, CpuReading { cpu_time_ms, at: now });
            }
            if !any_rss {
                continue;
            }
            let point = Point {
                at_secs,
                cpu_percent: cpu_percent.unwrap_or(f32::NAN),
                rss_kib: u32::try_from(rss_bytes / 1024).unwrap_or(u32::MAX),
            };
            let ring = rings.points.entry(status.name.clone()).or_insert_with(|| VecDeque::with_capacity(CAPACITY));
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(point);
        }
        // Processes that ended (or services that stopped) leave no reading behind.
        rings.cpu = readings;
    }

    /// What is recorded for `name` (empty if nothing is).
    pub fn view(&self, name: &str) -> ServiceHistoryView {
        let rings = self.rings();
        let points = rings
            .points
            .get(name)
            .map(|ring| {
                ring.iter()
                    .map(|p| HistoryPoint {
                        at_ms: i64::from(p.at_secs) * 1000,
                        cpu_percent: (!p.cpu_percent.is_nan()).then_some(p.cpu_percent),
                        rss_bytes: u64::from(p.rss_kib) * 1024,
                    })
                    .collect()
            })
            .unwrap_or_default();
        ServiceHistoryView {
            name: name.to_string(),
            interval_secs: self.interval.as_secs(),
            capacity: CAPACITY,
            points,
        }
    }

    /// Samples the supervisor every interval until `cancel`; nothing when the interval is 0.
    pub fn spawn_sampler(
        self: &Arc<Self>,
        supervisor: Arc<Supervisor>,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) {
        if self.interval.is_zero() {
            return;
        }
        let history = Arc::clone(self);
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval(history.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let statuses = supervisor.statuses().await;
                history.record(&statuses, Instant::now(), SystemTime::now());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status as the supervisor reports it (built from JSON: only the fields read here).
    fn status(name: &str, state: ServiceState, pid: i32, rss: u64, cpu_ms: u64) -> ServiceStatus {
        let running = matches!(state, ServiceState::Running);
        let instance = serde_json::json!({"instance": 0, "pid": running.then_some(pid), "started_at": null,
            "rss_bytes": running.then_some(rss), "cpu_time_ms": running.then_some(cpu_ms), "adopted": false});
        serde_json::from_value(serde_json::json!({
            "name": name, "state": state, "mode": "supervised", "pid": running.then_some(pid),
            "instances": [instance], "ports": [], "restarts": 0, "stop_operation": false,
            "health_failures": 0, "message": ""
        }))
        .expect("a status")
    }

    #[test]
    fn cpu_percent_comes_from_two_readings_of_the_same_process() {
        let h = ServiceHistory::new(10);
        let t0 = Instant::now();
        let wall = SystemTime::now();
        h.record(&[status("web", ServiceState::Running, 7, 4096 * 1024, 1000)], t0, wall);
        h.record(&[status("web", ServiceState::Running, 7, 8192 * 1024, 1500)], t0 + Duration::from_secs(1), wall);
        let view = h.view("web");
        assert_eq!(view.points.len(), 2);
        assert_eq!(view.points[0].cpu_percent, None, "no earlier reading: no figure");
        assert_eq!(view.points[0].rss_bytes, 4096 * 1024);
        let cpu = view.points[1].cpu_percent.unwrap();
        assert!((cpu - 50.0).abs() < 0.01, "500 ms of CPU in 1 s: {cpu}");
        assert_eq!(view.points[1].rss_bytes, 8192 * 1024);
        // A new process (restart) starts without a figure again.
        h.record(&[status("web", ServiceState::Running, 8, 1024, 10)], t0 + Duration::from_secs(2), wall);
        assert_eq!(h.view("web").points[2].cpu_percent, None);
    }

    #[test]
    fn the_ring_keeps_the_newest_capacity_points() {
        let h = ServiceHistory::new(10);
        let t0 = Instant::now();
        for i in 0..(CAPACITY as u64 + 25) {
            let wall = UNIX_EPOCH + Duration::from_secs(1_000 + i);
            h.record(&[status("web", ServiceState::Running, 7, (i + 1) * 1024, i)], t0 + Duration::from_secs(i), wall);
        }
        let points = h.view("web").points;
        assert_eq!(points.len(), CAPACITY);
        assert_eq!(std::mem::size_of::<Point>(), 12, "a point stays compact: a full ring is 4.2 KiB");
        assert_eq!(points[0].at_ms, (1_000 + 25) * 1000, "the oldest 25 dropped");
        assert_eq!(points.last().unwrap().rss_bytes, (CAPACITY as u64 + 25) * 1024);
        assert!(points.windows(2).all(|w| w[0].at_ms < w[1].at_ms), "oldest first");
    }

    #[test]
    fn a_stopped_service_keeps_its_points_and_a_removed_one_is_freed() {
        let h = ServiceHistory::new(10);
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let both =
            |web: ServiceState| vec![status("web", web, 7, 1024, 1), status("db", ServiceState::Running, 9, 2048, 1)];
        h.record(&both(ServiceState::Running), t0, wall);
        h.record(&both(ServiceState::Stopped), t0 + Duration::from_secs(1), wall);
        h.record(&both(ServiceState::Stopped), t0 + Duration::from_secs(2), wall);
        assert_eq!(h.view("web").points.len(), 1, "nothing added while stopped");
        assert_eq!(h.view("db").points.len(), 3);
        assert!(h.rings().cpu.keys().all(|(name, _)| name == "db"), "no reading kept for a stopped service");
        h.record(&[status("db", ServiceState::Running, 9, 2048, 1)], t0 + Duration::from_secs(3), wall);
        assert!(h.view("web").points.is_empty(), "removed: freed");
        assert!(!h.rings().points.contains_key("web"));
        assert!(h.view("nobody").points.is_empty());
    }
}
