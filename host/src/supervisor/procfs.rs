//! What `/proc` says about a process: whether it is alive (zombies count as dead),
//! its start time (to tell a re-used pid from the process we started), its RSS, the
//! CPU time it has used, and which process groups still have live members.
//! Linux only, read-only, and never an error: an unreadable entry means "unknown".

use std::collections::HashSet;

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces and
/// parentheses, so the split is at the last ')').
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Start time in clock ticks after boot (field 22; index 19 after the name).
pub fn start_ticks(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Alive and not a zombie. Signal 0 probes existence (EPERM: it exists under another
/// user); a zombie also answers signal 0, so its state `Z` counts as gone: an exited
/// daemon may wait a while for its reaper.
pub fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    if pid <= 0 || !matches!(kill(nix::unistd::Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM)) {
        return false;
    }
    stat_fields(pid).is_none_or(|f| f.first().map(String::as_str) != Some("Z"))
}

/// Alive and still the process that started at `ticks` (not a recycled pid).
pub fn is_same_process(pid: i32, ticks: u64) -> bool {
    alive(pid) && start_ticks(pid) == Some(ticks)
}

/// Resident set size in bytes (`VmRSS`).
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, 100 on every
/// mainstream Linux architecture (x86, arm, arm64, riscv, ppc, s390); the modules that
/// read `/proc` assume the same.
const USER_HZ: u64 = 100;

/// CPU time used so far (user + system, fields 14 and 15), in milliseconds. A client
/// turns two readings into a CPU percentage (`apollo monit` does).
pub fn cpu_time_ms(pid: i32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) * 1000 / USER_HZ)
}

/// Every process group with a member that is not a zombie: one pass over /proc, for
/// all groups at once (`groups.rs` shares it between every stop in progress).
pub fn groups_with_live_members() -> HashSet<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return HashSet::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            // Field 3 (index 0 after the name) is the state, field 5 (index 2) the group.
            let fields = stat_fields(pid)?;
            (fields.first()? != "Z").then(|| fields.get(2)?.parse().ok()).flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombies_count_as_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Not reaped yet: a zombie once it exits.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!alive(pid));
        child.wait().unwrap();
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        let ticks = start_ticks(me).expect("own start time");
        assert!(is_same_process(me, ticks));
        assert!(!is_same_process(me, ticks + 1));
        assert!(rss_bytes(me).unwrap() > 0);
        // Burn some CPU so the counter must have moved past zero.
        let busy_until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        let mut spins = 0u64;
        while std::time::Instant::now() < busy_until {
            spins = std::hint::black_box(spins + 1);
        }
        assert!(cpu_time_ms(me).unwrap() > 0);
        assert_eq!(cpu_time_ms(-1), None);
        assert!(!alive(0));
        assert!(groups_with_live_members().contains(&nix::unistd::getpgrp().as_raw()));
    }
}
