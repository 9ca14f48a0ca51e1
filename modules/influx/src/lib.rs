//! module-influx: every `interval_secs`, host indicators and per-service stats written
//! to InfluxDB 1.x as line protocol, and routes that read them back as chart series.
//!
//! Routes, under `/api/module/influx/`:
//!
//! | route | answer |
//! |---|---|
//! | `GET /status` | config (without credentials), buffered/dropped/written/rejected counts, last error, last success |
//! | `GET /series/{service}` | `{"service","field","points":[[time_ms, value], …]}` (`?field= &from= &to= &every= &agg= &instance=`) |
//! | `GET /host/series` | the same for the host's own indicators |
//! | `POST /flush` | write what is buffered now (ignoring a backoff) and say how it went |
//!
//! Two tasks run on the module's runtime from `init` until `shutdown`: the collector
//! (`collect.rs`, one sampling round per interval into the bounded buffer) and the
//! writer (`writer.rs`, buffer to InfluxDB with retries). They share `state.rs`. The
//! config is `modules.config.influx` (`config.rs`); the README lists every key.
//! Credentials are only ever sent to InfluxDB: not logged, not in any answer.

mod backoff;
mod buffer;
mod collect;
mod config;
mod influx;
mod line;
mod query;
mod reports;
mod sample;
mod state;
mod timespec;
mod transport;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugin_api::tokio::sync::{Notify, mpsc, oneshot, watch};
use plugin_api::tokio::{self, task::JoinHandle};
use plugin_api::{Host, Module, Request, Response, Route, export_module};

use crate::backoff::Backoff;
use crate::collect::Collector;
use crate::config::Config;
use crate::influx::Client;
use crate::query::SeriesRequest;
use crate::reports::FailureReports;
use crate::sample::Sampler;
use crate::state::{Shared, now_ms};
use crate::writer::{FINAL_FLUSH, FlushRequest, Log, Writer};
use proc_stats::ProcFs;

#[derive(Debug)]
pub struct Influx {
    config: Config,
    client: Client,
    shared: Arc<Shared>,
    flushes: mpsc::Sender<FlushRequest>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Module for Influx {
    const NAME: &'static str = "influx";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Host and per-service stats written to InfluxDB 1.x, read back as chart series";

    fn routes() -> Vec<Route> {
        vec![
            Route::get("/status", "Writer state: buffered, dropped, written, last error (config without credentials)"),
            Route::get("/series/{service}", "A service's series: ?field=&from=&to=&every=&agg=&instance="),
            Route::get("/host/series", "The host's series: ?field=&from=&to=&every=&agg="),
            Route::post("/flush", "Write the buffered points now"),
        ]
    }

    fn init(host: Host, config: serde_json::Value) -> Result<Self, String> {
        let fs = ProcFs::default();
        let hostname = fs.hostname().unwrap_or_else(|| "localhost".into());
        let (config, unknown) = Config::from_json(&config, &hostname)?;
        for key in unknown {
            host.warn(&format!("modules.config.influx.{key}: unknown key, ignored"));
        }
        let client = Client::new(&config);
        let shared = Arc::new(Shared::new(config.buffer_capacity));
        let wake = Arc::new(Notify::new());
        let (flushes, flush_rx) = mpsc::channel(16);
        let (stop, stop_rx) = watch::channel(false);
        // `init` runs inside the module's runtime, so these spawn onto it.
        let collector = Collector {
            host: host.clone(),
            sampler: Sampler::new(fs, config.host_tag.clone()),
            shared: Arc::clone(&shared),
            wake: Arc::clone(&wake),
            interval: config.interval,
        };
        let writer = Writer {
            log: Log::host(host.clone()),
            client: client.clone(),
            shared: Arc::clone(&shared),
            batch_size: config.batch_size,
            create_database: config.create_database,
            backoff: Backoff { initial: config.retry_initial, max: config.retry_max },
            database_ready: false,
            reports: FailureReports::default(),
        };
        let tasks =
            vec![tokio::spawn(collector.run(stop_rx.clone())), tokio::spawn(writer.run(wake, flush_rx, stop_rx))];
        host.info(&format!(
            "module-influx {} ready: every {} s to {} database {:?}{}",
            Self::VERSION,
            config.interval.as_secs(),
            config.endpoint.url(),
            config.database,
            config.retention_policy.as_ref().map(|rp| format!(" retention policy {rp:?}")).unwrap_or_default(),
        ));
        Ok(Self { config, client, shared, flushes, stop, tasks: Mutex::new(tasks) })
    }

    async fn handle(&self, req: Request) -> Response {
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/status") => self.status(),
            ("GET", "/series/{service}") => self.series(&req, req.param("service")).await,
            ("GET", "/host/series") => self.series(&req, None).await,
            ("POST", "/flush") => self.flush().await,
            _ => Response::not_found(),
        }
    }

    /// Unhealthy while writes are failing: the points are piling up in the buffer.
    fn health(&self) -> Result<String, String> {
        let s = self.shared.lock();
        let buffered = s.buffer.len();
        match (&s.last_error, s.consecutive_failures) {
            (Some((_, e)), n) if n > 0 => {
                Err(format!("{n} InfluxDB writes failed in a row, {buffered} points buffered: {e}"))
            }
            _ => Ok(format!("{} points written, {buffered} buffered", s.points_written)),
        }
    }

    /// Stops sampling, lets the writer make its last attempt, then waits for both
    /// tasks (bounded: the host gives `shutdown` 5 s).
    fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let deadline = std::time::Instant::now() + FINAL_FLUSH + Duration::from_millis(500);
        for task in &tasks {
            while !task.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            task.abort();
        }
    }
}

impl Influx {
    fn status(&self) -> Response {
        let mut status = self.shared.status();
        status["config"] = self.config.public();
        Response::json(&status)
    }

    async fn series(&self, req: &Request, service: Option<&str>) -> Response {
        let interval_ms = self.config.interval.as_millis() as i64;
        let request = match SeriesRequest::parse(service, |k| req.query_param(k), now_ms(), interval_ms) {
            Ok(r) => r,
            Err(message) => return Response::error(400, "bad_request", &message),
        };
        let q = request.influxql(&self.config.host_tag, self.config.retention_policy.as_deref());
        match self.client.query(&q).await {
            Ok(result) => Response::json(&request.answer(&result)),
            Err(message) => Response::error(502, "influx_unavailable", &message),
        }
    }

    async fn flush(&self) -> Response {
        let (reply, answer) = oneshot::channel();
        if self.flushes.send(reply).await.is_err() {
            return Response::error(503, "unavailable", "the writer has stopped");
        }
        match answer.await {
            Ok(outcome) => Response::json(&outcome),
            Err(_) => Response::error(503, "unavailable", "the writer stopped before answering"),
        }
    }
}

export_module!(Influx);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique() {
        let routes = Influx::routes();
        let mut keys: Vec<_> = routes.iter().map(|r| (r.method, r.path)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), routes.len());
    }
}
