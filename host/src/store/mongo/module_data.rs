//! Module data on MongoDB, all-or-nothing without multi-document transactions.
//!
//! Why no transactions: a standalone mongod refuses them (they need a replica set),
//! and nx-27017, the wire server the tests run, accepts them but runs every session on
//! one SQLite connection per database, so other clients read a transaction's writes
//! before it commits. Only single-document atomicity holds everywhere, so the commit
//! point is one document: the module's head (`module_heads`).
//!
//! A commit reads the head (revision `H`, no pending commit), reads the versions of its
//! keys, checks the expectations, then claims revision `H+1` with one conditional
//! update of the head (`revision == H` and nothing pending) that also stores the whole
//! write set as `pending`. Whoever loses that race starts over, so expectations are
//! always checked against revision `H` exactly: CAS holds across hosts. Once claimed,
//! the commit has happened; "rolling it forward" applies each key (an update guarded by
//! `revision < H+1`, so a repeat is a no-op), inserts the log entry (unique by module
//! and revision) and clears `pending`. Anyone may roll a pending commit forward — the
//! committer, or any reader or writer that finds it — so a host that dies mid-commit
//! leaves nothing half-done for longer than the next call. Every read first settles
//! the head (rolls any pending commit forward), so a reader that saw part of a commit
//! can never then see a key it has not reached; a page is checked against the head
//! after it is read, and read again if a commit touched its range meanwhile.
//!
//! Deleted keys stay as tombstones (`deleted: true`) until the log is trimmed past
//! them: a delayed roll-forward of an older commit finds the tombstone's newer revision
//! and leaves it, instead of recreating the key. (A roll-forward delayed for longer than
//! the retained log, `RETAINED_REVISIONS` commits, could still recreate a deleted key:
//! that is the bound.) Each commit is one document, so a commit is at most
//! `MAX_COMMIT_BYTES`.

use std::collections::HashMap;
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use serde_json::Value;
use tokio::time::Instant;

use super::{MongoStore, schema};
use crate::store::module_data::{
    Change, Changes, Committed, Entry, ModuleDataRecord, Page, Write, import_heads, position_problem, trim_to,
};
use crate::store::transfer::typed;
use crate::store::{Collection, StoreError, StoreResult};
use plugin_api::storage::{MAX_ANSWER_BYTES, MAX_COMMIT_WRITES, page_of, prefix_end};

/// How long one call may keep losing races (or finding pending commits) before it
/// gives up with `ModuleBusy`.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Most log entries one `changes` call reads (a narrow prefix on a busy module answers
/// with an empty batch and a moved head rather than scanning forever).
const MAX_SCAN: u64 = 5_000;

/// A module's head document.
#[derive(Debug, Default)]
struct Head {
    revision: u64,
    floor: u64,
    exists: bool,
    pending: Option<Pending>,
}

/// A claimed commit: its revision and each key's outcome.
#[derive(Debug, Clone)]
struct Pending {
    revision: u64,
    writes: Vec<Applied>,
}

/// One key of a commit as it is applied and logged (`value` `None`: deleted).
#[derive(Debug, Clone)]
struct Applied {
    key: String,
    value: Option<String>,
    version: u64,
}

impl Applied {
    fn to_bson(&self) -> Bson {
        Bson::Document(doc! {
            "key": &self.key,
            "value": self.value.clone().map_or(Bson::Null, Bson::String),
            "version": self.version as i64,
        })
    }

    fn from_bson(value: &Bson) -> Option<Applied> {
        let d = value.as_document()?;
        Some(Applied {
            key: d.get_str("key").ok()?.to_string(),
            value: d.get_str("value").ok().map(str::to_string),
            version: number(d, "version"),
        })
    }
}

/// A stored counter, whatever integer type the server kept it as.
fn number(d: &Document, field: &str) -> u64 {
    match d.get(field) {
        Some(Bson::Int64(v)) => *v as u64,
        Some(Bson::Int32(v)) => *v as u64,
        Some(Bson::Double(v)) => *v as u64,
        _ => 0,
    }
}

