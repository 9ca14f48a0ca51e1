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
use plugin_api::{HandlerResult, Host, Module, ModuleError, Request, Response, Route, Routes, export_module};

use crate::backoff::Backoff;
use crate::collect::Collector;
use crate::config::{Config, Section};
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
    type Config = Section;

    fn routes() -> Routes<Self> {
        Routes::new()
            .add(
                Route::get(
                    "/status",
                    "Writer state: buffered, dropped, written, last error (config without credentials)",
                ),
                Self::status,
            )
            .add(
                Route::get("/series/{service}", "A service's series: ?field=&from=&to=&every=&agg=&instance="),
                Self::service_series,
            )
            .add(Route::get("/host/series", "The host's series: ?field=&from=&to=&every=&agg="), Self::host_series)
            .add(Route::post("/flush", "Write the buffered points now"), Self::flush)
    }

    fn init(host: Host, section: Section) -> Result<Self, ModuleError> {
        let fs = ProcFs::default();
        let hostname = fs.hostname().unwrap_or_else(|| "localhost".into());
        let config = Config::from_section(&section, &hostname).map_err(ModuleError::bad_request)?;
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

/// The handlers.
impl Influx {
    async fn status(self: Arc<Self>, _req: Request) -> HandlerResult {
        let mut status = self.shared.status();
        status["config"] = self.config.public();
        Ok(Response::json(&status))
    }

    async fn service_series(self: Arc<Self>, req: Request) -> HandlerResult {
        self.series(&req, Some(req.required_param("service")?)).await
    }

    async fn host_series(self: Arc<Self>, req: Request) -> HandlerResult {
        self.series(&req, None).await
    }

    async fn flush(self: Arc<Self>, _req: Request) -> HandlerResult {
        let (reply, answer) = oneshot::channel();
        if self.flushes.send(reply).await.is_err() {
            return Err(ModuleError::unavailable("the writer has stopped"));
        }
        match answer.await {
            Ok(outcome) => Ok(Response::json(&outcome)),
            Err(_) => Err(ModuleError::unavailable("the writer stopped before answering")),
        }
    }
}

impl Influx {
    async fn series(&self, req: &Request, service: Option<&str>) -> HandlerResult {
        let interval_ms = self.config.interval.as_millis() as i64;
        let request = SeriesRequest::parse(service, |k| req.query_param(k), now_ms(), interval_ms)
            .map_err(ModuleError::bad_request)?;
        let q = request.influxql(&self.config.host_tag, self.config.retention_policy.as_deref());
        match self.client.query(&q).await {
            Ok(result) => Ok(Response::json(&request.answer(&result))),
            Err(message) => Err(ModuleError::new(502, "influx_unavailable", message)),
        }
    }
}

export_module!(Influx);

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestHost, TestRequest};
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn routes_are_unique() {
        let routes = Influx::routes();
        let mut keys: Vec<_> = routes.list().map(|r| (r.method, r.path)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), routes.list().count());
    }

    /// Nothing listens on port 1: the writer's attempts fail at once, and no test
    /// below waits for them.
    fn config() -> Value {
        json!({"url": "http://127.0.0.1:1", "username": "writer-name", "password": "hunter2-secret", "interval_secs": 3600})
    }

    #[tokio::test(crate = "plugin_api::tokio")]
    async fn status_without_credentials_and_unknown_keys_warned() {
        let host = TestHost::new();
        let mut config = config();
        config["pasword"] = json!("x");
        let influx = host.start::<Influx>(config).unwrap();
        assert!(host.logs().iter().any(|(_, line)| line.contains("pasword")), "{:?}", host.logs());
        let status = influx.call(TestRequest::get("/status")).await;
        assert_eq!(status.status, 200);
        let text = String::from_utf8(status.body).unwrap();
        assert!(!text.contains("hunter2-secret") && !text.contains("writer-name"), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((&body["config"]["authenticated"], &body["config"]["interval_secs"]), (&json!(true), &json!(3600)));
    }

    #[tokio::test(crate = "plugin_api::tokio")]
    async fn bad_series_parameters_are_a_400_and_a_bad_config_refuses_the_load() {
        let host = TestHost::new();
        let influx = host.start::<Influx>(config()).unwrap();
        let bad = influx.call(TestRequest::get("/series/api?field=bogus")).await;
        assert_eq!(bad.status, 400);
        let body: Value = serde_json::from_slice(&bad.body).unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("field must be one of"), "{body}");

        let refused = TestHost::new().start::<Influx>(json!({"interval_secs": 0})).unwrap_err();
        assert!(refused.message.starts_with("modules.config.influx.interval_secs: expected an integer"), "{refused}");
    }
}
