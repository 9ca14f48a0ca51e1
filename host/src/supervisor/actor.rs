//! One task per service owns everything about it: its processes, state, restart timer,
//! health probe and runtime record. Commands arrive on a channel and are handled one
//! at a time, so no two operations on one service ever interleave; process exits and
//! probe results arrive on a second channel, tagged with a generation so that stale
//! ones are ignored. The status is published on a watch channel, so reading it never
//! waits behind a slow script or a stop in progress. Container mode's parts of the
//! actor are in `actor/container.rs`.

mod container;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::Backoff;
use super::cgroup;
use super::child::{spawn_instance, stop_group};
use super::groups;
use super::health::Probe;
use super::logs::ServiceLog;
use super::ports::PortAllocator;
use super::procfs;
use super::script::{ScriptError, ScriptOutcome, run_script};
use super::spec::{Mode, ServiceSpec};
use super::state::{ContainerStatus, InstanceStatus, ServiceState, ServiceStatus};
use super::{ControlError, ControlResult};
use crate::docker::DockerManager;
use crate::events::{Event, EventBus};
use crate::model::{HealthKind, RestartPolicy};
use crate::store::{ProcessRecord, RuntimeRecord, Store, now_ms};

pub enum Command {
    /// `operator`: an operator asked. Other starts (autostart, restart after a host
    /// restart) refuse a service the operator stopped.
    Start {
        operator: bool,
        reply: oneshot::Sender<ControlResult>,
    },
    /// `operator`: recorded as stop_operation (stays stopped across host restarts).
    Stop {
        operator: bool,
        reply: oneshot::Sender<ControlResult>,
    },
    Restart(oneshot::Sender<ControlResult>),
    Kill(oneshot::Sender<ControlResult>),
    Reconfigure(Box<ServiceSpec>),
    /// Watched files changed (`watch.rs`, already debounced): restart once if the
    /// service is meant to run; a stopped service stays stopped.
    FilesChanged {
        changed: Vec<std::path::PathBuf>,
    },
    Heartbeat,
    /// Host shutdown: stop the processes too when `stop_services`, else leave them for
    /// the next host to adopt.
    Shutdown {
        stop_services: bool,
        reply: oneshot::Sender<()>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Start { .. } => "Start",
            Self::Stop { .. } => "Stop",
            Self::Restart(_) => "Restart",
            Self::Kill(_) => "Kill",
            Self::Reconfigure(_) => "Reconfigure",
            Self::FilesChanged { .. } => "FilesChanged",
            Self::Heartbeat => "Heartbeat",
            Self::Shutdown { .. } => "Shutdown",
        })
    }
}

/// What the actor's helpers (waiters, probes) tell it.
#[derive(Debug)]
enum Note {
    Exited { instance: u32, generation: u64, code: Option<i32>, signal: Option<i32> },
    Probe { generation: u64, result: Result<(), String> },
}

#[derive(Debug)]
struct Instance {
    record: ProcessRecord,
    started: Instant,
    started_at_ms: i64,
    generation: u64,
    adopted: bool,
}

/// The handles the supervisor keeps for one actor.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<ServiceStatus>,
}

pub struct Actor {
    spec: ServiceSpec,
    store: Arc<dyn Store>,
    events: EventBus,
    ports: Arc<PortAllocator>,
    log: ServiceLog,
    tracker: TaskTracker,
    notes_tx: mpsc::Sender<Note>,
    status_tx: watch::Sender<ServiceStatus>,
    state: ServiceState,
    instances: Vec<Option<Instance>>,
    /// Instances to start again when the backoff timer fires.
    pending: Vec<u32>,
    restart_at: Option<Instant>,
    backoff: Backoff,
    restarts: u32,
    stop_operation: bool,
    health_failures: u32,
    last_heartbeat: Instant,
    message: String,
    ports_in_effect: Vec<u16>,
    /// Bumped for every spawn and every probe task, so stale notes are ignored.
    generation: u64,
    probe_cancel: Option<CancellationToken>,
    /// The generation of the probe task whose results count (0: none).
    probe_generation: u64,
    /// Instances being replaced on purpose (memory limit, unhealthy): they restart
    /// whatever the policy says.
    replacing: Vec<u32>,
    docker: Arc<DockerManager>,
    /// Container mode: the container of the current (or last) run, and what ends its
    /// waiter and log pump.
    container: Option<ContainerStatus>,
    container_tasks: Option<CancellationToken>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor").field("name", &self.spec.name).field("state", &self.state).finish()
    }
}