fn writes_of(d: &Document, field: &str) -> Vec<Applied> {
    d.get_array(field).map(|a| a.iter().filter_map(Applied::from_bson).collect()).unwrap_or_default()
}

fn entry_of(d: &Document) -> Option<Entry> {
    if d.get_bool("deleted").unwrap_or(false) {
        return None;
    }
    Some(Entry {
        key: d.get_str("key").ok()?.to_string(),
        value: d.get_str("value").ok()?.to_string(),
        version: number(d, "version"),
        revision: number(d, "revision"),
    })
}

/// A key range read by a list: what a commit must not have touched for the page to
/// stand.
struct Range<'a> {
    prefix: &'a str,
    end: Option<String>,
    after: Option<&'a str>,
    /// The last key read when the page stopped early (keys above it were not read).
    last: Option<String>,
}

impl Range<'_> {
    fn contains(&self, key: &str) -> bool {
        key >= self.prefix
            && self.end.as_deref().is_none_or(|end| key < end)
            && self.after.is_none_or(|after| key > after)
            && self.last.as_deref().is_none_or(|last| key <= last)
    }
}

impl MongoStore {
    fn heads(&self) -> mongodb::Collection<Document> {
        self.db.collection(schema::MODULE_HEADS)
    }

    fn data(&self) -> mongodb::Collection<Document> {
        self.db.collection(schema::MODULE_DATA)
    }

    fn log(&self) -> mongodb::Collection<Document> {
        self.db.collection(schema::MODULE_CHANGES)
    }

    fn busy(module: &str, detail: impl Into<String>) -> StoreError {
        StoreError::ModuleBusy { module: module.into(), detail: detail.into() }
    }

    async fn read_head(&self, module: &str) -> StoreResult<Head> {
        let Some(d) = self.call("module head", self.heads().find_one(doc! {"module": module})).await? else {
            return Ok(Head::default());
        };
        let pending = match d.get("pending_rev") {
            Some(Bson::Int64(_) | Bson::Int32(_)) => {
                Some(Pending { revision: number(&d, "pending_rev"), writes: writes_of(&d, "pending") })
            }
            _ => None,
        };
        Ok(Head { revision: number(&d, "revision"), floor: number(&d, "floor"), exists: true, pending })
    }

    /// The head with no commit pending: rolls pending commits forward first.
    async fn settled_head(&self, module: &str) -> StoreResult<Head> {
        let deadline = Instant::now() + CALL_DEADLINE;
        loop {
            let head = self.read_head(module).await?;
            let Some(pending) = &head.pending else {
                // Waiters learn of heads read here too (a `changes` answer cut short
                // of the head must not wait for a commit that already happened).
                self.feed.publish(module, head.revision);
                return Ok(head);
            };
            self.roll_forward(module, pending).await?;
            if Instant::now() > deadline {
                return Err(Self::busy(module, "new commits kept arriving for 10 s; retry"));
            }
        }
    }

    /// Finishes a claimed commit. Idempotent, and safe to run from several hosts at
    /// once: each step only moves a document forward.
    async fn roll_forward(&self, module: &str, pending: &Pending) -> StoreResult<()> {
        let revision = pending.revision as i64;
        futures::future::try_join_all(pending.writes.iter().map(|w| self.apply(module, revision, w))).await?;
        let writes: Vec<Bson> = pending.writes.iter().map(Applied::to_bson).collect();
        let entry = doc! {"module": module, "revision": revision, "writes": writes};
        self.insert_unique("module log", &self.log(), entry).await?;
        let done = doc! {"$set": {"pending_rev": Bson::Null, "pending": Bson::Null}};
        self.call("module head", self.heads().update_one(doc! {"module": module, "pending_rev": revision}, done))
            .await?;
        self.feed.publish(module, pending.revision);
        Ok(())
    }

