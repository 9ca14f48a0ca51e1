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

use std::time::{Duration, Instant};

use plugin_api::tokio;
use plugin_api::{Host, Module, Request, Response, Route, export_module};
use serde_json::json;

use crate::services::{ServiceEntry, ServiceReport};
use crate::system::CpuReport;
use proc_stats::ProcFs;

/// How many processes `/system` lists each way, and the most `?limit=` may ask for.
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 100;
const DEFAULT_SAMPLE: Duration = Duration::from_millis(200);

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

    fn routes() -> Vec<Route> {
        vec![
            Route::get("/system", "All system indicators in one object"),
            Route::get("/system/cpu", "CPU busy percent, total and per core (two samples ~200 ms apart)"),
            Route::get("/system/load", "Load averages"),
            Route::get("/system/memory", "RAM and swap"),
            Route::get("/system/disks", "Mounted filesystems and per-device I/O counters"),
            Route::get("/system/network", "Per-interface traffic counters"),
            Route::get("/system/processes", "Top processes by RSS and by CPU time (?limit=N)"),
            Route::get("/services", "Process stats of every registered service"),
            Route::get("/services/{name}", "Process stats of one service"),
        ]
    }

    fn init(host: Host, config: serde_json::Value) -> Result<Self, String> {
        let sample =
            config["sample_ms"].as_u64().map_or(DEFAULT_SAMPLE, |ms| Duration::from_millis(ms.clamp(10, 5000)));
        let fs = ProcFs::default();
        // Not fatal: the module still answers, with the figures it can read.
        if fs.stat().is_none() {
            host.warn("no readable /proc/stat: is /proc mounted? CPU figures will be absent");
        }
        host.info(&format!("module-sys {} ready (CPU sample {} ms)", Self::VERSION, sample.as_millis()));
        Ok(Self { host, fs, sample })
    }

    async fn handle(&self, req: Request) -> Response {
        let result = match req.route.as_str() {
            "/system" => self.system().await,
            "/system/cpu" => self.cpu().await.map_or_else(|| Err(unavailable("/proc/stat")), |c| json_of(&c)),
            "/system/load" => {
                let cores = self.fs.stat().map(|s| s.cores.len());
                match self.fs.loadavg() {
                    Some(l) => json_of(&system::load_report(&l, cores)),
                    None => Err(unavailable("/proc/loadavg")),
                }
            }
            "/system/memory" => match self.fs.meminfo() {
                Some(m) => json_of(&system::memory_report(&m)),
                None => Err(unavailable("/proc/meminfo")),
            },
            "/system/disks" => self.blocking(|fs| system::disks(&fs)).await.and_then(|d| json_of(&d)),
            "/system/network" => json_of(&system::network(self.fs.net_dev())),
            "/system/processes" => match limit(&req) {
                Ok(limit) => self.blocking(move |fs| system::processes(&fs, limit)).await.and_then(|p| json_of(&p)),
                Err(bad) => Err(bad),
            },
            "/services" => {
                let all = services::parse_services(&self.host.services());
                self.service_reports(all)
                    .await
                    .map(|s| Response::json(&json!({ "services": s, "sample_ms": self.sample.as_millis() as u64 })))
            }
            "/services/{name}" => {
                let name = req.param("name").unwrap_or_default();
                let all = services::parse_services(&self.host.services());
                match all.into_iter().find(|s| s.name == name) {
                    Some(entry) => self.service_reports(vec![entry]).await.and_then(|mut s| match s.pop() {
                        Some(one) => json_of(&one),
                        None => Err(Response::error(500, "internal", "no report for the service")),
                    }),
                    None => Err(Response::error(404, "not_found", &format!("no service named {name:?}"))),
                }
            }
            _ => Err(Response::not_found()),
        };
        result.unwrap_or_else(|error| error)
    }
}

impl Sys {
    /// Runs `/proc` reads on the blocking pool (see the crate doc).
    async fn blocking<T, F>(&self, f: F) -> Result<T, Response>
    where
        T: Send + 'static,
        F: FnOnce(ProcFs) -> T + Send + 'static,
    {
        let fs = self.fs.clone();
        tokio::task::spawn_blocking(move || f(fs))
            .await
            .map_err(|e| Response::error(500, "internal", &format!("reading /proc failed: {e}")))
    }

    /// Two `/proc/stat` samples, `sample` apart. The interval reported is the one
    /// measured, which a busy runtime may stretch.
    async fn cpu(&self) -> Option<CpuReport> {
        let before = self.fs.stat()?;
        let started = Instant::now();
        tokio::time::sleep(self.sample).await;
        let after = self.fs.stat()?;
        Some(system::cpu_report(&before, &after, started.elapsed()))
    }

    /// The CPU sample and the rest of the snapshot run at the same time: the answer
    /// takes about one sampling interval, not the interval plus the process scan.
    async fn system(&self) -> Result<Response, Response> {
        let snapshot = self.blocking(|fs| system::snapshot(&fs, DEFAULT_TOP));
        let (cpu, snapshot) = tokio::join!(self.cpu(), snapshot);
        let mut report = snapshot?;
        report.cpu = cpu;
        json_of(&report)
    }

    /// Samples every pid of `entries` twice, one interval apart. With no pid at all
    /// there is nothing to wait for.
    async fn service_reports(&self, entries: Vec<ServiceEntry>) -> Result<Vec<ServiceReport>, Response> {
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

fn json_of<T: serde::Serialize>(value: &T) -> Result<Response, Response> {
    Ok(Response::json(value))
}

fn unavailable(file: &str) -> Response {
    Response::error(503, "unavailable", &format!("cannot read {file} on this host"))
}

/// `?limit=N`: 1..=100, default 10; anything else is a 400 saying what is accepted.
fn limit(req: &Request) -> Result<usize, Response> {
    match req.query_param("limit") {
        None => Ok(DEFAULT_TOP),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
            _ => Err(Response::error(
                400,
                "bad_request",
                &format!("limit must be a number from 1 to {MAX_TOP}, got {v:?}"),
            )),
        },
    }
}

export_module!(Sys);

#[cfg(test)]
mod tests {
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
        let mut paths: Vec<_> = routes.iter().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), routes.len());
        assert!(routes.iter().all(|r| r.method == "GET"));
    }
}
