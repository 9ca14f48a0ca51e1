//! Per-service process stats behind `GET /services`: the host says which services
//! exist and which pids they run as (`host.services()`); this module reads those pids
//! in `/proc` twice, a sampling interval apart, for CPU percentages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plugin_api::ServiceInfo;
use serde::Serialize;

use crate::cpu::{process_percent, round2};
use proc_stats::{ProcFs, ProcStat};

/// What the host's registry says about one service (the fields we use of its status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub name: String,
    pub state: String,
    pub mode: String,
    pub restarts: u64,
    pub ports: Vec<u64>,
    /// `(instance number, pid)`.
    pub instances: Vec<(u64, Option<i32>)>,
}

/// The host's services (`Host::services`) as this module uses them. The SDK reads the
/// host's answer tolerantly (a field the host does not send is a default), so a newer
/// host with more (or fewer) fields still works; a service without a name is skipped,
/// an empty state is `unknown`, and pids that are not positive count as none.
pub fn service_entries(services: &[ServiceInfo]) -> Vec<ServiceEntry> {
    let pid = |p: Option<i32>| p.filter(|p| *p > 0);
    services
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| {
            let mut instances: Vec<(u64, Option<i32>)> =
                s.instances.iter().map(|inst| (u64::from(inst.instance), pid(inst.pid))).collect();
            // Script-managed services report one pid and no instance list.
            if instances.is_empty()
                && let Some(p) = pid(s.pid)
            {
                instances.push((0, Some(p)));
            }
            ServiceEntry {
                name: s.name.clone(),
                state: if s.state.is_empty() { "unknown".to_string() } else { s.state.clone() },
                mode: s.mode.clone(),
                restarts: u64::from(s.restarts),
                ports: s.ports.iter().map(|&p| u64::from(p)).collect(),
                instances,
            }
        })
        .collect()
}

/// `/proc/<pid>/stat` of many pids at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub stats: HashMap<i32, ProcStat>,
}

pub fn sample(fs: &ProcFs, pids: &[i32]) -> Sample {
    let stats = pids.iter().filter_map(|&pid| Some((pid, fs.proc_stat(pid)?))).collect();
    Sample { at: Instant::now(), stats }
}

pub fn pids(services: &[ServiceEntry]) -> Vec<i32> {
    services.iter().flat_map(|s| s.instances.iter().filter_map(|(_, pid)| *pid)).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub name: String,
    /// The host's view: running, stopped, backoff, errored, ...
    pub state: String,
    pub mode: String,
    /// At least one instance's process exists.
    pub running: bool,
    pub restarts: u64,
    pub ports: Vec<u64>,
    /// Sums over the running instances.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub threads: u64,
    pub open_files: u64,
    pub instances: Vec<InstanceReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceReport {
    pub instance: u64,
    pub pid: Option<i32>,
    pub running: bool,
    /// One letter, as in `ps` (R, S, D, Z, T, ...).
    pub process_state: Option<String>,
    /// User + system time since the process started (100 clock ticks per second).
    pub cpu_secs: Option<f64>,
    /// Over the sampling interval, percent of one core (like `top`: 200 = two cores).
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub threads: Option<u64>,
    /// Null when `/proc/<pid>/fd` is not readable (another user's process).
    pub open_files: Option<u64>,
    pub uptime_secs: Option<f64>,
}

impl InstanceReport {
    fn not_running(instance: u64, pid: Option<i32>) -> Self {
        Self {
            instance,
            pid,
            running: false,
            process_state: None,
            cpu_secs: None,
            cpu_percent: None,
            rss_bytes: None,
            threads: None,
            open_files: None,
            uptime_secs: None,
        }
    }
}

/// What was read about one process besides its two stat samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    pub rss_bytes: Option<u64>,
    pub open_files: Option<u64>,
    pub system_uptime_secs: Option<f64>,
}

/// One instance from its two samples. The process counts as gone when the second
/// sample is missing, or is a zombie (exited, not yet reaped); a different start time
/// in the two samples means the pid was reused in between, so no percentage is given.
pub fn instance_report(
    instance: u64,
    pid: Option<i32>,
    before: Option<&ProcStat>,
    after: Option<&ProcStat>,
    elapsed: Duration,
    extra: Extra,
) -> InstanceReport {
    let Some(now) = after.filter(|s| s.state != 'Z' && s.state != 'X') else {
        return InstanceReport::not_running(instance, pid);
    };
    let cpu_percent = before
        .filter(|b| b.start_ticks == now.start_ticks)
        .and_then(|b| process_percent(b.cpu_ticks(), now.cpu_ticks(), elapsed));
    InstanceReport {
        instance,
        pid,
        running: true,
        process_state: Some(now.state.to_string()),
        cpu_secs: Some(round2(now.cpu_secs())),
        cpu_percent,
        rss_bytes: extra.rss_bytes,
        threads: Some(now.threads),
        open_files: extra.open_files,
        uptime_secs: extra.system_uptime_secs.map(|u| round2(now.uptime_secs(u))),
    }
}

pub fn service_report(entry: &ServiceEntry, instances: Vec<InstanceReport>) -> ServiceReport {
    let live = || instances.iter().filter(|i| i.running);
    ServiceReport {
        name: entry.name.clone(),
        state: entry.state.clone(),
        mode: entry.mode.clone(),
        running: live().next().is_some(),
        restarts: entry.restarts,
        ports: entry.ports.clone(),
        // A fold from +0.0: `Sum` for floats starts at -0.0, which JSON shows as `-0.0`.
        cpu_percent: round2(live().filter_map(|i| i.cpu_percent).fold(0.0, |a, b| a + b)),
        rss_bytes: live().filter_map(|i| i.rss_bytes).sum(),
        threads: live().filter_map(|i| i.threads).sum(),
        open_files: live().filter_map(|i| i.open_files).sum(),
        instances,
    }
}

