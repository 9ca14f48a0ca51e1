//! The process supervisor: starts, stops, restarts and watches the registered services,
//! in dependency order, and keeps them alive per their restart policy. One actor task
//! per service (`actor.rs`) owns that service's processes, created with the first
//! command that needs it (until then the service is `dormant.rs`); this module routes commands
//! to actors, orders multi-service operations (run_dep, stop_chain, waves) and keeps
//! the set of actors in step with the registry.
//!
//! Container-mode services (`container.rs`, `actor/container.rs`) go through the same
//! actors, so restarts, dependencies, health checks and logs work alike.
//!
//! It knows nothing about HTTP. What in-process supervision cannot do: a service that
//! daemonizes itself out of its process group escapes group signals (use the script
//! mode's pid file for those).

mod actor;
mod backoff;
mod cgroup;
mod child;
mod container;
pub mod deps;
mod dormant;
mod groups;
mod health;
pub mod logs;
pub mod ports;
pub mod procfs;
mod script;
mod spec;
mod state;
mod watch;

pub use spec::{Mode, ServiceSpec};
pub use state::{ContainerStatus, InstanceStatus, ServiceState, ServiceStatus};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{RwLock, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::docker::DockerManager;
use crate::events::{Event, EventBus};
use crate::registry::Registry;
use crate::store::Store;
use actor::{ActorHandle, Command};
use dormant::{Dormant, Entry};
use ports::PortAllocator;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no service named {0:?}; GET /api/apps lists them")]
    NotFound(String),
    #[error("service {0:?} has neither run_data.command, manage_cmd.start nor a container section: nothing to run")]
    Unmanaged(String),
    #[error("{0}")]
    Port(String),
    #[error("{0}")]
    Failed(String),
    #[error("dependency {dependency:?} of {service:?} did not become running: {reason}")]
    Dependency { service: String, dependency: String, reason: String },
    #[error("{0}")]
    Order(String),
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    #[error("service {0:?} was stopped by the operator; start it explicitly (apollo app start {0})")]
    OperatorStopped(String),
}

pub type ControlResult = Result<ServiceStatus, ControlError>;

/// How long `start` waits for each dependency to be running (and healthy).
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Supervisor {
    /// Shared with every service's spec.
    config: Arc<Config>,
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    events: EventBus,
    ports: Arc<PortAllocator>,
    /// The engine container-mode services run on (connects on first use).
    docker: Arc<DockerManager>,
    /// Every registered service: dormant, or run by its actor.
    actors: RwLock<BTreeMap<String, Entry>>,
    tracker: TaskTracker,
    /// Set by `shutdown`: no actor is created after it.
    closed: std::sync::atomic::AtomicBool,
    /// File watchers of the services with `supervise.watch` on (`watch.rs`).
    watchers: watch::Watchers,
    /// The registry generation the actors were last fully brought in line with. Missed
    /// events (every service's state changes go through the same bus: stopping 2 000
    /// services overruns it) only call for a resync when the models changed since.
    synced_generation: std::sync::atomic::AtomicU64,
}

impl Supervisor {
    /// Creates an actor per registered service (re-adopting survivors of a host crash,
    /// starting `autostart` ones) and follows registry changes until `cancel`.
    pub async fn launch(
        config: Config,
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
        events: EventBus,
        docker: Arc<DockerManager>,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        // Subscribe before reading the snapshot so no change falls in between.
        let changes = events.subscribe();
        let supervisor = Arc::new(Self {
            config: Arc::new(config),
            registry: Arc::clone(&registry),
            store,
            events,
            ports: Arc::new(PortAllocator::default()),
            docker,
            actors: RwLock::new(BTreeMap::new()),
            tracker: tracker.clone(),
            closed: std::sync::atomic::AtomicBool::new(false),
            watchers: watch::Watchers::new(tracker.clone(), cancel.child_token()),
            synced_generation: std::sync::atomic::AtomicU64::new(0),
        });
        let runtime: BTreeMap<String, crate::store::RuntimeRecord> = match supervisor.store.list_runtime().await {
            Ok(records) => records.into_iter().map(|r| (r.name.clone(), r)).collect(),
            Err(e) => {
                tracing::error!("cannot read runtime data; services start fresh: {e}");
                BTreeMap::new()
            }
        };
        let snapshot = registry.snapshot();
        supervisor.synced_generation.store(snapshot.generation, std::sync::atomic::Ordering::SeqCst);
        // Dependencies first, so an autostarted service finds its run_dep already there.
        let order_all = deps::start_waves(&snapshot, snapshot.apps.keys().cloned().collect()).concat();
        for name in order_all.clone() {
            if let Some(loaded) = snapshot.apps.get(&name) {
                supervisor.add_actor(&loaded.model, runtime.get(&name).cloned()).await;
            }
        }
        // Start, in dependency order through `start` (which waits for run_dep) and in the
        // background so the API is up meanwhile: `autostart` services, and services that
        // were running before the host restarted and did not survive it. Operator stops
        // are respected (the actors refuse non-operator starts of those).
        let wanted: Vec<String> = order_all
            .into_iter()
            .filter(|n| {
                let record = runtime.get(n);
                let stopped_by_operator = record.is_some_and(|r| r.stop_operation);
                let was_running = record.is_some_and(actor::was_active);
                !stopped_by_operator && (snapshot.apps[n].model.supervise.autostart || was_running)
            })
            .collect();
        if !wanted.is_empty() {
            let starter = Arc::clone(&supervisor);
            let cancel = cancel.clone();
            tracker.spawn(async move {
                for name in wanted {
                    if cancel.is_cancelled() {
                        return;
                    }
                    if let Err(e) = starter.start_as(&name, false).await {
                        tracing::warn!(service = %name, "not started with the host: {e}");
                    }
                }
            });
        }
        let follower = Arc::clone(&supervisor);
        tracker.spawn(follower.follow_registry(changes, cancel));
        supervisor
    }

