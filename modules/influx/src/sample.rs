//! One sampling round: host indicators from `/proc`, and per-service figures from the
//! host's service list (`host.services()`) plus `/proc/<pid>` for each process, turned
//! into points that all carry the round's timestamp. CPU percentages need two
//! readings of cumulative tick counters, so the [`Sampler`] keeps the previous round's
//! counters; the first round has no CPU figures (the field is left out, not zeroed).
//!
//! `/proc` is read and parsed by the workspace's `proc-stats` crate; this file only
//! picks the figures written and turns counters into percentages.
//!
//! Measurements (see the README for the full table):
//! - `apollo_host` (tag `host`): CPU busy, load, memory, swap, network totals, uptime,
//!   service counts.
//! - `apollo_service` (tags `host`, `service`): state, up, running instances, restarts,
//!   health failures, CPU and RSS summed over the service's live processes.
//! - `apollo_instance` (tags `host`, `service`, `instance`): pid, CPU, RSS, threads of
//!   each live process.

use std::collections::HashMap;
use std::time::Instant;

use proc_stats::{CLK_TCK, CpuTimes, MemInfo, NetDev, ProcFs, ProcStat};

use crate::line::Point;

pub const HOST: &str = "apollo_host";
pub const SERVICE: &str = "apollo_service";
pub const INSTANCE: &str = "apollo_instance";

#[derive(Debug)]
pub struct Sampler {
    fs: ProcFs,
    host_tag: String,
    last_cpu: Option<CpuTimes>,
    /// pid -> (start ticks, CPU ticks, when read) from the previous round.
    last_procs: HashMap<i32, (u64, u64, Instant)>,
}

/// What the host says about one service (the fields written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub name: String,
    pub state: String,
    pub restarts: i64,
    /// `None`: the host's service list (plugin-api's `ServiceInfo`) does not carry it,
    /// and the field is left out of the point rather than written as 0.
    pub health_failures: Option<i64>,
    /// `(instance number, pid)` of instances that have a pid.
    pub pids: Vec<(u64, i32)>,
}

/// The host's service list (`Host::services`, read tolerantly by the SDK: a missing
/// field is a default) as written here: a service without a name is skipped, an empty
/// state is `unknown`, and pids that are not positive count as none.
pub fn services_from(services: &[plugin_api::ServiceInfo]) -> Vec<ServiceInfo> {
    let pid = |p: Option<i32>| p.filter(|p| *p > 0);
    services
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| {
            let mut pids: Vec<(u64, i32)> =
                s.instances.iter().filter_map(|inst| Some((u64::from(inst.instance), pid(inst.pid)?))).collect();
            // Script-managed services report one pid and no instance list.
            if pids.is_empty()
                && let Some(p) = pid(s.pid)
            {
                pids.push((0, p));
            }
            ServiceInfo {
                name: s.name.clone(),
                state: if s.state.is_empty() { "unknown".to_string() } else { s.state.clone() },
                restarts: i64::from(s.restarts),
                health_failures: Some(i64::from(s.health_failures)),
                pids,
            }
        })
        .collect()
}

impl Sampler {
    pub fn new(fs: ProcFs, host_tag: String) -> Self {
        Self { fs, host_tag, last_cpu: None, last_procs: HashMap::new() }
    }

    /// One round at `time_ms`. Reads files: call it off the async workers.
    pub fn sample(&mut self, services: &[ServiceInfo], time_ms: i64) -> Vec<Point> {
        let now = Instant::now();
        let mut procs = HashMap::new();
        let mut points = Vec::with_capacity(1 + services.len() * 2);
        let mut running = 0;
        for service in services {
            let mut live = Vec::new();
            for &(instance, pid) in &service.pids {
                let Some(stat) = self.fs.proc_stat(pid).filter(|s| s.state != 'Z' && s.state != 'X') else { continue };
                let cpu = self.process_percent(pid, &stat, now);
                procs.insert(pid, (stat.start_ticks, stat.cpu_ticks(), now));
                live.push((instance, pid, stat, cpu, self.fs.proc_rss_bytes(pid)));
            }
            if !live.is_empty() {
                running += 1;
            }
            for (instance, pid, stat, cpu, rss) in &live {
                points.push(
                    Point::new(INSTANCE, time_ms)
                        .tag("host", &self.host_tag)
                        .tag("service", &service.name)
                        .tag("instance", instance.to_string())
                        .int("pid", Some(i64::from(*pid)))
                        .float("cpu_percent", *cpu)
                        .int("rss_bytes", rss.map(saturating_i64))
                        .int("threads", Some(saturating_i64(stat.threads))),
                );
            }
            // A service with no live process used nothing: 0, so charts show the gap
            // as zero rather than a line drawn across it. A live one whose CPU is not
            // known yet (first reading of a new process) leaves the field out.
            let cpu = if live.is_empty() {
                Some(0.0)
            } else {
                let known: Vec<f64> = live.iter().filter_map(|l| l.3).collect();
                (!known.is_empty()).then(|| round2(known.iter().fold(0.0, |a, b| a + b)))
            };
            points.push(
                Point::new(SERVICE, time_ms)
                    .tag("host", &self.host_tag)
                    .tag("service", &service.name)
                    .string("state", &service.state)
                    .int("up", Some(i64::from(!live.is_empty())))
                    .int("instances_running", Some(live.len() as i64))
                    .int("restarts", Some(service.restarts))
                    .int("health_failures", service.health_failures)
                    .float("cpu_percent", cpu)
                    .int("rss_bytes", Some(saturating_i64(live.iter().filter_map(|l| l.4).sum())))
                    .int("threads", Some(saturating_i64(live.iter().map(|l| l.2.threads).sum()))),
            );
        }
        self.last_procs = procs;
        points.insert(0, self.host_point(time_ms, services.len(), running));
        points
    }

