//! The live set of services: models read from `<app_root>/.octopus/` (or the seed's
//! `octopusMeta/`), validated one by one and against each other, swapped in as one
//! snapshot. One bad file never blocks the others: it becomes a [`ModelProblem`].
//!
//! The registry persists what it loaded to the store and announces changes on the
//! event bus. It knows nothing about HTTP, processes or scripts.

pub mod graph;
mod scan;
mod watch;

pub use scan::{LoadedModel, ModelProblem, ProblemKind, ScanResult, problems_if_loaded};
pub use watch::spawn_watcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::events::{Event, EventBus};
use crate::store::{ModelRecord, RuntimeRecord, Store, StoreError};

/// One consistent view of the registry; readers hold an `Arc` to it.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub apps: BTreeMap<String, LoadedModel>,
    pub problems: Vec<ModelProblem>,
    /// Increases with every reload that changed anything.
    pub generation: u64,
}

/// What one reload did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Number of files that could not be loaded (details at /api/models/problems).
    pub problems: usize,
    pub generation: u64,
}

#[derive(Debug)]
pub struct Registry {
    models_dir: PathBuf,
    store: Arc<dyn Store>,
    events: EventBus,
    current: RwLock<Arc<Snapshot>>,
    /// Reloads (watcher, timer, API) are serialised so two never interleave their diffs.
    reload_lock: tokio::sync::Mutex<()>,
}

impl Registry {
    pub fn new(models_dir: PathBuf, store: Arc<dyn Store>, events: EventBus) -> Self {
        Self {
            models_dir,
            store,
            events,
            current: RwLock::new(Arc::new(Snapshot::default())),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// The current snapshot; cheap, never blocks on a reload in progress.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn get(&self, name: &str) -> Option<LoadedModel> {
        self.snapshot().apps.get(name).cloned()
    }

    /// Re-reads the folder, swaps in the result, announces and persists the difference.
    /// A store failure is returned after the in-memory swap: the live set is always the
    /// files' truth, and the next reload (at the latest the periodic one) retries.
    pub async fn reload(&self) -> Result<ReloadReport, StoreError> {
        let _serial = self.reload_lock.lock().await;
        let previous = self.snapshot();
        let dir = self.models_dir.clone();
        let prev_for_scan = Arc::clone(&previous);
        let scanned =
            tokio::task::spawn_blocking(move || scan::scan_dir(&dir, &prev_for_scan, &|name| std::env::var(name).ok()))
                .await
                .map_err(|e| StoreError::Worker(format!("model scan: {e}")))?;

        let mut report = ReloadReport::default();
        for (name, loaded) in &scanned.apps {
            match previous.apps.get(name) {
                None => report.added.push(name.clone()),
                Some(old) if old.hash != loaded.hash || old.file != loaded.file => report.changed.push(name.clone()),
                Some(_) => report.unchanged += 1,
            }
        }
        report.removed = previous.apps.keys().filter(|n| !scanned.apps.contains_key(*n)).cloned().collect();
        report.problems = scanned.problems.len();
        let problems_changed = scanned.problems != previous.problems;
        let changed = !report.added.is_empty() || !report.changed.is_empty() || !report.removed.is_empty();
        let generation = previous.generation + u64::from(changed || problems_changed);
        report.generation = generation;

        let new_problems: Vec<ModelProblem> =
            scanned.problems.iter().filter(|p| !previous.problems.contains(p)).cloned().collect();
        let next = Arc::new(Snapshot { apps: scanned.apps, problems: scanned.problems, generation });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&next);

        for problem in &new_problems {
            tracing::warn!(file = %problem.file, kind = ?problem.kind, "model not loaded: {}", problem.message);
            self.events.publish(Event::ModelProblem { file: problem.file.clone(), message: problem.message.clone() });
        }
        self.persist_and_announce(&next, &report).await?;
        if changed {
            tracing::info!(
                added = report.added.len(),
                changed = report.changed.len(),
                removed = report.removed.len(),
                problems = report.problems,
                generation,
                "registry reloaded"
            );
        }
        Ok(report)
    }

    /// Announces the difference, then brings the store in line with the live set by
    /// comparing hashes (not the diff), so a write that failed on an earlier reload is
    /// retried on the next one. Events go out whatever the store says.
    async fn persist_and_announce(&self, next: &Snapshot, report: &ReloadReport) -> Result<(), StoreError> {
        for name in &report.added {
            let file = next.apps[name].file.display().to_string();
            self.events.publish(Event::ModelAdded { name: name.clone(), file });
        }
        for name in &report.changed {
            let file = next.apps[name].file.display().to_string();
            self.events.publish(Event::ModelChanged { name: name.clone(), file });
        }
        for name in &report.removed {
            self.events.publish(Event::ModelRemoved { name: name.clone() });
        }

        let stored: BTreeMap<String, String> =
            self.store.list_models().await?.into_iter().map(|r| (r.name, r.hash)).collect();
        for (name, loaded) in &next.apps {
            if stored.get(name) != Some(&loaded.hash) {
                self.store.upsert_model(&ModelRecord::from(loaded)).await?;
            }
            if !stored.contains_key(name) && self.store.get_runtime(name).await?.is_none() {
                self.store.put_runtime(&initial_runtime(&loaded.model)).await?;
            }
        }
        // Includes models deleted while the host was down.
        for name in stored.keys().filter(|n| !next.apps.contains_key(*n)) {
            self.store.remove_model(name).await?;
        }
        Ok(())
    }
}

/// The runtime row a newly registered service starts with: what its file says (the
/// seed kept runtime data in the model), status `stopped` until something runs it.
fn initial_runtime(model: &crate::model::Octopus) -> RuntimeRecord {
    RuntimeRecord {
        name: model.name.clone(),
        pid: model.runtime.pid.trim().parse().ok().filter(|p: &i64| *p > 0),
        ports: model.runtime.ports.iter().filter_map(|p| u16::try_from(*p).ok()).collect(),
        stop_operation: model.runtime.stop_operation,
        last_status: "stopped".into(),
        updated_at_ms: crate::store::now_ms(),
        ..RuntimeRecord::default()
    }
}

/// Reads and validates a model folder without a running host (`apollo check`).
pub fn check_folder(dir: &Path) -> ScanResult {
    scan::scan_dir(dir, &Snapshot::default(), &|name| std::env::var(name).ok())
}

impl From<&LoadedModel> for ModelRecord {
    fn from(m: &LoadedModel) -> Self {
        ModelRecord {
            name: m.model.name.clone(),
            id: m.model.id.clone(),
            file: m.file.display().to_string(),
            hash: m.hash.clone(),
            model: serde_json::to_value(&m.model).unwrap_or_default(),
            loaded_at_ms: m.loaded_at_ms,
        }
    }
}
