//! Restore, in an order that keeps every failure harmless for as long as possible:
//!
//! 1. unpack into staging directories next to app_root and app_manager (services keep
//!    running; a bad archive is refused here and nothing has changed);
//! 2. stop the services that are up, remembering them (if one will not stop, the others
//!    are started again and the restore is abandoned);
//! 3. swap the staged trees into place by rename, all or nothing;
//! 4. re-read the models (they live in app_root), so the registry, the store's model
//!    records and the supervisor follow the restored files;
//! 5. start again the services that were up.
//!
//! The store is deliberately not restored live: replacing the SQLite file under the
//! open connection of a running host would corrupt it or be silently ignored (the host
//! keeps the old inode open), and it would bring back revoked tokens and an old admin
//! password while sessions are in use. The archive's snapshot is verified against its
//! checksum; restoring the audit log, tokens and settings is an offline step (stop the
//! host, extract `store/apollo.db` over `db.sqlite.path`). Models and runtime state
//! come back through step 4 and the supervisor's own records.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{self, Targets};
use super::swap::{self, Swap};
use super::{BackupError, BackupManager, blocking};
use crate::registry::ReloadReport;
use crate::supervisor::ServiceState;

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreReport {
    pub id: String,
    /// Entries unpacked into app_root and app_manager.
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Services that were up and were stopped for the restore.
    pub stopped: Vec<String>,
    /// Of those, the ones started again.
    pub restarted: Vec<String>,
    /// Of those, the ones that could not be started again (e.g. no longer in the models).
    pub not_restarted: Vec<NotRestarted>,
    /// The model re-read after the swap.
    pub models: ReloadReport,
    /// Why the store tables were not replaced (see the module documentation).
    pub store: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotRestarted {
    pub name: String,
    pub error: String,
}

/// Why the live store is left alone; also in the report.
const STORE_NOTE: &str = "store tables (audit log, tokens, settings) were not replaced on the running host; the \
     snapshot's checksum was verified. To restore them on SQLite, stop the host and extract store/apollo.db over \
     db.sqlite.path; on MongoDB, extract it under <data_dir>/stores/ and copy it in with module-db-migrate \
     (POST /api/module/db-migrate/copy {\"from\": {\"sqlite\": \"apollo.db\"}, \"to\": \"active\"})";

/// Removes staging directories of an abandoned restore, off the async threads.
async fn discard(dirs: Vec<std::path::PathBuf>) {
    let _ = tokio::task::spawn_blocking(move || dirs.iter().for_each(|d| swap::remove_quietly(d))).await;
}

/// States in which a service counts as up: it is, or is about to be, running.
fn is_up(state: ServiceState) -> bool {
    matches!(state, ServiceState::Running | ServiceState::Starting | ServiceState::Unhealthy | ServiceState::Backoff)
}

impl BackupManager {
    /// Restores backup `backup_id` into place (see the module documentation).
    pub async fn restore(&self, backup_id: &str) -> Result<RestoreReport, BackupError> {
        let archive = self.archive_path(backup_id)?;
        let _busy = self.busy.try_lock().map_err(|_| BackupError::Busy)?;
        self.check_layout()?;
        let layout = self.layout.clone();
        let suffix = format!("{:08x}", rand::random::<u32>());
        let staging_app = swap::sibling(&layout.app_root, "restore", &suffix);
        let staging_manager = swap::sibling(&layout.app_manager, "restore", &suffix);
        let swaps = vec![
            Swap {
                staging: staging_app.clone(),
                target: layout.app_root.clone(),
                aside: swap::sibling(&layout.app_root, "old", &suffix),
            },
            Swap {
                staging: staging_manager.clone(),
                target: layout.app_manager.clone(),
                aside: swap::sibling(&layout.app_manager, "old", &suffix),
            },
        ];
        let staging = vec![staging_app.clone(), staging_manager.clone()];

        // 1. Unpack while the services still run.
        let id_for_worker = backup_id.to_string();
        let (app, manager) = (staging_app.clone(), staging_manager.clone());
        let unpacked = blocking(move || {
            for dir in [&app, &manager] {
                if let Some(parent) = dir.parent() {
                    std::fs::create_dir_all(parent).map_err(BackupError::io(format!("create {}", parent.display())))?;
                }
                std::fs::create_dir(dir).map_err(BackupError::io(format!("create {}", dir.display())))?;
            }
            let extracted = extract::extract(&id_for_worker, &archive, Targets { app: &app, manager: &manager })?;
            use std::os::unix::fs::PermissionsExt;
            for (dir, mode) in [(&app, extracted.app_mode), (&manager, extracted.manager_mode)] {
                let mode = mode.unwrap_or(0o755);
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                    .map_err(BackupError::io(format!("chmod {}", dir.display())))?;
            }
            Ok(extracted)
        })
        .await;
        let extracted = match unpacked {
            Ok(extracted) => extracted,
            Err(e) => {
                discard(staging).await;
                return Err(e);
            }
        };

        // 2. Stop what is up, remembering it.
        let up: Vec<String> =
            self.supervisor.statuses().await.into_iter().filter(|s| is_up(s.state)).map(|s| s.name).collect();
        let mut refused = Vec::new();
        for name in &up {
            if let Err(e) = self.supervisor.stop(name).await {
                refused.push(format!("{name}: {e}"));
            }
        }
        let still_up: Vec<String> =
            self.supervisor.statuses().await.into_iter().filter(|s| is_up(s.state)).map(|s| s.name).collect();
        if !refused.is_empty() || !still_up.is_empty() {
            self.start_again(&up).await;
            discard(staging).await;
            let detail =
                if refused.is_empty() { format!("still up: {}", still_up.join(", ")) } else { refused.join("; ") };
            return Err(BackupError::Conflict(format!(
                "restore abandoned, nothing changed: services did not stop ({detail})"
            )));
        }

        // 3. Swap, all or nothing.
        let swapped = blocking(move || {
            let result = swap::swap_all(&swaps).map_err(BackupError::io("put the restored directories in place"));
            if result.is_ok() {
                swaps.iter().for_each(|s| swap::remove_quietly(&s.aside));
            }
            result
        })
        .await;
        if let Err(e) = swapped {
            self.start_again(&up).await;
            discard(staging).await;
            return Err(e);
        }
        tracing::info!(id = backup_id, files = extracted.files, "backup restored into app_root and app_manager");

        // 4. The models came back with app_root.
        let models = match self.registry.reload().await {
            Ok(report) => report,
            Err(e) => {
                // The in-memory registry is already swapped (see Registry::reload).
                tracing::warn!("model reload after restore: {e}");
                ReloadReport::default()
            }
        };

        // 5. Start again what was up.
        let (restarted, not_restarted) = self.start_again(&up).await;
        Ok(RestoreReport {
            id: backup_id.to_string(),
            files: extracted.files,
            dirs: extracted.dirs,
            symlinks: extracted.symlinks,
            stopped: up,
            restarted,
            not_restarted,
            models,
            store: STORE_NOTE.to_string(),
        })
    }

    /// Starts each named service (its run_dep first); returns started and failed.
    async fn start_again(&self, names: &[String]) -> (Vec<String>, Vec<NotRestarted>) {
        let (mut started, mut failed) = (Vec::new(), Vec::new());
        for name in names {
            match self.supervisor.start(name).await {
                Ok(_) => started.push(name.clone()),
                Err(e) => {
                    tracing::warn!(service = %name, "not started again after restore: {e}");
                    failed.push(NotRestarted { name: name.clone(), error: e.to_string() });
                }
            }
        }
        (started, failed)
    }

    /// Directory layouts a rename swap cannot handle safely are refused up front.
    fn check_layout(&self) -> Result<(), BackupError> {
        let l = &self.layout;
        for (key, dir) in [("app_root", &l.app_root), ("app_manager", &l.app_manager)] {
            if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(BackupError::Conflict(format!(
                    "{key} {} is a symlink; a restore would replace the link, not its target. Point {key} at the \
                     real directory",
                    dir.display()
                )));
            }
        }
        let nested = |inner: &std::path::Path, outer: &std::path::Path| inner.starts_with(outer);
        let pairs = [
            ("app_manager", &l.app_manager, "app_root", &l.app_root),
            ("app_root", &l.app_root, "app_manager", &l.app_manager),
            ("app_back_up", &l.backup_dir, "app_root", &l.app_root),
            ("app_back_up", &l.backup_dir, "app_manager", &l.app_manager),
            ("data_dir", &l.data_dir, "app_root", &l.app_root),
            ("data_dir", &l.data_dir, "app_manager", &l.app_manager),
        ];
        for (inner_key, inner, outer_key, outer) in pairs {
            if nested(inner, outer) {
                return Err(BackupError::Conflict(format!(
                    "{inner_key} {} is inside {outer_key} {}; restore swaps whole directories and would replace \
                     it. Move it out to restore",
                    inner.display(),
                    outer.display()
                )));
            }
        }
        Ok(())
    }
}
