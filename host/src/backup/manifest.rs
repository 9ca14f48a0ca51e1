//! `manifest.json`, the first entry of every archive: what the backup holds, from
//! which host version, and the checksum of the store snapshot. Being first, it is read
//! by decompressing a few kilobytes, which is what makes listing cheap.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The archive layout this host writes and understands.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";
/// The store snapshot's path inside the archive.
pub const STORE_ENTRY: &str = "store/apollo.db";
/// A manifest larger than this is not one of ours.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    /// Archive format version (1).
    pub version: u32,
    pub id: String,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
    /// The version of the host that wrote it.
    pub host_version: String,
    /// The services registered when the backup was taken.
    pub services: Vec<String>,
    /// `app/`: the whole app_root, models folder included.
    pub app: TreeStats,
    /// `manager/`: the manage scripts (app_manager).
    pub manager: TreeStats,
    /// `store/apollo.db`: the SQLite online-backup snapshot.
    pub store: StoreSnapshot,
}

/// What one directory tree contributed to the archive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TreeStats {
    /// The directory that was archived.
    pub source: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Total size of the regular files.
    pub bytes: u64,
    /// Sockets, FIFOs and devices: not archived.
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoreSnapshot {
    /// Path inside the archive.
    pub path: String,
    pub bytes: u64,
    /// Hex SHA-256 of the snapshot; a restore checks it.
    pub sha256: String,
}

/// Reads the manifest from the start of an archive.
pub fn read_manifest(archive: &Path) -> Result<Manifest, String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open: {e}"))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut entries = tar.entries().map_err(|e| format!("not a tar.gz archive: {e}"))?;
    let first =
        entries.next().ok_or_else(|| "empty archive".to_string())?.map_err(|e| format!("not a tar.gz archive: {e}"))?;
    parse_entry(first)
}

/// Parses a tar entry that must be `manifest.json`.
pub fn parse_entry<R: Read>(entry: tar::Entry<'_, R>) -> Result<Manifest, String> {
    let path = entry.path_bytes().into_owned();
    if path != MANIFEST_NAME.as_bytes() {
        return Err(format!("first entry is {:?}, not {MANIFEST_NAME}", String::from_utf8_lossy(&path)));
    }
    if entry.size() > MAX_MANIFEST_BYTES {
        return Err(format!("{MANIFEST_NAME} is {} bytes; too large to be one", entry.size()));
    }
    let mut text = Vec::new();
    entry.take(MAX_MANIFEST_BYTES).read_to_end(&mut text).map_err(|e| format!("cannot read {MANIFEST_NAME}: {e}"))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| format!("invalid {MANIFEST_NAME}: {e}"))?;
    if manifest.version != FORMAT_VERSION {
        return Err(format!(
            "archive format version {} is not the one this host reads ({FORMAT_VERSION})",
            manifest.version
        ));
    }
    Ok(manifest)
}
