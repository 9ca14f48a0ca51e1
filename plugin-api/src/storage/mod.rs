//! Module storage: each module's own ordered keys with per-key versions, module-wide
//! revisions, compare-and-set, all-or-nothing commits and a change feed, the same on
//! the host's SQLite store and on a MongoDB database a fleet of hosts shares. Authors
//! use [`Storage`]; the host answers the JSON protocol defined here
//! (`host/src/modules/storage_service.rs`), and [`MemoryStorage`] answers it in memory
//! for the test host. This file does not know how requests cross the FFI: that is the
//! [`StorageTransport`] the SDK implements over the host object.
//!
//! The model:
//! - a key (1 to [`MAX_KEY_BYTES`] bytes of UTF-8) holds a text value (at most
//!   [`MAX_VALUE_BYTES`]); keys are ordered by their bytes;
//! - every successful write set (a [`Storage::commit`], or one `put`/`delete`) takes
//!   the module's next **revision**, one for the whole set; each written key's
//!   **version** is 1 when it is created and grows by 1 with every write (a deleted
//!   key that is written again starts over at 1);
//! - a write may expect a version (`0` = the key must not exist); if any expectation
//!   of a commit fails, nothing is written and the error is `conflict`, naming the key
//!   and its current version. Readers never see part of a commit;
//! - the change feed lists, per revision, what each write did; the store keeps at
//!   least the last [`RETAINED_REVISIONS`] revisions of a module, and a position older
//!   than that (or not from this store at all, e.g. after a restore) is `compacted`:
//!   list again and continue from the head.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes of UTF-8.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most entries one [`Storage::list`] call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Most writes in one commit (also the most changes in one feed answer, so a commit
/// always fits in one).
pub const MAX_COMMIT_WRITES: usize = 1000;
/// Most bytes of keys and values in one commit: a commit is stored as one document on
/// MongoDB, whose documents are at most 16 MiB.
pub const MAX_COMMIT_BYTES: usize = 8 * 1024 * 1024;
/// An answer (a page, a batch of changes) stops growing past this many bytes of keys
/// and values; it always holds at least one entry or one whole commit.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Longest wait of [`Storage::changes`]; longer waits are shortened to it.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// Revisions of the change feed every store keeps per module (at least).
pub const RETAINED_REVISIONS: u64 = 10_000;

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1 when the key was created, +1 per write since.
    pub version: u64,
    /// The module-wide revision of the key's last write.
    pub revision: u64,
}

/// One page of [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `after` for the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// What a single `put` or `delete` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The key's version now (0 after a delete).
    pub version: u64,
    pub revision: u64,
}

/// What a [`Storage::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The one revision of the whole set.
    pub revision: u64,
    /// Each write's key version now, in the order of the writes (0 for deletes).
    pub versions: Vec<u64>,
}

/// One write of a commit: `Write::put(k, v)` or `Write::delete(k)`, optionally
/// `.expect_version(n)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub key: String,
    /// `None` deletes the key (deleting a key that does not exist changes nothing).
    pub value: Option<String>,
    /// The version the key must have for the commit to happen (0: must not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<u64>,
}

impl Write {
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        Write { key: key.into(), value: Some(value.into()), expect: None }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        Write { key: key.into(), value: None, expect: None }
    }

    /// Only if the key is at `version` now (0: only if it does not exist).
    pub fn expect_version(mut self, version: u64) -> Self {
        self.expect = Some(version);
        self
    }

    fn bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, String::len)
    }
}

/// One write as the change feed reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub revision: u64,
    pub key: String,
    /// `None`: the key was deleted.
    pub value: Option<String>,
    /// The key's version after the write (0 after a delete).
    pub version: u64,
}

/// An answer of [`Storage::changes`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Changes {
    /// In revision order; a commit's changes are all in one answer.
    pub changes: Vec<Change>,
    /// Every matching change up to this revision is in this answer or an earlier one:
    /// pass it as `since` next time.
    pub head: u64,
}