    fn process_percent(&self, pid: i32, stat: &ProcStat, now: Instant) -> Option<f64> {
        let &(start, ticks, at) = self.last_procs.get(&pid)?;
        // Another process under a reused pid: its counter says nothing about this one.
        if start != stat.start_ticks {
            return None;
        }
        let secs = now.saturating_duration_since(at).as_secs_f64();
        let used = stat.cpu_ticks().checked_sub(ticks)? as f64 / CLK_TCK as f64;
        (secs > 0.0).then(|| round2(used / secs * 100.0))
    }

    fn host_point(&mut self, time_ms: i64, services: usize, running: usize) -> Point {
        let cpu = self.fs.stat().and_then(|s| s.total);
        let busy = match (cpu, self.last_cpu) {
            (Some(now), Some(before)) => busy_percent(&before, &now),
            _ => None,
        };
        self.last_cpu = cpu;
        let load = self.fs.loadavg();
        let mem = self.fs.meminfo().as_ref().and_then(Memory::from_meminfo);
        let net = outside_traffic(&self.fs.net_dev());
        Point::new(HOST, time_ms)
            .tag("host", &self.host_tag)
            .float("cpu_busy_percent", busy)
            .float("load_1m", load.map(|l| l.one))
            .float("load_5m", load.map(|l| l.five))
            .float("load_15m", load.map(|l| l.fifteen))
            .int("mem_total_bytes", mem.map(|m| saturating_i64(m.total_bytes)))
            .int("mem_available_bytes", mem.map(|m| saturating_i64(m.available_bytes)))
            .float(
                "mem_used_percent",
                mem.filter(|m| m.total_bytes > 0).map(|m| {
                    round2(m.total_bytes.saturating_sub(m.available_bytes) as f64 / m.total_bytes as f64 * 100.0)
                }),
            )
            .int("swap_used_bytes", mem.map(|m| saturating_i64(m.swap_total_bytes.saturating_sub(m.swap_free_bytes))))
            .int("net_rx_bytes", net.map(|n| saturating_i64(n.0)))
            .int("net_tx_bytes", net.map(|n| saturating_i64(n.1)))
            .float("uptime_secs", self.fs.uptime().map(|u| u.uptime_secs))
            // Always present, so every round writes a host point (and counts line up).
            .int("services", Some(services as i64))
            .int("services_running", Some(running as i64))
    }
}

/// Busy share of the CPU ticks between two samples of the aggregate counters, in
/// percent; `None` when no tick elapsed or the counters went backwards.
fn busy_percent(before: &CpuTimes, after: &CpuTimes) -> Option<f64> {
    let total = after.total().checked_sub(before.total()).filter(|t| *t > 0)? as f64;
    let idle = after.idle_all().checked_sub(before.idle_all())? as f64;
    Some(round2(((total - idle) / total * 100.0).clamp(0.0, 100.0)))
}

/// The memory figures written: RAM needs `MemTotal` and `MemAvailable` (kernel 3.14+),
/// or none is written; missing swap lines count as no swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Memory {
    total_bytes: u64,
    available_bytes: u64,
    swap_total_bytes: u64,
    swap_free_bytes: u64,
}

impl Memory {
    fn from_meminfo(m: &MemInfo) -> Option<Self> {
        Some(Self {
            total_bytes: m.total?,
            available_bytes: m.available?,
            swap_total_bytes: m.swap_total.unwrap_or(0),
            swap_free_bytes: m.swap_free.unwrap_or(0),
        })
    }
}

/// Received and sent bytes over every interface but loopback (traffic with the
/// outside); `None` when `/proc/net/dev` listed no interface at all.
fn outside_traffic(interfaces: &[NetDev]) -> Option<(u64, u64)> {
    let outside = interfaces.iter().filter(|i| i.name != "lo");
    let totals =
        outside.fold((0u64, 0u64), |(rx, tx), i| (rx.saturating_add(i.rx_bytes), tx.saturating_add(i.tx_bytes)));
    (!interfaces.is_empty()).then_some(totals)
}

