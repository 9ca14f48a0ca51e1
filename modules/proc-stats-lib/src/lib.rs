//! proc-stats: Linux `/proc` (and two `/sys` files) read into plain numbers, for the
//! host's supervisor (process start times, RSS, CPU time, zombies, live process
//! groups), module-sys and module-influx. A plain library, not a module: it depends on
//! nothing (neither `plugin-api` nor the host), so the module cdylibs link it in as
//! they do any data crate.
//!
//! Pure parsers take a file's text, so each is unit-tested on text captured from real
//! kernels (`system.rs`, `process.rs`, `devices.rs`); the thin [`ProcFs`] readers map a
//! missing or unreadable file to `None` (or an empty list), never an error or a panic.
//! It does not signal processes, keep samples or turn counters into rates: callers
//! decide what a reading means (a CPU percentage needs two of them).
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
//!
//! Why not the `procfs` crate: it is well kept and reads `sysconf`, but it brings
//! `rustix`, `bitflags`, `hex` and `procfs-core` (plus `chrono` and `flate2` by
//! default) into every module `.so` that links it, parses all 52 stat fields of every
//! process where a group scan over thousands of pids needs two, and covers neither the
//! `/sys` block sizes nor the pseudo-filesystem list module-sys uses. The parsers here
//! are a few hundred lines, already tested on captured text.

mod devices;
mod process;
mod system;

pub use devices::{DiskStats, Mount, NetDev, is_pseudo_fs, parse_diskstats, parse_mounts, parse_net_dev};
pub use process::{ProcStat, parse_proc_stat, parse_status_rss};
pub use system::{CpuTimes, LoadAvg, MemInfo, Stat, Uptime, parse_loadavg, parse_meminfo, parse_stat, parse_uptime};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Clock ticks per second for `/proc/<pid>/stat` times (`USER_HZ`, assumed; see above).
pub const CLK_TCK: u64 = 100;

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

    /// Every process group with a member that is not a zombie, in one pass over
    /// `/proc` (one read per process on the machine: share it between callers).
    pub fn groups_with_live_members(&self) -> HashSet<i32> {
        self.pids()
            .into_iter()
            .filter_map(|pid| self.proc_stat(pid))
            .filter(|s| !s.is_zombie())
            .map(|s| s.pgid)
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_proc_reads_as_absent_never_a_panic() {
        let fs = ProcFs::at("/nonexistent/proc", "/nonexistent/sys");
        assert!(fs.stat().is_none() && fs.loadavg().is_none() && fs.uptime().is_none() && fs.meminfo().is_none());
        assert!(fs.mounts().is_empty() && fs.diskstats().is_empty() && fs.net_dev().is_empty() && fs.pids().is_empty());
        assert!(fs.groups_with_live_members().is_empty());
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
        assert!(fs.groups_with_live_members().contains(&stat.pgid));
        assert!(stat.cpu_ms() <= stat.cpu_ticks() * 10);
    }

    #[test]
    fn a_zombie_child_reads_as_a_zombie() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Not reaped yet: a zombie once it exits.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(ProcFs::default().proc_stat(pid).unwrap().is_zombie());
        child.wait().unwrap();
    }
}
