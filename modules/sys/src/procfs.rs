//! Reading Linux `/proc` (and two `/sys` files) without external crates: pure parsers
//! that take the file's text, so each is unit-tested on realistic samples, and thin
//! readers that map a missing or unreadable file to `None` (a field the response
//! leaves null) instead of an error or a panic.
//!
//! Two constants stand in for `sysconf` values, which are out of reach without libc and
//! `unsafe` (both forbidden in modules):
//! - [`CLK_TCK`]: `/proc/<pid>/stat` times are in clock ticks; `USER_HZ` is 100 on every
//!   mainstream Linux architecture (x86, arm, arm64, riscv, ppc, s390).
//! - [`SECTOR_BYTES`]: `/proc/diskstats` and `/sys/class/block/*/size` count 512-byte
//!   sectors whatever the device's real sector size (a kernel convention).
//!
//! Memory figures come from `kB` fields (`/proc/meminfo`, `VmRSS` in
//! `/proc/<pid>/status`), so no page size is assumed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Clock ticks per second for `/proc/<pid>/stat` times (`USER_HZ`, assumed; see above).
pub const CLK_TCK: f64 = 100.0;

/// Bytes per sector in `/proc/diskstats` and `/sys/class/block/*/size`.
pub const SECTOR_BYTES: u64 = 512;

/// Where the files are read from: `/proc` and `/sys` in production; tests point it at a
/// folder that does not exist to check that every reader degrades to "absent".
#[derive(Debug, Clone)]
pub struct ProcFs {
    proc: PathBuf,
    sys: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::at("/proc", "/sys")
    }
}

impl ProcFs {
    pub fn at(proc: impl Into<PathBuf>, sys: impl Into<PathBuf>) -> Self {
        Self { proc: proc.into(), sys: sys.into() }
    }

    fn read(&self, relative: &str) -> Option<String> {
        read(&self.proc.join(relative))
    }

    pub fn stat(&self) -> Option<Stat> {
        self.read("stat").map(|t| parse_stat(&t))
    }

    pub fn loadavg(&self) -> Option<LoadAvg> {
        self.read("loadavg").and_then(|t| parse_loadavg(&t))
    }

    pub fn uptime(&self) -> Option<Uptime> {
        self.read("uptime").and_then(|t| parse_uptime(&t))
    }

    pub fn meminfo(&self) -> Option<MemInfo> {
        self.read("meminfo").map(|t| parse_meminfo(&t))
    }

    /// The mount table as this process sees it (its mount namespace).
    pub fn mounts(&self) -> Vec<Mount> {
        self.read("self/mounts").map(|t| parse_mounts(&t)).unwrap_or_default()
    }

    pub fn diskstats(&self) -> Vec<DiskStats> {
        self.read("diskstats").map(|t| parse_diskstats(&t)).unwrap_or_default()
    }

    pub fn net_dev(&self) -> Vec<NetDev> {
        self.read("net/dev").map(|t| parse_net_dev(&t)).unwrap_or_default()
    }

    pub fn hostname(&self) -> Option<String> {
        self.read("sys/kernel/hostname").map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
    }

    pub fn kernel_release(&self) -> Option<String> {
        self.read("sys/kernel/osrelease").map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// Every process id currently in `/proc` (numeric entries only).
    pub fn pids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir(&self.proc) else { return Vec::new() };
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).filter(|pid| *pid > 0).collect()
    }

    pub fn proc_stat(&self, pid: i32) -> Option<ProcStat> {
        self.read(&format!("{pid}/stat")).and_then(|t| parse_proc_stat(&t))
    }

    /// Resident set size in bytes (`VmRSS`); `None` for kernel threads, which have no
    /// user memory, and for processes that are gone.
    pub fn proc_rss_bytes(&self, pid: i32) -> Option<u64> {
        self.read(&format!("{pid}/status")).and_then(|t| parse_status_rss(&t))
    }

    /// Open file descriptors: the entries of `/proc/<pid>/fd`. `None` when the
    /// directory cannot be listed (another user's process without privileges, or gone).
    pub fn open_files(&self, pid: i32) -> Option<usize> {
        std::fs::read_dir(self.proc.join(format!("{pid}/fd"))).ok().map(|entries| entries.count())
    }

    /// The capacity of the block device behind `device` (e.g. `/dev/vda1`,
    /// `/dev/mapper/root`), from `/sys/class/block/<name>/size`. Symlinks such as
    /// `/dev/mapper/*` are resolved to their kernel name (`dm-0`) first.
    pub fn block_device_bytes(&self, device: &str) -> Option<u64> {
        if !device.starts_with("/dev/") {
            return None;
        }
        let resolved = std::fs::canonicalize(device).unwrap_or_else(|_| PathBuf::from(device));
        let name = resolved.file_name()?.to_str()?;
        let text = read(&self.sys.join("class/block").join(name).join("size"))?;
        text.trim().parse::<u64>().ok().map(|sectors| sectors * SECTOR_BYTES)
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

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

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
}

pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let device = unescape_octal(f.next()?);
            let mount_point = unescape_octal(f.next()?);
            let fs_type = f.next()?.to_string();
            let read_only = f.next().is_some_and(|opts| opts.split(',').any(|o| o == "ro"));
            Some(Mount { device, mount_point, fs_type, read_only })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in mount fields as `\040`,
/// `\011`, `\012` and `\134`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Filesystems that hold no disk data (kernel views, memory-backed, control mounts),
/// plus `squashfs`, which is read-only images (snaps) that are always full.
pub fn is_pseudo_fs(fs_type: &str) -> bool {
    const PSEUDO: &[&str] = &[
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rootfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    ];
    PSEUDO.contains(&fs_type) || fs_type == "fuse.lxcfs" || fs_type.starts_with("fuse.gvfs")
}

/// One line of `/proc/diskstats` (the fields present since kernel 2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    pub name: String,
    pub reads_completed: u64,
    pub sectors_read: u64,
    pub read_time_ms: u64,
    pub writes_completed: u64,
    pub sectors_written: u64,
    pub write_time_ms: u64,
    pub ios_in_progress: u64,
    pub io_time_ms: u64,
}

pub fn parse_diskstats(text: &str) -> Vec<DiskStats> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            Some(DiskStats {
                name: f.get(2)?.to_string(),
                reads_completed: n(3)?,
                sectors_read: n(5)?,
                read_time_ms: n(6)?,
                writes_completed: n(7)?,
                sectors_written: n(9)?,
                write_time_ms: n(10)?,
                ios_in_progress: n(11)?,
                io_time_ms: n(12)?,
            })
        })
        .collect()
}

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

