//! Runs one manage script (`start.sh`, `stop.sh`, …) the seed's way, but safely: the
//! file is executed directly (never through a shell string), with cwd = the service's
//! directory, the script environment contract, output appended to the service log, in
//! its own process group, and killed (the whole group) when it outlives its timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::logs::ServiceLog;

/// How a script run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutcome {
    pub script: String,
    /// Exit code; `None` when killed by a signal or by the timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    /// Start time of the script process (clock ticks after boot): anything it started
    /// is no older than this.
    pub start_ticks: Option<u64>,
}

impl ScriptOutcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// One line for the operator: the seed's status codes mapped to words.
    pub fn describe(&self) -> String {
        let what = match (self.timed_out, self.code) {
            (true, _) => {
                return format!(
                    "{} timed out after {:.1} s; its process group was killed",
                    self.script,
                    self.duration.as_secs_f64()
                );
            }
            (false, Some(0)) => "succeeded",
            (false, Some(101)) => "reported APP_STATUS_ERR (101: not running / status error)",
            (false, Some(102)) => "reported APP_START_ERR (102: start failed)",
            (false, Some(103)) => "reported APP_STOP_ERR (103: stop failed)",
            (false, Some(104)) => "reported APP_EXIT_ERR (104: exited abnormally)",
            (false, Some(105)) => "reported APP_RESTART_ERR (105: restart failed)",
            (false, Some(106)) => "reported APP_KILL_ERR (106: kill failed)",
            (false, Some(107)) => "reported APP_RUN_ERR (107: run error)",
            (false, Some(126)) => "is not executable (126): chmod +x it",
            (false, Some(127)) => "could not run a command it needs (127: not found)",
            (false, Some(_)) => "failed",
            (false, None) => "was killed by a signal",
        };
        match self.code {
            Some(code) if code != 0 => format!("{} {what} (exit {code})", self.script),
            _ => format!("{} {what}", self.script),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("{script}: not found in {dir} (check manage_cmd in the model)")]
    Missing { script: String, dir: String },
    #[error("{script}: cannot run: {source}")]
    Spawn {
        script: String,
        #[source]
        source: std::io::Error,
    },
}

pub async fn run_script(
    path: &Path,
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
    log: &ServiceLog,
) -> Result<ScriptOutcome, ScriptError> {
    let script = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !path.is_file() {
        return Err(ScriptError::Missing {
            script,
            dir: path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        });
    }
    let spawn_err = |source| ScriptError::Spawn { script: script.clone(), source };
    let mut command = super::child::group_leader(path, cwd, env, log).map_err(spawn_err)?;
    log.host_line(&format!("running {script}"));
    let started = Instant::now();
    let mut child = command.spawn().map_err(spawn_err)?;
    let pgid = child.id().map(|p| Pid::from_raw(p as i32));
    let start_ticks = child.id().and_then(|p| super::procfs::start_ticks(p as i32));
    let outcome = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status.map_err(spawn_err)?;
            ScriptOutcome { script, code: status.code(), timed_out: false, duration: started.elapsed(), start_ticks }
        }
        Err(_) => {
            // The whole group: a hung script's children go with it. A script that
            // finished normally keeps its group alive (start.sh's daemon lives there).
            if let Some(pgid) = pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            ScriptOutcome { script, code: None, timed_out: true, duration: started.elapsed(), start_ticks }
        }
    };
    log.host_line(&outcome.describe());
    Ok(outcome)
}
