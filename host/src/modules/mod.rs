//! Runtime modules: `.so` files built against `plugin-api`, loaded from the modules
//! folder and served under `/api/module/{name}/`. The table of loaded modules is one
//! `Arc` swapped atomically on reload: requests in flight keep the generation they
//! started on, and a replaced module's `shutdown` runs once its last request is done.
//! A module that fails to load is listed with one line and never affects the others.
//!
//! What in-process loading cannot contain: a segfault, an abort, or a handler that
//! loops without yielding. Only load modules you trust.

mod dispatch;
mod host_services;
mod loader;
mod storage_service;
mod store_service;
mod watch;

pub use dispatch::{Matched, Miss, ModuleCall, ModuleReply, PendingReply, Via};
pub use host_services::HostServices;
pub use loader::{LoadedModule, RouteInfo};
pub use storage_service::call as storage_call;
pub use store_service::StoreAdmin;
pub use watch::spawn_watcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::config::ModulesConfig;
use crate::events::{Event, EventBus};
use crate::store::Store;
use crate::supervisor::Supervisor;

/// A library in the folder that is not in service, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModuleProblem {
    pub file: String,
    pub error: String,
}

/// A module an operator disabled: not loaded again until enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct DisabledModule {
    pub name: String,
    pub file: String,
    /// The library's hash when it was disabled: that build is not even opened again.
    pub hash: String,
}

/// The modules in service; replaced as a whole on reload.
#[derive(Debug, Default)]
pub struct ModuleTable {
    pub modules: BTreeMap<String, Arc<LoadedModule>>,
    pub problems: Vec<ModuleProblem>,
    pub disabled: Vec<DisabledModule>,
}

/// How long loading one library (dlopen + the module's init) may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one module's `shutdown` may take at host exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The store setting that lists disabled modules.
const DISABLED_SETTING: &str = "modules.disabled";

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("no module named {0:?}; GET /api/modules lists them")]
    NotFound(String),
    #[error("cannot store the module state: {0}")]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug)]
pub struct ModuleHost {
    config: ModulesConfig,
    copy_dir: PathBuf,
    table: RwLock<Arc<ModuleTable>>,
    generation: AtomicU64,
    /// Libraries loaded over the host's life that are no longer in service (their code
    /// stays mapped: libraries are never unloaded).
    leaked: AtomicU64,
    store: Arc<dyn Store>,
    store_admin: Arc<StoreAdmin>,
    supervisor: Arc<Supervisor>,
    events: EventBus,
    tasks: TaskTracker,
    /// Reloads are serialised.
    reload_lock: tokio::sync::Mutex<()>,
    /// Libraries refused before, by path and hash: not opened again (each load of a
    /// library maps it for good) until the file changes.
    refused: std::sync::Mutex<BTreeMap<PathBuf, (String, String)>>,
    /// Serialises changes to the disabled list (read, change, write).
    disabled_edit: tokio::sync::Mutex<()>,
    /// Bumped on every table swap, for those that follow the table (module listeners).
    swaps: tokio::sync::watch::Sender<u64>,
    /// Each module listener's state, as the listener manager last reported it.
    listeners: std::sync::Mutex<BTreeMap<String, ListenerStatus>>,
}

/// A module's own listener (`modules.listeners`), as `GET /api/modules` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ListenerStatus {
    /// As configured.
    pub address: String,
    /// The address actually bound (with the port chosen for `:0`), while serving.
    pub bound: Option<String>,
    /// Why it is not serving, when it is not.
    pub error: Option<String>,
}

