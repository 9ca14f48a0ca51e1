//! One task per service owns everything about it: its processes, state, restart timer,
//! health failures and runtime record. Commands arrive on a channel and are handled one
//! at a time, so no two operations on one service ever interleave; process exits and
//! probe results arrive on a second channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::path::Path;

use super::backoff::Backoff;
use super::cgroup;
use super::child::{spawn_instance, stop_group};
use super::health::Probe;
use super::logs::ServiceLog;
use super::ports::PortAllocator;
use super::procfs;
use super::script::run_script;
use super::spec::{Mode, ServiceSpec};
use super::state::{InstanceStatus, ServiceState, ServiceStatus};
use super::{ControlError, ControlResult};
use crate::events::{Event, EventBus};
use crate::model::{HealthKind, RestartPolicy};
use crate::store::{ProcessRecord, RuntimeRecord, Store, now_ms};

pub enum Command {
    Start(oneshot::Sender<ControlResult>),
    /// `operator`: an operator asked (recorded as stop_operation) rather than a chain.
    Stop {
        operator: bool,
        reply: oneshot::Sender<ControlResult>,
    },
    Restart(oneshot::Sender<ControlResult>),
    Kill(oneshot::Sender<ControlResult>),
    Status(oneshot::Sender<ServiceStatus>),
    Reconfigure(Box<ServiceSpec>),
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
            Self::Start(_) => "Start",
            Self::Stop { .. } => "Stop",
            Self::Restart(_) => "Restart",
            Self::Kill(_) => "Kill",
            Self::Status(_) => "Status",
            Self::Reconfigure(_) => "Reconfigure",
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

pub struct Actor {
    spec: ServiceSpec,
    store: Arc<dyn Store>,
    events: EventBus,
    ports: Arc<PortAllocator>,
    log: ServiceLog,
    tracker: TaskTracker,
    notes_tx: mpsc::Sender<Note>,
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
    /// The generation of the probe task whose results count.
    probe_generation: u64,
    /// Instances being replaced on purpose (memory limit, unhealthy): their exit is a
    /// planned restart, not a crash.
    replacing: Vec<u32>,
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
    tracker: &TaskTracker,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(64);
    let (notes_tx, notes_rx) = mpsc::channel(256);
    let log = ServiceLog::new(&spec.log_dir, &spec.name, spec.supervise.log_max_bytes, spec.supervise.log_keep);
    let backoff = Backoff::new(
        Duration::from_millis(spec.supervise.backoff_initial_ms),
        Duration::from_millis(spec.supervise.backoff_max_ms),
    );
    let actor = Actor {
        instances: Vec::new(),
        store,
        events,
        ports,
        log,
        tracker: tracker.clone(),
        notes_tx,
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
        spec,
    };
    tracker.spawn(actor.run(rx, notes_rx, restored));
    tx
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut notes: mpsc::Receiver<Note>,
        restored: Option<RuntimeRecord>,
    ) {
        self.restore(restored).await;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(2));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timer = self.restart_at;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown { stop_services, reply }) => {
                        if stop_services && self.state != ServiceState::Stopped {
                            let _ = self.stop(false, false).await;
                        }
                        self.stop_probe();
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                Some(note) = notes.recv() => self.on_note(note).await,
                () = sleep_until(timer), if timer.is_some() => self.on_restart_timer().await,
                _ = housekeeping.tick() => self.housekeeping().await,
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Start(reply) => {
                let result = self.start(true).await;
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
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Reconfigure(spec) => {
                // Takes effect at the next start; a running service is not disturbed.
                let log_changed = spec.log_dir != self.spec.log_dir;
                self.spec = *spec;
                if log_changed {
                    self.log = ServiceLog::new(
                        &self.spec.log_dir,
                        &self.spec.name,
                        self.spec.supervise.log_max_bytes,
                        self.spec.supervise.log_keep,
                    );
                }
                if self.state.is_active() {
                    self.message = "model changed: applies at the next restart".into();
                }
            }
            Command::Heartbeat => {
                self.last_heartbeat = Instant::now();
            }
            Command::Shutdown { .. } => unreachable!("handled in run"),
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
        }
        match self.spec.mode.clone() {
            Mode::Unmanaged => Err(ControlError::Unmanaged(self.spec.name.clone())),
            Mode::Supervised { argv, cwd } => self.start_supervised(&argv, &cwd).await,
            Mode::Script => self.start_script().await,
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

    async fn start_supervised(&mut self, argv: &[String], cwd: &std::path::Path) -> ControlResult {
        if let Err(e) = self.claim_ports() {
            self.message = e.to_string();
            self.log.host_line(&format!("start refused: {e}"));
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

    fn spawn_one(&mut self, instance: u32, argv: &[String], cwd: &std::path::Path) -> std::io::Result<()> {
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
        let slot = self.instances.get_mut(instance as usize).expect("instances sized before spawning");
        *slot = Some(Instance {
            record: spawned.record,
            started: Instant::now(),
            started_at_ms: now_ms(),
            generation,
            adopted: false,
        });
        Ok(())
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
                tokio::time::sleep(Duration::from_millis(250)).await;
                if notes.is_closed() {
                    return;
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

    /// After processes exist: running at once without a health check, else `starting`
    /// until the first probe passes (readiness gates `running`).
    async fn after_spawn(&mut self) {
        self.health_failures = 0;
        self.last_heartbeat = Instant::now();
        if self.spec.health.kind == HealthKind::None {
            self.set_state(ServiceState::Running).await;
        } else {
            self.set_state(ServiceState::Starting).await;
            self.start_probe();
        }
    }

    async fn start_script(&mut self) -> ControlResult {
        if let Err(e) = self.claim_ports() {
            self.message = e.to_string();
            return Err(e);
        }
        self.set_state(ServiceState::Starting).await;
        let outcome = self.run_manage_script(&self.spec.model.manage_cmd.start.clone()).await;
        match outcome {
            Ok(o) if o.success() => {}
            Ok(o) => return self.script_failed(o.describe()).await,
            Err(e) => return self.script_failed(e.to_string()).await,
        }
        self.instances = vec![None];
        match self.read_pid_file() {
            Some(record) => {
                self.apply_limits(record.pid);
                self.watch_foreign(0, record, false);
            }
            None if !self.spec.model.manage_cmd.check.is_empty() => {} // the probe decides
            None => {
                return self
                    .script_failed(format!(
                        "start script succeeded but wrote no pid to {}",
                        self.spec.paths.pid_file.display()
                    ))
                    .await;
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

    fn read_pid_file(&self) -> Option<ProcessRecord> {
        let text = std::fs::read_to_string(&self.spec.paths.pid_file).ok()?;
        let pid: i32 = text.trim().parse().ok().filter(|p| *p > 0)?;
        let start_ticks = procfs::start_ticks(pid)?;
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).map(|p| p.as_raw()).unwrap_or(pid);
        Some(ProcessRecord { instance: 0, pid, pgid, start_ticks })
    }

    async fn run_manage_script(
        &self,
        script: &str,
    ) -> Result<super::script::ScriptOutcome, super::script::ScriptError> {
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
        if operator {
            self.stop_operation = true;
        }
        if self.state == ServiceState::Stopped || self.state == ServiceState::Errored && self.live_instances() == 0 {
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
        let groups: Vec<i32> = self.instances.iter().flatten().map(|i| i.record.pgid).collect();
        // Their exits are expected now: the waiters' notes will find no instance.
        for slot in &mut self.instances {
            *slot = None;
        }
        let stops = groups.into_iter().map(|pgid| stop_group(pgid, signal, wait));
        futures::future::join_all(stops).await.into_iter().all(|graceful| graceful)
    }

    async fn restart(&mut self) -> ControlResult {
        if self.spec.mode == Mode::Script && !self.spec.model.manage_cmd.restart.is_empty() && self.state.is_active() {
            self.set_state(ServiceState::Stopping).await;
            self.stop_probe();
            let outcome = self.run_manage_script(&self.spec.model.manage_cmd.restart.clone()).await;
            match outcome {
                Ok(o) if o.success() => {}
                Ok(o) => return self.script_failed(o.describe()).await,
                Err(e) => return self.script_failed(e.to_string()).await,
            }
            self.instances = vec![None];
            if let Some(record) = self.read_pid_file() {
                self.watch_foreign(0, record, false);
            }
            self.stop_operation = false;
            self.restarts += 1;
            self.after_spawn().await;
            return Ok(self.status());
        }
        if self.state != ServiceState::Stopped {
            self.stop(false, false).await?;
        }
        self.start(true).await
    }

    // ----- exits, restarts, health -----------------------------------------------

    async fn on_note(&mut self, note: Note) {
        match note {
            Note::Exited { instance, generation, code, signal } => {
                self.on_exit(instance, generation, code, signal).await
            }
            Note::Probe { generation, result } => {
                if generation == self.probe_generation {
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
            if self.live_instances() == 0 {
                self.stop_probe();
                self.ports.release(&self.spec.name);
                let state = if clean { ServiceState::Stopped } else { ServiceState::Errored };
                self.set_state(state).await;
            }
            return;
        }
        // Planned replacements (unhealthy, over memory) go through the same backoff as
        // crashes, so a service that never becomes healthy slows down and finally stops.
        let delay = self.backoff.on_exit(ran_for, Duration::from_millis(self.spec.supervise.min_uptime_ms));

        if self.backoff.unstable_restarts() > self.spec.supervise.max_restarts {
            let message = format!(
                "gave up after {} unstable restarts (each run shorter than {} ms); fix it and start it again",
                self.spec.supervise.max_restarts, self.spec.supervise.min_uptime_ms
            );
            self.log.host_line(&message);
            self.message = message;
            self.stop_processes(self.spec.stop_signal, self.spec.kill_timeout()).await;
            self.stop_probe();
            self.ports.release(&self.spec.name);
            self.set_state(ServiceState::Errored).await;
            self.events.publish(Event::RestartLimitReached { name: self.spec.name.clone(), restarts: self.restarts });
            return;
        }
        self.pending.push(instance);
        self.restart_at = Some(Instant::now() + delay);
        self.log.host_line(&format!("restarting in {} ms", delay.as_millis()));
        self.set_state(ServiceState::Backoff).await;
    }

    async fn on_restart_timer(&mut self) {
        self.restart_at = None;
        let pending = std::mem::take(&mut self.pending);
        match self.spec.mode.clone() {
            Mode::Supervised { argv, cwd } => {
                for instance in pending {
                    self.restarts += 1;
                    if let Err(e) = self.spawn_one(instance, &argv, &cwd) {
                        let message = format!("restart failed: {e}");
                        self.log.host_line(&message);
                        self.message = message;
                        self.pending.push(instance);
                        self.restart_at = Some(Instant::now() + self.backoff.delay());
                    }
                }
            }
            Mode::Script => {
                self.restarts += 1;
                self.set_state(ServiceState::Stopped).await;
                if let Err(e) = self.start(false).await {
                    tracing::warn!(service = %self.spec.name, "scripted restart failed: {e}");
                }
                return;
            }
            Mode::Unmanaged => return,
        }
        if self.pending.is_empty() {
            self.after_spawn().await;
        }
    }

    fn start_probe(&mut self) {
        self.stop_probe();
        if matches!(self.spec.health.kind, HealthKind::None) {
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
        let probe = Probe {
            check: self.spec.health.clone(),
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
                if notes.send(Note::Probe { generation, result }).await.is_err() {
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
                }
            }
        }
    }

    /// Restarts every instance on purpose (unhealthy): their exits are planned.
    async fn replace_instances(&mut self) {
        match self.spec.mode {
            Mode::Supervised { .. } => {
                let groups: Vec<(u32, i32)> =
                    self.instances.iter().flatten().map(|i| (i.record.instance, i.record.pgid)).collect();
                for (instance, pgid) in groups {
                    self.replacing.push(instance);
                    let _ = stop_group(pgid, self.spec.stop_signal, self.spec.kill_timeout()).await;
                }
            }
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
            let _ = stop_group(pgid, self.spec.stop_signal, self.spec.kill_timeout()).await;
        }
    }

    // ----- host restarts ----------------------------------------------------------

    /// Re-adopts processes that survived a host restart, or starts the service again
    /// if it should be running; never both, so nothing is duplicated.
    async fn restore(&mut self, restored: Option<RuntimeRecord>) {
        // `autostart` of fresh services is the supervisor's job (it honours run_dep).
        let Some(record) = restored else { return };
        self.stop_operation = record.stop_operation;
        self.restarts = record.restarts;
        let survivors: Vec<ProcessRecord> =
            record.processes.iter().copied().filter(|p| procfs::is_same_process(p.pid, p.start_ticks)).collect();
        if !survivors.is_empty() {
            self.ports.adopt(&self.spec.name, &record.ports);
            self.ports_in_effect = record.ports.clone();
            for p in survivors {
                self.watch_foreign(p.instance, p, true);
            }
            self.log.host_line("re-adopted after a host restart");
            self.after_spawn().await;
            return;
        }
        let was_wanted =
            record.last_status.parse::<ServiceState>().is_ok_and(|s| s.is_active() || s == ServiceState::Stopping);
        if !record.stop_operation && was_wanted {
            self.log.host_line("was running before the host restarted: starting it again");
            let _ = self.start(false).await;
        } else {
            // Keep the record's operator decision on disk as the new baseline.
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

    async fn persist(&self) {
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

    fn status(&self) -> ServiceStatus {
        let instances: Vec<InstanceStatus> = self
            .instances
            .iter()
            .flatten()
            .map(|i| InstanceStatus {
                instance: i.record.instance,
                pid: Some(i.record.pid),
                started_at: chrono::DateTime::from_timestamp_millis(i.started_at_ms).map(|t| t.to_rfc3339()),
                rss_bytes: procfs::rss_bytes(i.record.pid),
                adopted: i.adopted,
            })
            .collect();
        ServiceStatus {
            name: self.spec.name.clone(),
            state: self.state,
            mode: match self.spec.mode {
                Mode::Supervised { .. } => "supervised",
                Mode::Script => "script",
                Mode::Unmanaged => "unmanaged",
            }
            .into(),
            pid: instances.first().and_then(|i| i.pid),
            instances,
            ports: self.ports_in_effect.clone(),
            restarts: self.restarts,
            stop_operation: self.stop_operation,
            health_failures: self.health_failures,
            message: self.message.clone(),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
