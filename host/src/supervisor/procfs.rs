//! The supervisor's questions about a process, answered from the `proc-stats` crate
//! (which does all the reading and parsing of `/proc`): is it alive (zombies count as
//! dead), is it still the process that started at a given time (not a recycled pid),
//! its start time, RSS and CPU time, and which process groups still have live members.
//! Linux only, read-only, and never an error: an unreadable entry means "unknown".

use std::collections::HashSet;

use proc_stats::ProcFs;

/// Start time in clock ticks after boot.
pub fn start_ticks(pid: i32) -> Option<u64> {
    ProcFs::default().proc_stat(pid).map(|s| s.start_ticks)
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
    ProcFs::default().proc_stat(pid).is_none_or(|s| !s.is_zombie())
}

/// Alive and still the process that started at `ticks` (not a recycled pid).
pub fn is_same_process(pid: i32, ticks: u64) -> bool {
    alive(pid) && start_ticks(pid) == Some(ticks)
}

/// Resident set size in bytes (`VmRSS`).
pub fn rss_bytes(pid: i32) -> Option<u64> {
    ProcFs::default().proc_rss_bytes(pid)
}

/// CPU time used so far (user + system), in milliseconds. A client turns two readings
/// into a CPU percentage (`apollo monit` does).
pub fn cpu_time_ms(pid: i32) -> Option<u64> {
    ProcFs::default().proc_stat(pid).map(|s| s.cpu_ms())
}

/// Every process group with a member that is not a zombie: one pass over /proc, for
/// all groups at once (`groups.rs` shares it between every stop in progress).
pub fn groups_with_live_members() -> HashSet<i32> {
    ProcFs::default().groups_with_live_members()
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