    /// Registers the service: dormant when it can wait for its first command, else with
    /// its actor; a service already known is reconfigured (a model seen twice, e.g.
    /// after a resync, must never get a second owner of its processes).
    async fn add_actor(&self, model: &crate::model::Octopus, restored: Option<crate::store::RuntimeRecord>) {
        let spec = ServiceSpec::new(&self.config, model);
        let mut actors = self.actors.write().await;
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let restored = match actors.remove(&model.name) {
            Some(Entry::Live(existing)) => {
                let commands = existing.commands.clone();
                actors.insert(model.name.clone(), Entry::Live(existing));
                // Under the map lock, so reconfigurations reach the actor in order.
                let _ = commands.send(Command::Reconfigure(Box::new(spec.clone()))).await;
                drop(actors);
                // Outside it: setting up a watcher walks the service's tree.
                self.watchers.follow(&spec, &commands).await;
                return;
            }
            // Its actor has not restored yet: it restores from the first record.
            Some(Entry::Dormant(dormant)) => dormant.restored,
            None => restored,
        };
        if Dormant::can_wait(&spec, restored.as_ref()) {
            actors.insert(model.name.clone(), Entry::Dormant(Dormant { restored }));
            return;
        }
        let watched = spec.clone();
        let handle = self.spawn_actor(spec, restored);
        let commands = handle.commands.clone();
        actors.insert(model.name.clone(), Entry::Live(handle));
        drop(actors);
        self.watchers.follow(&watched, &commands).await;
    }

    fn spawn_actor(&self, spec: ServiceSpec, restored: Option<crate::store::RuntimeRecord>) -> ActorHandle {
        actor::spawn(
            spec,
            restored,
            Arc::clone(&self.store),
            self.events.clone(),
            Arc::clone(&self.ports),
            Arc::clone(&self.docker),
            &self.tracker,
        )
    }

    /// Brings the actor of `name` in line with the registry right now (created,
    /// reconfigured or removed), instead of when the registry's event arrives: a caller
    /// that just wrote or deleted a model (`PUT /api/apps/{name}/model`) acts on the
    /// service next. The event's own update that follows is then a no-op.
    pub async fn sync_with_registry(&self, name: &str) {
        match self.registry.get(name) {
            Some(loaded) => {
                let restored = self.store.get_runtime(name).await.ok().flatten();
                self.add_actor(&loaded.model, restored).await;
            }
            None => self.remove_actor(name).await,
        }
    }

    /// Stops and forgets a service whose model is gone. The map lock is released before
    /// waiting, so the rest of the API is not held up by a slow stop.
    async fn remove_actor(&self, name: &str) {
        self.watchers.forget(name).await;
        let removed = self.actors.write().await.remove(name);
        // A dormant service has no processes: forgetting it is all there is to do.
        if let Some(Entry::Live(handle)) = removed {
            let (reply, done) = oneshot::channel();
            if handle.commands.send(Command::Shutdown { stop_services: true, reply }).await.is_ok() {
                let _ = done.await;
            }
        }
    }