/// Starts the actor; `restored` is the runtime record from before a host restart.
pub fn spawn(
    spec: ServiceSpec,
    restored: Option<RuntimeRecord>,
    store: Arc<dyn Store>,
    events: EventBus,
    ports: Arc<PortAllocator>,
    docker: Arc<DockerManager>,
    tracker: &TaskTracker,
) -> ActorHandle {
    let (tx, rx) = mpsc::channel(64);
    let (notes_tx, notes_rx) = mpsc::channel(256);
    let log = ServiceLog::new(&spec.log_dir, &spec.name, spec.supervise.log_max_bytes, spec.supervise.log_keep);
    let backoff = Backoff::new(
        Duration::from_millis(spec.supervise.backoff_initial_ms),
        Duration::from_millis(spec.supervise.backoff_max_ms),
    );
    let initial = ServiceStatus {
        name: spec.name.clone(),
        state: ServiceState::Stopped,
        mode: mode_name(&spec.mode).into(),
        pid: None,
        instances: Vec::new(),
        ports: Vec::new(),
        restarts: restored.as_ref().map(|r| r.restarts).unwrap_or(0),
        stop_operation: restored.as_ref().is_some_and(|r| r.stop_operation),
        health_failures: 0,
        message: String::new(),
        container: None,
    };
    let (status_tx, status_rx) = watch::channel(initial);
    let actor = Actor {
        instances: Vec::new(),
        store,
        events,
        ports,
        log,
        tracker: tracker.clone(),
        notes_tx,
        status_tx,
        state: ServiceState::Stopped,
        pending: Vec::new(),
        restart_at: None,
        backoff,
        restarts: 0,
        stop_operation: false,
        health_failures: 0,
        last_heartbeat: Instant::now(),
        message: String::new(),
        ports_in_effect: Vec::new(),
        generation: 0,
        probe_cancel: None,
        probe_generation: 0,
        replacing: Vec::new(),
        docker,
        container: None,
        container_tasks: None,
        spec,
    };
    // Boxed: an async fn keeps its by-value `self` twice in its future (the argument
    // and the moved local), so a by-value actor cost every registered service its
    // 2 KiB state twice over, for as long as it is registered.
    tracker.spawn(Box::new(actor).run(rx, notes_rx, restored));
    ActorHandle { commands: tx, status: status_rx }
}

fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::Supervised { .. } => "supervised",
        Mode::Script => "script",
        Mode::Container => "container",
        Mode::Unmanaged => "unmanaged",
    }
}