pub fn parse_net_dev(text: &str) -> Vec<NetDev> {
    text.lines()
        .filter_map(|line| {
            // Split at the colon, not on whitespace: old kernels print `eth0:123456`
            // with no space once the byte count gets wide. Header lines have no colon.
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().ok()).collect::<Option<_>>()?;
            if f.len() < 16 {
                return None;
            }
            Some(NetDev {
                name: name.trim().to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

/// The fields of `/proc/<pid>/stat` we use. Times are in clock ticks ([`CLK_TCK`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// The command name, as in `/proc/<pid>/comm` (the same value, at most 15 bytes);
    /// taken from here to save one read per process.
    pub comm: String,
    /// `R` running, `S` sleeping, `D` disk sleep, `Z` zombie, `T` stopped, ...
    pub state: char,
    pub ppid: i32,
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
}

impl ProcStat {
    /// User + system CPU time, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }

    pub fn cpu_secs(&self) -> f64 {
        self.cpu_ticks() as f64 / CLK_TCK
    }

    /// Seconds since the process started, given the system's uptime.
    pub fn uptime_secs(&self, system_uptime_secs: f64) -> f64 {
        (system_uptime_secs - self.start_ticks as f64 / CLK_TCK).max(0.0)
    }
}

pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    // The command name sits in parentheses and may itself contain spaces and `)`, so
    // the fields after it are found from the LAST `)`.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    // rest[0] is field 3 (state) of proc(5); field N is rest[N - 3].
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let n = |field: usize| rest.get(field - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        utime: n(14)?,
        stime: n(15)?,
        threads: n(20)?,
        start_ticks: n(22)?,
    })
}

/// `VmRSS:     2080 kB` from `/proc/<pid>/status`, in bytes.
pub fn parse_status_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
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

    #[test]
    fn mounts_unescape_and_read_only() {
        let m = parse_mounts(
            "proc /proc proc rw,relatime 0 0\n\
             /dev/vda / ext4 rw,relatime,discard 0 0\n\
             /dev/sdb1 /mnt/my\\040disk vfat ro,noatime 0 0\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount { device: "/dev/vda".into(), mount_point: "/".into(), fs_type: "ext4".into(), read_only: false }
        );
        assert_eq!(m[2].mount_point, "/mnt/my disk");
        assert!(m[2].read_only);
        assert!(is_pseudo_fs(&m[0].fs_type));
        assert!(!is_pseudo_fs("ext4") && !is_pseudo_fs("overlay") && !is_pseudo_fs("nfs4"));
        assert!(is_pseudo_fs("cgroup2") && is_pseudo_fs("tmpfs") && is_pseudo_fs("fuse.lxcfs"));
    }

    #[test]
    fn unescape_leaves_other_backslashes_alone() {
        assert_eq!(unescape_octal(r"a\134b\040c"), r"a\b c");
        assert_eq!(unescape_octal(r"a\9b\04"), r"a\9b\04");
    }

    #[test]
    fn diskstats() {
        let d = parse_diskstats(
            "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n \
             254       0 vda 450364 18646 28032770 746250 43352 61619 28848720 82627 0 40260 835182 31446 41 20370544 6049 4728 254\n \
             8       1 sda1 100 0 800 5 7 0 56 3 2 9 8\n",
        );
        assert_eq!(d.len(), 3);
        let vda = &d[1];
        assert_eq!(vda.name, "vda");
        assert_eq!(vda.reads_completed, 450364);
        assert_eq!(vda.sectors_read, 28032770);
        assert_eq!(vda.read_time_ms, 746250);
        assert_eq!(vda.writes_completed, 43352);
        assert_eq!(vda.sectors_written, 28848720);
        assert_eq!(vda.write_time_ms, 82627);
        assert_eq!(vda.ios_in_progress, 0);
        assert_eq!(vda.io_time_ms, 40260);
        // A 2.6-era line with only the 11 classic fields still parses.
        assert_eq!(d[2].ios_in_progress, 2);
        assert_eq!(d[2].io_time_ms, 9);
    }

    #[test]
    fn net_dev_skips_headers_and_handles_glued_counters() {
        let n = parse_net_dev(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
             \x20   lo: 3029017   35357    0    0    0     0          0         0  3029017   35357    0    0    0     0       0          0\n\
             \x20 eth0:132283949    7479    3    4    0     0          0         0   597492    4699    5    6    0     0       0          0\n",
        );
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].name, "lo");
        let eth0 = &n[1];
        assert_eq!(eth0.name, "eth0");
        assert_eq!((eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped), (132283949, 7479, 3, 4));
        assert_eq!((eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped), (597492, 4699, 5, 6));
    }

    #[test]
    fn proc_stat_with_a_hostile_command_name() {
        let line = "31829 (my (evil) prog) S 31818 31818 30517 0 -1 4194304 100 0 0 0 250 130 0 0 20 0 4 0 440234 \
                    3133440 384 18446744073709551615 93980920414208 93980920434089 140726587163168 0 0 0 0 0 0 0 0 \
                    0 17 0 0 0 0 0 0\n";
        let s = parse_proc_stat(line).unwrap();
        assert_eq!(s.pid, 31829);
        assert_eq!(s.comm, "my (evil) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 31818);
        assert_eq!((s.utime, s.stime), (250, 130));
        assert_eq!(s.cpu_ticks(), 380);
        assert_eq!(s.cpu_secs(), 3.8);
        assert_eq!(s.threads, 4);
        assert_eq!(s.start_ticks, 440234);
        assert_eq!(s.uptime_secs(4502.34), 4502.34 - 4402.34);
        // Uptime sampled just before the start tick: never negative.
        assert_eq!(s.uptime_secs(4000.0), 0.0);
        assert_eq!(parse_proc_stat("31829 (cut"), None);
        assert_eq!(parse_proc_stat("31829 (short) S 1 2"), None);
    }

    #[test]
    fn status_rss() {
        let status =
            "Name:\tgrep\nUmask:\t0022\nState:\tR (running)\nVmPeak:\t    6000 kB\nVmRSS:\t    2080 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss(status), Some(2080 * 1024));
        // Kernel threads have no Vm* lines.
        assert_eq!(parse_status_rss("Name:\tkthreadd\nThreads:\t1\n"), None);
    }

    #[test]
    fn a_missing_proc_reads_as_absent_never_a_panic() {
        let fs = ProcFs::at("/nonexistent/proc", "/nonexistent/sys");
        assert!(fs.stat().is_none() && fs.loadavg().is_none() && fs.uptime().is_none() && fs.meminfo().is_none());
        assert!(fs.mounts().is_empty() && fs.diskstats().is_empty() && fs.net_dev().is_empty() && fs.pids().is_empty());
        assert!(fs.proc_stat(1).is_none() && fs.proc_rss_bytes(1).is_none() && fs.open_files(1).is_none());
        assert!(fs.hostname().is_none() && fs.block_device_bytes("/dev/sda").is_none());
    }

    #[test]
    fn the_real_proc_of_this_test_process() {
        let fs = ProcFs::default();
        let me = std::process::id() as i32;
        let stat = fs.proc_stat(me).expect("own /proc/<pid>/stat");
        assert_eq!(stat.pid, me);
        assert!(stat.threads >= 1);
        assert!(fs.proc_rss_bytes(me).expect("own VmRSS") > 0);
        assert!(fs.open_files(me).expect("own fd dir") >= 1);
        assert!(fs.pids().contains(&me));
        assert!(fs.meminfo().and_then(|m| m.total).expect("MemTotal") > 0);
        assert!(!fs.stat().expect("/proc/stat").cores.is_empty());
    }
}
