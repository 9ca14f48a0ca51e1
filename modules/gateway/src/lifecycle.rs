//! The gateway's life: at load it checks its settings, binds its listeners (a port in
//! use refuses the load, naming it), builds the data plane's own runtime and starts
//! serving, discovery and the gauge refresher; at unload it stops accepting, lets
//! requests in flight finish (≤ 10 s) and drops the runtime with everything on it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use plugin_api::Host;
use tokio::sync::{Semaphore, watch};

use crate::access_log::AccessLog;
use crate::discovery::Discovery;
use crate::discovery::Pins;
use crate::metrics::Metrics;
use crate::proxy::seneca::SenecaPlane;
use crate::proxy::server;
use crate::proxy::{DataPlane, RetryBudget};
use crate::registry::Registry;
use crate::seneca::Directory;
use crate::settings::{Config, RouteSpec, address_of};
use crate::table::Table;
use crate::trace::Tracer;

/// Where routes changed through the admin API are kept.
pub const ROUTES_KEY: &str = "routes";
/// How long requests in flight may take to finish when the module stops.
const DRAIN: Duration = Duration::from_secs(10);

pub struct Gateway {
    pub host: Host,
    pub plane: Arc<DataPlane>,
    pub listeners: Vec<SocketAddr>,
    /// Whether the table came from the admin API (storage) rather than the config.
    pub routes_from_storage: Mutex<bool>,
    /// One route-table edit at a time (read, change, check, store, swap).
    pub edits: tokio::sync::Mutex<()>,
    engine: Mutex<Option<Engine>>,
    stop: watch::Sender<bool>,
    /// The listeners' tasks: they end once drained after `stop`.
    serving: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("listeners", &self.listeners).finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn start(host: Host, config: Config) -> Result<Gateway, String> {
        let listen = config.check()?;
        let seneca_web = config.seneca.check().map_err(|e| format!("modules.config.gateway.{e}"))?;
        let engine = Engine::start(config.workers)?;
        let runtime = Arc::clone(&engine.runtime);
        let metrics = Arc::new(Metrics::register().map_err(|e| format!("gateway metrics: {e}"))?);
        let registry = Arc::new(Registry::new(config.outlier.clone(), config.circuit.clone()));

        // Routes changed through the admin API outlive restarts; they win over config.
        let storage = host.storage();
        let stored = run_blocking(&runtime, async move { storage.get(ROUTES_KEY).await })
            .map_err(|e| format!("gateway: cannot read its stored routes: {e}"))?;
        let (specs, from_storage) = match stored {
            Some(entry) => (
                serde_json::from_str::<Vec<RouteSpec>>(&entry.value)
                    .map_err(|e| format!("gateway: the stored route table is unreadable: {e}"))?,
                true,
            ),
            None => (config.routes.clone(), false),
        };
        let table = Table::build(specs, &|route, target| registry.resolve(route, target))
            .map_err(|e| format!("modules.config.gateway.routes: {e}"))?;

        let _entered = runtime.enter();
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for addr in &listen {
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| format!("modules.config.gateway.listen: cannot listen on {addr}: {e}"))?;
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            bound.push(listener.local_addr().map_err(|e| e.to_string())?);
            listeners.push(tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?);
        }
        let plane = Arc::new(DataPlane {
            table: ArcSwap::from_pointee(table),
            registry: Arc::clone(&registry),
            metrics: Arc::clone(&metrics),
            access_log: AccessLog::start(&config.access_log, host.clone()),
            budget: RetryBudget::new(&config.retry_budget),
            limits: config.limits.clone(),
            outlier: config.outlier.clone(),
            seneca: config.seneca.enabled.then(|| SenecaPlane::new(config.seneca.path.clone(), seneca_web)),
            tracer: {
                let log_host = host.clone();
                Tracer::start(&config.tracing, move |line| log_host.warn(&format!("gateway tracing: {line}")))
            },
        });
        let (stop, stopped) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(config.limits.max_connections));
        let mut serving = Vec::new();
        for listener in listeners {
            serving.push(tokio::spawn(server::serve(
                listener,
                Arc::clone(&plane),
                Arc::clone(&connections),
                stopped.clone(),
                DRAIN,
            )));
        }
        if let Some(agent) = &config.catalog.address {
            let agent = address_of(agent)?;
            let pin_key = config.seneca.enabled.then(|| config.seneca.meta_key.clone());
            let discovery = Discovery::new(agent, config.catalog.token.clone(), registry, host.clone(), pin_key);
            if plane.seneca.is_some() {
                tokio::spawn(follow_pins(Arc::clone(&plane), discovery.pins(), host.clone()));
            }
            tokio::spawn(discovery.run());
        }
        tokio::spawn(refresh_gauges(Arc::clone(&plane)));
        drop(_entered);
        host.info(&format!(
            "gateway: listening on {}",
            bound.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ));
        Ok(Gateway {
            host,
            plane,
            listeners: bound,
            routes_from_storage: Mutex::new(from_storage),
            edits: tokio::sync::Mutex::new(()),
            engine: Mutex::new(Some(engine)),
            stop,
            serving: Mutex::new(serving),
        })
    }

    pub fn describe(&self) -> String {
        let table = self.plane.table.load();
        format!(
            "listening on {}; {} routes; {} upstreams",
            self.listeners.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            table.routes().len(),
            self.plane.registry.all().len()
        )
    }

    /// Builds and swaps in a new table; the old one keeps serving if it is refused.
    pub fn install(&self, specs: Vec<RouteSpec>) -> Result<(), String> {
        let registry = &self.plane.registry;
        let table = Table::build(specs, &|route, target| registry.resolve(route, target))?;
        let used: BTreeSet<String> = table.routes().iter().map(|r| r.upstream.name.clone()).collect();
        self.plane.table.store(Arc::new(table));
        registry.retain_static(&used);
        Ok(())
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
        let Some(engine) = self.engine.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let serving = std::mem::take(&mut *self.serving.lock().unwrap_or_else(|e| e.into_inner()));
        // The listeners drain on the runtime's own threads; wait for them from a plain
        // thread (this may be called inside another runtime's context).
        let tracer = self.plane.tracer.clone();
        run_blocking(&engine.runtime, async move {
            let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), futures::future::join_all(serving)).await;
            // Spans of the drained requests go out before the runtime does.
            tracer.shutdown().await;
        });
        engine.stop();
    }
}

