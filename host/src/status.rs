//! A service's status as far as it can be observed without owning its process: the
//! pid recorded in the store (or, for seed models, in the model's `runtime.pid`) is
//! alive → `running`, otherwise `stopped`. The supervisor (process-control issue)
//! replaces this with the states of the processes it owns.

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::Octopus;
use crate::store::RuntimeRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    Running,
    Stopped,
}

/// What is known about one service right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Observed {
    pub status: ServiceStatus,
    pub pid: Option<i64>,
    pub ports: Vec<u16>,
    /// The operator stopped it on purpose.
    pub stop_operation: bool,
}

pub fn observe(model: &Octopus, runtime: Option<&RuntimeRecord>) -> Observed {
    let pid = runtime.and_then(|r| r.pid).or_else(|| model.runtime.pid.trim().parse::<i64>().ok()).filter(|p| *p > 0);
    let alive = pid.is_some_and(pid_alive);
    let ports = match runtime {
        Some(r) if !r.ports.is_empty() => r.ports.clone(),
        _ => model.run_data.ports.iter().filter_map(|p| u16::try_from(*p).ok()).collect(),
    };
    Observed {
        status: if alive { ServiceStatus::Running } else { ServiceStatus::Stopped },
        pid: pid.filter(|_| alive),
        ports,
        stop_operation: runtime.is_some_and(|r| r.stop_operation) || model.runtime.stop_operation,
    }
}

/// Signal 0 probes existence (EPERM: it exists under another user). A zombie also
/// answers signal 0, so `/proc/<pid>/stat` is consulted: state `Z` counts as gone,
/// since an exited daemon may wait a while for its reaper.
pub fn pid_alive(pid: i64) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if !matches!(kill(Pid::from_raw(raw), None), Ok(()) | Err(Errno::EPERM)) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{raw}/stat")) {
        // The state follows the command name, which is in parentheses and may contain
        // spaces, so look after the last ')'.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::pid_alive;

    #[test]
    fn zombies_count_as_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        // Not reaped yet: a zombie once it exits.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!pid_alive(pid));
        child.wait().unwrap();
        assert!(pid_alive(i64::from(std::process::id())));
    }
}
