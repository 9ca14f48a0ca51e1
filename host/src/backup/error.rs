//! The backup manager's one error type. The API maps it to statuses; the messages are
//! written for the operator who will read them in a response or the task history.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The id has path characters or is not shaped like ours.
    #[error("{0}")]
    BadId(String),
    #[error("no backup {0:?} in the backup folder; GET /api/backups lists them")]
    NotFound(String),
    #[error("another backup or restore is running; try again when it has finished")]
    Busy,
    /// The archive is not one this host will restore (traversal, unknown entries,
    /// checksum mismatch, corrupt gzip). Nothing was changed.
    #[error("backup {id:?} refused: {reason}; nothing was changed")]
    Refused { id: String, reason: String },
    /// The host's layout or its services prevent the operation right now.
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("backup worker failed: {0}")]
    Worker(String),
}

impl BackupError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
