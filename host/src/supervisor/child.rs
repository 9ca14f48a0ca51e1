//! Spawning and stopping one supervised process. The child is a process-group leader
//! (so stop and kill reach its whole tree), gets the service log as stdout/stderr, and
//! is described by a `ProcessRecord` (pid + start time) for re-adoption.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::groups;
use super::logs::ServiceLog;
use super::procfs;
use crate::store::ProcessRecord;

#[derive(Debug)]
pub struct Spawned {
    pub child: tokio::process::Child,
    pub record: ProcessRecord,
}

/// The one way the supervisor starts anything (services and manage scripts alike):
/// directly (no shell), in `cwd` (created if missing), with exactly `env`, stdin closed,
/// stdout and stderr appended to the service log, as the leader of a new process group
/// (so stop and kill reach its whole tree), and not killed when its handle is dropped.
pub fn group_leader(
    program: impl AsRef<std::ffi::OsStr>,
    cwd: &std::path::Path,
    env: &[(String, String)],
    log: &ServiceLog,
) -> std::io::Result<tokio::process::Command> {
    std::fs::create_dir_all(cwd)?;
    let out = log.open_append()?;
    let err = out.try_clone()?;
    let mut command = tokio::process::Command::new(program);
    command
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false);
    Ok(command)
}

pub fn spawn_instance(
    argv: &[String],
    cwd: &std::path::Path,
    env: &[(String, String)],
    log: &ServiceLog,
    instance: u32,
) -> std::io::Result<Spawned> {
    let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("run_data.command is empty"))?;
    let child = group_leader(program, cwd, env, log)?.args(args).spawn()?;
    let pid =
        child.id().map(|p| p as i32).ok_or_else(|| std::io::Error::other("child exited before its pid was read"))?;
    let start_ticks = procfs::start_ticks(pid).unwrap_or(0);
    Ok(Spawned { child, record: ProcessRecord { instance, pid, pgid: pid, start_ticks } })
}

/// Signals the group, then waits until no member is left, escalating to SIGKILL after
/// `kill_timeout`. Returns whether the graceful signal was enough. The direct child
/// must be reaped by its owner (the instance's waiter task) meanwhile.
pub async fn stop_group(pgid: i32, signal: Signal, kill_timeout: Duration) -> bool {
    let group = Pid::from_raw(pgid);
    if killpg(group, signal).is_err() {
        return true; // no such group: already gone
    }
    let signalled = Instant::now();
    if groups::wait_empty(pgid, signalled, signalled + kill_timeout).await {
        return true;
    }
    let _ = killpg(group, Signal::SIGKILL);
    groups::wait_empty(pgid, signalled, Instant::now() + Duration::from_secs(5)).await;
    false
}
