//! What the file manager reports about an entry: the JSON shapes of list, stat and the
//! results of changes. Built from metadata that was read without following the entry
//! if it is a symlink, so a link is shown as a link, never as what it points to.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket or device node.
    Other,
}

impl EntryKind {
    pub fn of(meta: &Metadata) -> Self {
        let t = meta.file_type();
        if t.is_symlink() {
            Self::Symlink
        } else if t.is_dir() {
            Self::Dir
        } else if t.is_file() {
            Self::File
        } else {
            debug_assert!(t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device());
            Self::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileEntry {
    /// The last component (`""` for the root).
    pub name: String,
    /// Relative to `app_root`, as the client would pass it back (`""` for the root).
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Bytes (for a symlink, the length of its target text).
    pub size: u64,
    /// Last modification, RFC 3339 UTC.
    pub mtime: Option<String>,
    /// Permission bits in octal, e.g. `"0644"`.
    pub mode: String,
}

impl FileEntry {
    pub fn new(path: &str, meta: &Metadata) -> Self {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        let mtime = chrono::DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec().clamp(0, 999_999_999) as u32)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        Self {
            name,
            path: path.to_string(),
            kind: EntryKind::of(meta),
            size: meta.len(),
            mtime,
            mode: format!("{:04o}", meta.mode() & 0o7777),
        }
    }
}

/// `GET /api/files`: one directory's entries, sorted by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    pub path: String,
    pub entries: Vec<FileEntry>,
    /// More entries exist than the `limit` returned.
    pub truncated: bool,
}

/// The result of an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Written {
    pub entry: FileEntry,
    /// SHA-256 of the bytes stored, hex: the client can compare it with its own.
    pub sha256: String,
    /// `false` when an existing file was replaced.
    pub created: bool,
}

/// The result of mkdir.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Made {
    pub entry: FileEntry,
    /// `false` when the directory was already there (mkdir is idempotent).
    pub created: bool,
}

/// The result of remove.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Removed {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
}
