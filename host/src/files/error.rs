//! The file manager's errors, classified the way a client needs them (the HTTP edge maps
//! each class to one status). OS errors are translated here, with the user's path in the
//! message and never the host's absolute path.

use std::io;

use nix::libc;

use super::resolve::ResolveError;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Malformed path or an operation that cannot apply to this entry (400).
    #[error("{0}")]
    BadRequest(String),
    /// Outside the root, or a protected target such as the root itself (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The entry's state is in the way: exists, not empty, is a directory (409).
    #[error("{0}")]
    Conflict(String),
    /// Over the size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The host's own failure: disk full, permissions of the host's user, missing /proc.
    #[error("{0}")]
    Internal(String),
}

impl FileError {
    /// Classifies an OS error met while doing `what` to the user's path `rel`.
    pub fn io(what: &str, rel: &str, e: io::Error) -> Self {
        let shown = if rel.is_empty() { "the root" } else { rel };
        let msg = |detail: &str| format!("{what} {shown:?}: {detail}");
        match e.raw_os_error() {
            Some(libc::ENOENT) => Self::NotFound(msg("no such file or directory")),
            Some(libc::ENOTDIR) => Self::BadRequest(msg("a component of the path is not a directory")),
            Some(libc::EISDIR) => Self::Conflict(msg("it is a directory")),
            Some(libc::EEXIST) => Self::Conflict(msg("it already exists")),
            Some(libc::ENOTEMPTY) => Self::Conflict(msg("the directory is not empty")),
            // The walk opens every directory with O_NOFOLLOW: a symlink there was swapped
            // in after the path was checked, or is a loop.
            Some(libc::ELOOP) => Self::Forbidden(msg("a symlink is in the way (loop, or changed during the request)")),
            Some(libc::EXDEV) => Self::Conflict(msg("source and destination are on different file systems")),
            Some(libc::ENAMETOOLONG) => Self::BadRequest(msg("the name is too long")),
            Some(libc::EACCES | libc::EPERM) => Self::Forbidden(msg("permission denied by the file system")),
            Some(libc::EROFS) => Self::Conflict(msg("the file system is read-only")),
            Some(libc::ENOSPC | libc::EDQUOT) => Self::Internal(msg("no space left on the device")),
            _ => Self::Internal(msg(&e.to_string())),
        }
    }
}

impl From<ResolveError> for FileError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Malformed { .. } => Self::BadRequest(e.to_string()),
            ResolveError::Escapes { .. } => Self::Forbidden(e.to_string()),
            ResolveError::Root { .. } => Self::Internal(e.to_string()),
            ResolveError::Io { path, source } => Self::io("resolving", &path, source),
        }
    }
}