/// The reports for `services`, given the samples taken before and after the interval.
/// RSS, open files and uptime are read now, at the end of the interval.
pub fn reports(fs: &ProcFs, services: &[ServiceEntry], before: &Sample, after: &Sample) -> Vec<ServiceReport> {
    let elapsed = after.at.saturating_duration_since(before.at);
    let system_uptime_secs = fs.uptime().map(|u| u.uptime_secs);
    services
        .iter()
        .map(|entry| {
            let instances = entry
                .instances
                .iter()
                .map(|&(instance, pid)| {
                    let Some(p) = pid else { return InstanceReport::not_running(instance, None) };
                    let extra = Extra {
                        rss_bytes: fs.proc_rss_bytes(p),
                        open_files: fs.open_files(p).map(|n| n as u64),
                        system_uptime_secs,
                    };
                    instance_report(instance, pid, before.stats.get(&p), after.stats.get(&p), elapsed, extra)
                })
                .collect();
            service_report(entry, instances)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stat(pid: i32, state: char, ticks: u64, start_ticks: u64) -> ProcStat {
        ProcStat {
            pid,
            comm: "sleep".into(),
            state,
            ppid: 1,
            pgid: pid,
            utime: ticks,
            stime: 0,
            threads: 3,
            start_ticks,
        }
    }

    #[test]
    fn parses_the_hosts_service_statuses() {
        // What the host sends, read the way `Host::services` reads it.
        let v = json!([
            {"name": "api", "state": "running", "mode": "supervised", "pid": 41, "ports": [8080], "restarts": 2,
             "instances": [
                 {"instance": 0, "pid": 41, "started_at": "2026-01-01T00:00:00Z", "rss_bytes": 1, "adopted": false},
                 {"instance": 1, "pid": null}
             ]},
            {"name": "legacy", "state": "running", "mode": "script", "pid": 77, "instances": []},
            {"name": "off", "state": "stopped", "mode": "supervised", "pid": null, "instances": []},
            {"state": "nameless"}
        ]);
        let infos: Vec<ServiceInfo> = serde_json::from_value(v).unwrap();
        let s = service_entries(&infos);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].instances, [(0, Some(41)), (1, None)]);
        assert_eq!((s[0].restarts, s[0].ports.as_slice()), (2, &[8080u64][..]));
        assert_eq!(s[1].instances, [(0, Some(77))]);
        assert!(s[2].instances.is_empty());
        assert_eq!(pids(&s), [41, 77]);
        assert!(service_entries(&[]).is_empty());
        let stateless = ServiceInfo { name: "x".into(), ..ServiceInfo::default() };
        assert_eq!(service_entries(&[stateless])[0].state, "unknown");
    }

    #[test]
    fn an_instance_from_two_samples() {
        let extra = Extra { rss_bytes: Some(4096), open_files: Some(3), system_uptime_secs: Some(1000.0) };
        let r = instance_report(
            0,
            Some(41),
            Some(&stat(41, 'S', 100, 90_000)),
            Some(&stat(41, 'R', 110, 90_000)),
            Duration::from_millis(200),
            extra,
        );
        assert!(r.running);
        assert_eq!(r.cpu_percent, Some(50.0));
        assert_eq!(r.cpu_secs, Some(1.1));
        assert_eq!(r.uptime_secs, Some(100.0));
        assert_eq!((r.rss_bytes, r.open_files, r.threads), (Some(4096), Some(3), Some(3)));
        assert_eq!(r.process_state.as_deref(), Some("R"));
    }

    #[test]
    fn gone_zombie_and_reused_pids() {
        let d = Duration::from_millis(200);
        let gone = instance_report(0, Some(41), Some(&stat(41, 'S', 1, 5)), None, d, Extra::default());
        assert!(!gone.running && gone.cpu_secs.is_none());
        let zombie =
            instance_report(0, Some(41), Some(&stat(41, 'S', 1, 5)), Some(&stat(41, 'Z', 1, 5)), d, Extra::default());
        assert!(!zombie.running);
        // The new process's ticks happen to exceed the old one's: still no percentage.
        let reused =
            instance_report(0, Some(41), Some(&stat(41, 'S', 1, 5)), Some(&stat(41, 'S', 30, 6)), d, Extra::default());
        assert!(reused.running);
        assert_eq!(reused.cpu_percent, None);
        assert_eq!(reused.cpu_secs, Some(0.3));
    }

    #[test]
    fn service_totals_count_only_running_instances() {
        let entry = ServiceEntry {
            name: "api".into(),
            state: "running".into(),
            mode: "supervised".into(),
            restarts: 0,
            ports: vec![],
            instances: vec![(0, Some(1)), (1, Some(2)), (2, None)],
        };
        let up = |rss, cpu| InstanceReport {
            running: true,
            rss_bytes: Some(rss),
            cpu_percent: Some(cpu),
            threads: Some(2),
            open_files: Some(5),
            ..InstanceReport::not_running(0, Some(1))
        };
        let r = service_report(&entry, vec![up(100, 1.5), up(200, 2.25), InstanceReport::not_running(2, None)]);
        assert!(r.running);
        assert_eq!((r.rss_bytes, r.cpu_percent, r.threads, r.open_files), (300, 3.75, 4, 10));
        let stopped = service_report(&entry, vec![InstanceReport::not_running(0, None)]);
        assert!(!stopped.running);
        assert_eq!(stopped.rss_bytes, 0);
        assert_eq!(serde_json::to_value(&stopped).unwrap()["cpu_percent"].to_string(), "0.0");
    }
}
