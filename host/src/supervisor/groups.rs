//! Whether a signalled process group is gone, cheaply enough for thousands of stops at
//! once. It does not signal anything itself (that is `child.rs`), and reads /proc only
//! through `procfs.rs`.
//!
//! The test that answers almost always is one syscall: `kill(-pgid, 0)` fails with
//! ESRCH once every member has been reaped (the direct child is reaped by its waiter,
//! orphaned members by init). It cannot tell a group that only zombies are left in
//! from a live one: an orphan under an init that never reaps (some containers' pid 1)
//! stays a zombie member for good. Only /proc tells those apart, and a scan of /proc
//! costs one read per process on the machine, so a group that still answers after
//! `ZOMBIE_GRACE` is looked up in one scan shared by every waiting stop, taken at most
//! once per `SCAN_EVERY` on a blocking thread. Per-stop scans made stopping N services
//! cost N² reads (1 000 services: 9 s at 100 % CPU).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

use super::procfs;

/// How often a stop looks at its group while waiting.
const POLL: Duration = Duration::from_millis(20);
/// How long a group may answer signal 0 before /proc is asked whether only zombies are
/// left: a signalled process is normally reaped well within it.
const ZOMBIE_GRACE: Duration = Duration::from_millis(100);
/// The shared /proc scan is at most this old when used.
const SCAN_EVERY: Duration = Duration::from_millis(100);

/// Some process of group `pgid` still exists, zombies included (EPERM: it exists under
/// another user).
pub fn group_exists(pgid: i32) -> bool {
    pgid > 0 && matches!(killpg(Pid::from_raw(pgid), None), Ok(()) | Err(Errno::EPERM))
}

/// Waits until group `pgid`, signalled at `signalled`, has no live (non-zombie) member
/// or `deadline` passes. Returns whether it emptied.
pub async fn wait_empty(pgid: i32, signalled: Instant, deadline: Instant) -> bool {
    loop {
        if !has_live_members(pgid, signalled).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Group `pgid`, signalled at `signalled`, still has a member that is not a zombie.
pub async fn has_live_members(pgid: i32, signalled: Instant) -> bool {
    if !group_exists(pgid) {
        return false;
    }
    if signalled.elapsed() < ZOMBIE_GRACE {
        return true;
    }
    // A failed scan says "still live": the caller keeps waiting, and its deadline
    // escalates as it would for a live group.
    live_groups(signalled).await.is_none_or(|live| live.contains(&pgid))
}

/// The last shared scan: when it started, and the groups with a live member.
struct Scan {
    started: Instant,
    live: Arc<HashSet<i32>>,
}

static LAST_SCAN: tokio::sync::Mutex<Option<Scan>> = tokio::sync::Mutex::const_new(None);

/// Groups with a live member, from a scan that started after `signalled` (an older
/// one could predate the group's processes and miss them) and is at most `SCAN_EVERY`
/// old. Waiters queue on the lock, so one scan serves all who wait meanwhile.
async fn live_groups(signalled: Instant) -> Option<Arc<HashSet<i32>>> {
    let mut last = LAST_SCAN.lock().await;
    if let Some(scan) = last.as_ref().filter(|s| s.started >= signalled && s.started.elapsed() < SCAN_EVERY) {
        return Some(Arc::clone(&scan.live));
    }
    let started = Instant::now();
    let live = Arc::new(tokio::task::spawn_blocking(procfs::groups_with_live_members).await.ok()?);
    *last = Some(Scan { started, live: Arc::clone(&live) });
    Some(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reaped_group_is_gone_at_once_and_a_live_one_is_not() {
        let mut child = tokio::process::Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pgid = child.id().unwrap() as i32;
        assert!(group_exists(pgid));
        let signalled = Instant::now();
        assert!(!wait_empty(pgid, signalled, Instant::now() + Duration::from_millis(300)).await);
        killpg(Pid::from_raw(pgid), nix::sys::signal::Signal::SIGTERM).unwrap();
        child.wait().await.unwrap();
        assert!(!group_exists(pgid));
        assert!(wait_empty(pgid, signalled, Instant::now()).await);
    }

    #[tokio::test]
    async fn a_group_of_zombies_counts_as_empty() {
        // Nobody reaps this child while the test looks: it stays a zombie member.
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("true").process_group(0).spawn().unwrap();
        let pgid = child.id() as i32;
        std::thread::sleep(Duration::from_millis(200));
        assert!(group_exists(pgid), "the zombie still holds its group");
        let signalled = Instant::now();
        assert!(wait_empty(pgid, signalled, Instant::now() + Duration::from_secs(5)).await);
        assert!(signalled.elapsed() >= ZOMBIE_GRACE, "only /proc can tell zombies apart");
        child.wait().unwrap();
    }
}
