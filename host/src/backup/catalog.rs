//! The backup folder as a catalog: which archives are ours (by file name), what each
//! holds (its manifest), retention (keep the newest N) and deletion. Files in the
//! folder that are not named like our backups are never listed nor deleted.
//! Blocking code: callers use spawn_blocking.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::BackupError;
use super::id;
use super::manifest::read_manifest;

/// One backup as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupEntry {
    /// `apollo-<UTC timestamp>-<suffix>`; the file is `<id>.tar.gz`.
    pub id: String,
    /// RFC 3339 UTC, from the manifest (the file's mtime if the manifest is unreadable).
    pub created_at: String,
    /// Size of the archive file.
    pub size_bytes: u64,
    /// The services registered when it was taken.
    pub services: Vec<String>,
    /// The host version that wrote it.
    pub host_version: Option<String>,
    /// Regular files under app/ and manager/.
    pub files: u64,
    /// Why the manifest could not be read; such an archive cannot be restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The archive's path for a client-supplied id: `BadId` or `NotFound` otherwise.
pub fn locate(dir: &Path, backup_id: &str) -> Result<PathBuf, BackupError> {
    id::validate(backup_id).map_err(BackupError::BadId)?;
    let path = dir.join(id::file_name(backup_id));
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        _ => Err(BackupError::NotFound(backup_id.to_string())),
    }
}

/// Our backup ids in `dir`, newest first (ids sort by creation time).
pub fn ids(dir: &Path) -> Result<Vec<String>, BackupError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::Io { context: format!("list {}", dir.display()), source: e }),
    };
    let mut ids: Vec<String> = read
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| id::from_file_name(&e.file_name().to_string_lossy()).map(str::to_string))
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    Ok(ids)
}

/// Describes one archive; an unreadable manifest is reported in `problem`, not an error.
pub fn describe(dir: &Path, backup_id: &str) -> Result<BackupEntry, BackupError> {
    let path = locate(dir, backup_id)?;
    let meta = std::fs::metadata(&path).map_err(BackupError::io(format!("stat {}", path.display())))?;
    let mtime = meta
        .modified()
        .ok()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let entry = match read_manifest(&path) {
        Ok(m) => BackupEntry {
            id: backup_id.to_string(),
            created_at: m.created_at,
            size_bytes: meta.len(),
            services: m.services,
            host_version: Some(m.host_version),
            files: m.app.files + m.manager.files,
            problem: None,
        },
        Err(problem) => BackupEntry {
            id: backup_id.to_string(),
            created_at: mtime,
            size_bytes: meta.len(),
            services: Vec::new(),
            host_version: None,
            files: 0,
            problem: Some(problem),
        },
    };
    Ok(entry)
}

/// Every backup, newest first.
pub fn list(dir: &Path) -> Result<Vec<BackupEntry>, BackupError> {
    let mut out = Vec::new();
    for backup_id in ids(dir)? {
        match describe(dir, &backup_id) {
            Ok(entry) => out.push(entry),
            // Deleted (retention, another client) between the listing and the read.
            Err(BackupError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Deletes all but the newest `keep`; returns the deleted ids.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<String>, BackupError> {
    let mut removed = Vec::new();
    for old in ids(dir)?.into_iter().skip(keep.max(1)) {
        match std::fs::remove_file(dir.join(id::file_name(&old))) {
            Ok(()) => removed.push(old),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::Io { context: format!("retention: delete {old}"), source: e }),
        }
    }
    Ok(removed)
}

pub fn delete(dir: &Path, backup_id: &str) -> Result<(), BackupError> {
    let path = locate(dir, backup_id)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BackupError::NotFound(backup_id.to_string())),
        Err(e) => Err(BackupError::Io { context: format!("delete {}", path.display()), source: e }),
    }
}
