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

pub use host_services::HostServices;
pub use loader::{LoadedModule, RouteInfo};

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

/// The modules in service; replaced as a whole on reload.
#[derive(Debug, Default)]
pub struct ModuleTable {
    pub modules: BTreeMap<String, Arc<LoadedModule>>,
    pub problems: Vec<ModuleProblem>,
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

    /// Re-reads the folder: new and changed libraries are loaded (a changed file as a
    /// new generation), unchanged ones kept, removed ones retired. Never fails as a
    /// whole: each library's failure is its own problem line.
    pub async fn reload(&self) -> Arc<ModuleTable> {
        let _serial = self.reload_lock.lock().await;
        let previous = self.table();
        let files = library_files(&self.config.dir);
        let mut next = ModuleTable::default();
        for file in files {
            let file_name = file.display().to_string();
            let hash = match std::fs::read(&file) {
                Ok(bytes) => hex(&Sha256::digest(&bytes)),
                Err(e) => {
                    next.problems.push(ModuleProblem { file: file_name, error: format!("cannot read: {e}") });
                    continue;
                }
            };
            if let Some(same) = previous.modules.values().find(|m| m.file == file && m.hash == hash) {
                next.modules.insert(same.name.clone(), Arc::clone(same));
                continue;
            }
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let loaded = self.load_blocking(file.clone(), hash, generation).await;
            match loaded {
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
