//! The few Linux `/proc` files the sampler reads, parsed into plain numbers. Each
//! parser takes the file's text so it is tested on fixed input; a file that is missing
//! or malformed gives `None` (that figure is left out of the point), never an error.
//! module-sys reads far more of `/proc`; this is deliberately only what is written to
//! InfluxDB (and a module cannot link another module's crate: both would export the
//! same root-module symbol).

use std::path::PathBuf;

/// Clock ticks per second in `/proc/*/stat` (USER_HZ): 100 on every Linux ABI in use.
pub const CLK_TCK: f64 = 100.0;

#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self { root: PathBuf::from("/proc") }
    }
}

impl ProcFs {
    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(rel)).ok()
    }

    pub fn cpu(&self) -> Option<CpuTicks> {
        parse_cpu(&self.read("stat")?)
    }

    pub fn loadavg(&self) -> Option<[f64; 3]> {
        parse_loadavg(&self.read("loadavg")?)
    }

    pub fn meminfo(&self) -> Option<Memory> {
        parse_meminfo(&self.read("meminfo")?)
    }

    pub fn net_totals(&self) -> Option<(u64, u64)> {
        parse_net_dev(&self.read("net/dev")?)
    }

    pub fn uptime_secs(&self) -> Option<f64> {
        self.read("uptime")?.split_whitespace().next()?.parse().ok()
    }

    pub fn hostname(&self) -> Option<String> {
        Some(self.read("sys/kernel/hostname")?.trim().to_string()).filter(|h| !h.is_empty())
    }

    pub fn process(&self, pid: i32) -> Option<ProcessStat> {
        parse_pid_stat(&self.read(&format!("{pid}/stat"))?)
    }

    pub fn rss_bytes(&self, pid: i32) -> Option<u64> {
        parse_vm_rss(&self.read(&format!("{pid}/status"))?)
    }
}

/// The aggregate `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    pub total: u64,
    /// idle + iowait.
    pub idle: u64,
}

impl CpuTicks {
    /// Busy share of the ticks between two samples, in percent; `None` when no tick
    /// elapsed or the counters went backwards.
    pub fn busy_percent_since(&self, before: &CpuTicks) -> Option<f64> {
        let total = self.total.checked_sub(before.total).filter(|t| *t > 0)? as f64;
        let idle = self.idle.checked_sub(before.idle)? as f64;
        Some(round2(((total - idle) / total * 100.0).clamp(0.0, 100.0)))
    }
}

pub fn parse_cpu(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let n: Vec<u64> = line.split_whitespace().skip(1).map_while(|x| x.parse().ok()).collect();
    if n.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal; guest time is already in user.
    let total = n.iter().take(8).sum();
    let idle = n[3] + n.get(4).copied().unwrap_or(0);
    Some(CpuTicks { total, idle })
}

pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let kb = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some(Memory {
        total_bytes: kb("MemTotal")?,
        available_bytes: kb("MemAvailable")?,
        swap_total_bytes: kb("SwapTotal").unwrap_or(0),
        swap_free_bytes: kb("SwapFree").unwrap_or(0),
    })
}

/// Received and sent bytes over every interface but loopback (traffic with the outside).
pub fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut seen = false;
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            seen = true;
            continue;
        }
        let n: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if n.len() >= 9 {
            rx = rx.saturating_add(n[0]);
            tx = tx.saturating_add(n[8]);
            seen = true;
        }
    }
    seen.then_some((rx, tx))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStat {
    pub state: char,
    /// utime + stime.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Since boot; tells a reused pid from the process sampled before.
    pub start_ticks: u64,
}

/// `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn parse_pid_stat(text: &str) -> Option<ProcessStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(ProcessStat {
        state: f.first()?.chars().next()?,
        cpu_ticks: num(14)? + num(15)?,
        threads: num(20)?,
        start_ticks: num(22)?,
    })
}

pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Two decimals: enough for a chart, and the stored numbers stay readable.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_busy_between_two_samples() {
        let a = parse_cpu("cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        let b = parse_cpu("cpu  130 0 60 1050 20 0 0 0 0 0\n").unwrap();
        assert_eq!(b.busy_percent_since(&a), Some(40.0));
        assert_eq!(a.busy_percent_since(&a), None);
        assert_eq!(a.busy_percent_since(&b), None);
        assert_eq!(parse_cpu("cpu0 1 2 3 4\n"), None);
    }

    #[test]
    fn loadavg_meminfo_net() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 1/467 12345\n"), Some([0.52, 0.58, 0.59]));
        assert_eq!(parse_loadavg("x"), None);
        let m = parse_meminfo("MemTotal:  1000 kB\nMemFree: 1 kB\nMemAvailable:   400 kB\nSwapTotal: 0 kB\n").unwrap();
        assert_eq!(
            (m.total_bytes, m.available_bytes, m.swap_total_bytes, m.swap_free_bytes),
            (1_024_000, 409_600, 0, 0)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth1: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), Some((1001, 2002)));
        assert_eq!(parse_net_dev("h\nh\n"), None);
    }

    #[test]
    fn pid_stat_with_a_hostile_command_name() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 3 0 0 20 0 7 0 987654 1000 200 18446744073709551615";
        let s = parse_pid_stat(line).unwrap();
        assert_eq!(s, ProcessStat { state: 'S', cpu_ticks: 15, threads: 7, start_ticks: 987_654 });
        assert_eq!(parse_pid_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn vm_rss() {
        assert_eq!(parse_vm_rss("Name:\tsleep\nVmRSS:\t    1536 kB\n"), Some(1_572_864));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
    }
}
