//! One task per service owns everything about it: its processes, state, restart timer,
//! health probe and runtime record. Commands arrive on a channel and are handled one
//! at a time, so no two operations on one service ever interleave; process exits and
//! probe results arrive on a second channel, tagged with a generation so that stale
//! ones are ignored. The status is published on a watch channel, so reading it never
//! waits behind a slow script or a stop in progress.
//!
//! This file holds the actor's state (every field says why it exists and who changes
//! it), its spawn and its loop. The handlers are in `actor/`: `start.rs` (processes,
//! scripts, pid files, limits), `stop.rs` (stop, kill, restart, watch restarts),
//! `exits.rs` (exits, restarts through the backoff, planned replacements),
//! `probes.rs` (health probes), `restore.rs` (re-adoption after a host restart),
//! `bookkeeping.rs` (state changes, runtime record, status) and `container.rs`
//! (container mode).

mod bookkeeping;
mod container;
mod exits;
mod probes;
mod restore;
mod start;
mod stop;

pub use restore::was_active;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ControlResult;
use super::backoff::Backoff;
use super::logs::ServiceLog;
use super::ports::PortAllocator;
use super::spec::{Mode, ServiceSpec};
use super::state::{ContainerStatus, ServiceState, ServiceStatus};
use crate::docker::DockerManager;
use crate::events::EventBus;
use crate::store::{ProcessRecord, RuntimeRecord, Store};

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

/// One process of the service as the actor knows it (a slot of `Run::instances`).
#[derive(Debug)]
struct Instance {
    /// Pid, group and start time: what stop signals and what a later host re-adopts.
    record: ProcessRecord,
    /// When this host started (or began watching) it: how long it ran, for the backoff.
    started: Instant,
    /// The same moment as a wall-clock time, for the status.
    started_at_ms: i64,
    /// The generation its waiter tags its exit with; an exit of another is stale.
    generation: u64,
    /// Found running after a host restart rather than started by this host.
    adopted: bool,
}

/// The handles the supervisor keeps for one actor.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<ServiceStatus>,
}

/// One service's owner. Only the actor's own task touches these fields (the
/// single-owner invariant): helpers it spawns talk back through `Links::notes` only.
pub struct Actor {
    /// The model as the actor runs it: commands, paths, supervise and health settings.
    /// Replaced whole by `Command::Reconfigure`; a running service picks it up at its
    /// next start.
    spec: ServiceSpec,
    /// The service's log file: process output and the host's lines about the service.
    /// Rebuilt with `spec` on `Reconfigure`; rotated by `housekeeping`.
    log: ServiceLog,
    /// Bumped for every process spawned or watched, every container watch and every
    /// probe task, each of which tags its notes with the value it got: a note whose
    /// generation is no longer current is stale and ignored.
    generation: u64,
    /// What the actor shares with the rest of the host; set at spawn, never replaced.
    host: Links,
    /// The current run: what the status shows and the runtime record stores.
    run: Run,
    /// Restart policy state: the count, the backoff and the one restart timer.
    restarts: Restarts,
    /// The health probe in force and what it has seen.
    health: Health,
    /// Container mode's run (empty in the other modes).
    container: ContainerRun,
}

/// The host's services and the actor's channels.
struct Links {
    /// Where `persist` writes the runtime record on every state change (what a
    /// restarted host re-adopts from).
    store: Arc<dyn Store>,
    /// Where state changes, health failures and the restart limit are published.
    events: EventBus,
    /// Shared by every actor: ports are claimed at start and released at stop.
    ports: Arc<PortAllocator>,
    /// The engine, for container mode.
    docker: Arc<DockerManager>,
    /// Where every task the actor starts runs (waiters, watchers, probes, escalations,
    /// container tasks), so each has an owner and ends with the host.
    tracker: TaskTracker,
    /// A clone goes to each helper task, which sends its notes on it; when the actor
    /// is gone, `closed()` tells the helper to stop (leaving the process running).
    notes: mpsc::Sender<Note>,
    /// The published status (`publish_status`), read without waiting for the actor.
    status: watch::Sender<ServiceStatus>,
}

/// The current run of the service.
struct Run {
    /// Changed only through `set_state`, which persists and publishes it.
    state: ServiceState,
    /// One slot per instance, `None` once its process is gone or given up. Filled by a
    /// start (`spawn_one`, `watch_foreign`, container watch) and `restore`; emptied
    /// by a stop, by an exit (`on_exit`) and by a scripted restart.
    instances: Vec<Option<Instance>>,
    /// The ports in force: claimed by a start, adopted by `restore`, cleared by a stop.
    ports: Vec<u16>,
    /// The last thing worth telling the operator (a failure, a stop, a health result);
    /// every handler may set it, the status shows it.
    message: String,
    /// An operator stopped the service: set by an operator's stop, cleared by an
    /// operator's start and a scripted restart, restored from the runtime record.
    /// Automatic starts refuse a service with it set.
    stop_operation: bool,
}

