//! Module data, the backend-neutral part: the types of the `Store`'s module-data
//! section (the storage protocol's own, from `plugin_api::storage`, so the host service
//! converts nothing), their exported record forms, the in-process wake-up of
//! change-feed waiters (`FeedHub`), and the legacy `module_kv` collection both backends
//! still serve for old archives. How a backend stores, commits and trims is its own
//! (`sqlite/module_data.rs`, `mongo/module_data.rs`).
//!
//! Module data is namespaced by module name and, on MongoDB, shared by every host of
//! the database (a module sees the same keys on each host, like logins and settings).
//! A store's head revision per module only grows; the change log keeps at least
//! `RETAINED_REVISIONS` revisions and is trimmed in batches of `TRIM_SLACK`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use plugin_api::storage::{Change, Changes, Committed, Entry, Page, RETAINED_REVISIONS, Write};

use super::transfer::{ModuleKvRecord, to_record, typed};
use super::{Collection, RecordKey, Store, StoreError, StoreResult};

/// The log may grow this many revisions past `RETAINED_REVISIONS` before it is trimmed,
/// so a trim is one statement per thousand commits, not one per commit.
pub const TRIM_SLACK: u64 = 1000;

/// Where the log of a module at `head` with log floor `floor` should be trimmed to, if
/// it is due.
pub fn trim_to(head: u64, floor: u64) -> Option<u64> {
    (head.saturating_sub(floor) > RETAINED_REVISIONS + TRIM_SLACK).then(|| head - RETAINED_REVISIONS)
}

/// Why a change-feed position cannot be answered, or `None` when it can.
pub fn position_problem(since: u64, head: u64, floor: u64) -> Option<String> {
    if since > head {
        Some(format!("is ahead of this store's head {head} (the store was replaced or restored)"))
    } else if since < floor {
        Some(format!("is older than the retained change log (it starts after {floor})"))
    } else {
        None
    }
}

/// One key of a module, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDataRecord {
    pub module: String,
    pub key: String,
    pub value: String,
    pub version: u64,
    pub revision: u64,
}

/// A module's head revision, as exported. The change log is not exported: a store
/// that imports a head treats every position before it as compacted (the module lists
/// again), so a copy never pretends to have history it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleHeadRecord {
    pub module: String,
    pub revision: u64,
}

/// The highest revision per module among data or head records (already checked).
pub fn import_heads(collection: Collection, records: &[Value]) -> Vec<(String, u64)> {
    let mut heads: HashMap<String, u64> = HashMap::new();
    for record in records {
        let (module, revision) = match collection {
            Collection::ModuleData => match typed::<ModuleDataRecord>(record) {
                Ok(r) => (r.module, r.revision),
                Err(_) => continue,
            },
            Collection::ModuleHeads => match typed::<ModuleHeadRecord>(record) {
                Ok(r) => (r.module, r.revision),
                Err(_) => continue,
            },
            _ => continue,
        };
        let head = heads.entry(module).or_default();
        *head = (*head).max(revision);
    }
    let mut heads: Vec<_> = heads.into_iter().collect();
    heads.sort();
    heads
}

/// Wakes change-feed waiters in this process: the latest head revision each module is
/// known to have (from this host's commits and, on MongoDB, from the other hosts'
/// through the feed watcher). One entry per module that wrote or waited, never removed:
/// modules are few, and a kept entry means a commit between a waiter's read and its
/// wait is never missed.
#[derive(Debug, Default)]
pub struct FeedHub {
    heads: Mutex<HashMap<String, tokio::sync::watch::Sender<u64>>>,
    /// Signalled when a wait starts, so a watcher pacing itself slowly while nobody
    /// waited speeds up at once.
    arrivals: tokio::sync::Notify,
}

impl FeedHub {
    fn heads(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::sync::watch::Sender<u64>>> {
        // The map is consistent whatever a panicking holder did (one insert or send).
        self.heads.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `module` is at `head` at least, waking its waiters.
    pub fn publish(&self, module: &str, head: u64) {
        let mut heads = self.heads();
        let sender = heads.entry(module.to_string()).or_insert_with(|| tokio::sync::watch::channel(0).0);
        sender.send_if_modified(|known| {
            let newer = head > *known;
            if newer {
                *known = head;
            }
            newer
        });
    }

    /// Waits until `module` is known to be past `seen`, or `timeout`; returns the head
    /// known then (which may still be `seen`).
    pub async fn wait(&self, module: &str, seen: u64, timeout: Duration) -> u64 {
        let mut receiver = {
            let mut heads = self.heads();
            heads.entry(module.to_string()).or_insert_with(|| tokio::sync::watch::channel(0).0).subscribe()
        };
        self.arrivals.notify_waiters();
        let _ = tokio::time::timeout(timeout, receiver.wait_for(|head| *head > seen)).await;
        *receiver.borrow()
    }

    /// Resolves when a wait starts (see `arrivals`).
    pub async fn waiter_arrived(&self) {
        self.arrivals.notified().await
    }

    /// The modules someone waits on now (what a polling watcher looks at).
    pub fn waited(&self) -> Vec<String> {
        self.heads().iter().filter(|(_, s)| s.receiver_count() > 0).map(|(m, _)| m.clone()).collect()
    }
}

/// `module_kv`, the collection of older stores and archives: every module's keys and
/// values without versions. Exported from module data; imported as ordinary writes.
pub async fn legacy_kv_page(store: &dyn Store, after: Option<&RecordKey>, limit: u32) -> StoreResult<Vec<Value>> {
    let page = store.export_page(Collection::ModuleData, after, limit).await?;
    page.iter()
        .map(|record| {
            let r: ModuleDataRecord =
                typed(record).map_err(|detail| StoreError::Corrupt { what: "module_data".into(), detail })?;
            to_record(&ModuleKvRecord { module: r.module, key: r.key, value: r.value })
        })
        .collect()
}

/// Imports `module_kv` records (checked by the caller) as one write each.
pub async fn legacy_kv_import(store: &dyn Store, records: &[Value]) -> StoreResult<u64> {
    for (index, record) in records.iter().enumerate() {
        let r: ModuleKvRecord = typed(record).map_err(|detail| StoreError::InvalidRecord {
            collection: Collection::ModuleKv.name(),
            index,
            detail,
        })?;
        store.module_commit(&r.module, &[Write::put(r.key, r.value)]).await?;
    }
    Ok(records.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_published_before_the_wait_is_not_missed() {
        let hub = FeedHub::default();
        hub.publish("m", 3);
        assert_eq!(hub.wait("m", 2, Duration::from_secs(5)).await, 3);
        assert_eq!(hub.wait("m", 3, Duration::from_millis(10)).await, 3, "times out at the known head");
        hub.publish("m", 1);
        assert_eq!(hub.wait("m", 0, Duration::ZERO).await, 3, "heads never go back");
        assert!(hub.waited().is_empty());
    }

    #[test]
    fn trims_come_in_batches_and_positions_are_checked() {
        assert_eq!(trim_to(RETAINED_REVISIONS + TRIM_SLACK, 0), None);
        assert_eq!(trim_to(RETAINED_REVISIONS + TRIM_SLACK + 1, 0), Some(TRIM_SLACK + 1));
        assert!(position_problem(5, 4, 0).unwrap().contains("ahead"));
        assert!(position_problem(2, 9, 3).unwrap().contains("older"));
        assert_eq!(position_problem(3, 9, 3), None);
    }
}