impl ModuleHost {
    pub fn new(
        config: ModulesConfig,
        data_dir: &Path,
        store: Arc<dyn Store>,
        store_admin: Arc<StoreAdmin>,
        supervisor: Arc<Supervisor>,
        events: EventBus,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            store_admin,
            config,
            copy_dir: data_dir.join("modules").join("loaded"),
            table: RwLock::new(Arc::new(ModuleTable::default())),
            generation: AtomicU64::new(0),
            leaked: AtomicU64::new(0),
            store,
            supervisor,
            events,
            tasks,
            reload_lock: tokio::sync::Mutex::new(()),
            refused: std::sync::Mutex::new(BTreeMap::new()),
            disabled_edit: tokio::sync::Mutex::new(()),
            swaps: tokio::sync::watch::Sender::new(0),
            listeners: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Fires after every table swap (reload, enable, disable, shutdown).
    pub fn subscribe_swaps(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// The listener each module should have, by module name.
    pub fn configured_listeners(&self) -> &BTreeMap<String, String> {
        &self.config.listeners
    }

    pub fn set_listener_status(&self, module: &str, status: Option<ListenerStatus>) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        match status {
            Some(status) => listeners.insert(module.to_string(), status),
            None => listeners.remove(module),
        };
    }

    pub fn listener_status(&self, module: &str) -> Option<ListenerStatus> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).get(module).cloned()
    }

    /// Whether `method path` on module `name`'s admin mount is a route the module
    /// authenticates itself. Unknown modules and routes are not: the gate fails closed.
    pub fn route_is_public(&self, name: &str, method: &str, path: &str, via: Via) -> bool {
        self.table().modules.get(name).is_some_and(|m| m.is_public(method, path, via))
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    pub fn table(&self) -> Arc<ModuleTable> {
        Arc::clone(&self.table.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn leaked_generations(&self) -> u64 {
        self.leaked.load(Ordering::Relaxed)
    }

    pub fn handler_timeout(&self) -> Duration {
        Duration::from_secs(self.config.handler_timeout_secs.max(1))
    }

    /// `loaded`, or `degraded` once a module has panicked `degraded_after_panics` times.
    pub fn state_of(&self, module: &LoadedModule) -> &'static str {
        let panics = module.panics.load(Ordering::Relaxed);
        if panics >= self.config.degraded_after_panics.max(1) { "degraded" } else { "loaded" }
    }

    /// The OpenAPI path items of every loaded module's routes, for `/api/openapi.json`.
    pub fn openapi_paths(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut paths = serde_json::Map::new();
        for m in self.table().modules.values() {
            for r in m.routes.iter().filter(|r| r.on_admin) {
                // OpenAPI templates have no catch-all syntax: `{*rest}` is written `{rest}`.
                let path = format!("/api/module/{}{}", m.name, r.path.replace("{*", "{"));
                let params: Vec<serde_json::Value> = r
                    .path
                    .split('/')
                    .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .map(|p| serde_json::json!({"name": p.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}}))
                    .collect();
                let operation = serde_json::json!({
                    "tags": [format!("module {}", m.name)],
                    "summary": r.summary,
                    "description": format!("Served by module {} {} (generation {}).", m.name, m.version, m.generation),
                    "parameters": params,
                    // Public routes are authenticated by the module, not the host's token.
                    "security": if r.public { serde_json::json!([]) } else { serde_json::json!([{"bearer": []}]) },
                    "responses": {
                        "200": {"description": "The module's answer"},
                        "401": {"description": "Missing or invalid credentials"},
                        "500": {"description": "The handler panicked"},
                        "504": {"description": "The handler timed out"}
                    }
                });
                let item = paths.entry(path).or_insert_with(|| serde_json::json!({}));
                let methods: Vec<String> = if r.method == "*" {
                    ["get", "post", "put", "delete", "patch"].iter().map(|m| m.to_string()).collect()
                } else {
                    vec![r.method.to_lowercase()]
                };
                for method in methods {
                    if item.get(&method).is_none() || r.method != "*" {
                        item[method] = operation.clone();
                    }
                }
            }
        }
        paths
    }

    /// Re-reads the folder: new and changed libraries are loaded (a changed file as a
    /// new generation), unchanged ones kept, removed ones retired. Never fails as a
    /// whole: each library's failure is its own problem line.
    pub async fn reload(self: &Arc<Self>) -> Arc<ModuleTable> {
        self.reload_with(None).await
    }

    /// `force`: load this module's file again even if it did not change (an operator's
    /// `reload?name=`). The work runs as a task of its own: a client that goes away
    /// mid-reload cannot leave half-loaded generations behind.
    pub async fn reload_with(self: &Arc<Self>, force: Option<&str>) -> Arc<ModuleTable> {
        let this = Arc::clone(self);
        let force = force.map(str::to_string);
        let task = self.tasks.spawn(async move { this.reload_now(force.as_deref()).await });
        match task.await {
            Ok(table) => table,
            Err(e) => {
                tracing::error!("module reload failed: {e}");
                self.table()
            }
        }
    }

    async fn reload_now(&self, force: Option<&str>) -> Arc<ModuleTable> {
        let _serial = self.reload_lock.lock().await;
        let previous = self.table();
        let dir = self.config.dir.clone();
        // Listing and hashing read every library: off the async workers.
        let files = tokio::task::spawn_blocking(move || {
            library_files(&dir)
                .into_iter()
                .map(|file| {
                    let hash = std::fs::read(&file).map(|bytes| hex(&Sha256::digest(&bytes)));
                    (file, hash)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let disabled = self.disabled().await;
        let mut next = ModuleTable { disabled: disabled.clone(), ..ModuleTable::default() };
        for (file, hash) in files {
            let file_name = file.display().to_string();
            let hash = match hash {
                Ok(hash) => hash,
                Err(e) => {
                    next.problems.push(ModuleProblem { file: file_name, error: format!("cannot read: {e}") });
                    continue;
                }
            };
            if disabled.iter().any(|d| d.hash == hash) {
                continue; // listed under `disabled`, never opened
            }
            let serving = previous.modules.values().find(|m| m.file == file);
            if let Some(same) = serving.filter(|m| m.hash == hash && force != Some(m.name.as_str())) {
                self.admit(&mut next, Arc::clone(same), &file_name);
                continue;
            }
            let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner()).get(&file).cloned();
            if let Some((_, error)) = refused.filter(|(h, _)| *h == hash) {
                // Refused before and unchanged: not opened again.
                next.problems.push(ModuleProblem { file: file_name, error });
                continue;
            }
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let loaded =
                match tokio::time::timeout(LOAD_TIMEOUT, self.load_blocking(file.clone(), hash.clone(), generation))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => {
                        Err(format!("did not finish loading within {} s (does its init hang?)", LOAD_TIMEOUT.as_secs()))
                    }
                };
            match loaded {
                Ok(module) if disabled.iter().any(|d| d.name == module.name) => {
                    // A new build of a disabled module stays out of service.
                    self.retire(module);
                }
                Ok(module) => {
                    if self.admit(&mut next, Arc::clone(&module), &file_name) {
                        tracing::info!(module = %module.name, version = %module.version, generation, file = %file_name, "module loaded");
                        self.events.publish(Event::ModuleLoad {
                            name: module.name.clone(),
                            file: file_name,
                            outcome: "loaded".into(),
                            generation,
                        });
                    } else {
                        self.retire(module);
                    }
                }
                Err(error) => {
                    tracing::warn!(file = %file_name, "module not loaded: {error}");
                    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                    self.events.publish(Event::ModuleLoad {
                        name: stem,
                        file: file_name.clone(),
                        outcome: format!("failed: {error}"),
                        generation,
                    });
                    self.refused.lock().unwrap_or_else(|p| p.into_inner()).insert(file.clone(), (hash, error.clone()));
                    match serving {
                        // A broken new build never takes a working one out of service.
                        Some(old) => {
                            next.problems.push(ModuleProblem {
                                file: file_name.clone(),
                                error: format!("{error}; generation {} keeps serving", old.generation),
                            });
                            self.admit(&mut next, Arc::clone(old), &file_name);
                        }
                        None => next.problems.push(ModuleProblem { file: file_name, error }),
                    }
                }
            }
        }
        let next = Arc::new(next);
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&next);
        self.swaps.send_modify(|n| *n += 1);
        for old in previous.modules.values() {
            if !next.modules.values().any(|m| Arc::ptr_eq(m, old)) {
                self.retire(Arc::clone(old));
            }
        }
        next
    }

    /// Puts `module` into `next` unless its name is taken (first file by name wins);
    /// `false` (and a problem line) when it is a duplicate.
    fn admit(&self, next: &mut ModuleTable, module: Arc<LoadedModule>, file_name: &str) -> bool {
        if let Some(other) = next.modules.get(&module.name) {
            let other = other.file.display().to_string();
            next.problems.push(ModuleProblem {
                file: file_name.to_string(),
                error: format!("duplicate module name {:?} (already loaded from {other})", module.name),
            });
            return false;
        }
        next.modules.insert(module.name.clone(), module);
        true
    }

    /// Takes every module out of service at host shutdown, running each `shutdown`.
    pub async fn shutdown_all(&self) {
        let table = std::mem::take(&mut *self.table.write().unwrap_or_else(|p| p.into_inner()));
        self.swaps.send_modify(|n| *n += 1);
        for module in table.modules.values() {
            let module = Arc::clone(module);
            let name = module.name.clone();
            let done =
                tokio::time::timeout(SHUTDOWN_TIMEOUT, tokio::task::spawn_blocking(move || module.object.shutdown()))
                    .await;
            if done.is_err() {
                tracing::warn!(module = %name, "shutdown did not return within {} s", SHUTDOWN_TIMEOUT.as_secs());
            }
        }
    }

    async fn disabled(&self) -> Vec<DisabledModule> {
        match self.store.get_setting(DISABLED_SETTING).await {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_default(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!("cannot read disabled modules: {e}");
                Vec::new()
            }
        }
    }

    /// Takes a module out of service and keeps it out (across restarts) until enabled.
    pub async fn disable(self: &Arc<Self>, name: &str) -> Result<Arc<ModuleTable>, ModuleError> {
        let edit = self.disabled_edit.lock().await;
        let table = self.table();
        let module = table.modules.get(name).ok_or_else(|| ModuleError::NotFound(name.to_string()))?;
        let mut disabled = self.disabled().await;
        disabled.retain(|d| d.name != name);
        disabled.push(DisabledModule {
            name: name.to_string(),
            file: module.file.display().to_string(),
            hash: module.hash.clone(),
        });
        self.store.put_setting(DISABLED_SETTING, &serde_json::to_string(&disabled).unwrap_or_default()).await?;
        tracing::info!(module = name, "module disabled");
        drop(edit);
        Ok(self.reload().await)
    }

    /// Puts a disabled module back (loading its library again).
    pub async fn enable(self: &Arc<Self>, name: &str) -> Result<Arc<ModuleTable>, ModuleError> {
        let edit = self.disabled_edit.lock().await;
        let mut disabled = self.disabled().await;
        let before = disabled.len();
        disabled.retain(|d| d.name != name);
        if disabled.len() == before {
            let loaded = self.table().modules.contains_key(name);
            return if loaded { Ok(self.table()) } else { Err(ModuleError::NotFound(name.to_string())) };
        }
        self.store.put_setting(DISABLED_SETTING, &serde_json::to_string(&disabled).unwrap_or_default()).await?;
        tracing::info!(module = name, "module enabled");
        drop(edit);
        Ok(self.reload().await)
    }

    async fn load_blocking(&self, file: PathBuf, hash: String, generation: u64) -> Result<Arc<LoadedModule>, String> {
        let copy_dir = self.copy_dir.clone();
        let configs = self.config.config.clone();
        let (store, supervisor, events) = (Arc::clone(&self.store), Arc::clone(&self.supervisor), self.events.clone());
        let store_admin = Arc::clone(&self.store_admin);
        let runtime = tokio::runtime::Handle::current();
        // dlopen and the module's init are blocking (and init may call host services,
        // which block on the host runtime): off the async workers.
        tokio::task::spawn_blocking(move || {
            let services = |name: &str| HostServices {
                module: name.to_string(),
                subscription: Arc::new(tokio::sync::Mutex::new(events.subscribe())),
                store: Arc::clone(&store),
                supervisor: Arc::clone(&supervisor),
                events: events.clone(),
                runtime: runtime.clone(),
                store_admin: Arc::clone(&store_admin),
            };
            loader::load(&file, &hash, &copy_dir, generation, &configs, &services)
        })
        .await
        .map_err(|e| format!("loading panicked: {e}"))?
    }

    /// Takes a module out of service: its `shutdown` runs once no request holds it.
    fn retire(&self, module: Arc<LoadedModule>) {
        self.leaked.fetch_add(1, Ordering::Relaxed);
        self.tasks.spawn(async move {
            while Arc::strong_count(&module) > 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tracing::info!(module = %module.name, generation = module.generation, "module generation retired");
            let _ = tokio::task::spawn_blocking(move || module.object.shutdown()).await;
        });
    }
}

fn library_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && name.ends_with(".so") && p.is_file()
        })
        .collect();
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