    async fn apply(&self, module: &str, revision: i64, write: &Applied) -> StoreResult<()> {
        let value = write.value.clone().map_or(Bson::Null, Bson::String);
        let fields = doc! {
            "value": value.clone(),
            "version": write.version as i64,
            "revision": revision,
            "deleted": write.value.is_none(),
        };
        let older = doc! {"module": module, "key": &write.key, "revision": {"$lt": revision}};
        let updated = self.call("module write", self.data().update_one(older, doc! {"$set": fields.clone()})).await?;
        if updated.matched_count == 0 && write.value.is_some() {
            // No document older than this write: either the key has none (insert it) or
            // this write is there already (the unique key refuses the insert).
            let mut document = doc! {"module": module, "key": &write.key};
            document.extend(fields);
            self.insert_unique("module write", &self.data(), document).await?;
        }
        Ok(())
    }

    /// Live keys' versions among `keys`.
    async fn versions(&self, module: &str, keys: &[&str]) -> StoreResult<HashMap<String, u64>> {
        let filter = doc! {"module": module, "key": {"$in": keys}, "deleted": {"$ne": true}};
        let found = async {
            let cursor = self.data().find(filter).projection(doc! {"key": 1, "version": 1}).await?;
            cursor.try_collect::<Vec<Document>>().await
        };
        Ok(self
            .call("module versions", found)
            .await?
            .iter()
            .filter_map(|d| Some((d.get_str("key").ok()?.to_string(), number(d, "version"))))
            .collect())
    }

    pub(super) async fn data_get(&self, module: &str, key: &str) -> StoreResult<Option<Entry>> {
        self.settled_head(module).await?;
        let found = self.call("module get", self.data().find_one(doc! {"module": module, "key": key})).await?;
        Ok(found.as_ref().and_then(entry_of))
    }

