//! The host's claim on its data directory: created private (0700, it holds the store
//! and the socket) and locked with `<data_dir>/apollo.lock`, so two hosts never share
//! one store. Taken first at start, before listeners or the store; it does not know
//! what lives in the directory.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: another host already uses this data directory (lock held); stop it or set data_dir")]
    Locked { path: String },
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Holds the data-directory lock for the host's lifetime (the lock is the value).
/// Released when dropped, or by the kernel on a crash.
#[derive(Debug)]
pub struct DataDirLock(#[allow(dead_code)] Flock<std::fs::File>);

/// Creates `data_dir` (0700) if needed and takes its lock without waiting.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, DataDirError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| DataDirError::Create { path: data_dir.display().to_string(), source })?;
    let path = data_dir.join("apollo.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DataDirError::Create { path: path.display().to_string(), source })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(DataDirLock(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Err(DataDirError::Locked { path: data_dir.display().to_string() }),
        Err((_, errno)) => Err(DataDirError::Create { path: path.display().to_string(), source: errno.into() }),
    }
}
