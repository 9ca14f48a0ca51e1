//! Uploads: a stream of bytes stored atomically at a confined path. The bytes go to a
//! new temporary file in the target's own directory (so the final rename cannot cross
//! file systems), are fsynced, then renamed over the target and the directory fsynced.
//! A reader sees the old file or the new one, never half of one; an upload that fails,
//! goes over the limit or is abandoned by its client leaves nothing behind.
//!
//! The stream is generic so a multipart field can be stored by the same code as a raw
//! request body. Not done here: deciding the limit (the caller passes it).

use std::ffi::OsString;
use std::fs::{File, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::dir::Dir;
use super::entry::{FileEntry, Written};
use super::error::FileError;
use super::ops::FileManager;
use super::resolve::Leaf;

/// Mode of a new file; a replaced file keeps its own (an uploaded `start.sh` that
/// replaces an executable one stays executable).
const NEW_FILE_MODE: u32 = 0o644;

/// An upload in progress: the temporary file exists; dropping this without
/// [`Upload::write_from`] succeeding removes it.
#[derive(Debug)]
pub struct Upload {
    dir: Dir,
    leaf: OsString,
    temp: OsString,
    file: Option<File>,
    rel: String,
    replaces: bool,
    limit: u64,
    committed: bool,
}

impl FileManager {
    /// Checks the target and creates the temporary file. Blocking.
    pub fn begin_upload(&self, path: &str, limit: u64) -> Result<Upload, FileError> {
        let r = self.resolve(path, Leaf::Follow)?;
        let Some(leaf) = r.leaf() else {
            return Err(FileError::BadRequest("the path names the root directory; give a file path".into()));
        };
        let dir = self.walk("uploading", &r, r.parent()).map_err(|e| match e {
            FileError::NotFound(_) => FileError::NotFound(format!(
                "uploading {:?}: its directory does not exist; create it first with POST /api/files/mkdir",
                r.rel
            )),
            other => other,
        })?;
        let (mode, replaces) = match std::fs::symlink_metadata(dir.child(&leaf)) {
            Ok(m) if m.is_file() => (m.mode() & 0o7777, true),
            Ok(m) if m.is_dir() => {
                return Err(FileError::Conflict(format!("uploading {:?}: it is a directory", r.rel)));
            }
            Ok(_) => return Err(FileError::BadRequest(format!("uploading {:?}: it is not a regular file", r.rel))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (NEW_FILE_MODE, false),
            Err(e) => return Err(FileError::io("uploading", &r.rel, e)),
        };
        // A fixed-length name: the target's own name may already be at NAME_MAX.
        let temp = OsString::from(format!(".apollo-upload-{:016x}.tmp", rand::random::<u64>()));
        let file = dir.create_new(&temp, 0o600).map_err(|e| FileError::io("uploading", &r.rel, e))?;
        let mut upload = Upload { dir, leaf, temp, file: None, rel: r.rel.clone(), replaces, limit, committed: false };
        // Set explicitly (fchmod) rather than at create: the umask must not change the
        // mode of a file being replaced.
        file.set_permissions(Permissions::from_mode(mode)).map_err(|e| FileError::io("uploading", &r.rel, e))?;
        upload.file = Some(file);
        Ok(upload)
    }
}

impl Upload {
    /// Stores the whole stream, then commits. Over `limit` bytes: `TooLarge`, and the
    /// temporary file is removed.
    pub async fn write_from<S, E>(mut self, body: S) -> Result<Written, FileError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let Some(std_file) = self.file.take() else {
            return Err(FileError::Internal("upload used twice".into()));
        };
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| FileError::BadRequest(format!("uploading {:?}: reading the body: {e}", self.rel)))?;
            written += chunk.len() as u64;
            if written > self.limit {
                return Err(self.too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| FileError::io("uploading", &self.rel, e))?;
        }
        file.flush().await.map_err(|e| FileError::io("uploading", &self.rel, e))?;
        // Data on disk before the rename makes it visible: otherwise a crash could leave
        // the new name pointing at an empty file.
        file.sync_all().await.map_err(|e| FileError::io("uploading", &self.rel, e))?;
        drop(file);
        let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
        tokio::task::spawn_blocking(move || self.commit(sha256))
            .await
            .map_err(|e| FileError::Internal(format!("upload task failed: {e}")))?
    }

    pub fn too_large(&self) -> FileError {
        FileError::TooLarge(format!("uploading {:?}: the body is over the limit of {} bytes", self.rel, self.limit))
    }

    fn commit(mut self, sha256: String) -> Result<Written, FileError> {
        // rename(2) replaces the name itself: if a symlink was swapped in at the target
        // meanwhile, the link is replaced, not written through.
        std::fs::rename(self.dir.child(&self.temp), self.dir.child(&self.leaf))
            .map_err(|e| FileError::io("uploading", &self.rel, e))?;
        self.committed = true;
        self.dir.sync().map_err(|e| FileError::io("uploading", &self.rel, e))?;
        let meta = std::fs::symlink_metadata(self.dir.child(&self.leaf))
            .map_err(|e| FileError::io("uploading", &self.rel, e))?;
        Ok(Written { entry: FileEntry::new(&self.rel, &meta), sha256, created: !self.replaces })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // One unlink, even on an async thread: it must happen whichever way the upload
        // ended (error, limit, client gone, request deadline), and Drop cannot await.
        if let Err(e) = std::fs::remove_file(self.dir.child(&self.temp))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.rel, "abandoned upload's temporary file not removed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + use<> {
        futures::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn writes_atomically_keeps_mode_and_cleans_up() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/start.sh"), b"old").unwrap();
        std::fs::set_permissions(root.join("bin/start.sh"), Permissions::from_mode(0o750)).unwrap();
        let fm = FileManager::open(root).unwrap();

        let w = fm.begin_upload("bin/start.sh", 100).unwrap().write_from(chunks(&[b"#!/bin/sh\n", b"exit 0\n"])).await;
        let w = w.unwrap();
        assert!(!w.created);
        assert_eq!(w.entry.mode, "0750");
        assert_eq!(std::fs::read(root.join("bin/start.sh")).unwrap(), b"#!/bin/sh\nexit 0\n");
        assert_eq!(w.sha256, format!("{:x}", Sha256::digest(b"#!/bin/sh\nexit 0\n")));

        let w = fm.begin_upload("bin/new", 100).unwrap().write_from(chunks(&[b"x"])).await.unwrap();
        assert!(w.created);
        assert_eq!(w.entry.mode, "0644");

        let over = fm.begin_upload("bin/big", 4).unwrap().write_from(chunks(&[b"abc", b"de"])).await;
        assert!(matches!(over, Err(FileError::TooLarge(_))), "{over:?}");
        let abandoned = fm.begin_upload("bin/never", 4).unwrap();
        drop(abandoned);
        assert_eq!(names(&root.join("bin")), ["new", "start.sh"], "no temporary file is left");

        assert!(matches!(fm.begin_upload("bin", 4), Err(FileError::Conflict(_))));
        assert!(matches!(fm.begin_upload("", 4), Err(FileError::BadRequest(_))));
        assert!(matches!(fm.begin_upload("no/dir/x", 4), Err(FileError::NotFound(_))));
    }
}
