//! The module-storage host service: one request of `plugin_api::storage`'s JSON
//! protocol in, one JSON answer out, answered from the host's store in the calling
//! module's namespace. It checks requests against the protocol's limits (the same
//! check the test host runs), maps store errors to the protocol's codes, and holds a
//! `changes` call open until a matching commit or the wait ends. It does not know how
//! the request crossed the FFI (`host_services.rs` wires it) and keeps no state.
//!
//! The entry point, one async fn:
//!
//! ```ignore
//! pub async fn call(store: &dyn Store, module: &str, request: &str) -> Result<String, String>
//! ```
//!
//! - `store`: the host's own store. Its module-data section carries the change-feed
//!   wake-up (`Store::module_wait`: in-process for SQLite, the other hosts' commits
//!   too for MongoDB), so no separate feed handle is needed.
//! - `module`: the caller's name as the host loaded it, never taken from the request:
//!   a module only ever reaches its own keys.
//! - `Ok`: the answer's JSON (`GetAnswer`, `Page`, `Committed`, `HeadAnswer`,
//!   `Changes`); `Err`: a `StorageError`'s JSON `{"code","message"[,"key",
//!   "current_version"]}`.
//!
//! A `changes` wait holds only this future (no thread) for at most
//! `plugin_api::storage::MAX_WAIT`; dropping the future ends it.

use serde::Serialize;
use tokio::time::Instant;

use crate::store::{Store, StoreError};
use plugin_api::storage::{Changes, GetAnswer, HeadAnswer, Request, StorageError};

/// Answers one storage request of `module` (see the file's documentation).
pub async fn call(store: &dyn Store, module: &str, request: &str) -> Result<String, String> {
    answer(store, module, request).await.map_err(|e| e.to_wire())
}

async fn answer(store: &dyn Store, module: &str, request: &str) -> Result<String, StorageError> {
    let request = Request::parse(request)?;
    let failed = |e: StoreError| storage_error(module, e);
    match request {
        Request::Get { key } => json(&GetAnswer { entry: store.module_get(module, &key).await.map_err(failed)? }),
        Request::List { prefix, after, limit } => {
            json(&store.module_list(module, &prefix, after.as_deref(), limit).await.map_err(failed)?)
        }
        Request::Commit { writes } => json(&store.module_commit(module, &writes).await.map_err(failed)?),
        Request::Head => json(&HeadAnswer { revision: store.module_head(module).await.map_err(failed)? }),
        Request::Changes { prefix, since, wait_ms } => {
            let prefix = prefix.unwrap_or_default();
            json(&changes(store, module, &prefix, since, Request::wait(wait_ms)).await.map_err(failed)?)
        }
    }
}

/// Changes after `since`, waiting up to `wait` for a matching one.
async fn changes(
    store: &dyn Store,
    module: &str,
    prefix: &str,
    since: u64,
    wait: std::time::Duration,
) -> Result<Changes, StoreError> {
    let deadline = Instant::now() + wait;
    let mut since = since;
    loop {
        let found = store.module_changes(module, prefix, since).await?;
        let now = Instant::now();
        if !found.changes.is_empty() || now >= deadline {
            return Ok(found);
        }
        // Nothing matches up to `found.head`: wait for a commit past it, then look
        // only after it.
        since = found.head;
        store.module_wait(module, found.head, deadline - now).await;
    }
}

fn json<T: Serialize>(answer: &T) -> Result<String, StorageError> {
    serde_json::to_string(answer).map_err(|e| StorageError::internal(format!("cannot encode the answer: {e}")))
}

/// The protocol's code for a store failure.
fn storage_error(module: &str, e: StoreError) -> StorageError {
    use plugin_api::storage::ErrorCode;
    match e {
        StoreError::ModuleConflict { key, expected, current, .. } => StorageError::conflict(&key, expected, current),
        StoreError::ModuleCompacted { .. } => StorageError::compacted(e.to_string()),
        StoreError::ModuleBusy { .. } | StoreError::Unavailable { .. } => {
            StorageError::new(ErrorCode::Unavailable, e.to_string())
        }
        other => {
            tracing::warn!(target: "module", module, error = %other, "module storage call failed");
            StorageError::internal(other.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::SqliteStore;
    use plugin_api::storage::{Committed, ErrorCode, Page};
    use serde_json::json;

    async fn ok<T: serde::de::DeserializeOwned>(store: &dyn Store, module: &str, request: serde_json::Value) -> T {
        let answer = call(store, module, &request.to_string()).await.unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    async fn err(store: &dyn Store, module: &str, request: serde_json::Value) -> StorageError {
        StorageError::from_wire(&call(store, module, &request.to_string()).await.unwrap_err())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn modules_see_only_their_own_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let put = json!({"op": "commit", "writes": [{"key": "k", "value": "a's"}]});
        let done: Committed = ok(&store, "a", put).await;
        assert_eq!(done, Committed { revision: 1, versions: vec![1] });
        let page: Page = ok(&store, "b", json!({"op": "list", "limit": 10})).await;
        assert!(page.entries.is_empty(), "{page:?}");
        let got: GetAnswer = ok(&store, "a", json!({"op": "get", "key": "k"})).await;
        assert_eq!(got.entry.unwrap().value, "a's");
        let head: HeadAnswer = ok(&store, "b", json!({"op": "head"})).await;
        assert_eq!(head.revision, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_carry_the_protocol_codes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let e = err(&store, "m", json!({"op": "commit", "writes": [{"key": "k", "value": "v", "expect": 3}]})).await;
        assert_eq!((e.code, e.key.as_deref(), e.current_version), (ErrorCode::Conflict, Some("k"), Some(0)));
        let e = err(&store, "m", json!({"op": "get", "key": "x".repeat(513)})).await;
        assert_eq!(e.code, ErrorCode::TooLarge);
        assert_eq!(err(&store, "m", json!({"op": "drop_everything"})).await.code, ErrorCode::BadRequest);
        let e = err(&store, "m", json!({"op": "changes", "since": 5})).await;
        assert_eq!(e.code, ErrorCode::Compacted, "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_feed_wakes_on_a_matching_commit_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let waiter = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let request = json!({"op": "changes", "prefix": "cfg/", "since": 0, "wait_ms": 10_000});
                let started = Instant::now();
                let answer: Changes = ok(store.as_ref(), "m", request).await;
                (answer, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let other = json!({"op": "commit", "writes": [{"key": "other", "value": "1"}]});
        let _: Committed = ok(store.as_ref(), "m", other).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let wanted = json!({"op": "commit", "writes": [{"key": "cfg/a", "value": "1"}]});
        let _: Committed = ok(store.as_ref(), "m", wanted).await;
        let (answer, waited) = waiter.await.unwrap();
        assert_eq!(answer.changes.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["cfg/a"]);
        assert_eq!(answer.head, 2);
        assert!(waited < Duration::from_secs(5), "woken by the commit: {waited:?}");
    }
}
