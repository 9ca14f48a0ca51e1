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

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
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

/// A request of the protocol, as JSON `{"op": ..., ...}`.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Get {
        key: String,
    },
    List {
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        after: Option<String>,
        limit: u32,
    },
    Commit {
        writes: Vec<Write>,
    },
    Head,
    Changes {
        #[serde(default)]
        prefix: Option<String>,
        since: u64,
        #[serde(default)]
        wait_ms: u64,
    },
}

/// Answer to `get`.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAnswer {
    pub entry: Option<Entry>,
}

/// Answer to `head`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadAnswer {
    pub revision: u64,
}

impl Request {
    /// Parses a request and checks it against the limits: what every answerer (the
    /// host, the test host) runs first, so they refuse the same things alike.
    pub fn parse(text: &str) -> Result<Request, StorageError> {
        let request: Request =
            serde_json::from_str(text).map_err(|e| StorageError::bad_request(format!("not a storage request: {e}")))?;
        request.check()?;
        Ok(request)
    }

    pub fn check(&self) -> Result<(), StorageError> {
        match self {
            Request::Get { key } => check_key(key),
            Request::List { prefix, after, limit } => {
                check_prefix(prefix)?;
                if let Some(after) = after {
                    check_prefix(after)?;
                }
                if *limit == 0 || *limit > MAX_LIST_LIMIT {
                    return Err(StorageError::bad_request(format!(
                        "list limit {limit} is not between 1 and {MAX_LIST_LIMIT}"
                    )));
                }
                Ok(())
            }
            Request::Commit { writes } => check_commit(writes),
            Request::Head => Ok(()),
            Request::Changes { prefix, .. } => prefix.as_deref().map_or(Ok(()), check_prefix),
        }
    }

    /// A `changes` wait, shortened to [`MAX_WAIT`].
    pub fn wait(wait_ms: u64) -> Duration {
        Duration::from_millis(wait_ms).min(MAX_WAIT)
    }
}

fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(StorageError::bad_request("a key may not be empty"));
    }
    check_prefix(key)
}

fn check_prefix(text: &str) -> Result<(), StorageError> {
    if text.len() > MAX_KEY_BYTES {
        return Err(StorageError::too_large(format!(
            "key {:?}… is {} bytes, over the limit of {MAX_KEY_BYTES}",
            text.chars().take(32).collect::<String>(),
            text.len()
        )));
    }
    Ok(())
}