    pub(super) async fn data_list(
        &self,
        module: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Page> {
        let deadline = Instant::now() + CALL_DEADLINE;
        let mut keys = doc! {"$gte": prefix};
        let end = prefix_end(prefix);
        if let Some(end) = &end {
            keys.insert("$lt", end.clone());
        }
        if let Some(after) = after {
            keys.insert("$gt", after);
        }
        let filter = doc! {"module": module, "key": keys, "deleted": {"$ne": true}};
        loop {
            let head = self.settled_head(module).await?;
            let read = async {
                let mut cursor =
                    self.data().find(filter.clone()).sort(doc! {"key": 1}).limit(i64::from(limit) + 1).await?;
                let (mut entries, mut bytes) = (Vec::new(), 0);
                while let Some(d) = cursor.try_next().await? {
                    if let Some(entry) = entry_of(&d) {
                        bytes += entry.key.len() + entry.value.len();
                        entries.push(entry);
                    }
                    if bytes > MAX_ANSWER_BYTES {
                        break;
                    }
                }
                Ok(entries)
            };
            let entries: Vec<Entry> = self.call("module list", read).await?;
            let page = page_of(entries, limit);
            let range = Range { prefix, end: end.clone(), after, last: page.next.clone() };
            if self.untouched(module, head.revision, &range).await? {
                return Ok(page);
            }
            if Instant::now() > deadline {
                return Err(Self::busy(module, "commits to the listed keys kept arriving for 10 s; retry"));
            }
        }
    }

    /// Whether no commit after revision `since` (applied or pending) wrote a key of
    /// `range`: then a page read since reflects one revision.
    async fn untouched(&self, module: &str, since: u64, range: &Range<'_>) -> StoreResult<bool> {
        let now = self.read_head(module).await?;
        let pending = now.pending.as_ref().map(|p| p.writes.as_slice()).unwrap_or_default();
        if pending.iter().any(|w| range.contains(&w.key)) {
            return Ok(false);
        }
        if now.revision == since || now.pending.as_ref().is_some_and(|p| p.revision == since + 1) {
            return Ok(true);
        }
        let applied = now.pending.as_ref().map_or(now.revision, |p| p.revision - 1);
        let filter = doc! {"module": module, "revision": {"$gt": since as i64, "$lte": applied as i64}};
        let entries = async { self.log().find(filter).await?.try_collect::<Vec<Document>>().await };
        let entries = self.call("module log", entries).await?;
        if entries.len() as u64 != applied - since {
            // Trimmed meanwhile: do not guess.
            return Ok(false);
        }
        Ok(!entries.iter().flat_map(|e| writes_of(e, "writes")).any(|w| range.contains(&w.key)))
    }

    pub(super) async fn data_commit(&self, module: &str, writes: &[Write]) -> StoreResult<Committed> {
        let deadline = Instant::now() + CALL_DEADLINE;
        let keys: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
        let mut attempt = 0u32;
        loop {
            let head = self.settled_head(module).await?;
            let current = self.versions(module, &keys).await?;
            let revision = head.revision + 1;
            let mut applied = Vec::with_capacity(writes.len());
            let mut versions = Vec::with_capacity(writes.len());
            for write in writes {
                let old = current.get(&write.key).copied().unwrap_or(0);
                if let Some(expected) = write.expect
                    && expected != old
                {
                    return Err(StoreError::ModuleConflict {
                        module: module.into(),
                        key: write.key.clone(),
                        expected,
                        current: old,
                    });
                }
                let version = match &write.value {
                    Some(_) => old + 1,
                    None => 0,
                };
                // Deleting a missing key changes nothing and logs nothing.
                if write.value.is_some() || old > 0 {
                    applied.push(Applied { key: write.key.clone(), value: write.value.clone(), version });
                }
                versions.push(version);
            }
            let pending = Pending { revision, writes: applied };
            if self.claim(module, &head, &pending).await? {
                // The commit has happened: finishing it is anyone's, so a failure here
                // is left to the next reader rather than reported as a failed commit.
                match self.roll_forward(module, &pending).await {
                    Ok(()) => {
                        if let Some(to) = trim_to(revision, head.floor)
                            && let Err(e) = self.trim(module, to).await
                        {
                            tracing::warn!(target: "store", module, error = %e, "module change log not trimmed; the next commit retries");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "store", module, revision, error = %e, "commit made; the next call finishes applying it");
                    }
                }
                return Ok(Committed { revision, versions });
            }
            attempt += 1;
            if Instant::now() > deadline {
                return Err(Self::busy(module, "other writers kept committing first for 10 s; retry"));
            }
            // Jittered so racing writers on several hosts spread out.
            let ceiling = 1u64 << attempt.min(6);
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % ceiling)).await;
        }
    }

    /// Claims the next revision for `pending`: `false` if another commit came first.
    async fn claim(&self, module: &str, head: &Head, pending: &Pending) -> StoreResult<bool> {
        let writes: Vec<Bson> = pending.writes.iter().map(Applied::to_bson).collect();
        let revision = pending.revision as i64;
        if !head.exists {
            let first = doc! {
                "module": module, "revision": revision, "floor": 0_i64, "pending_rev": revision, "pending": writes,
            };
            return self.insert_unique("module commit", &self.heads(), first).await;
        }
        let unchanged = doc! {"module": module, "revision": head.revision as i64, "pending_rev": Bson::Null};
        let claim = doc! {"$set": {"revision": revision, "pending_rev": revision, "pending": writes}};
        Ok(self.call("module commit", self.heads().update_one(unchanged, claim)).await?.matched_count == 1)
    }

    /// Forgets the log, and tombstones, up to revision `to` (inclusive). The floor moves
    /// first, so a reader never takes a trimmed range for a complete one.
    async fn trim(&self, module: &str, to: u64) -> StoreResult<()> {
        let to = to as i64;
        self.call("module trim", self.heads().update_one(doc! {"module": module}, doc! {"$max": {"floor": to}}))
            .await?;
        self.call("module trim", self.log().delete_many(doc! {"module": module, "revision": {"$lte": to}})).await?;
        let gone = doc! {"module": module, "deleted": true, "revision": {"$lte": to}};
        self.call("module trim", self.data().delete_many(gone)).await?;
        Ok(())
    }

    pub(super) async fn data_head(&self, module: &str) -> StoreResult<u64> {
        Ok(self.read_head(module).await?.revision)
    }

    pub(super) async fn data_changes(&self, module: &str, prefix: &str, since: u64) -> StoreResult<Changes> {
        let head = self.settled_head(module).await?;
        let compacted = |reason: String| StoreError::ModuleCompacted { module: module.to_string(), since, reason };
        if let Some(reason) = position_problem(since, head.revision, head.floor) {
            return Err(compacted(reason));
        }
        if since == head.revision {
            return Ok(Changes { changes: Vec::new(), head: head.revision });
        }
        let filter = doc! {"module": module, "revision": {"$gt": since as i64, "$lte": head.revision as i64}};
        let read = async {
            let mut cursor = self.log().find(filter).sort(doc! {"revision": 1}).await?;
            let (mut found, mut bytes, mut next) = (Vec::<Change>::new(), 0, since + 1);
            let mut upto = head.revision;
            while let Some(entry) = cursor.try_next().await? {
                let revision = number(&entry, "revision");
                if revision != next {
                    // The log is gap-free below the head: a gap was trimmed just now.
                    return Ok(Err(next));
                }
                let changes: Vec<Change> = writes_of(&entry, "writes")
                    .into_iter()
                    .filter(|w| w.key.starts_with(prefix))
                    .map(|w| Change { revision, key: w.key, value: w.value, version: w.version })
                    .collect();
                let size: usize = changes.iter().map(|c| c.key.len() + c.value.as_ref().map_or(0, String::len)).sum();
                // Whole commits only; the next one waits for the next call.
                if !found.is_empty()
                    && (found.len() + changes.len() > MAX_COMMIT_WRITES || bytes + size > MAX_ANSWER_BYTES)
                {
                    upto = revision - 1;
                    break;
                }
                found.extend(changes);
                bytes += size;
                next += 1;
                if next - since > MAX_SCAN {
                    upto = revision;
                    break;
                }
            }
            if upto == head.revision && next != head.revision + 1 {
                return Ok(Err(next));
            }
            Ok(Ok(Changes { changes: found, head: upto }))
        };
        self.call("module changes", read)
            .await?
            .map_err(|missing| compacted(format!("was trimmed while it was read (revision {missing} is gone)")))
    }

    /// Imports exported module data or heads (already checked). Heads are raised first,
    /// so no commit made after this lands below an imported revision; the log before an
    /// imported head counts as compacted (`module_data.rs` of the store says why).
    pub(super) async fn data_import(&self, collection: Collection, records: &[Value]) -> StoreResult<()> {
        for (module, revision) in import_heads(collection, records) {
            let heads = self.heads();
            let raise = heads
                .find_one_and_update(doc! {"module": &module}, doc! {"$max": {"revision": revision as i64}})
                .upsert(true)
                .return_document(ReturnDocument::After);
            let head = self.call("module import", raise).await?.map_or(revision, |d| number(&d, "revision"));
            self.trim(&module, head).await?;
            self.feed.publish(&module, head);
        }
        if collection != Collection::ModuleData {
            return Ok(());
        }
        for chunk in records.chunks(16) {
            let upserts = chunk.iter().map(|record| async move {
                let r: ModuleDataRecord =
                    typed(record).map_err(|detail| StoreError::Corrupt { what: "module_data".into(), detail })?;
                let fields = doc! {
                    "value": r.value, "version": r.version as i64, "revision": r.revision as i64, "deleted": false,
                };
                let data = self.data();
                let upsert =
                    data.update_one(doc! {"module": &r.module, "key": &r.key}, doc! {"$set": fields}).upsert(true);
                self.call("module import", upsert).await.map(drop)
            });
            futures::future::try_join_all(upserts).await?;
        }
        Ok(())
    }
}