/// The data plane's runtime, on threads of its own so proxied traffic never waits on
/// the module's runtime. One worker is a current-thread runtime driven by a dedicated
/// thread (no work-stealing bookkeeping on the request path); more are a multi-thread
/// runtime.
struct Engine {
    runtime: Arc<tokio::runtime::Runtime>,
    /// The current-thread runtime's driving thread, and what tells it to finish.
    driver: Option<(std::thread::JoinHandle<()>, watch::Sender<bool>)>,
}

impl Engine {
    fn start(workers: usize) -> Result<Engine, String> {
        let built = match workers {
            1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            n => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .thread_name("gateway")
                .enable_all()
                .build(),
        };
        let runtime = Arc::new(built.map_err(|e| format!("gateway: cannot start its runtime: {e}"))?);
        let driver = if workers == 1 {
            let (finish, mut finished) = watch::channel(false);
            let driven = Arc::clone(&runtime);
            let thread = std::thread::Builder::new()
                .name("gateway".into())
                .spawn(move || {
                    driven.block_on(async move {
                        let _ = finished.wait_for(|done| *done).await;
                    })
                })
                .map_err(|e| format!("gateway: cannot start its thread: {e}"))?;
            Some((thread, finish))
        } else {
            None
        };
        Ok(Engine { runtime, driver })
    }

    /// Ends the driving thread, then the runtime with whatever is left on it.
    fn stop(self) {
        if let Some((thread, finish)) = self.driver {
            finish.send_replace(true);
            let _ = thread.join();
        }
        if let Ok(runtime) = Arc::try_unwrap(self.runtime) {
            runtime.shutdown_background();
        }
    }
}

/// Runs a future to its end from synchronous code that may sit inside another
/// runtime's context (a module's `init`): on a plain thread of its own.
fn run_blocking<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = runtime.handle().clone();
    std::thread::spawn(move || handle.block_on(future)).join().expect("the storage read does not panic")
}

/// Gauges that describe state rather than events, kept current once a second.
async fn refresh_gauges(plane: Arc<DataPlane>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for upstream in plane.registry.all() {
            let instances = upstream.instances();
            let name = upstream.name.as_str();
            plane.metrics.instances.with(&[name]).set(instances.len() as f64);
            plane.metrics.ejected.with(&[name]).set(upstream.ejected() as f64);
            let open: usize = instances.iter().map(|i| i.pool.open()).sum();
            let idle: usize = instances.iter().map(|i| i.pool.idle()).sum();
            plane.metrics.pool_connections.with(&[name, "open"]).set(open as f64);
            plane.metrics.pool_connections.with(&[name, "idle"]).set(idle as f64);
        }
    }
}

/// Rebuilds the Seneca directory whenever the pins the catalog's services declare
/// change; unreadable pins and colliding patterns are said in the host's log.
async fn follow_pins(plane: Arc<DataPlane>, mut pins: watch::Receiver<Pins>, host: Host) {
    let Some(seneca) = &plane.seneca else { return };
    loop {
        let declared = pins.borrow_and_update().clone();
        let instances = declared
            .iter()
            .flat_map(|(service, texts)| texts.iter().map(move |t| (service.as_str(), Some(t.as_str()))));
        let (directory, problems) = Directory::from_instance_meta(instances);
        for p in problems {
            host.warn(&format!("gateway: service {} declares unreadable Seneca pins: {}", p.service, p.problem));
        }
        for c in directory.collisions() {
            host.warn(&format!(
                "gateway: Seneca pattern {} is declared by {} and {}; {} gets it (first by name)",
                c.pattern, c.winner, c.loser, c.winner
            ));
        }
        seneca.directory.store(Arc::new(directory));
        if pins.changed().await.is_err() {
            return;
        }
    }
}
