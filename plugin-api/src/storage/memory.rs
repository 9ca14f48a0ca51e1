//! [`MemoryStorage`]: the storage protocol answered in memory with the host's
//! semantics (versions, revisions, CAS, all-or-nothing commits, the change log and its
//! retention), for `crate::testing::TestHost`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Serialize;

use super::*;

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