fn check_commit(writes: &[Write]) -> Result<(), StorageError> {
    if writes.is_empty() {
        return Err(StorageError::bad_request("a commit needs at least one write"));
    }
    if writes.len() > MAX_COMMIT_WRITES {
        return Err(StorageError::too_large(format!(
            "a commit of {} writes is over the limit of {MAX_COMMIT_WRITES}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    let mut bytes = 0;
    for write in writes {
        check_key(&write.key)?;
        if let Some(value) = &write.value
            && value.len() > MAX_VALUE_BYTES
        {
            return Err(StorageError::too_large(format!(
                "the value of {:?} is {} bytes, over the limit of {MAX_VALUE_BYTES}",
                write.key,
                value.len()
            )));
        }
        if !seen.insert(write.key.as_str()) {
            return Err(StorageError::bad_request(format!("key {:?} is written twice in one commit", write.key)));
        }
        bytes += write.bytes();
    }
    if bytes > MAX_COMMIT_BYTES {
        return Err(StorageError::too_large(format!(
            "a commit of {bytes} bytes is over the limit of {MAX_COMMIT_BYTES}"
        )));
    }
    Ok(())
}

/// The smallest string above every string that starts with `prefix` (`None`: no such
/// bound, the prefix is empty or all `char::MAX`). UTF-8 byte order is code point
/// order, so the next code point after the last one bounds the range.
#[doc(hidden)]
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        // Surrogates are not chars.
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Makes a page from up to `limit + 1` entries read in key order: the extra one only
/// says there is more. Stops early past [`MAX_ANSWER_BYTES`] (keeping at least one).
#[doc(hidden)]
pub fn page_of(mut entries: Vec<Entry>, limit: u32) -> Page {
    let mut more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let mut bytes = 0;
    if let Some(cut) = entries.iter().position(|e| {
        bytes += e.key.len() + e.value.len();
        bytes > MAX_ANSWER_BYTES
    }) {
        let keep = cut.max(1);
        more |= keep < entries.len();
        entries.truncate(keep);
    }
    let next = if more { entries.last().map(|e| e.key.clone()) } else { None };
    Page { entries, next }
}

/// Makes a feed answer from changes read in revision order. `complete` says whether
/// they are every matching change up to `head`; when not (the read hit its limit), the
/// last revision read may be partial and is left for the next call. Stops early, at a
/// commit boundary, past [`MAX_ANSWER_BYTES`] (keeping at least one commit).
#[doc(hidden)]
pub fn changes_of(mut changes: Vec<Change>, complete: bool, head: u64) -> Changes {
    let mut upto = head;
    if !complete && let Some(last) = changes.last().map(|c| c.revision) {
        let whole = changes.iter().position(|c| c.revision == last).unwrap_or(changes.len());
        if whole > 0 {
            changes.truncate(whole);
            upto = last - 1;
        } else {
            upto = last;
        }
    }
    let mut bytes = 0;
    let mut cut = None;
    for (i, c) in changes.iter().enumerate() {
        bytes += c.key.len() + c.value.as_ref().map_or(0, String::len);
        if bytes > MAX_ANSWER_BYTES && i > 0 && c.revision != changes[0].revision {
            cut = Some(i);
            break;
        }
    }
    if let Some(i) = cut {
        // Back to the first change of the revision that crossed the limit.
        let revision = changes[i].revision;
        let start = changes[..i].iter().rposition(|c| c.revision != revision).map_or(0, |p| p + 1);
        changes.truncate(start);
        upto = revision - 1;
    }
    Changes { changes, head: upto }
}

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

/// The protocol answered in memory, with the host's semantics: what the test host
/// gives a module under test.
#[derive(Debug, Clone)]
pub(crate) struct MemoryStorage {
    inner: Arc<MemoryInner>,
}

#[derive(Debug)]
struct MemoryInner {
    state: Mutex<MemoryState>,
    /// The head revision, for `changes` waiters.
    head: tokio::sync::watch::Sender<u64>,
    /// Revisions of the log kept (the host keeps [`RETAINED_REVISIONS`]).
    retained: u64,
}

#[derive(Debug, Default)]
struct MemoryState {
    data: BTreeMap<String, Entry>,
    /// Each revision's changes, oldest first, after `floor`.
    log: VecDeque<(u64, Vec<Change>)>,
    head: u64,
    /// Revisions up to this one are gone from the log.
    floor: u64,
}

impl MemoryStorage {
    pub(crate) fn new() -> Self {
        Self::with_retention(RETAINED_REVISIONS)
    }

    /// Keeps only `retained` revisions of log (tests of `compacted`).
    pub(crate) fn with_retention(retained: u64) -> Self {
        MemoryStorage {
            inner: Arc::new(MemoryInner {
                state: Mutex::default(),
                head: tokio::sync::watch::channel(0).0,
                retained: retained.max(1),
            }),
        }
    }

    /// A `Storage` answered by this memory.
    #[cfg(test)]
    pub(crate) fn storage(&self) -> Storage {
        Storage::new(Arc::new(self.clone()))
    }

    /// Answers one request's JSON like the host does.
    pub(crate) async fn answer(&self, request: &str) -> Result<String, String> {
        let result = match Request::parse(request) {
            Ok(request) => self.inner.answer(request).await,
            Err(e) => Err(e),
        };
        result.map_err(|e| e.to_wire())
    }
}

impl StorageTransport for MemoryStorage {
    fn call(&self, request: String) -> BoxFuture<'static, Result<String, String>> {
        let this = self.clone();
        Box::pin(async move { this.answer(&request).await })
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::internal(format!("cannot encode the answer: {e}")))
}

impl MemoryInner {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock leaves consistent data (every change is made
        // after all checks), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn answer(&self, request: Request) -> Result<String, StorageError> {
        match request {
            Request::Get { key } => to_json(&GetAnswer { entry: self.state().data.get(&key).cloned() }),
            Request::List { prefix, after, limit } => to_json(&self.list(&prefix, after.as_deref(), limit)),
            Request::Commit { writes } => to_json(&self.commit(writes)?),
            Request::Head => to_json(&HeadAnswer { revision: self.state().head }),
            Request::Changes { prefix, since, wait_ms } => {
                to_json(&self.changes(prefix.as_deref().unwrap_or(""), since, Request::wait(wait_ms)).await?)
            }
        }
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Page {
        use std::ops::Bound;
        let state = self.state();
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let entries = state
            .data
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit as usize + 1)
            .map(|(_, e)| e.clone())
            .collect();
        page_of(entries, limit)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<Committed, StorageError> {
        let mut state = self.state();
        for write in &writes {
            if let Some(expected) = write.expect {
                let current = state.data.get(&write.key).map_or(0, |e| e.version);
                if current != expected {
                    return Err(StorageError::conflict(&write.key, expected, current));
                }
            }
        }
        let revision = state.head + 1;
        let mut versions = Vec::with_capacity(writes.len());
        let mut changes = Vec::new();
        for write in writes {
            let version = match write.value {
                Some(value) => {
                    let version = state.data.get(&write.key).map_or(0, |e| e.version) + 1;
                    let entry = Entry { key: write.key.clone(), value: value.clone(), version, revision };
                    state.data.insert(write.key.clone(), entry);
                    changes.push(Change { revision, key: write.key, value: Some(value), version });
                    version
                }
                None => {
                    if state.data.remove(&write.key).is_some() {
                        changes.push(Change { revision, key: write.key, value: None, version: 0 });
                    }
                    0
                }
            };
            versions.push(version);
        }
        state.head = revision;
        state.log.push_back((revision, changes));
        while state.head - state.floor > self.retained {
            match state.log.pop_front() {
                Some((gone, _)) => state.floor = gone,
                None => state.floor = state.head - self.retained,
            }
        }
        drop(state);
        self.head.send_replace(revision);
        Ok(Committed { revision, versions })
    }

    /// What `changes` answers now, or `None` when nothing matches yet (with the head).
    fn changes_now(&self, prefix: &str, since: u64) -> Result<(Option<Changes>, u64), StorageError> {
        let state = self.state();
        if since > state.head {
            return Err(StorageError::compacted(format!(
                "position {since} is ahead of this store's head {} (the store was replaced); list again",
                state.head
            )));
        }
        if since < state.floor {
            return Err(StorageError::compacted(format!(
                "position {since} is older than the retained log (from {}); list again",
                state.floor
            )));
        }
        let mut found = Vec::new();
        let mut upto = state.head;
        for (revision, changes) in state.log.iter().filter(|(r, _)| *r > since) {
            let matching: Vec<&Change> = changes.iter().filter(|c| c.key.starts_with(prefix)).collect();
            // Whole commits only: the next one is for the next call.
            if found.len() + matching.len() > MAX_COMMIT_WRITES && !found.is_empty() {
                upto = revision - 1;
                break;
            }
            found.extend(matching.into_iter().cloned());
        }
        let answer = changes_of(found, true, upto);
        Ok(((!answer.changes.is_empty()).then_some(answer), state.head))
    }

    async fn changes(&self, prefix: &str, since: u64, wait: Duration) -> Result<Changes, StorageError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut receiver = self.head.subscribe();
        let mut since = since;
        loop {
            let (found, head) = self.changes_now(prefix, since)?;
            if let Some(found) = found {
                return Ok(found);
            }
            // Nothing matching up to `head`: later calls only look after it.
            since = head;
            let waited = tokio::time::timeout_at(deadline, receiver.wait_for(|h| *h > head)).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Ok(Changes { changes: Vec::new(), head });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> (MemoryStorage, Storage) {
        let memory = MemoryStorage::new();
        let storage = memory.storage();
        (memory, storage)
    }

    #[tokio::test]
    async fn versions_revisions_and_cas() {
        let (_m, s) = memory();
        assert_eq!(s.head().await.unwrap(), 0);
        assert_eq!(s.get("a").await.unwrap(), None);
        assert_eq!(s.put("a", "1").await.unwrap(), Written { version: 1, revision: 1 });
        assert_eq!(s.put("b", "x").await.unwrap(), Written { version: 1, revision: 2 });
        assert_eq!(s.put_if("a", "2", 1).await.unwrap(), Written { version: 2, revision: 3 });
        let err = s.put_if("a", "3", 1).await.unwrap_err();
        assert_eq!((err.code, err.key.as_deref(), err.current_version), (ErrorCode::Conflict, Some("a"), Some(2)));
        let err = s.put_if("b", "y", 0).await.unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert_eq!(s.put_if("c", "new", 0).await.unwrap().version, 1);
        assert_eq!(
            s.get("a").await.unwrap(),
            Some(Entry { key: "a".into(), value: "2".into(), version: 2, revision: 3 })
        );
        assert!(s.delete_if("a", 1).await.unwrap_err().is_conflict());
        assert_eq!(s.delete_if("a", 2).await.unwrap(), Written { version: 0, revision: 5 });
        assert_eq!(s.get("a").await.unwrap(), None);
        // Written again after a delete: a new key, version 1.
        assert_eq!(s.put("a", "again").await.unwrap().version, 1);
        // Deleting a missing key changes nothing but is not an error.
        assert_eq!(s.delete("never").await.unwrap().version, 0);
        assert_eq!(s.head().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_commit_is_all_or_nothing() {
        let (_m, s) = memory();
        s.put("x", "0").await.unwrap();
        let done = s
            .commit(vec![Write::put("x", "1").expect_version(1), Write::put("y", "1"), Write::delete("z")])
            .await
            .unwrap();
        assert_eq!(done, Committed { revision: 2, versions: vec![2, 1, 0] });
        let err = s
            .commit(vec![Write::put("y", "2"), Write::put("x", "2").expect_version(1), Write::put("w", "2")])
            .await
            .unwrap_err();
        assert_eq!((err.code, err.key.as_deref(), err.current_version), (ErrorCode::Conflict, Some("x"), Some(2)));
        assert_eq!(s.get("y").await.unwrap().unwrap().value, "1", "nothing of a refused commit is written");
        assert_eq!(s.get("w").await.unwrap(), None);
        assert_eq!(s.head().await.unwrap(), 2, "a refused commit takes no revision");
        let changes = s.changes(None, 1, Duration::ZERO).await.unwrap();
        assert_eq!(changes.head, 2);
        assert_eq!(changes.changes.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        assert!(changes.changes.iter().all(|c| c.revision == 2));
    }

    #[tokio::test]
    async fn limits_are_refused_with_their_codes() {
        let (_m, s) = memory();
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(s.put(&long, "v").await.unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(s.put(&"k".repeat(MAX_KEY_BYTES), "v").await.unwrap().version, 1);
        assert_eq!(s.put("k", &"v".repeat(MAX_VALUE_BYTES + 1)).await.unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(s.put("", "v").await.unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(s.list("", None, 0).await.unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(s.list("", None, MAX_LIST_LIMIT + 1).await.unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(s.commit(vec![]).await.unwrap_err().code, ErrorCode::BadRequest);
        let twice = vec![Write::put("a", "1"), Write::delete("a")];
        assert_eq!(s.commit(twice).await.unwrap_err().code, ErrorCode::BadRequest);
        let huge: Vec<Write> = (0..9).map(|i| Write::put(format!("k{i}"), "v".repeat(MAX_VALUE_BYTES))).collect();
        assert_eq!(s.commit(huge).await.unwrap_err().code, ErrorCode::TooLarge);
        let many: Vec<Write> = (0..=MAX_COMMIT_WRITES).map(|i| Write::put(format!("k{i}"), "v")).collect();
        assert_eq!(s.commit(many).await.unwrap_err().code, ErrorCode::TooLarge);
    }

    #[tokio::test]
    async fn lists_page_in_byte_order() {
        let (_m, s) = memory();
        for key in ["b/2", "a", "b/1", "b/é", "b/z", "c", "b/\u{10FFFF}"] {
            s.put(key, key).await.unwrap();
        }
        let first = s.list("b/", None, 2).await.unwrap();
        assert_eq!(first.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["b/1", "b/2"]);
        assert_eq!(first.next.as_deref(), Some("b/2"));
        let second = s.list("b/", first.next.as_deref(), 10).await.unwrap();
        assert_eq!(second.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["b/z", "b/é", "b/\u{10FFFF}"]);
        assert_eq!(second.next, None);
        let all = s.list("", None, 3).await.unwrap();
        assert_eq!(all.entries.len(), 3);
        assert_eq!(all.next.as_deref(), Some("b/2"));
    }

    #[tokio::test]
    async fn the_feed_waits_filters_and_compacts() {
        let memory = MemoryStorage::with_retention(5);
        let s = memory.storage();
        s.put("other", "1").await.unwrap();
        let quiet = s.changes(Some("watched/"), 0, Duration::from_millis(30)).await.unwrap();
        assert_eq!(quiet, Changes { changes: vec![], head: 1 }, "no match: empty, but the head moves on");

        let waiter = {
            let s = s.clone();
            tokio::spawn(async move {
                let start = std::time::Instant::now();
                let got = s.changes(Some("watched/"), 1, Duration::from_secs(10)).await.unwrap();
                (got, start.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.put("other", "2").await.unwrap();
        s.put("watched/a", "x").await.unwrap();
        let (got, waited) = waiter.await.unwrap();
        assert_eq!(got.changes.len(), 1, "{got:?}");
        assert_eq!((got.changes[0].key.as_str(), got.changes[0].revision, got.head), ("watched/a", 3, 3));
        assert!(waited < Duration::from_secs(5), "woken by the write, not the timeout: {waited:?}");

        for i in 0..10 {
            s.put("k", &i.to_string()).await.unwrap();
        }
        let err = s.changes(None, 2, Duration::ZERO).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Compacted, "{err}");
        let err = s.changes(None, 99, Duration::ZERO).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Compacted, "a position ahead of the head: {err}");
        let recent = s.changes(None, 10, Duration::ZERO).await.unwrap();
        assert_eq!((recent.changes.len(), recent.head), (3, 13));
    }

    #[test]
    fn big_answers_stop_at_commit_boundaries() {
        let change = |revision, bytes| Change { revision, key: "k".into(), value: Some("v".repeat(bytes)), version: 1 };
        let half = MAX_ANSWER_BYTES / 2;
        let got = changes_of(vec![change(1, half), change(2, half), change(2, half), change(3, 1)], true, 3);
        assert_eq!((got.changes.len(), got.head), (1, 1));
        // The first commit is always whole, whatever its size.
        let got = changes_of(vec![change(1, half), change(1, half), change(1, half)], true, 4);
        assert_eq!((got.changes.len(), got.head), (3, 4));
        // An incomplete read leaves its last (maybe partial) revision for later.
        let got = changes_of(vec![change(1, 1), change(2, 1), change(2, 1)], false, 9);
        assert_eq!((got.changes.len(), got.head), (1, 1));
    }

    #[test]
    fn prefix_ends_bound_the_range() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[test]
    fn errors_cross_as_json() {
        let e = StorageError::conflict("k", 1, 2);
        assert_eq!(StorageError::from_wire(&e.to_wire()), e);
        let newer = StorageError::from_wire(r#"{"code":"some_new_code","message":"m"}"#);
        assert_eq!(newer.code, ErrorCode::Internal);
        assert_eq!(StorageError::from_wire("boom").code, ErrorCode::Internal);
    }
}
