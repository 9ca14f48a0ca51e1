//! module-sys: system indicators and per-service process stats, read straight from
//! Linux `/proc` through the workspace's `proc-stats` parsers (no system crates: a
//! module depends on `plugin-api` and plain data crates only).
//!
//! Routes, under `/api/module/sys/`:
//!
//! | route | answer |
//! |---|---|
//! | `GET /system` | everything below in one object, plus hostname, kernel, uptime, boot time |
//! | `GET /system/cpu` | total and per-core busy percent over a ~200 ms sample |
//! | `GET /system/load` | 1/5/15-minute load averages, runnable and total tasks |
//! | `GET /system/memory` | RAM and swap: total, available, used (bytes and percent) |
//! | `GET /system/disks` | real mounted filesystems (device capacity) and per-device I/O counters |
//! | `GET /system/network` | per-interface rx/tx bytes, packets, errors, drops |
//! | `GET /system/processes?limit=N` | top N (default 10, at most 100) processes by RSS and by CPU time |
//! | `GET /services` | every registered service: per-instance CPU, RSS, threads, open files, uptime |
//! | `GET /services/{name}` | the same for one service (404 if the host has no such service) |
//!
//! Config (`modules.config.sys` in the host config): `{"sample_ms": 200}`, the interval
//! between the two samples a CPU percentage needs (clamped to 10..=5000).
//!
//! Units are in the field names (`_bytes`, `_percent`, `_secs`, `_ms`). A figure whose
//! source file is missing or unreadable is null (or an empty list), never an error; a
//! single-part route whose source is missing answers 503 `unavailable`. The scans that
//! read hundreds of `/proc` files (processes, service pids, disks) run on the runtime's
//! blocking pool, so they never hold one of the two worker threads that serve every
//! request of this module. Single small files (`stat`, `loadavg`, `meminfo`, `net/dev`)
//! are read inline: the kernel generates them in memory, they never wait on a disk.

mod cpu;
mod services;
mod system;

use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_api::tokio;
use plugin_api::{HandlerResult, Host, Module, ModuleError, Request, Response, Route, Routes, export_module};
use serde::Deserialize;
use serde_json::json;

use crate::services::{ServiceEntry, ServiceReport};
use crate::system::CpuReport;
use proc_stats::ProcFs;

/// How many processes `/system` lists each way, and the most `?limit=` may ask for.
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 100;
const DEFAULT_SAMPLE: Duration = Duration::from_millis(200);

/// `modules.config.sys`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Milliseconds between the two CPU samples (clamped to 10..=5000; default 200).
    pub sample_ms: Option<u64>,
}

#[derive(Debug)]
pub struct Sys {
    host: Host,
    fs: ProcFs,
    sample: Duration,
}

impl Module for Sys {
    const NAME: &'static str = "sys";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "System indicators (CPU, load, memory, disks, network, processes) and per-service process stats";
    type Config = Config;

    fn routes() -> Routes<Self> {
        Routes::new()
            .add(Route::get("/system", "All system indicators in one object"), Self::system)
            .add(
                Route::get("/system/cpu", "CPU busy percent, total and per core (two samples ~200 ms apart)"),
                Self::cpu,
            )
            .add(Route::get("/system/load", "Load averages"), Self::load)
            .add(Route::get("/system/memory", "RAM and swap"), Self::memory)
            .add(Route::get("/system/disks", "Mounted filesystems and per-device I/O counters"), Self::disks)
            .add(Route::get("/system/network", "Per-interface traffic counters"), Self::network)
            .add(Route::get("/system/processes", "Top processes by RSS and by CPU time (?limit=N)"), Self::processes)
            .add(Route::get("/services", "Process stats of every registered service"), Self::services)
            .add(Route::get("/services/{name}", "Process stats of one service"), Self::service)
    }

    fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
        let sample = config.sample_ms.map_or(DEFAULT_SAMPLE, |ms| Duration::from_millis(ms.clamp(10, 5000)));
        let fs = ProcFs::default();
        // Not fatal: the module still answers, with the figures it can read.
        if fs.stat().is_none() {
            host.warn("no readable /proc/stat: is /proc mounted? CPU figures will be absent");
        }
        host.info(&format!("module-sys {} ready (CPU sample {} ms)", Self::VERSION, sample.as_millis()));
        Ok(Self { host, fs, sample })
    }
}

/// The handlers.
impl Sys {
    /// The CPU sample and the rest of the snapshot run at the same time: the answer
    /// takes about one sampling interval, not the interval plus the process scan.
    async fn system(self: Arc<Self>, _req: Request) -> HandlerResult {
        let snapshot = self.blocking(|fs| system::snapshot(&fs, DEFAULT_TOP));
        let (cpu, snapshot) = tokio::join!(self.cpu_sample(), snapshot);
        let mut report = snapshot?;
        report.cpu = cpu;
        Ok(Response::json(&report))
    }

    async fn cpu(self: Arc<Self>, _req: Request) -> HandlerResult {
        let report = self.cpu_sample().await.ok_or_else(|| unavailable("/proc/stat"))?;
        Ok(Response::json(&report))
    }

    async fn load(self: Arc<Self>, _req: Request) -> HandlerResult {
        let cores = self.fs.stat().map(|s| s.cores.len());
        let load = self.fs.loadavg().ok_or_else(|| unavailable("/proc/loadavg"))?;
        Ok(Response::json(&system::load_report(&load, cores)))
    }

    async fn memory(self: Arc<Self>, _req: Request) -> HandlerResult {
        let memory = self.fs.meminfo().ok_or_else(|| unavailable("/proc/meminfo"))?;
        Ok(Response::json(&system::memory_report(&memory)))
    }

    async fn disks(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&self.blocking(|fs| system::disks(&fs)).await?))
    }

    async fn network(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&system::network(self.fs.net_dev())))
    }

    async fn processes(self: Arc<Self>, req: Request) -> HandlerResult {
        let limit = limit(&req)?;
        Ok(Response::json(&self.blocking(move |fs| system::processes(&fs, limit)).await?))
    }

    async fn services(self: Arc<Self>, _req: Request) -> HandlerResult {
        let all = services::service_entries(&self.host.services());
        let reports = self.service_reports(all).await?;
        Ok(Response::json(&json!({ "services": reports, "sample_ms": self.sample.as_millis() as u64 })))
    }

    async fn service(self: Arc<Self>, req: Request) -> HandlerResult {
        let name = req.required_param("name")?;
        let all = services::service_entries(&self.host.services());
        let entry = all
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ModuleError::not_found(format!("no service named {name:?}")))?;
        let one = self
            .service_reports(vec![entry])
            .await?
            .pop()
            .ok_or_else(|| ModuleError::internal("no report for the service"))?;
        Ok(Response::json(&one))
    }
}

impl Sys {
    /// Runs `/proc` reads on the blocking pool (see the crate doc).
    async fn blocking<T, F>(&self, f: F) -> Result<T, ModuleError>
    where
        T: Send + 'static,
        F: FnOnce(ProcFs) -> T + Send + 'static,
    {
        let fs = self.fs.clone();
        tokio::task::spawn_blocking(move || f(fs))
            .await
            .map_err(|e| ModuleError::internal(format!("reading /proc failed: {e}")))
    }

    /// Two `/proc/stat` samples, `sample` apart. The interval reported is the one
    /// measured, which a busy runtime may stretch.
    async fn cpu_sample(&self) -> Option<CpuReport> {
        let before = self.fs.stat()?;
        let started = Instant::now();
        tokio::time::sleep(self.sample).await;
        let after = self.fs.stat()?;
        Some(system::cpu_report(&before, &after, started.elapsed()))
    }