/// The restart policy's state.
struct Restarts {
    /// Restarts so far (reported, and persisted across host restarts): reset by an
    /// operator's start, raised by each restart the actor makes.
    count: u32,
    /// The delay before the next restart and the unstable-run count behind
    /// `max_restarts`: fed by every exit that restarts (`on_exit`) and every failed
    /// respawn, reset by an operator's start.
    backoff: Backoff,
    /// Instances to start again when the timer fires: added by `schedule_restart`,
    /// taken by `on_restart_timer`, cleared by a stop and by `give_up`.
    pending: Vec<u32>,
    /// The one restart timer, watched by the run loop: the earliest pending restart.
    /// Cleared when it fires, by a stop and by `give_up`.
    at: Option<Instant>,
    /// Instances being replaced on purpose (unhealthy, over memory): they restart
    /// whatever the policy says. Added when they are signalled, removed at their exit.
    replacing: Vec<u32>,
}

/// The health probe's state.
struct Health {
    /// Probe failures in a row: raised by `on_probe`, reset by a passing probe, by a
    /// start (`after_spawn`) and by a stop.
    failures: u32,
    /// The last `Command::Heartbeat` (or start): a `ttl` check fails without a fresh one.
    last_heartbeat: Instant,
    /// Cancels the running probe task: set by `start_probe`, taken by `stop_probe`.
    probe: Option<CancellationToken>,
    /// The generation of the probe task whose results count (0: none): set by
    /// `start_probe`, zeroed by `stop_probe`, so a finishing old probe is ignored.
    probe_generation: u64,
}

/// Container mode's run (`actor/container.rs` changes both).
struct ContainerRun {
    /// The container of the current (or last) run; kept after an exit for inspection
    /// until the service is stopped.
    current: Option<ContainerStatus>,
    /// Ends the current container's waiter and log pump; replaced by a newer watch.
    tasks: Option<CancellationToken>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor").field("name", &self.spec.name).field("state", &self.run.state).finish()
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
    let initial = initial_status(&spec, restored.as_ref());
    let (status_tx, status_rx) = watch::channel(initial);
    let actor = Actor {
        log,
        generation: 0,
        host: Links { store, events, ports, docker, tracker: tracker.clone(), notes: notes_tx, status: status_tx },
        run: Run {
            state: ServiceState::Stopped,
            instances: Vec::new(),
            ports: Vec::new(),
            message: String::new(),
            stop_operation: false,
        },
        restarts: Restarts { count: 0, backoff, pending: Vec::new(), at: None, replacing: Vec::new() },
        health: Health { failures: 0, last_heartbeat: Instant::now(), probe: None, probe_generation: 0 },
        container: ContainerRun { current: None, tasks: None },
        spec,
    };
    // Boxed: an async fn keeps its by-value `self` twice in its future (the argument
    // and the moved local), so a by-value actor cost every registered service its
    // 2 KiB state twice over, for as long as it is registered.
    tracker.spawn(Box::new(actor).run(rx, notes_rx, restored));
    ActorHandle { commands: tx, status: status_rx }
}

/// The status of a service no actor has run yet: stopped, with the restart count and
/// operator stop its runtime record from before a host restart carries.
pub fn initial_status(spec: &ServiceSpec, restored: Option<&RuntimeRecord>) -> ServiceStatus {
    ServiceStatus {
        name: spec.name.clone(),
        state: ServiceState::Stopped,
        mode: mode_name(&spec.mode).into(),
        pid: None,
        instances: Vec::new(),
        ports: Vec::new(),
        restarts: restored.map_or(0, |r| r.restarts),
        stop_operation: restored.is_some_and(|r| r.stop_operation),
        health_failures: 0,
        message: String::new(),
        container: None,
        tags: spec.model.run_data.catalog_tags(),
        meta: spec.model.run_data.catalog_meta(),
    }
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
            let timer = self.restarts.at;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown { stop_services, reply }) => {
                        if stop_services && self.run.state != ServiceState::Stopped {
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
                if self.run.state.is_active() {
                    self.run.message = "model changed: applies at the next restart".into();
                    self.publish_status();
                }
            }
            Command::FilesChanged { changed } => self.restart_for_changes(&changed).await,
            Command::Heartbeat => self.health.last_heartbeat = Instant::now(),
            // Handled in `run`, which must return after it.
            Command::Shutdown { reply, .. } => {
                let _ = reply.send(());
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
