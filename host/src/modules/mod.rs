//! Runtime modules: `.so` files built against `plugin-api`, loaded from the modules
//! folder and served under `/api/module/{name}/`. The table of loaded modules is one
//! `Arc` swapped atomically on reload: requests in flight keep the generation they
//! started on, and a replaced module's `shutdown` runs once its last request is done.
//! A module that fails to load is listed with one line and never affects the others.
//!
//! What in-process loading cannot contain: a segfault, an abort, or a handler that
//! loops without yielding. Only load modules you trust.

mod host_services;
mod loader;
mod watch;

pub use host_services::HostServices;
pub use loader::{LoadedModule, RouteInfo};
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
    supervisor: Arc<Supervisor>,
    events: EventBus,
    tasks: TaskTracker,
    /// Reloads are serialised.
    reload_lock: tokio::sync::Mutex<()>,
}

impl ModuleHost {
    pub fn new(
        config: ModulesConfig,
        data_dir: &Path,
        store: Arc<dyn Store>,
        supervisor: Arc<Supervisor>,
        events: EventBus,
        tasks: TaskTracker,
    ) -> Self {
        Self {
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
        }
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
            for r in &m.routes {
                let path = format!("/api/module/{}{}", m.name, r.path);
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
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "The module's answer"},
                        "401": {"description": "Missing or invalid token"},
                        "500": {"description": "The handler panicked"},
                        "504": {"description": "The handler timed out"}
                    }
                });
                let item = paths.entry(path).or_insert_with(|| serde_json::json!({}));
                item[r.method.to_lowercase()] = operation;
            }
        }
        paths
    }

    /// Re-reads the folder: new and changed libraries are loaded (a changed file as a
    /// new generation), unchanged ones kept, removed ones retired. Never fails as a
    /// whole: each library's failure is its own problem line.
    pub async fn reload(&self) -> Arc<ModuleTable> {
        self.reload_with(None).await
    }

    /// `force`: load this module's file again even if it did not change (an operator's
    /// `reload?name=`).
    pub async fn reload_with(&self, force: Option<&str>) -> Arc<ModuleTable> {
        let _serial = self.reload_lock.lock().await;
        let previous = self.table();
        let files = library_files(&self.config.dir);
        let disabled = self.disabled().await;
        let mut next = ModuleTable { disabled: disabled.clone(), ..ModuleTable::default() };
        for file in files {
            let file_name = file.display().to_string();
            let hash = match std::fs::read(&file) {
                Ok(bytes) => hex(&Sha256::digest(&bytes)),
                Err(e) => {
                    next.problems.push(ModuleProblem { file: file_name, error: format!("cannot read: {e}") });
                    continue;
                }
            };
            if disabled.iter().any(|d| d.hash == hash) {
                continue; // listed under `disabled`, never opened
            }
            let unchanged = previous.modules.values().find(|m| m.file == file && m.hash == hash);
            if let Some(same) = unchanged.filter(|m| force != Some(m.name.as_str())) {
                next.modules.insert(same.name.clone(), Arc::clone(same));
                continue;
            }
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let loaded = self.load_blocking(file.clone(), hash, generation).await;
            match loaded {
                Ok(module) if disabled.iter().any(|d| d.name == module.name) => {
                    // A new build of a disabled module stays out of service.
                    self.retire(module);
                }
                Ok(module) if next.modules.contains_key(&module.name) => {
                    let other = next.modules[&module.name].file.display().to_string();
                    next.problems.push(ModuleProblem {
                        file: file_name,
                        error: format!("duplicate module name {:?} (already loaded from {other})", module.name),
                    });
                    self.retire(module);
                }
                Ok(module) => {
                    tracing::info!(module = %module.name, version = %module.version, generation, file = %file_name, "module loaded");
                    self.events.publish(Event::ModuleLoad {
                        name: module.name.clone(),
                        file: file_name,
                        outcome: "loaded".into(),
                        generation,
                    });
                    next.modules.insert(module.name.clone(), module);
                }
                Err(error) => {
                    tracing::warn!(file = %file_name, "module not loaded: {error}");
                    self.events.publish(Event::ModuleLoad {
                        name: String::new(),
                        file: file_name.clone(),
                        outcome: format!("failed: {error}"),
                        generation,
                    });
                    next.problems.push(ModuleProblem { file: file_name, error });
                }
            }
        }
        let next = Arc::new(next);
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&next);
        for old in previous.modules.values() {
            if !next.modules.values().any(|m| Arc::ptr_eq(m, old)) {
                self.retire(Arc::clone(old));
            }
        }
        next
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
    pub async fn disable(&self, name: &str) -> Result<Arc<ModuleTable>, ModuleError> {
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
        Ok(self.reload().await)
    }

    /// Puts a disabled module back (loading its library again).
    pub async fn enable(&self, name: &str) -> Result<Arc<ModuleTable>, ModuleError> {
        let mut disabled = self.disabled().await;
        let before = disabled.len();
        disabled.retain(|d| d.name != name);
        if disabled.len() == before {
            let loaded = self.table().modules.contains_key(name);
            return if loaded { Ok(self.table()) } else { Err(ModuleError::NotFound(name.to_string())) };
        }
        self.store.put_setting(DISABLED_SETTING, &serde_json::to_string(&disabled).unwrap_or_default()).await?;
        tracing::info!(module = name, "module enabled");
        Ok(self.reload().await)
    }

    async fn load_blocking(&self, file: PathBuf, hash: String, generation: u64) -> Result<Arc<LoadedModule>, String> {
        let copy_dir = self.copy_dir.clone();
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let config = self.config.config.get(module_name_guess(&stem)).cloned().unwrap_or(serde_json::Value::Null);
        let (store, supervisor, events) = (Arc::clone(&self.store), Arc::clone(&self.supervisor), self.events.clone());
        let runtime = tokio::runtime::Handle::current();
        // dlopen and the module's init are blocking (and init may call host services,
        // which block on the host runtime): off the async workers.
        tokio::task::spawn_blocking(move || {
            let services = |name: &str| HostServices {
                module: name.to_string(),
                store: Arc::clone(&store),
                supervisor: Arc::clone(&supervisor),
                events: events.clone(),
                runtime: runtime.clone(),
            };
            loader::load(&file, &hash, &copy_dir, generation, &config, &services)
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

/// `libhello_module.so` → `hello_module` → the config key is the module name, which
/// authors usually derive from the crate name; both spellings are looked up.
fn module_name_guess(stem: &str) -> &str {
    let stem = stem.strip_prefix("lib").unwrap_or(stem);
    stem.strip_prefix("module_").unwrap_or(stem).trim_end_matches("_module")
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
