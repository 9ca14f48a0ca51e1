//! Machine-wide files: `/proc/stat` (CPU times per core, boot time, process counters),
//! `/proc/loadavg`, `/proc/uptime` and `/proc/meminfo`. Parsers only: they take the
//! file's text; reading is [`crate::ProcFs`]'s.

use std::collections::HashMap;

/// Cumulative CPU time of one `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// All time accounted. `guest` and `guest_nice` are left out on purpose: the kernel
    /// already counts them inside `user` and `nice`.
    pub fn total(&self) -> u64 {
        self.user + self.nice + self.system + self.idle + self.iowait + self.irq + self.softirq + self.steal
    }

    /// Time the CPU was not doing work: idle, and idle waiting for I/O.
    pub fn idle_all(&self) -> u64 {
        self.idle + self.iowait
    }
}

/// `/proc/stat`: the aggregate and per-core CPU times, plus a few system counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub total: Option<CpuTimes>,
    /// `("cpu0", times)`, in file order. Offline cores are absent from the file.
    pub cores: Vec<(String, CpuTimes)>,
    /// Boot time, seconds since the Unix epoch.
    pub boot_time: Option<u64>,
    /// Processes created since boot.
    pub forks: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
}

pub fn parse_stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        let numbers: Vec<u64> = fields.map_while(|f| f.parse().ok()).collect();
        let first = numbers.first().copied();
        match key {
            "cpu" => stat.total = cpu_times(&numbers),
            k if k.starts_with("cpu") && k[3..].chars().all(|c| c.is_ascii_digit()) => {
                if let Some(times) = cpu_times(&numbers) {
                    stat.cores.push((k.to_string(), times));
                }
            }
            "btime" => stat.boot_time = first,
            "processes" => stat.forks = first,
            "procs_running" => stat.procs_running = first,
            "procs_blocked" => stat.procs_blocked = first,
            _ => {}
        }
    }
    stat
}

/// The first four fields exist on every kernel; later ones were added over time
/// (iowait 2.5.41, irq/softirq 2.6.0, steal 2.6.11) and count as zero when missing.
fn cpu_times(n: &[u64]) -> Option<CpuTimes> {
    if n.len() < 4 {
        return None;
    }
    let at = |i: usize| n.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        user: at(0),
        nice: at(1),
        system: at(2),
        idle: at(3),
        iowait: at(4),
        irq: at(5),
        softirq: at(6),
        steal: at(7),
    })
}

/// `/proc/loadavg`: `0.42 0.55 0.62 3/98 31823`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    /// Runnable scheduling entities (tasks) right now.
    pub runnable: u64,
    /// All scheduling entities (processes and threads).
    pub tasks: u64,
}

pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut f = text.split_whitespace();
    let one = f.next()?.parse().ok()?;
    let five = f.next()?.parse().ok()?;
    let fifteen = f.next()?.parse().ok()?;
    let (runnable, tasks) = f.next()?.split_once('/')?;
    Some(LoadAvg { one, five, fifteen, runnable: runnable.parse().ok()?, tasks: tasks.parse().ok()? })
}

/// `/proc/uptime`: seconds since boot, and idle seconds summed over all cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uptime {
    pub uptime_secs: f64,
    pub idle_secs: f64,
}

pub fn parse_uptime(text: &str) -> Option<Uptime> {
    let mut f = text.split_whitespace();
    let uptime_secs = f.next()?.parse().ok()?;
    let idle_secs = f.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    Some(Uptime { uptime_secs, idle_secs })
}

/// `/proc/meminfo`, the fields we report, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub available: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
}

impl MemInfo {
    /// `MemAvailable` (kernel 3.14+), or the classic estimate free + buffers + cached on
    /// older kernels (it overstates: not all cache can be dropped).
    pub fn available_or_estimate(&self) -> Option<u64> {
        self.available.or_else(|| Some(self.free? + self.buffers.unwrap_or(0) + self.cached.unwrap_or(0)))
    }
}

