//! `resource_limit.max_mem` (bytes) and `max_cpu` (percent of one core) enforced with
//! cgroup v1: `<root>/memory/apollo/<service>/memory.limit_in_bytes` and
//! `<root>/cpu/apollo/<service>/cpu.cfs_quota_us`, with each process moved into them.
//!
//! Limits: the process is moved right after it is spawned, so whatever it forks before
//! that instant escapes (in practice: nothing, a freshly exec'd program has not forked
//! yet). Without a writable cgroup v1 hierarchy (no root, cgroup v2 only) the limits
//! are not enforced and the service's status says so; nothing else changes.

use std::path::{Path, PathBuf};

/// Where cgroup v1 controllers are mounted.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// CFS period for `max_cpu`: quota = percent × period / 100.
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub mem_bytes: u64,
    pub cpu_percent: u64,
}

impl Limits {
    pub fn from_model(limit: &crate::model::ResourceLimit) -> Self {
        Self {
            mem_bytes: u64::try_from(limit.max_mem).unwrap_or(0),
            cpu_percent: u64::try_from(limit.max_cpu).unwrap_or(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.mem_bytes == 0 && self.cpu_percent == 0
    }
}

fn group_dir(root: &Path, controller: &str, service: &str) -> PathBuf {
    root.join(controller).join("apollo").join(service)
}

/// Creates the service's groups with the limits and moves `pid` into them.
pub fn apply(root: &Path, service: &str, pid: i32, limits: Limits) -> Result<(), String> {
    let write = |dir: &Path, file: &str, value: String| {
        std::fs::write(dir.join(file), value).map_err(|e| format!("{}: {e}", dir.join(file).display()))
    };
    if limits.mem_bytes > 0 {
        let dir = group_dir(root, "memory", service);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: {e} (cgroup v1 memory controller not writable)", dir.display()))?;
        write(&dir, "memory.limit_in_bytes", limits.mem_bytes.to_string())?;
        write(&dir, "cgroup.procs", pid.to_string())?;
    }
    if limits.cpu_percent > 0 {
        let dir = group_dir(root, "cpu", service);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: {e} (cgroup v1 cpu controller not writable)", dir.display()))?;
        write(&dir, "cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
        write(&dir, "cpu.cfs_quota_us", (limits.cpu_percent * CPU_PERIOD_US / 100).to_string())?;
        write(&dir, "cgroup.procs", pid.to_string())?;
    }
    Ok(())
}

/// Removes the service's (now empty) groups; a group still holding processes stays.
pub fn remove(root: &Path, service: &str) {
    for controller in ["memory", "cpu"] {
        let _ = std::fs::remove_dir(group_dir(root, controller, service));
    }
}