    async fn follow_registry(
        self: Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<Event>,
        cancel: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => return,
                event = changes.recv() => event,
            };
            match event {
                Ok(Event::ModelAdded { name, .. } | Event::ModelChanged { name, .. }) => {
                    if let Some(loaded) = self.registry.get(&name) {
                        let restored = self.store.get_runtime(&name).await.ok().flatten();
                        self.add_actor(&loaded.model, restored).await;
                    }
                }
                Ok(Event::ModelRemoved { name }) => {
                    // A service whose model is gone is stopped, then forgotten; in its own
                    // task so registry events keep flowing meanwhile.
                    let this = Arc::clone(&self);
                    self.tracker.spawn(async move {
                        // Re-added meanwhile (a delete then `apollo start` of the same
                        // name): the new actor is not this event's to remove.
                        if this.registry.get(&name).is_none() {
                            this.remove_actor(&name).await;
                        }
                    });
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "supervisor missed registry events; resyncing");
                    self.resync().await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// After missed events: add or reconfigure actors for every model, drop removed.
    async fn resync(&self) {
        let snapshot = self.registry.snapshot();
        if self.synced_generation.swap(snapshot.generation, std::sync::atomic::Ordering::SeqCst) == snapshot.generation
        {
            return; // no model changed since the last sync: only other events were missed
        }
        for (name, loaded) in &snapshot.apps {
            let restored = self.store.get_runtime(name).await.ok().flatten();
            self.add_actor(&loaded.model, restored).await;
        }
        let known: Vec<String> = self.actors.read().await.keys().cloned().collect();
        for name in known.iter().filter(|n| !snapshot.apps.contains_key(*n)) {
            self.remove_actor(name).await;
        }
    }

    /// The service's actor, created now if the service is dormant: every command an
    /// actor handles goes through here.
    async fn actor(&self, name: &str) -> Option<ActorHandle> {
        if let Entry::Live(handle) = self.actors.read().await.get(name)? {
            return Some(handle.clone());
        }
        let mut actors = self.actors.write().await;
        match actors.remove(name)? {
            Entry::Live(handle) => {
                // Woken by another caller between the two locks.
                actors.insert(name.to_string(), Entry::Live(handle.clone()));
                Some(handle)
            }
            Entry::Dormant(dormant) => {
                // Its model from the registry: add_actor follows the registry, so this is
                // the model it last saw or one it is about to see.
                let Some(loaded) =
                    self.registry.snapshot().apps.get(name).map(|l| ServiceSpec::new(&self.config, &l.model))
                else {
                    // The model is gone and its removal on the way: nothing to run.
                    actors.insert(name.to_string(), Entry::Dormant(dormant));
                    return None;
                };
                let handle = self.spawn_actor(loaded, dormant.restored);
                actors.insert(name.to_string(), Entry::Live(handle.clone()));
                Some(handle)
            }
        }
    }

    async fn ask(&self, name: &str, make: impl FnOnce(oneshot::Sender<ControlResult>) -> Command) -> ControlResult {
        let handle = self.actor(name).await.ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        let (reply, answer) = oneshot::channel();
        handle.commands.send(make(reply)).await.map_err(|_| ControlError::ShuttingDown)?;
        answer.await.map_err(|_| ControlError::ShuttingDown)?
    }

    /// The latest published status (never waits for the actor), with fresh RSS and CPU
    /// time figures.
    pub async fn status(&self, name: &str) -> ControlResult {
        let mut status = match self.actors.read().await.get(name) {
            Some(Entry::Live(handle)) => handle.status.borrow().clone(),
            Some(Entry::Dormant(dormant)) => {
                let snapshot = self.registry.snapshot();
                let loaded = snapshot.apps.get(name).ok_or_else(|| ControlError::NotFound(name.to_string()))?;
                return Ok(dormant.status(&ServiceSpec::new(&self.config, &loaded.model)));
            }
            None => return Err(ControlError::NotFound(name.to_string())),
        };
        for instance in &mut status.instances {
            instance.rss_bytes = instance.pid.and_then(procfs::rss_bytes);
            instance.cpu_time_ms = instance.pid.and_then(procfs::cpu_time_ms);
        }
        Ok(status)
    }

    pub async fn statuses(&self) -> Vec<ServiceStatus> {
        let names: Vec<String> = self.actors.read().await.keys().cloned().collect();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(s) = self.status(&name).await {
                out.push(s);
            }
        }
        out
    }

    /// Starts `name` for the operator after its `run_dep` closure, in topological order,
    /// waiting for each dependency to be running (and healthy when it has a check).
    pub async fn start(&self, name: &str) -> ControlResult {
        self.start_as(name, true).await
    }

    /// `operator == false` (autostart, after a host restart): services the operator
    /// stopped are refused, dependencies included.
    async fn start_as(&self, name: &str, operator: bool) -> ControlResult {
        let snapshot = self.registry.snapshot();
        if !snapshot.apps.contains_key(name) {
            return Err(ControlError::NotFound(name.to_string()));
        }
        let order = deps::start_order(&snapshot, name).map_err(ControlError::Order)?;
        for dependency in order.iter().filter(|d| *d != name) {
            self.ask(dependency, |reply| Command::Start { operator, reply }).await.map_err(|e| {
                ControlError::Dependency {
                    service: name.to_string(),
                    dependency: dependency.clone(),
                    reason: e.to_string(),
                }
            })?;
            self.wait_running(name, dependency).await?;
        }
        self.ask(name, |reply| Command::Start { operator, reply }).await
    }