pub fn parse_meminfo(text: &str) -> MemInfo {
    let fields: HashMap<&str, u64> = text
        .lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut parts = rest.split_whitespace();
            let value: u64 = parts.next()?.parse().ok()?;
            // Every size field is in kB (KiB in fact); unit-less ones are counts.
            let bytes = if parts.next() == Some("kB") { value * 1024 } else { value };
            Some((key.trim(), bytes))
        })
        .collect();
    let get = |k: &str| fields.get(k).copied();
    MemInfo {
        total: get("MemTotal"),
        free: get("MemFree"),
        available: get("MemAvailable"),
        buffers: get("Buffers"),
        cached: get("Cached"),
        swap_total: get("SwapTotal"),
        swap_free: get("SwapFree"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  189739 0 40239 643739 2199 0 371 92 0 0
cpu0 85712 0 17393 334403 483 0 91 36 0 0
cpu1 104027 0 22846 309335 1715 0 279 55 0 0
intr 2180707 0 0 0 0 0 0 0
ctxt 3614573
btime 1795362173
processes 96747
procs_running 7
procs_blocked 1
softirq 1102616 0 171985 5 28930 151223 0 481 325279 0 424713
";

    #[test]
    fn stat_gives_the_aggregate_each_core_and_the_counters() {
        let s = parse_stat(STAT);
        let total = s.total.expect("aggregate line");
        assert_eq!(total.user, 189739);
        assert_eq!(total.system, 40239);
        assert_eq!(total.idle, 643739);
        assert_eq!(total.iowait, 2199);
        assert_eq!(total.steal, 92);
        assert_eq!(total.total(), 189739 + 40239 + 643739 + 2199 + 371 + 92);
        assert_eq!(total.idle_all(), 643739 + 2199);
        assert_eq!(s.cores.len(), 2);
        assert_eq!(s.cores[1].0, "cpu1");
        assert_eq!(s.cores[1].1.user, 104027);
        assert_eq!(s.boot_time, Some(1795362173));
        assert_eq!(s.forks, Some(96747));
        assert_eq!(s.procs_running, Some(7));
        assert_eq!(s.procs_blocked, Some(1));
    }

    #[test]
    fn stat_from_an_old_kernel_without_iowait_and_steal() {
        let s = parse_stat("cpu 10 20 30 40\ncpu0 10 20 30 40\n");
        let total = s.total.unwrap();
        assert_eq!((total.iowait, total.steal), (0, 0));
        assert_eq!(total.total(), 100);
        assert_eq!(s.boot_time, None);
        // Too short to be a cpu line at all.
        assert_eq!(parse_stat("cpu 1 2\n").total, None);
    }

    #[test]
    fn loadavg() {
        let l = parse_loadavg("0.42 0.55 0.62 3/98 31823\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (0.42, 0.55, 0.62));
        assert_eq!((l.runnable, l.tasks), (3, 98));
        assert_eq!(parse_loadavg("0.42 0.55\n"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn uptime() {
        let u = parse_uptime("4402.33 6437.39\n").unwrap();
        assert_eq!((u.uptime_secs, u.idle_secs), (4402.33, 6437.39));
        assert_eq!(parse_uptime("garbage"), None);
    }

    #[test]
    fn meminfo_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:       24682416 kB\nMemFree:        21594348 kB\nMemAvailable:   23437832 kB\n\
             Buffers:            4312 kB\nCached:          1997216 kB\nSwapCached:            0 kB\n\
             SwapTotal:       2097148 kB\nSwapFree:        2000000 kB\nHugePages_Total:       0\n",
        );
        assert_eq!(m.total, Some(24682416 * 1024));
        assert_eq!(m.available, Some(23437832 * 1024));
        assert_eq!(m.cached, Some(1997216 * 1024));
        assert_eq!(m.swap_total, Some(2097148 * 1024));
        assert_eq!(m.swap_free, Some(2000000 * 1024));
        assert_eq!(m.available_or_estimate(), m.available);
    }

    #[test]
    fn meminfo_without_mem_available_estimates_it() {
        let m = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n");
        assert_eq!(m.available, None);
        assert_eq!(m.available_or_estimate(), Some(310 * 1024));
        assert_eq!(parse_meminfo("").available_or_estimate(), None);
    }
}