    /// Samples every pid of `entries` twice, one interval apart. With no pid at all
    /// there is nothing to wait for.
    async fn service_reports(&self, entries: Vec<ServiceEntry>) -> Result<Vec<ServiceReport>, ModuleError> {
        let pids = services::pids(&entries);
        let first = pids.clone();
        let before = self.blocking(move |fs| services::sample(&fs, &first)).await?;
        if !pids.is_empty() {
            tokio::time::sleep(self.sample).await;
        }
        self.blocking(move |fs| {
            let after = services::sample(&fs, &pids);
            services::reports(&fs, &entries, &before, &after)
        })
        .await
    }
}

fn unavailable(file: &str) -> ModuleError {
    ModuleError::unavailable(format!("cannot read {file} on this host"))
}

/// `?limit=N`: 1..=100, default 10; anything else is a 400 saying what is accepted.
fn limit(req: &Request) -> Result<usize, ModuleError> {
    match req.query_param("limit") {
        None => Ok(DEFAULT_TOP),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
            _ => Err(ModuleError::bad_request(format!("limit must be a number from 1 to {MAX_TOP}, got {v:?}"))),
        },
    }
}

export_module!(Sys);

#[cfg(test)]
mod tests {
    use plugin_api::ServiceInfo;
    use plugin_api::testing::{TestHost, TestRequest};

    use super::*;

    fn with_query(query: &str) -> Request {
        Request { query: query.into(), ..Request::default() }
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(limit(&with_query("")).ok(), Some(DEFAULT_TOP));
        assert_eq!(limit(&with_query("limit=3")).ok(), Some(3));
        assert_eq!(limit(&with_query("x=1&limit=100")).ok(), Some(100));
        for bad in ["limit=0", "limit=101", "limit=ten", "limit=-1"] {
            assert_eq!(limit(&with_query(bad)).err().map(|r| r.status), Some(400), "{bad}");
        }
    }

    #[test]
    fn routes_are_unique_and_all_get() {
        let routes = Sys::routes();
        let mut paths: Vec<_> = routes.list().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), routes.list().count());
        assert!(routes.list().all(|r| r.method == "GET"));
    }

    fn canned() -> Vec<ServiceInfo> {
        vec![ServiceInfo {
            name: "idle".into(),
            state: "stopped".into(),
            mode: "supervised".into(),
            ports: vec![8080],
            ..ServiceInfo::default()
        }]
    }

    #[tokio::test(crate = "plugin_api::tokio")]
    async fn one_service_and_an_unknown_one() {
        let host = TestHost::new();
        host.set_services(canned());
        let sys = host.start::<Sys>(json!({"sample_ms": 10})).unwrap();

        let nope = sys.call(TestRequest::get("/services/nope")).await;
        assert_eq!(nope.status, 404);
        let body: serde_json::Value = serde_json::from_slice(&nope.body).unwrap();
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "no service named \"nope\""}}));

        let idle = sys.call(TestRequest::get("/services/idle")).await;
        assert_eq!(idle.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&idle.body).unwrap();
        assert_eq!((&body["name"], &body["running"], &body["ports"]), (&json!("idle"), &json!(false), &json!([8080])));

        let all = sys.call(TestRequest::get("/services")).await;
        let body: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
        assert_eq!((body["services"].as_array().map(Vec::len), &body["sample_ms"]), (Some(1), &json!(10)));
    }

    #[tokio::test(crate = "plugin_api::tokio")]
    async fn a_bad_limit_is_a_400_and_unknown_config_keys_are_warned() {
        let host = TestHost::new();
        let sys = host.start::<Sys>(json!({"sample_ms": 10, "sampel_ms": 5})).unwrap();
        assert!(host.logs().iter().any(|(_, line)| line.contains("sampel_ms")), "{:?}", host.logs());
        let bad = sys.call(TestRequest::get("/system/processes?limit=0")).await;
        assert_eq!(bad.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&bad.body).unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
    }
}
