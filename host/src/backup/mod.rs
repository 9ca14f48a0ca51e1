//! Backup and restore of a host: a `.tar.gz` in `app_back_up` holding `manifest.json`,
//! `app/` (all of app_root, the models folder included), `manager/` (the manage
//! scripts) and `store/apollo.db` (a consistent SQLite online-backup snapshot, never
//! a copy of the live file). Retention keeps the newest `backup.retention`.
//!
//! Files: `id.rs` (names), `manifest.rs`, `archive.rs` (writing), `catalog.rs` (list,
//! retention, delete), `extract.rs` (safe unpacking), `swap.rs` (directories into place
//! by rename), `restore.rs` (stop services, swap, reload models, start them again).
//!
//! Invariants: one backup or restore at a time per host (`Busy` otherwise); nothing
//! is written outside `app_back_up` and the staging directories next to the targets;
//! the process's working directory is never changed (the seed's backup did, racing
//! every relative path in the host). Heavy work runs on the blocking pool. It knows
//! nothing about HTTP.

mod archive;
mod catalog;
mod error;
mod extract;
pub mod id;
mod manifest;
mod restore;
mod swap;
#[cfg(test)]
mod tests;

pub use catalog::BackupEntry;
pub use error::BackupError;
pub use manifest::{Manifest, StoreSnapshot, TreeStats};
pub use restore::{NotRestarted, RestoreReport};

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::registry::Registry;
use crate::store::Store;
use crate::supervisor::Supervisor;

/// A backup just written, and the old ones retention removed to make room.
#[derive(Debug, Clone)]
pub struct Created {
    pub entry: BackupEntry,
    pub removed: Vec<String>,
}

/// The directories a backup covers, from the config.
#[derive(Debug, Clone)]
struct Layout {
    app_root: PathBuf,
    app_manager: PathBuf,
    backup_dir: PathBuf,
    data_dir: PathBuf,
}

#[derive(Debug)]
pub struct BackupManager {
    layout: Layout,
    retention: usize,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    supervisor: Arc<Supervisor>,
    /// Held by create and restore: a restore must not swap a tree a backup is reading.
    busy: tokio::sync::Mutex<()>,
}

impl BackupManager {
    pub fn new(config: &Config, store: Arc<dyn Store>, registry: Arc<Registry>, supervisor: Arc<Supervisor>) -> Self {
        Self {
            layout: Layout {
                app_root: config.app_root.clone(),
                app_manager: config.app_manager.clone(),
                backup_dir: config.app_back_up.clone(),
                data_dir: config.data_dir.clone(),
            },
            retention: config.backup.retention.max(1) as usize,
            store,
            registry,
            supervisor,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.layout.backup_dir
    }

    /// Every backup in the folder, newest first.
    pub async fn list(&self) -> Result<Vec<BackupEntry>, BackupError> {
        let dir = self.layout.backup_dir.clone();
        blocking(move || catalog::list(&dir)).await
    }

    pub async fn get(&self, backup_id: &str) -> Result<BackupEntry, BackupError> {
        let (dir, backup_id) = (self.layout.backup_dir.clone(), backup_id.to_string());
        blocking(move || catalog::describe(&dir, &backup_id)).await
    }

    /// The archive file of a backup, for download.
    pub fn archive_path(&self, backup_id: &str) -> Result<PathBuf, BackupError> {
        catalog::locate(&self.layout.backup_dir, backup_id)
    }

    pub async fn delete(&self, backup_id: &str) -> Result<(), BackupError> {
        let (dir, backup_id) = (self.layout.backup_dir.clone(), backup_id.to_string());
        blocking(move || catalog::delete(&dir, &backup_id)).await
    }

    /// Writes a new backup, then applies retention.
    pub async fn create(&self) -> Result<Created, BackupError> {
        let _busy = self.busy.try_lock().map_err(|_| BackupError::Busy)?;
        let layout = self.layout.clone();
        let backup_id = id::new_id(chrono::Utc::now());
        let dir = layout.backup_dir.clone();
        blocking(move || {
            // Private: the store snapshot holds the admin password hash and token hashes.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(BackupError::io(format!("create {}", dir.display())))
        })
        .await?;
        let snapshot = layout.backup_dir.join(format!(".{backup_id}.db.partial"));
        let services: Vec<String> = self.registry.snapshot().apps.keys().cloned().collect();
        let taken = self.store.snapshot_to(&snapshot).await;
        let written = match taken {
            Ok(()) => {
                let (snapshot, backup_id) = (snapshot.clone(), backup_id.clone());
                blocking(move || write_backup(&layout, &backup_id, services, &snapshot)).await
            }
            Err(e) => Err(e.into()),
        };
        let _ = tokio::fs::remove_file(&snapshot).await;
        written?;
        let dir = self.layout.backup_dir.clone();
        let (keep, created_id) = (self.retention, backup_id.clone());
        let (entry, removed) =
            blocking(move || Ok((catalog::describe(&dir, &created_id)?, catalog::prune(&dir, keep)?))).await?;
        if !removed.is_empty() {
            tracing::info!(kept = keep, removed = ?removed, "backup retention applied");
        }
        tracing::info!(id = %backup_id, bytes = entry.size_bytes, "backup written");
        Ok(Created { entry, removed })
    }
}

/// Plans the trees, writes `.<id>.tar.gz.partial`, then renames it to `<id>.tar.gz`
/// and syncs the folder: a crash never leaves a truncated archive under a backup's name.
fn write_backup(layout: &Layout, backup_id: &str, services: Vec<String>, snapshot: &Path) -> Result<(), BackupError> {
    let exclude_from_app = vec![layout.backup_dir.clone(), layout.data_dir.clone(), layout.app_manager.clone()];
    let exclude_from_manager = vec![layout.backup_dir.clone(), layout.data_dir.clone()];
    let app = archive::plan_tree("app", &layout.app_root, &exclude_from_app)
        .map_err(BackupError::io(format!("read app_root {}", layout.app_root.display())))?;
    let manager = archive::plan_tree("manager", &layout.app_manager, &exclude_from_manager)
        .map_err(BackupError::io(format!("read app_manager {}", layout.app_manager.display())))?;
    let (sha256, bytes) = archive::sha256_file(snapshot).map_err(BackupError::io("read the store snapshot"))?;
    let manifest = Manifest {
        version: manifest::FORMAT_VERSION,
        id: backup_id.to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        host_version: crate::VERSION.to_string(),
        services,
        app: app.stats.clone(),
        manager: manager.stats.clone(),
        store: StoreSnapshot { path: manifest::STORE_ENTRY.to_string(), bytes, sha256 },
    };
    let partial = layout.backup_dir.join(format!(".{backup_id}.tar.gz.partial"));
    let result = archive::write_archive(&partial, &manifest, &[app, manager], snapshot)
        .and_then(|_| std::fs::rename(&partial, layout.backup_dir.join(id::file_name(backup_id))))
        .and_then(|()| std::fs::File::open(&layout.backup_dir)?.sync_all());
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map_err(BackupError::io(format!("write backup {backup_id}")))
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T, BackupError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BackupError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| BackupError::Worker(e.to_string()))?
}