/// Why a storage call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// An expected version did not match: `key` and `current_version` say which.
    Conflict,
    /// The change-feed position is older than the retained log (or not from this
    /// store): list again and continue from the head.
    Compacted,
    BadRequest,
    /// A key, value, commit or request over the limits of this module.
    TooLarge,
    /// The database does not answer; retry later.
    Unavailable,
    /// Anything else (including codes this SDK does not know yet).
    #[serde(other)]
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Conflict => "conflict",
            ErrorCode::Compacted => "compacted",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A failed storage call: a code to branch on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageError {
    pub code: ErrorCode,
    pub message: String,
    /// For `conflict`: the key whose expectation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For `conflict`: that key's version now (0: it does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage {}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for StorageError {}

impl StorageError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        StorageError { code, message: message.into(), key: None, current_version: None }
    }

    pub fn conflict(key: &str, expected: u64, current_version: u64) -> Self {
        StorageError {
            code: ErrorCode::Conflict,
            message: format!("key {key:?} is at version {current_version}, not {expected}"),
            key: Some(key.to_string()),
            current_version: Some(current_version),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, message)
    }

    pub fn compacted(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Compacted, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn is_conflict(&self) -> bool {
        self.code == ErrorCode::Conflict
    }

    /// The JSON the host answers with.
    #[doc(hidden)]
    pub fn to_wire(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(r#"{{"code":"internal","message":"unserialisable storage error ({})"}}"#, self.code.as_str())
        })
    }

    /// Reads the host's error JSON; anything else becomes an `internal` error quoting it.
    #[doc(hidden)]
    pub fn from_wire(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| Self::internal(format!("the host answered: {text}")))
    }
}

mod memory;
mod protocol;

pub(crate) use memory::MemoryStorage;
#[doc(hidden)]
pub use protocol::*;

/// How a [`Storage`] reaches whoever answers it: the host over the FFI, or the test
/// host's memory. Takes a request's JSON and resolves to the answer's JSON or to a
/// [`StorageError`]'s JSON.
pub(crate) trait StorageTransport: Send + Sync {
    fn call(&self, request: String) -> BoxFuture<'static, Result<String, String>>;
}

/// A module's storage. Cheap to clone; every method is one call to the host.
#[derive(Clone)]
pub struct Storage {
    transport: Arc<dyn StorageTransport>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

impl Storage {
    #[allow(dead_code, reason = "called by the SDK's host object and the test host")]
    pub(crate) fn new(transport: Arc<dyn StorageTransport>) -> Self {
        Storage { transport }
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T, StorageError> {
        let text = serde_json::to_string(request)
            .map_err(|e| StorageError::internal(format!("cannot encode the request: {e}")))?;
        match self.transport.call(text).await {
            Ok(answer) => serde_json::from_str(&answer)
                .map_err(|e| StorageError::internal(format!("unreadable answer from the host: {e}"))),
            Err(error) => Err(StorageError::from_wire(&error)),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Entry>, StorageError> {
        let answer: GetAnswer = self.call(&Request::Get { key: key.into() }).await?;
        Ok(answer.entry)
    }

    /// Up to `limit` (at most [`MAX_LIST_LIMIT`]) keys starting with `prefix`, in byte
    /// order, after `after` (exclusive). Each page is one consistent view.
    pub async fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, StorageError> {
        self.call(&Request::List { prefix: prefix.into(), after: after.map(str::to_string), limit }).await
    }

    pub async fn put(&self, key: &str, value: &str) -> Result<Written, StorageError> {
        self.single(Write::put(key, value)).await
    }

    /// Writes only if the key is at `expected_version` (0: only if it does not exist);
    /// `conflict` otherwise.
    pub async fn put_if(&self, key: &str, value: &str, expected_version: u64) -> Result<Written, StorageError> {
        self.single(Write::put(key, value).expect_version(expected_version)).await
    }

    /// Deletes the key (a missing key is not an error; `version` is 0 either way).
    pub async fn delete(&self, key: &str) -> Result<Written, StorageError> {
        self.single(Write::delete(key)).await
    }

    pub async fn delete_if(&self, key: &str, expected_version: u64) -> Result<Written, StorageError> {
        self.single(Write::delete(key).expect_version(expected_version)).await
    }

    async fn single(&self, write: Write) -> Result<Written, StorageError> {
        let committed = self.commit(vec![write]).await?;
        Ok(Written { version: committed.versions.first().copied().unwrap_or(0), revision: committed.revision })
    }

    /// Applies every write or none, under one new revision.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<Committed, StorageError> {
        self.call(&Request::Commit { writes }).await
    }

    /// The module's latest revision (0 before its first write).
    pub async fn head(&self) -> Result<u64, StorageError> {
        let answer: HeadAnswer = self.call(&Request::Head).await?;
        Ok(answer.revision)
    }

    /// Changes after revision `since` to keys starting with `prefix`: at once if there
    /// are some, else after waiting up to `wait` (at most [`MAX_WAIT`]) for one. An
    /// empty answer still moves `head` on. `compacted` when `since` is too old.
    pub async fn changes(&self, prefix: Option<&str>, since: u64, wait: Duration) -> Result<Changes, StorageError> {
        let wait_ms = u64::try_from(wait.min(MAX_WAIT).as_millis()).unwrap_or(u64::MAX);
        self.call(&Request::Changes { prefix: prefix.map(str::to_string), since, wait_ms }).await
    }
}
