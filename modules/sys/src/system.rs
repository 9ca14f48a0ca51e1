//! The machine-wide reports behind `GET /system` and its parts: each part is a plain
//! serializable struct, built from parsed `/proc` data by a function that does no I/O
//! (so it is unit-tested), next to the reader that feeds it.

use std::time::Duration;

use serde::Serialize;

use crate::cpu::{CpuUsage, round2, usage};
use proc_stats::{DiskStats, LoadAvg, MemInfo, Mount, NetDev, ProcFs, SECTOR_BYTES, Stat, is_pseudo_fs};

/// `GET /system`: every part, sampled once. A part whose source file is missing is null.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    pub hostname: Option<String>,
    pub kernel_release: Option<String>,
    pub uptime_secs: Option<f64>,
    pub boot_time_unix_secs: Option<u64>,
    pub cpu: Option<CpuReport>,
    pub load: Option<LoadReport>,
    pub memory: Option<MemoryReport>,
    pub disks: DisksReport,
    pub network: NetworkReport,
    pub processes: ProcessesReport,
}

/// `GET /system/cpu`.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// Online cores.
    pub count: usize,
    /// All cores together; null if no tick elapsed between the samples.
    pub total: Option<CpuUsage>,
    pub cores: Vec<CoreUsage>,
    /// The interval between the two `/proc/stat` samples.
    pub sample_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoreUsage {
    pub core: String,
    pub busy_percent: Option<f64>,
}

pub fn cpu_report(before: &Stat, after: &Stat, sample: Duration) -> CpuReport {
    let total = before.total.as_ref().zip(after.total.as_ref()).and_then(|(b, a)| usage(b, a));
    let cores = after
        .cores
        .iter()
        .map(|(core, a)| {
            let earlier = before.cores.iter().find(|(c, _)| c == core);
            CoreUsage {
                core: core.clone(),
                busy_percent: earlier.and_then(|(_, b)| usage(b, a)).map(|u| u.busy_percent),
            }
        })
        .collect();
    CpuReport { count: after.cores.len(), total, cores, sample_ms: sample.as_millis() as u64 }
}

/// `GET /system/load`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub load_1m: f64,
    pub load_5m: f64,
    pub load_15m: f64,
    /// The 1-minute load divided by the core count: above 1 means tasks are queueing.
    pub load_1m_per_core: Option<f64>,
    pub runnable_tasks: u64,
    pub total_tasks: u64,
}

pub fn load_report(load: &LoadAvg, cores: Option<usize>) -> LoadReport {
    LoadReport {
        load_1m: load.one,
        load_5m: load.five,
        load_15m: load.fifteen,
        load_1m_per_core: cores.filter(|c| *c > 0).map(|c| round2(load.one / c as f64)),
        runnable_tasks: load.runnable,
        total_tasks: load.tasks,
    }
}

