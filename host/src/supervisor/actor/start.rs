//! Starting a service's processes, inside its actor: claiming ports, spawning the
//! supervised instances (group leaders whose waiters report exits), running the start
//! script and adopting the pid it wrote, pid files, `resource_limit` (cgroup), and the
//! move to `running` or `starting` once processes exist. It does not decide restarts
//! (`exits.rs` does) and does not stop anything but a failed start's leftovers.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Actor, Instance, Note};
use crate::model::HealthKind;
use crate::store::{ProcessRecord, now_ms};
use crate::supervisor::child::spawn_instance;
use crate::supervisor::script::{ScriptError, ScriptOutcome, run_script};
use crate::supervisor::spec::Mode;
use crate::supervisor::state::ServiceState;
use crate::supervisor::{ControlError, ControlResult, cgroup, procfs};

impl Actor {
    pub(super) async fn start(&mut self, by_operator: bool) -> ControlResult {
        if self.run.state.is_active() {
            return Ok(self.status());
        }
        if by_operator {
            self.restarts.backoff.reset();
            self.restarts.count = 0;
            self.run.stop_operation = false;
        } else if self.run.stop_operation {
            return Err(ControlError::OperatorStopped(self.spec.name.clone()));
        }
        // Never forget a live process: whatever is left of an earlier run goes first.
        if self.live_instances() > 0 {
            self.stop_processes(self.spec.stop_signal, self.spec.kill_timeout()).await;
        }
        match self.spec.mode.clone() {
            Mode::Unmanaged => Err(ControlError::Unmanaged(self.spec.name.clone())),
            Mode::Supervised { argv, cwd } => self.start_supervised(&argv, &cwd).await,
            Mode::Script => self.start_script().await,
            Mode::Container => self.start_container().await,
        }
    }

    pub(super) fn claim_ports(&mut self) -> Result<(), ControlError> {
        let name = self.spec.name.clone();
        self.host.ports.release(&name);
        let mut ports = Vec::new();
        if !self.spec.static_ports.is_empty() {
            self.host
                .ports
                .claim_static(&name, self.spec.host_ip, &self.spec.static_ports)
                .map_err(|e| ControlError::Port(e.to_string()))?;
            ports.extend(&self.spec.static_ports);
        }
        if self.spec.random_port {
            ports.push(
                self.host.ports.allocate(&name, self.spec.host_ip).map_err(|e| ControlError::Port(e.to_string()))?,
            );
        }
        self.run.ports = ports;
        Ok(())
    }

    async fn start_supervised(&mut self, argv: &[String], cwd: &Path) -> ControlResult {
        if let Err(e) = self.claim_ports() {
            self.run.message = e.to_string();
            self.log.host_line(&format!("start refused: {e}"));
            self.publish_status();
            return Err(e);
        }
        self.set_state(ServiceState::Starting).await;
        let count = self.spec.instances();
        self.run.instances = (0..count).map(|_| None).collect();
        for i in 0..count {
            if let Err(e) = self.spawn_one(i, argv, cwd) {
                let message = format!("cannot start {:?}: {e}", argv[0]);
                self.log.host_line(&message);
                self.run.message = message.clone();
                self.stop_processes(Signal::SIGKILL, Duration::ZERO).await;
                self.host.ports.release(&self.spec.name);
                self.set_state(ServiceState::Errored).await;
                return Err(ControlError::Failed(message));
            }
        }
        self.after_spawn().await;
        Ok(self.status())
    }