    async fn wait_running(&self, service: &str, dependency: &str) -> Result<(), ControlError> {
        let deadline = Instant::now() + DEPENDENCY_TIMEOUT;
        loop {
            let status = self.status(dependency).await?;
            match status.state {
                ServiceState::Running => return Ok(()),
                ServiceState::Starting | ServiceState::Backoff | ServiceState::Unhealthy
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                state => {
                    return Err(ControlError::Dependency {
                        service: service.to_string(),
                        dependency: dependency.to_string(),
                        reason: format!("it is {} ({})", state.as_str(), status.message),
                    });
                }
            }
        }
    }

    /// Stops `name`, the services that depend on it and its `stop_chain`, dependants
    /// first. Only `name` is marked as stopped by the operator.
    pub async fn stop(&self, name: &str) -> ControlResult {
        let snapshot = self.registry.snapshot();
        if !snapshot.apps.contains_key(name) {
            return Err(ControlError::NotFound(name.to_string()));
        }
        for other in deps::stop_order(&snapshot, name).iter().filter(|o| *o != name) {
            if let Err(e) = self.ask(other, |reply| Command::Stop { operator: false, reply }).await {
                tracing::warn!(service = %other, "stopping with {name}: {e}");
            }
        }
        self.ask(name, |reply| Command::Stop { operator: true, reply }).await
    }

    pub async fn restart(&self, name: &str) -> ControlResult {
        self.ask(name, Command::Restart).await
    }

    pub async fn kill(&self, name: &str) -> ControlResult {
        self.ask(name, Command::Kill).await
    }

    pub async fn heartbeat(&self, name: &str) -> Result<(), ControlError> {
        let handle = match self.actors.read().await.get(name) {
            Some(Entry::Live(handle)) => handle.clone(),
            // Nothing runs to be checked, and a start takes its own heartbeat.
            Some(Entry::Dormant(_)) => return Ok(()),
            None => return Err(ControlError::NotFound(name.to_string())),
        };
        handle.commands.send(Command::Heartbeat).await.map_err(|_| ControlError::ShuttingDown)
    }

    /// Starts every service in waves: a wave's services in parallel, each wave after the
    /// one holding its dependencies. Returns every service's outcome.
    pub async fn start_all(&self) -> Vec<(String, ControlResult)> {
        let snapshot = self.registry.snapshot();
        let mut results = Vec::new();
        for wave in deps::start_waves(&snapshot, snapshot.apps.keys().cloned().collect()) {
            let starts = wave.iter().map(|name| async move {
                (name.clone(), self.ask(name, |reply| Command::Start { operator: true, reply }).await)
            });
            let outcomes = futures::future::join_all(starts).await;
            // Wait for the wave to be up before the next one needs it.
            for (name, outcome) in &outcomes {
                if outcome.is_ok() {
                    let _ = self.wait_running(name, name).await;
                }
            }
            results.extend(outcomes);
        }
        results
    }

    /// Stops every service, dependants first, each wave in parallel.
    pub async fn stop_all(&self) -> Vec<(String, ControlResult)> {
        let snapshot = self.registry.snapshot();
        let mut waves = deps::start_waves(&snapshot, snapshot.apps.keys().cloned().collect());
        waves.reverse();
        let mut results = Vec::new();
        for wave in waves {
            let stops = wave.iter().map(|name| async move {
                (name.clone(), self.ask(name, |reply| Command::Stop { operator: true, reply }).await)
            });
            results.extend(futures::future::join_all(stops).await);
        }
        results
    }

    /// The service's log, for tail and follow.
    pub fn log(&self, name: &str) -> logs::ServiceLog {
        let loaded = self.registry.get(name);
        let supervise = loaded.map(|l| l.model.supervise).unwrap_or_default();
        logs::ServiceLog::new(&self.config.app_log_dir.join(name), name, supervise.log_max_bytes, supervise.log_keep)
    }

    /// Ends every actor; with `stop_services` their processes too (else they keep
    /// running and the next host re-adopts them).
    pub async fn shutdown(&self, stop_services: bool) {
        let actors: Vec<ActorHandle> = {
            let mut map = self.actors.write().await;
            self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            self.watchers.stop_all().await;
            // Dormant services have no processes to stop or leave.
            std::mem::take(&mut *map)
                .into_values()
                .filter_map(|entry| match entry {
                    Entry::Live(handle) => Some(handle),
                    Entry::Dormant(_) => None,
                })
                .collect()
        };
        let stops = actors.into_iter().map(|handle| async move {
            let (reply, done) = oneshot::channel();
            if handle.commands.send(Command::Shutdown { stop_services, reply }).await.is_ok() {
                let _ = done.await;
            }
        });
        futures::future::join_all(stops).await;
    }
}