/// `GET /system/memory`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    pub ram: Option<RamReport>,
    pub swap: Option<SwapReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RamReport {
    pub total_bytes: u64,
    /// What can be handed to programs without swapping (free plus reclaimable cache).
    pub available_bytes: u64,
    /// total - available: the memory programs actually hold.
    pub used_bytes: u64,
    pub used_percent: f64,
    pub free_bytes: Option<u64>,
    pub buffers_bytes: Option<u64>,
    pub cached_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwapReport {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub used_bytes: u64,
    /// 0 when there is no swap.
    pub used_percent: f64,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { round2(part as f64 / whole as f64 * 100.0) }
}

pub fn memory_report(m: &MemInfo) -> MemoryReport {
    let ram = m.total.zip(m.available_or_estimate()).map(|(total, available)| {
        let available = available.min(total);
        RamReport {
            total_bytes: total,
            available_bytes: available,
            used_bytes: total - available,
            used_percent: percent(total - available, total),
            free_bytes: m.free,
            buffers_bytes: m.buffers,
            cached_bytes: m.cached,
        }
    });
    let swap = m.swap_total.zip(m.swap_free).map(|(total, free)| {
        let used = total.saturating_sub(free);
        SwapReport {
            total_bytes: total,
            free_bytes: free.min(total),
            used_bytes: used,
            used_percent: percent(used, total),
        }
    });
    MemoryReport { ram, swap }
}

/// `GET /system/disks`.
///
/// Why there is no used/free space per filesystem: that figure only comes from the
/// `statvfs` system call, which std does not expose, and modules may use neither
/// `unsafe` (to call libc) nor system crates. `/proc` and `/sys` hold no per-filesystem
/// usage. What is reported instead: the real mounted filesystems with the capacity of
/// their block device (`/sys/class/block/<dev>/size`; null for overlay or network
/// filesystems), and per-device I/O counters from `/proc/diskstats`.
#[derive(Debug, Clone, Serialize)]
pub struct DisksReport {
    pub filesystems: Vec<FilesystemReport>,
    pub io: Vec<DiskIoReport>,
    pub note: &'static str,
}

pub const DISKS_NOTE: &str = "used/free space per filesystem needs statvfs, which a module cannot call \
                              without unsafe code; device_size_bytes is the capacity of the block device";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesystemReport {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
    pub device_size_bytes: Option<u64>,
}

/// Real filesystems only, one row per device: a device bind-mounted in several places
/// (containers do this for `/etc/hosts` and friends) is listed at its first mount,
/// which is the one closest to the root in mount order.
pub fn filesystems(mounts: Vec<Mount>, device_size: impl Fn(&str) -> Option<u64>) -> Vec<FilesystemReport> {
    let mut seen = std::collections::HashSet::new();
    mounts
        .into_iter()
        .filter(|m| !is_pseudo_fs(&m.fs_type))
        .filter(|m| seen.insert((m.device.clone(), m.fs_type.clone())))
        .map(|m| FilesystemReport {
            device_size_bytes: device_size(&m.device),
            device: m.device,
            mount_point: m.mount_point,
            fs_type: m.fs_type,
            read_only: m.read_only,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskIoReport {
    pub device: String,
    pub reads_completed: u64,
    pub read_bytes: u64,
    pub read_time_ms: u64,
    pub writes_completed: u64,
    pub written_bytes: u64,
    pub write_time_ms: u64,
    pub ios_in_progress: u64,
    /// Time the device had I/O in flight: its growth over wall time is its utilization.
    pub io_time_ms: u64,
}

/// I/O counters of devices that did any I/O; loop and RAM disks are left out (they
/// mirror files or memory, not disks).
pub fn disk_io(stats: Vec<DiskStats>) -> Vec<DiskIoReport> {
    stats
        .into_iter()
        .filter(|d| !d.name.starts_with("loop") && !d.name.starts_with("ram"))
        .filter(|d| d.reads_completed + d.writes_completed > 0)
        .map(|d| DiskIoReport {
            device: d.name,
            reads_completed: d.reads_completed,
            read_bytes: d.sectors_read * SECTOR_BYTES,
            read_time_ms: d.read_time_ms,
            writes_completed: d.writes_completed,
            written_bytes: d.sectors_written * SECTOR_BYTES,
            write_time_ms: d.write_time_ms,
            ios_in_progress: d.ios_in_progress,
            io_time_ms: d.io_time_ms,
        })
        .collect()
}

pub fn disks(fs: &ProcFs) -> DisksReport {
    DisksReport {
        filesystems: filesystems(fs.mounts(), |dev| fs.block_device_bytes(dev)),
        io: disk_io(fs.diskstats()),
        note: DISKS_NOTE,
    }
}

/// `GET /system/network`: cumulative counters since the interface came up.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    pub interfaces: Vec<InterfaceReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceReport {
    pub interface: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

pub fn network(devs: Vec<NetDev>) -> NetworkReport {
    let interfaces = devs
        .into_iter()
        .map(|d| InterfaceReport {
            interface: d.name,
            rx_bytes: d.rx_bytes,
            rx_packets: d.rx_packets,
            rx_errors: d.rx_errors,
            rx_dropped: d.rx_dropped,
            tx_bytes: d.tx_bytes,
            tx_packets: d.tx_packets,
            tx_errors: d.tx_errors,
            tx_dropped: d.tx_dropped,
        })
        .collect();
    NetworkReport { interfaces }
}

/// `GET /system/processes`: the heaviest processes by memory and by CPU time used
/// since they started.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessesReport {
    /// Processes seen in `/proc`.
    pub count: usize,
    pub limit: usize,
    pub by_rss: Vec<ProcessRow>,
    pub by_cpu_time: Vec<ProcessRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessRow {
    pub pid: i32,
    pub name: String,
    /// One letter, as in `ps`: R running, S sleeping, D disk wait, Z zombie, ...
    pub state: String,
    /// Null for kernel threads (no user memory).
    pub rss_bytes: Option<u64>,
    /// User + system time, assuming 100 clock ticks per second.
    pub cpu_secs: f64,
    pub threads: u64,
    pub uptime_secs: Option<f64>,
}

/// The top `limit` rows each way; ties go to the lower pid so the answer is stable.
pub fn top(rows: Vec<ProcessRow>, limit: usize) -> ProcessesReport {
    let mut by_rss = rows.clone();
    by_rss.sort_by(|a, b| b.rss_bytes.unwrap_or(0).cmp(&a.rss_bytes.unwrap_or(0)).then(a.pid.cmp(&b.pid)));
    by_rss.truncate(limit);
    let count = rows.len();
    let mut by_cpu_time = rows;
    by_cpu_time.sort_by(|a, b| b.cpu_secs.total_cmp(&a.cpu_secs).then(a.pid.cmp(&b.pid)));
    by_cpu_time.truncate(limit);
    ProcessesReport { count, limit, by_rss, by_cpu_time }
}

/// One row per live process. Processes that exit between the listing and the read are
/// skipped, not reported half-filled.
pub fn process_rows(fs: &ProcFs) -> Vec<ProcessRow> {
    let uptime = fs.uptime().map(|u| u.uptime_secs);
    fs.pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = fs.proc_stat(pid)?;
            Some(ProcessRow {
                pid,
                rss_bytes: fs.proc_rss_bytes(pid),
                cpu_secs: round2(stat.cpu_secs()),
                threads: stat.threads,
                uptime_secs: uptime.map(|u| round2(stat.uptime_secs(u))),
                state: stat.state.to_string(),
                name: stat.comm,
            })
        })
        .collect()
}

pub fn processes(fs: &ProcFs, limit: usize) -> ProcessesReport {
    top(process_rows(fs), limit)
}

/// Everything but the CPU part (left null), which needs the two samples the caller
/// takes meanwhile.
pub fn snapshot(fs: &ProcFs, process_limit: usize) -> SystemReport {
    let stat = fs.stat();
    let cores = stat.as_ref().map(|s| s.cores.len());
    SystemReport {
        hostname: fs.hostname(),
        kernel_release: fs.kernel_release(),
        uptime_secs: fs.uptime().map(|u| u.uptime_secs),
        boot_time_unix_secs: stat.and_then(|s| s.boot_time),
        cpu: None,
        load: fs.loadavg().map(|l| load_report(&l, cores)),
        memory: fs.meminfo().map(|m| memory_report(&m)),
        disks: disks(fs),
        network: network(fs.net_dev()),
        processes: processes(fs, process_limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_stats::{parse_diskstats, parse_mounts, parse_stat};

    #[test]
    fn cpu_report_per_core_and_total() {
        let before = parse_stat("cpu 100 0 100 800 0\ncpu0 50 0 50 400 0\ncpu1 50 0 50 400 0\n");
        // cpu0 fully busy for 100 ticks, cpu1 idle for 100 ticks.
        let after = parse_stat("cpu 200 0 100 900 0\ncpu0 150 0 50 400 0\ncpu1 50 0 50 500 0\n");
        let r = cpu_report(&before, &after, Duration::from_millis(200));
        assert_eq!(r.count, 2);
        assert_eq!(r.sample_ms, 200);
        assert_eq!(r.total.unwrap().busy_percent, 50.0);
        assert_eq!(r.cores[0], CoreUsage { core: "cpu0".into(), busy_percent: Some(100.0) });
        assert_eq!(r.cores[1], CoreUsage { core: "cpu1".into(), busy_percent: Some(0.0) });
    }

    #[test]
    fn a_core_that_came_online_between_samples_has_no_percentage() {
        let before = parse_stat("cpu 1 0 1 8 0\ncpu0 1 0 1 8 0\n");
        let after = parse_stat("cpu 2 0 1 18 0\ncpu0 2 0 1 13 0\ncpu1 0 0 0 5 0\n");
        let r = cpu_report(&before, &after, Duration::from_millis(200));
        assert_eq!(r.count, 2);
        assert_eq!(r.cores[1].busy_percent, None);
    }

    #[test]
    fn load_per_core() {
        let l = LoadAvg { one: 3.0, five: 2.0, fifteen: 1.0, runnable: 2, tasks: 300 };
        assert_eq!(load_report(&l, Some(4)).load_1m_per_core, Some(0.75));
        assert_eq!(load_report(&l, None).load_1m_per_core, None);
        assert_eq!(load_report(&l, Some(0)).load_1m_per_core, None);
    }

    #[test]
    fn memory_used_is_total_minus_available() {
        let gib = 1 << 30;
        let m = MemInfo {
            total: Some(8 * gib),
            free: Some(gib),
            available: Some(6 * gib),
            buffers: Some(0),
            cached: Some(4 * gib),
            swap_total: Some(2 * gib),
            swap_free: Some(gib / 2 * 3),
        };
        let r = memory_report(&m);
        let ram = r.ram.unwrap();
        assert_eq!(ram.used_bytes, 2 * gib);
        assert_eq!(ram.used_percent, 25.0);
        let swap = r.swap.unwrap();
        assert_eq!(swap.used_bytes, gib / 2);
        assert_eq!(swap.used_percent, 25.0);
    }

    #[test]
    fn no_swap_is_zero_percent_and_no_meminfo_is_absent() {
        let m = MemInfo {
            total: Some(100),
            available: Some(40),
            swap_total: Some(0),
            swap_free: Some(0),
            ..MemInfo::default()
        };
        let r = memory_report(&m);
        assert_eq!(r.swap.unwrap().used_percent, 0.0);
        assert_eq!(r.ram.unwrap().used_percent, 60.0);
        assert_eq!(memory_report(&MemInfo::default()), MemoryReport { ram: None, swap: None });
    }

    #[test]
    fn filesystems_are_real_and_one_per_device() {
        let mounts = parse_mounts(
            "proc /proc proc rw 0 0\n\
             overlay / overlay rw,lowerdir=/a 0 0\n\
             /dev/vda / ext4 rw 0 0\n\
             tmpfs /dev/shm tmpfs rw 0 0\n\
             /dev/vda /etc/hosts ext4 rw 0 0\n\
             cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n\
             /dev/sdb1 /data xfs ro 0 0\n",
        );
        let fs = filesystems(mounts, |dev| (dev == "/dev/vda").then_some(1 << 34));
        let points: Vec<&str> = fs.iter().map(|f| f.mount_point.as_str()).collect();
        assert_eq!(points, ["/", "/", "/data"]);
        assert_eq!(fs[0].fs_type, "overlay");
        assert_eq!(fs[0].device_size_bytes, None);
        assert_eq!(fs[1].device_size_bytes, Some(1 << 34));
        assert!(fs[2].read_only);
    }

    #[test]
    fn disk_io_in_bytes_without_loop_devices_or_idle_ones() {
        let stats = parse_diskstats(
            "7 0 loop0 5 0 10 0 0 0 0 0 0 0 0\n\
             253 0 zram0 0 0 0 0 0 0 0 0 0 0 0\n\
             254 0 vda 450364 18646 28032770 746250 43352 61619 28848720 82627 0 40260 835182\n",
        );
        let io = disk_io(stats);
        assert_eq!(io.len(), 1);
        assert_eq!(io[0].device, "vda");
        assert_eq!(io[0].read_bytes, 28032770 * 512);
        assert_eq!(io[0].written_bytes, 28848720 * 512);
    }

    fn row(pid: i32, rss: Option<u64>, cpu_secs: f64) -> ProcessRow {
        ProcessRow {
            pid,
            name: format!("p{pid}"),
            state: "S".into(),
            rss_bytes: rss,
            cpu_secs,
            threads: 1,
            uptime_secs: None,
        }
    }

    #[test]
    fn top_by_rss_and_by_cpu_time() {
        let rows = vec![row(1, Some(10), 5.0), row(2, None, 50.0), row(3, Some(300), 0.5), row(4, Some(300), 7.0)];
        let t = top(rows, 2);
        assert_eq!(t.count, 4);
        assert_eq!(t.by_rss.iter().map(|r| r.pid).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(t.by_cpu_time.iter().map(|r| r.pid).collect::<Vec<_>>(), [2, 4]);
        assert!(top(Vec::new(), 10).by_rss.is_empty());
    }

    #[test]
    fn a_missing_proc_gives_absent_parts_not_a_panic() {
        let fs = ProcFs::at("/nonexistent/proc", "/nonexistent/sys");
        let r = snapshot(&fs, 10);
        assert!(r.uptime_secs.is_none() && r.load.is_none() && r.memory.is_none() && r.hostname.is_none());
        assert!(r.disks.filesystems.is_empty() && r.network.interfaces.is_empty() && r.processes.by_rss.is_empty());
    }
}