    pub(super) fn spawn_one(&mut self, instance: u32, argv: &[String], cwd: &Path) -> std::io::Result<()> {
        let env = self.spec.env(&self.run.ports, Some(instance));
        let spawned = spawn_instance(argv, cwd, &env, &self.log, instance)?;
        self.generation += 1;
        let generation = self.generation;
        self.apply_limits(spawned.record.pid);
        self.log.host_line(&format!("started instance {instance}: pid {}", spawned.record.pid));
        let notes = self.host.notes.clone();
        let mut child = spawned.child;
        self.host.tracker.spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                // The actor is gone (host shutdown leaving services running): drop the
                // handle without killing; the next host re-adopts the process.
                () = notes.closed() => return,
            };
            let (code, signal) = match status {
                Ok(status) => (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)),
                Err(_) => (None, None),
            };
            let _ = notes.send(Note::Exited { instance, generation, code, signal }).await;
        });
        if self.run.instances.len() <= instance as usize {
            self.run.instances.resize_with(instance as usize + 1, || None);
        }
        self.run.instances[instance as usize] = Some(Instance {
            record: spawned.record,
            started: Instant::now(),
            started_at_ms: now_ms(),
            generation,
            adopted: false,
        });
        self.write_pid_file(instance, spawned.record.pid);
        Ok(())
    }

    /// Supervised instances get pid files too (`<app_pids>/<name>.pid`, and
    /// `<name>-<i>.pid` for further instances), for tools that expect them.
    pub(super) fn pid_file(&self, instance: u32) -> std::path::PathBuf {
        let base = &self.spec.paths.pid_file;
        if instance == 0 { base.clone() } else { base.with_file_name(format!("{}-{instance}.pid", self.spec.name)) }
    }

    fn write_pid_file(&self, instance: u32, pid: i32) {
        let path = self.pid_file(instance);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, format!("{pid}\n")));
        if let Err(e) = written {
            tracing::warn!(service = %self.spec.name, file = %path.display(), "cannot write pid file: {e}");
        }
    }

    /// Puts a process under the model's `resource_limit` (cgroup v1). Failing to is
    /// reported, not fatal: the service runs without the limit.
    fn apply_limits(&mut self, pid: i32) {
        let limits = cgroup::Limits::from_model(&self.spec.model.resource_limit);
        if limits.is_empty() {
            return;
        }
        if let Err(e) = cgroup::apply(Path::new(cgroup::DEFAULT_ROOT), &self.spec.name, pid, limits) {
            let message = format!("resource_limit not enforced: {e}");
            self.log.host_line(&message);
            self.run.message = message;
        }
    }

    /// Watches a process this host did not spawn (adopted, or started by a script).
    pub(super) fn watch_foreign(&mut self, instance: u32, record: ProcessRecord, adopted: bool) {
        self.generation += 1;
        let generation = self.generation;
        let notes = self.host.notes.clone();
        self.host.tracker.spawn(async move {
            while procfs::is_same_process(record.pid, record.start_ticks) {
                tokio::select! {
                    () = notes.closed() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            let _ = notes.send(Note::Exited { instance, generation, code: None, signal: None }).await;
        });
        if self.run.instances.len() <= instance as usize {
            self.run.instances.resize_with(instance as usize + 1, || None);
        }
        self.run.instances[instance as usize] =
            Some(Instance { record, started: Instant::now(), started_at_ms: now_ms(), generation, adopted });
    }

    /// After processes exist: running at once without a health check, else `starting`
    /// until the first probe passes (readiness gates `running`).
    pub(super) async fn after_spawn(&mut self) {
        self.health.failures = 0;
        self.health.last_heartbeat = Instant::now();
        if self.health_kind() == HealthKind::None {
            self.set_state(ServiceState::Running).await;
        } else {
            self.set_state(ServiceState::Starting).await;
            self.start_probe();
        }
    }

    async fn start_script(&mut self) -> ControlResult {
        if let Err(e) = self.claim_ports() {
            self.run.message = e.to_string();
            self.publish_status();
            return Err(e);
        }
        self.set_state(ServiceState::Starting).await;
        // A pid file left from an earlier run must never be mistaken for this one.
        let _ = std::fs::remove_file(&self.spec.paths.pid_file);
        let outcome = self.run_manage_script(&self.spec.model.manage_cmd.start.clone()).await;
        let floor = match outcome {
            Ok(o) if o.success() => o.start_ticks,
            Ok(o) => return self.script_failed(o.describe()).await,
            Err(e) => return self.script_failed(e.to_string()).await,
        };
        self.adopt_script_process(floor).await
    }

    /// Reads the pid `start.sh` (or `restart.sh`) wrote and watches it; without one,
    /// the check script decides whether it runs.
    pub(super) async fn adopt_script_process(&mut self, floor: Option<u64>) -> ControlResult {
        self.run.instances = vec![None];
        match self.read_pid_file(floor) {
            Some(record) => {
                self.apply_limits(record.pid);
                self.watch_foreign(0, record, false);
            }
            None if self.health_kind() == HealthKind::Script => {}
            None => {
                let file = self.spec.paths.pid_file.display().to_string();
                return self.script_failed(format!("the start script succeeded but wrote no live pid to {file}")).await;
            }
        }
        self.after_spawn().await;
        Ok(self.status())
    }

    pub(super) async fn script_failed(&mut self, message: String) -> ControlResult {
        self.run.message = message.clone();
        self.host.ports.release(&self.spec.name);
        self.set_state(ServiceState::Errored).await;
        Err(ControlError::Failed(message))
    }

    /// The pid in `$APP_PID`, trusted only if it is a process that started no earlier
    /// than the script (`floor`) and does not share the host's process group (or
    /// init's): its group is what stop and kill signal.
    fn read_pid_file(&self, floor: Option<u64>) -> Option<ProcessRecord> {
        let text = std::fs::read_to_string(&self.spec.paths.pid_file).ok()?;
        let pid: i32 = text.trim().parse().ok().filter(|p| *p > 1)?;
        let start_ticks = procfs::start_ticks(pid)?;
        if floor.is_some_and(|f| start_ticks < f) {
            tracing::warn!(service = %self.spec.name, pid, "pid file names a process older than the script: ignored");
            return None;
        }
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).ok()?.as_raw();
        if pgid <= 1 || pgid == nix::unistd::getpgrp().as_raw() {
            tracing::warn!(service = %self.spec.name, pid, pgid, "pid file names a process in the host's group: ignored");
            return None;
        }
        Some(ProcessRecord { instance: 0, pid, pgid, start_ticks })
    }

    pub(super) async fn run_manage_script(&self, script: &str) -> Result<ScriptOutcome, ScriptError> {
        // The contract's directories exist before any script runs, so `echo $! > $APP_PID`
        // works as written.
        let paths = &self.spec.paths;
        let dirs = [
            Some(paths.app_root.as_path()),
            Some(paths.tmp_dir.as_path()),
            paths.pid_file.parent(),
            paths.log_file.parent(),
        ];
        for dir in dirs.into_iter().flatten() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::warn!(service = %self.spec.name, dir = %dir.display(), "cannot create: {e}");
            }
        }
        let env = self.spec.env(&self.run.ports, None);
        run_script(
            &self.spec.script_path(script),
            &self.spec.paths.app_root,
            &env,
            self.spec.script_timeout(),
            &self.log,
        )
        .await
    }
}