impl Actor {
    async fn run(
        mut self: Box<Self>,
        mut commands: mpsc::Receiver<Command>,
        mut notes: mpsc::Receiver<Note>,
        restored: Option<RuntimeRecord>,
    ) {
        // Every handler's future is boxed for the time it runs: inline, the largest of
        // them (a start, a stop, a container's) would be part of this loop's future, so
        // each idle service would hold that much memory for as long as it is registered.
        Box::pin(self.restore(restored)).await;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(2));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timer = self.restart_at;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown { stop_services, reply }) => {
                        if stop_services && self.state != ServiceState::Stopped {
                            let _ = Box::pin(self.stop(false, false)).await;
                        }
                        self.stop_probe();
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => Box::pin(self.handle(command)).await,
                    None => {
                        self.stop_probe();
                        return;
                    }
                },
                Some(note) = notes.recv() => Box::pin(self.on_note(note)).await,
                () = sleep_until(timer), if timer.is_some() => Box::pin(self.on_restart_timer()).await,
                _ = housekeeping.tick() => Box::pin(self.housekeeping()).await,
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Start { operator, reply } => {
                let result = self.start(operator).await;
                let _ = reply.send(result);
            }
            Command::Stop { operator, reply } => {
                let result = self.stop(operator, false).await;
                let _ = reply.send(result);
            }
            Command::Restart(reply) => {
                let result = self.restart().await;
                let _ = reply.send(result);
            }
            Command::Kill(reply) => {
                let result = self.stop(true, true).await;
                let _ = reply.send(result);
            }
            Command::Reconfigure(spec) => {
                // Takes effect at the next start; a running service is not disturbed.
                self.spec = *spec;
                let s = &self.spec.supervise;
                self.log = ServiceLog::new(&self.spec.log_dir, &self.spec.name, s.log_max_bytes, s.log_keep);
                if self.state.is_active() {
                    self.message = "model changed: applies at the next restart".into();
                    self.publish_status();
                }
            }
            Command::FilesChanged { changed } => self.restart_for_changes(&changed).await,
            Command::Heartbeat => self.last_heartbeat = Instant::now(),
            // Handled in `run`, which must return after it.
            Command::Shutdown { reply, .. } => {
                let _ = reply.send(());
            }
        }
    }

    // ----- starting -------------------------------------------------------------

    async fn start(&mut self, by_operator: bool) -> ControlResult {
        if self.state.is_active() {
            return Ok(self.status());
        }
        if by_operator {
            self.backoff.reset();
            self.restarts = 0;
            self.stop_operation = false;
        } else if self.stop_operation {
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

    fn claim_ports(&mut self) -> Result<(), ControlError> {
        let name = self.spec.name.clone();
        self.ports.release(&name);
        let mut ports = Vec::new();
        if !self.spec.static_ports.is_empty() {
            self.ports
                .claim_static(&name, self.spec.host_ip, &self.spec.static_ports)
                .map_err(|e| ControlError::Port(e.to_string()))?;
            ports.extend(&self.spec.static_ports);
        }
        if self.spec.random_port {
            ports.push(self.ports.allocate(&name, self.spec.host_ip).map_err(|e| ControlError::Port(e.to_string()))?);
        }
        self.ports_in_effect = ports;
        Ok(())
    }

    async fn start_supervised(&mut self, argv: &[String], cwd: &Path) -> ControlResult {
        if let Err(e) = self.claim_ports() {
            self.message = e.to_string();
            self.log.host_line(&format!("start refused: {e}"));
            self.publish_status();
            return Err(e);
        }
        self.set_state(ServiceState::Starting).await;
        let count = self.spec.instances();
        self.instances = (0..count).map(|_| None).collect();
        for i in 0..count {
            if let Err(e) = self.spawn_one(i, argv, cwd) {
                let message = format!("cannot start {:?}: {e}", argv[0]);
                self.log.host_line(&message);
                self.message = message.clone();
                self.stop_processes(Signal::SIGKILL, Duration::ZERO).await;
                self.ports.release(&self.spec.name);
                self.set_state(ServiceState::Errored).await;
                return Err(ControlError::Failed(message));
            }
        }
        self.after_spawn().await;
        Ok(self.status())
    }

    fn spawn_one(&mut self, instance: u32, argv: &[String], cwd: &Path) -> std::io::Result<()> {
        let env = self.spec.env(&self.ports_in_effect, Some(instance));
        let spawned = spawn_instance(argv, cwd, &env, &self.log, instance)?;
        self.generation += 1;
        let generation = self.generation;
        self.apply_limits(spawned.record.pid);
        self.log.host_line(&format!("started instance {instance}: pid {}", spawned.record.pid));
        let notes = self.notes_tx.clone();
        let mut child = spawned.child;
        self.tracker.spawn(async move {
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
        if self.instances.len() <= instance as usize {
            self.instances.resize_with(instance as usize + 1, || None);
        }
        self.instances[instance as usize] = Some(Instance {
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
    fn pid_file(&self, instance: u32) -> std::path::PathBuf {
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
            self.message = message;
        }
    }

    /// Watches a process this host did not spawn (adopted, or started by a script).
    fn watch_foreign(&mut self, instance: u32, record: ProcessRecord, adopted: bool) {
        self.generation += 1;
        let generation = self.generation;
        let notes = self.notes_tx.clone();
        self.tracker.spawn(async move {
            while procfs::is_same_process(record.pid, record.start_ticks) {
                tokio::select! {
                    () = notes.closed() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            let _ = notes.send(Note::Exited { instance, generation, code: None, signal: None }).await;
        });
        if self.instances.len() <= instance as usize {
            self.instances.resize_with(instance as usize + 1, || None);
        }
        self.instances[instance as usize] =
            Some(Instance { record, started: Instant::now(), started_at_ms: now_ms(), generation, adopted });
    }

    /// The health check in force: the model's, or for script services without one,
    /// their `check` script ("check exiting 0 means running").
    fn health_kind(&self) -> HealthKind {
        let check = &self.spec.model.manage_cmd.check;
        let has_check = !check.is_empty() && self.spec.script_path(check).is_file();
        match self.spec.health.kind {
            HealthKind::None if self.spec.mode == Mode::Script && has_check => HealthKind::Script,
            kind => kind,
        }
    }

    /// After processes exist: running at once without a health check, else `starting`
    /// until the first probe passes (readiness gates `running`).
    async fn after_spawn(&mut self) {
        self.health_failures = 0;
        self.last_heartbeat = Instant::now();
        if self.health_kind() == HealthKind::None {
            self.set_state(ServiceState::Running).await;
        } else {
            self.set_state(ServiceState::Starting).await;
            self.start_probe();
        }
    }

    async fn start_script(&mut self) -> ControlResult {
        if let Err(e) = self.claim_ports() {
            self.message = e.to_string();
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
    async fn adopt_script_process(&mut self, floor: Option<u64>) -> ControlResult {
        self.instances = vec![None];
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

    async fn script_failed(&mut self, message: String) -> ControlResult {
        self.message = message.clone();
        self.ports.release(&self.spec.name);
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

    async fn run_manage_script(&self, script: &str) -> Result<ScriptOutcome, ScriptError> {
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
        let env = self.spec.env(&self.ports_in_effect, None);
        run_script(
            &self.spec.script_path(script),
            &self.spec.paths.app_root,
            &env,
            self.spec.script_timeout(),
            &self.log,
        )
        .await
    }

    // ----- stopping -------------------------------------------------------------

    async fn stop(&mut self, operator: bool, force: bool) -> ControlResult {
        self.restart_at = None;
        self.pending.clear();
        self.stop_probe();
        self.health_failures = 0;
        if operator {
            self.stop_operation = true;
        }
        if self.live_instances() == 0 && matches!(self.state, ServiceState::Stopped | ServiceState::Errored) {
            // An exited container is kept for inspection until the service is stopped.
            if self.container.is_some() && self.stop_container(true).await.is_err() {
                return self.container_failed().await;
            }
            self.set_state(ServiceState::Stopped).await;
            return Ok(self.status());
        }
        self.set_state(ServiceState::Stopping).await;
        let (signal, wait) =
            if force { (Signal::SIGKILL, Duration::ZERO) } else { (self.spec.stop_signal, self.spec.kill_timeout()) };
        // A failing or missing stop script does not leave the service running: the
        // recorded process group is signalled whatever the script did, and the script's
        // failure is reported in the status message.
        let mut note = None;
        if self.container.is_some() && self.stop_container(force).await.is_err() {
            return self.container_failed().await;
        }
        if self.spec.mode == Mode::Script {
            let script = if force { &self.spec.model.manage_cmd.force_kill } else { &self.spec.model.manage_cmd.stop };
            if !script.is_empty() {
                match self.run_manage_script(&script.clone()).await {
                    Ok(o) if o.success() => {}
                    Ok(o) => note = Some(o.describe()),
                    Err(e) => note = Some(e.to_string()),
                }
            }
        }
        let graceful = self.stop_processes(signal, wait).await;
        if !graceful {
            self.log.host_line(&format!("did not stop within {:?} of {signal}: killed", self.spec.kill_timeout()));
        }
        for instance in 0..self.spec.instances().max(self.instances.len() as u32) {
            let _ = std::fs::remove_file(self.pid_file(instance));
        }
        self.instances.clear();
        self.ports.release(&self.spec.name);
        self.ports_in_effect.clear();
        cgroup::remove(Path::new(cgroup::DEFAULT_ROOT), &self.spec.name);
        self.message = match note {
            Some(note) => format!("{note}; stopped with {signal} to its process group instead"),
            None if operator => "stopped by operator".into(),
            None => "stopped".into(),
        };
        self.set_state(ServiceState::Stopped).await;
        Ok(self.status())
    }

    /// Signals every instance's group in parallel; `true` when all went gracefully.
    async fn stop_processes(&mut self, signal: Signal, wait: Duration) -> bool {
        if self.container.is_some() {
            return self.stop_container(signal == Signal::SIGKILL).await.is_ok();
        }
        // Never group 0 or 1: that would be the host's own group, or everything.
        let groups: Vec<i32> =
            self.instances.iter().flatten().map(|i| i.record.pgid).filter(|pgid| *pgid > 1).collect();
        // Their exits are expected now: the waiters' notes will find no instance.
        for slot in &mut self.instances {
            *slot = None;
        }
        let stops = groups.into_iter().map(|pgid| stop_group(pgid, signal, wait));
        futures::future::join_all(stops).await.into_iter().all(|graceful| graceful)
    }

    async fn restart(&mut self) -> ControlResult {
        let has_script = !self.spec.model.manage_cmd.restart.is_empty();
        if self.spec.mode == Mode::Script && has_script && self.state.is_active() {
            self.set_state(ServiceState::Stopping).await;
            self.stop_probe();
            let _ = std::fs::remove_file(&self.spec.paths.pid_file);
            // restart.sh replaces the processes itself: forget the old ones, unsignalled.
            for slot in &mut self.instances {
                *slot = None;
            }
            let outcome = self.run_manage_script(&self.spec.model.manage_cmd.restart.clone()).await;
            let floor = match outcome {
                Ok(o) if o.success() => o.start_ticks,
                Ok(o) => return self.script_failed(o.describe()).await,
                Err(e) => return self.script_failed(e.to_string()).await,
            };
            self.stop_operation = false;
            self.restarts += 1;
            return self.adopt_script_process(floor).await;
        }
        if self.state != ServiceState::Stopped {
            self.stop(false, false).await?;
        }
        self.start(true).await
    }

    /// A watch restart counts as a restart (like PM2's), unlike an operator's, which
    /// starts the count afresh. `Starting` is left alone: a service writing its own
    /// files while it comes up must not restart itself in a loop.
    async fn restart_for_changes(&mut self, changed: &[std::path::PathBuf]) {
        let wanted = matches!(
            self.state,
            ServiceState::Running | ServiceState::Unhealthy | ServiceState::Backoff | ServiceState::Errored
        );
        if !wanted || self.stop_operation {
            return;
        }
        let what = match changed {
            [] => "watched files".to_string(),
            [one] => one.display().to_string(),
            [first, rest @ ..] => format!("{} and {} more", first.display(), rest.len()),
        };
        self.log.host_line(&format!("watch: {what} changed; restarting"));
        let restarts = self.restarts;
        match self.restart().await {
            Ok(_) => {
                self.restarts = restarts + 1;
                self.message = format!("restarted by watch: {what} changed");
                self.persist().await;
            }
            Err(e) => self.log.host_line(&format!("watch restart failed: {e}")),
        }
    }

    // ----- exits, restarts, health -----------------------------------------------

    async fn on_note(&mut self, note: Note) {
        match note {
            Note::Exited { instance, generation, code, signal } => {
                self.on_exit(instance, generation, code, signal).await
            }
            Note::Probe { generation, result } => {
                let probing =
                    matches!(self.state, ServiceState::Starting | ServiceState::Running | ServiceState::Unhealthy);
                if generation == self.probe_generation && probing {
                    self.on_probe(result).await;
                }
            }
        }
    }

    async fn on_exit(&mut self, instance: u32, generation: u64, code: Option<i32>, signal: Option<i32>) {
        let Some(slot) = self.instances.get_mut(instance as usize) else { return };
        let Some(current) = slot.as_ref() else { return };
        if current.generation != generation {
            return; // a process we already replaced or stopped
        }
        let ran_for = current.started.elapsed();
        *slot = None;
        let how = match (code, signal) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            (None, None) => "is gone".to_string(),
        };
        self.container_exited(code);
        let planned = self.replacing.contains(&instance);
        self.replacing.retain(|i| *i != instance);
        let message = format!("instance {instance} {how} after {:.1} s", ran_for.as_secs_f64());
        self.log.host_line(&message);
        self.message = message;
        let clean = code.is_some_and(|c| self.spec.supervise.success_exit_codes.contains(&c));
        let restart = planned
            || match self.spec.supervise.restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !clean,
                RestartPolicy::Never => false,
            };
        if !restart {
            // Only when nothing is left and nothing is waiting to restart.
            if self.live_instances() == 0 && self.pending.is_empty() {
                self.stop_probe();
                self.ports.release(&self.spec.name);
                self.set_state(if clean { ServiceState::Stopped } else { ServiceState::Errored }).await;
            } else {
                self.persist().await;
            }
            return;
        }
        // Planned replacements (unhealthy, over memory) go through the same backoff as
        // crashes, so a service that never becomes healthy slows down and finally stops.
        let delay = self.backoff.on_exit(ran_for, Duration::from_millis(self.spec.supervise.min_uptime_ms));
        if self.backoff.unstable_restarts() > self.spec.supervise.max_restarts {
            self.give_up().await;
            return;
        }
        self.schedule_restart(instance, delay);
        self.log.host_line(&format!("restarting in {} ms", delay.as_millis()));
        self.stop_probe();
        self.set_state(ServiceState::Backoff).await;
    }

    fn schedule_restart(&mut self, instance: u32, delay: Duration) {
        if !self.pending.contains(&instance) {
            self.pending.push(instance);
        }
        let at = Instant::now() + delay;
        // One timer for the service: the earliest pending restart wins.
        self.restart_at = Some(self.restart_at.map_or(at, |t| t.min(at)));
    }

    async fn give_up(&mut self) {
        let message = format!(
            "gave up after {} unstable restarts (each run shorter than {} ms); fix it and start it again",
            self.spec.supervise.max_restarts, self.spec.supervise.min_uptime_ms
        );
        self.log.host_line(&message);
        self.message = message;
        self.restart_at = None;
        self.pending.clear();
        self.stop_processes(self.spec.stop_signal, self.spec.kill_timeout()).await;
        self.stop_probe();
        self.ports.release(&self.spec.name);
        self.set_state(ServiceState::Errored).await;
        self.events.publish(Event::RestartLimitReached { name: self.spec.name.clone(), restarts: self.restarts });
    }

    async fn on_restart_timer(&mut self) {
        self.restart_at = None;
        let pending = std::mem::take(&mut self.pending);
        match self.spec.mode.clone() {
            Mode::Supervised { argv, cwd } => {
                for instance in pending {
                    self.restarts += 1;
                    if let Err(e) = self.spawn_one(instance, &argv, &cwd) {
                        // A failed spawn is an unstable run: it counts toward the limit.
                        let message = format!("restart failed: {e}");
                        self.log.host_line(&message);
                        self.message = message;
                        let delay = self
                            .backoff
                            .on_exit(Duration::ZERO, Duration::from_millis(self.spec.supervise.min_uptime_ms));
                        if self.backoff.unstable_restarts() > self.spec.supervise.max_restarts {
                            self.give_up().await;
                            return;
                        }
                        self.schedule_restart(instance, delay);
                    }
                }
                if self.pending.is_empty() {
                    self.after_spawn().await;
                } else {
                    self.persist().await;
                }
            }
            Mode::Container => self.restart_container().await,
            Mode::Script => {
                self.restarts += 1;
                self.set_state(ServiceState::Stopped).await;
                if let Err(e) = self.start(false).await {
                    tracing::warn!(service = %self.spec.name, "scripted restart failed: {e}");
                }
            }
            Mode::Unmanaged => {}
        }
    }

    fn start_probe(&mut self) {
        self.stop_probe();
        let kind = self.health_kind();
        if kind == HealthKind::None {
            return;
        }
        let cancel = CancellationToken::new();
        self.probe_cancel = Some(cancel.clone());
        self.generation += 1;
        self.probe_generation = self.generation;
        let generation = self.generation;
        let script = match self.spec.health.script.as_str() {
            "" if self.spec.model.manage_cmd.check.is_empty() => None,
            "" => Some(self.spec.script_path(&self.spec.model.manage_cmd.check)),
            s => Some(self.spec.script_path(s)),
        };
        let mut check = self.spec.health.clone();
        check.kind = kind;
        let probe = Probe {
            check,
            host: self.spec.host_ip,
            first_port: self.ports_in_effect.first().copied(),
            script,
            cwd: self.spec.paths.app_root.clone(),
            env: self.spec.env(&self.ports_in_effect, None),
            log: self.log.clone(),
        };
        let notes = self.notes_tx.clone();
        let interval = Duration::from_secs(self.spec.health.interval_secs);
        self.tracker.spawn(async move {
            // The first probe soon after start (readiness), then every interval.
            let mut delay = Duration::from_millis(200).min(interval);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                let result = probe.run().await;
                // A probe that finished after its service was stopped reports nothing.
                if cancel.is_cancelled() || notes.send(Note::Probe { generation, result }).await.is_err() {
                    return;
                }
                delay = interval;
            }
        });
    }

    fn stop_probe(&mut self) {
        if let Some(cancel) = self.probe_cancel.take() {
            cancel.cancel();
        }
        // Whatever a finishing probe still sends no longer counts.
        self.probe_generation = 0;
    }

    async fn on_probe(&mut self, mut result: Result<(), String>) {
        if self.spec.health.kind == HealthKind::Ttl {
            let ttl = Duration::from_secs(self.spec.health.ttl_secs);
            if self.last_heartbeat.elapsed() > ttl {
                result = Err(format!(
                    "no heartbeat for {} s (ttl {} s)",
                    self.last_heartbeat.elapsed().as_secs(),
                    ttl.as_secs()
                ));
            }
        }
        match result {
            Ok(()) => {
                self.health_failures = 0;
                if matches!(self.state, ServiceState::Starting | ServiceState::Unhealthy) {
                    self.set_state(ServiceState::Running).await;
                }
            }
            Err(e) => {
                self.health_failures += 1;
                self.message = format!("health check failed ({}x): {e}", self.health_failures);
                if self.health_failures >= self.spec.health.failures_before_unhealthy
                    && self.state != ServiceState::Unhealthy
                {
                    self.log.host_line(&self.message.clone());
                    self.set_state(ServiceState::Unhealthy).await;
                    self.events.publish(Event::HealthFailing { name: self.spec.name.clone(), message: e });
                    if self.spec.supervise.restart != RestartPolicy::Never {
                        self.replace_instances().await;
                    }
                } else {
                    self.publish_status();
                }
            }
        }
    }

    /// Restarts every instance on purpose (unhealthy). Supervised instances are only
    /// signalled here; their exits come back as notes and restart through the backoff.
    async fn replace_instances(&mut self) {
        match self.spec.mode {
            Mode::Supervised { .. } => {
                let groups: Vec<(u32, i32)> =
                    self.instances.iter().flatten().map(|i| (i.record.instance, i.record.pgid)).collect();
                for (instance, pgid) in groups {
                    self.replacing.push(instance);
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), self.spec.stop_signal);
                    self.escalate_later(pgid);
                }
            }
            Mode::Container => self.replace_container(),
            Mode::Script => {
                let _ = self.stop(false, false).await;
                self.restarts += 1;
                if let Err(e) = self.start(false).await {
                    tracing::warn!(service = %self.spec.name, "restart of unhealthy service failed: {e}");
                }
            }
            Mode::Unmanaged => {}
        }
    }

    /// SIGKILL for a group still alive after `kill_timeout`, without blocking the actor.
    fn escalate_later(&self, pgid: i32) {
        let wait = self.spec.kill_timeout();
        let signalled = Instant::now();
        self.tracker.spawn(async move {
            tokio::time::sleep(wait).await;
            if groups::has_live_members(pgid, signalled).await {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
            }
        });
    }

    async fn housekeeping(&mut self) {
        if let Err(e) = self.log.rotate_if_needed() {
            tracing::warn!(service = %self.spec.name, "log rotation failed: {e}");
        }
        let limit = self.spec.supervise.max_memory_restart;
        if limit == 0 || self.state != ServiceState::Running {
            return;
        }
        let over: Vec<(u32, i32, u64)> = self
            .instances
            .iter()
            .flatten()
            .filter(|i| !self.replacing.contains(&i.record.instance) && i.record.pgid > 1)
            .filter_map(|i| {
                procfs::rss_bytes(i.record.pid)
                    .filter(|rss| *rss > limit)
                    .map(|rss| (i.record.instance, i.record.pgid, rss))
            })
            .collect();
        for (instance, pgid, rss) in over {
            self.log.host_line(&format!(
                "instance {instance} uses {rss} bytes > max_memory_restart {limit}: restarting it"
            ));
            self.replacing.push(instance);
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), self.spec.stop_signal);
            self.escalate_later(pgid);
        }
    }

    // ----- host restarts ----------------------------------------------------------

    /// Re-adopts processes that survived a host restart (pid and start time match) and
    /// fills in missing instances. Starting a service that died meanwhile is left to
    /// the supervisor, which does it in dependency order; nothing is ever duplicated.
    async fn restore(&mut self, restored: Option<RuntimeRecord>) {
        let Some(record) = restored else { return };
        if self.spec.mode == Mode::Container {
            return self.restore_container(record).await;
        }
        self.stop_operation = record.stop_operation;
        self.restarts = record.restarts;
        let survivors: Vec<ProcessRecord> =
            record.processes.iter().copied().filter(|p| procfs::is_same_process(p.pid, p.start_ticks)).collect();
        if survivors.is_empty() {
            if self.spec.mode == Mode::Script && !self.stop_operation && was_active(&record) {
                // A script service without a pid: its check script says whether it runs.
                self.adopt_by_check().await;
            } else {
                self.persist().await;
            }
            return;
        }
        self.ports.adopt(&self.spec.name, &record.ports);
        self.ports_in_effect = record.ports.clone();
        for p in &survivors {
            self.watch_foreign(p.instance, *p, true);
        }
        if self.stop_operation {
            // An operator stop that the crash interrupted: finish it.
            self.log.host_line("finishing a stop interrupted by a host restart");
            let _ = self.stop(false, false).await;
            return;
        }
        self.log.host_line("re-adopted after a host restart");
        if let Mode::Supervised { argv, cwd } = self.spec.mode.clone() {
            for instance in 0..self.spec.instances() {
                if self.instances.get(instance as usize).is_none_or(Option::is_none)
                    && let Err(e) = self.spawn_one(instance, &argv, &cwd)
                {
                    self.log.host_line(&format!("cannot start missing instance {instance}: {e}"));
                }
            }
        }
        self.after_spawn().await;
    }

    async fn adopt_by_check(&mut self) {
        let check = self.spec.model.manage_cmd.check.clone();
        if check.is_empty() {
            self.persist().await;
            return;
        }
        if let Ok(outcome) = self.run_manage_script(&check).await
            && outcome.success()
        {
            self.log.host_line("check.sh says it is running: adopted after a host restart");
            self.instances = vec![None];
            self.after_spawn().await;
        } else {
            self.persist().await;
        }
    }

    // ----- bookkeeping ------------------------------------------------------------

    fn live_instances(&self) -> usize {
        self.instances.iter().flatten().count()
    }

    async fn set_state(&mut self, state: ServiceState) {
        let changed = self.state != state;
        self.state = state;
        self.persist().await;
        if changed {
            let pid = self.instances.iter().flatten().next().map(|i| i.record.pid);
            self.events.publish(Event::ServiceState {
                name: self.spec.name.clone(),
                state: state.as_str().to_string(),
                pid,
                message: self.message.clone(),
            });
        }
    }

    /// Stores the runtime record and publishes the status.
    async fn persist(&self) {
        self.publish_status();
        let record = RuntimeRecord {
            name: self.spec.name.clone(),
            pid: self.instances.iter().flatten().next().map(|i| i64::from(i.record.pid)),
            ports: self.ports_in_effect.clone(),
            stop_operation: self.stop_operation,
            last_status: self.state.as_str().to_string(),
            updated_at_ms: now_ms(),
            processes: self.instances.iter().flatten().map(|i| i.record).collect(),
            restarts: self.restarts,
        };
        if let Err(e) = self.store.put_runtime(&record).await {
            tracing::error!(service = %self.spec.name, "runtime data not stored: {e}");
        }
    }

    fn publish_status(&self) {
        self.status_tx.send_replace(self.status());
    }

    fn status(&self) -> ServiceStatus {
        let instances: Vec<InstanceStatus> = self
            .instances
            .iter()
            .flatten()
            .map(|i| InstanceStatus {
                instance: i.record.instance,
                pid: Some(i.record.pid),
                started_at: chrono::DateTime::from_timestamp_millis(i.started_at_ms).map(|t| t.to_rfc3339()),
                rss_bytes: None,
                cpu_time_ms: None,
                adopted: i.adopted,
            })
            .collect();
        ServiceStatus {
            name: self.spec.name.clone(),
            state: self.state,
            mode: mode_name(&self.spec.mode).into(),
            pid: instances.first().and_then(|i| i.pid),
            instances,
            ports: self.ports_in_effect.clone(),
            restarts: self.restarts,
            stop_operation: self.stop_operation,
            health_failures: self.health_failures,
            message: self.message.clone(),
            container: self.container.clone(),
        }
    }
}

/// The record says the service was meant to be running when the host went away.
pub fn was_active(record: &RuntimeRecord) -> bool {
    record.last_status.parse::<ServiceState>().is_ok_and(|s| s.is_active() || s == ServiceState::Stopping)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