/// Two decimals: enough for a chart, and the stored numbers stay readable.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// InfluxDB integers are signed 64-bit.
fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use proc_stats::{parse_meminfo, parse_net_dev, parse_stat};
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_hosts_service_list() {
        // What the host sends, read the way `Host::services` reads it.
        let v = json!([
            {"name": "api", "state": "running", "mode": "supervised", "pid": 41, "restarts": 2, "health_failures": 1,
             "instances": [{"instance": 0, "pid": 41}, {"instance": 1, "pid": null}, {"instance": 2, "pid": 43}]},
            {"name": "legacy", "state": "running", "pid": 77, "instances": []},
            {"name": "off", "state": "stopped", "pid": null},
            {"state": "nameless"}
        ]);
        let infos: Vec<plugin_api::ServiceInfo> = serde_json::from_value(v).unwrap();
        let s = services_from(&infos);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].pids, [(0, 41), (2, 43)]);
        assert_eq!((s[0].restarts, s[0].health_failures), (2, Some(1)));
        assert_eq!(s[1].pids, [(0, 77)]);
        assert!(s[2].pids.is_empty());
        assert!(services_from(&[]).is_empty());
    }

    #[test]
    fn cpu_busy_between_two_samples() {
        let a = parse_stat("cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 1 2 3 4\n").total.unwrap();
        let b = parse_stat("cpu  130 0 60 1050 20 0 0 0 0 0\n").total.unwrap();
        assert_eq!(busy_percent(&a, &b), Some(40.0));
        assert_eq!(busy_percent(&a, &a), None);
        assert_eq!(busy_percent(&b, &a), None);
        assert_eq!(parse_stat("cpu0 1 2 3 4\n").total, None);
    }

    #[test]
    fn memory_and_outside_traffic() {
        let m = Memory::from_meminfo(&parse_meminfo(
            "MemTotal:  1000 kB\nMemFree: 1 kB\nMemAvailable:   400 kB\nSwapTotal: 0 kB\n",
        ))
        .unwrap();
        assert_eq!(
            (m.total_bytes, m.available_bytes, m.swap_total_bytes, m.swap_free_bytes),
            (1_024_000, 409_600, 0, 0)
        );
        assert_eq!(Memory::from_meminfo(&parse_meminfo("MemFree: 1 kB\n")), None);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth1: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n";
        assert_eq!(outside_traffic(&parse_net_dev(dev)), Some((1001, 2002)));
        assert_eq!(outside_traffic(&parse_net_dev("h\nh\n")), None);
    }

    #[test]
    fn a_round_on_this_machine() {
        let me = std::process::id() as i32;
        let services = vec![
            ServiceInfo {
                name: "me".into(),
                state: "running".into(),
                restarts: 3,
                health_failures: Some(0),
                pids: vec![(0, me)],
            },
            ServiceInfo {
                name: "off".into(),
                state: "stopped".into(),
                restarts: 0,
                health_failures: None,
                pids: vec![],
            },
        ];
        let mut sampler = Sampler::new(ProcFs::default(), "box".into());
        let first = sampler.sample(&services, 1000);
        let lines: Vec<String> = first.iter().filter_map(Point::encode).collect();
        assert_eq!(lines.len(), 4, "host, instance of me, me, off: {lines:#?}");
        assert!(lines[0].starts_with("apollo_host,host=box ") && lines[0].ends_with(" 1000"), "{}", lines[0]);
        assert!(lines[0].contains("services=2i,services_running=1i"), "{}", lines[0]);
        assert!(!lines[0].contains("cpu_busy_percent"), "no CPU figure from one reading: {}", lines[0]);
        assert!(lines[1].starts_with("apollo_instance,host=box,instance=0,service=me "), "{}", lines[1]);
        assert!(lines[2].contains("state=\"running\",up=1i,instances_running=1i,restarts=3i"), "{}", lines[2]);
        assert!(lines[2].contains("health_failures=0i"), "{}", lines[2]);
        assert!(!lines[3].contains("health_failures"), "unknown is left out, not 0: {}", lines[3]);
        assert!(!lines[2].contains("cpu_percent"), "{}", lines[2]);
        assert!(lines[3].contains("up=0i,instances_running=0i") && lines[3].contains("cpu_percent=0,rss_bytes=0i"));
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second: Vec<String> = sampler.sample(&services, 2000).iter().filter_map(Point::encode).collect();
        assert!(second[1].contains("cpu_percent="), "a second reading gives the CPU: {}", second[1]);
        assert!(second[2].contains("cpu_percent="), "{}", second[2]);
    }
}
