//! `Store` for MongoDB: each typed call expressed over the generic record documents of
//! `mod.rs`. Numbered records (audit, task runs, alarms) take their id from a counter
//! before they are written, so a retried write lands on the same id.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use serde_json::Value;

use super::{MongoStore, module_feed, schema};
use crate::store::module_data::{Changes, Committed, Entry, Page, Write, legacy_kv_import, legacy_kv_page};
use crate::store::transfer::{self, SettingRecord, to_record};
use crate::store::*;

/// Upserts in flight at once during an import.
const IMPORT_CONCURRENCY: usize = 16;

fn one<T>(mut found: Vec<T>) -> Option<T> {
    if found.is_empty() { None } else { Some(found.swap_remove(0)) }
}

impl MongoStore {
    /// Keeps the newest `keep` records matching `filter` (by id); returns how many were dropped.
    async fn keep_newest(&self, collection: Collection, filter: Document, keep: u64) -> StoreResult<u64> {
        let boundary = self.find_records(collection, filter.clone(), doc! {"id": -1}, keep, 1).await?;
        let Some(RecordKey::Id(id)) = boundary.first().and_then(|r| collection.key_of(r).ok()) else {
            return Ok(0);
        };
        let mut drop_filter = self.filter(collection, filter);
        drop_filter.insert("id", doc! {"$lte": id});
        let deleted = self.call("trim", self.coll(collection).delete_many(drop_filter)).await?;
        Ok(deleted.deleted_count)
    }

    async fn delete(&self, collection: Collection, filter: Document) -> StoreResult<u64> {
        let filter = self.filter(collection, filter);
        Ok(self.call("delete", self.coll(collection).delete_many(filter)).await?.deleted_count)
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        schema::version(self).await
    }

    async fn upsert_model(&self, record: &ModelRecord) -> StoreResult<()> {
        self.upsert(Collection::Models, &to_record(record)?).await
    }

    async fn remove_model(&self, name: &str) -> StoreResult<()> {
        self.delete(Collection::Models, doc! {"name": name}).await.map(drop)
    }

    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>> {
        self.find_typed(Collection::Models, doc! {}, doc! {"name": 1}, 0).await
    }

    async fn put_runtime(&self, record: &RuntimeRecord) -> StoreResult<()> {
        self.upsert(Collection::Runtime, &to_record(record)?).await
    }

    async fn get_runtime(&self, name: &str) -> StoreResult<Option<RuntimeRecord>> {
        Ok(one(self.find_typed(Collection::Runtime, doc! {"name": name}, doc! {}, 1).await?))
    }

    async fn list_runtime(&self) -> StoreResult<Vec<RuntimeRecord>> {
        self.find_typed(Collection::Runtime, doc! {}, doc! {"name": 1}, 0).await
    }

    async fn insert_token(&self, record: &TokenRecord) -> StoreResult<()> {
        self.upsert(Collection::Tokens, &to_record(record)?).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(one(self.find_typed(Collection::Tokens, doc! {"token_hash": token_hash}, doc! {}, 1).await?))
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        Ok(self.delete(Collection::Tokens, doc! {"token_hash": token_hash}).await? > 0)
    }

    async fn purge_expired_tokens(&self, now_ms: i64) -> StoreResult<u64> {
        self.delete(Collection::Tokens, doc! {"expires_at_ms": {"$lte": now_ms}}).await
    }

    async fn revoke_all_tokens(&self) -> StoreResult<u64> {
        self.delete(Collection::Tokens, doc! {}).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let found: Vec<SettingRecord> = self.find_typed(Collection::Settings, doc! {"key": key}, doc! {}, 1).await?;
        Ok(one(found).map(|s| s.value))
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let record = SettingRecord { key: key.into(), value: value.into() };
        self.upsert(Collection::Settings, &to_record(&record)?).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        let id = self.next_id(Collection::Audit).await?;
        self.upsert(Collection::Audit, &to_record(&AuditEntry { id, ..entry.clone() })?).await?;
        Ok(id)
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let mut filter = doc! {"id": {"$lt": query.before_id.unwrap_or(i64::MAX)}};
        if let Some(actor) = &query.actor {
            filter.insert("actor", actor.clone());
        }
        self.find_typed(Collection::Audit, filter, doc! {"id": -1}, i64::from(limit)).await
    }

    async fn trim_audit(&self, keep: u64) -> StoreResult<u64> {
        self.keep_newest(Collection::Audit, doc! {}, keep).await
    }

    async fn append_task_run(&self, run: &TaskRunRecord) -> StoreResult<i64> {
        let id = self.next_id(Collection::TaskRuns).await?;
        self.upsert(Collection::TaskRuns, &to_record(&TaskRunRecord { id, ..run.clone() })?).await?;
        Ok(id)
    }

    async fn list_task_runs(&self, task: &str, limit: u32) -> StoreResult<Vec<TaskRunRecord>> {
        self.find_typed(Collection::TaskRuns, doc! {"task": task}, doc! {"id": -1}, i64::from(limit.max(1))).await
    }

    async fn trim_task_runs(&self, task: &str, keep: u64) -> StoreResult<u64> {
        self.keep_newest(Collection::TaskRuns, doc! {"task": task}, keep).await
    }

    async fn raise_alarm(&self, raise: &AlarmRaise) -> StoreResult<(AlarmRecord, bool)> {
        let open = self.filter(
            Collection::Alarms,
            doc! {"kind": &raise.kind, "subject": &raise.subject, "state": {"$ne": "resolved"}},
        );
        let alarms = self.coll(Collection::Alarms);
        let bump = alarms
            .find_one_and_update(
                open,
                doc! {
                    "$inc": {"count": 1_i64},
                    "$set": {"last_seen_ms": raise.at_ms, "message": &raise.message, "severity": &raise.severity},
                },
            )
            .return_document(ReturnDocument::After);
        if let Some(document) = self.call("raise alarm", bump).await? {
            let record = MongoStore::record_of(Collection::Alarms, document)?;
            let alarm =
                transfer::typed(&record).map_err(|detail| StoreError::Corrupt { what: "alarms".into(), detail })?;
            return Ok((alarm, false));
        }
        let alarm = AlarmRecord {
            id: self.next_id(Collection::Alarms).await?,
            kind: raise.kind.clone(),
            subject: raise.subject.clone(),
            severity: raise.severity.clone(),
            message: raise.message.clone(),
            state: "open".into(),
            count: 1,
            first_seen_ms: raise.at_ms,
            last_seen_ms: raise.at_ms,
            acked_at_ms: None,
            resolved_at_ms: None,
        };
        self.upsert(Collection::Alarms, &to_record(&alarm)?).await?;
        Ok((alarm, true))
    }

    async fn list_alarms(&self, state: Option<&str>) -> StoreResult<Vec<AlarmRecord>> {
        let filter = state.map(|s| doc! {"state": s}).unwrap_or_default();
        self.find_typed(Collection::Alarms, filter, doc! {"last_seen_ms": -1, "id": -1}, 0).await
    }

    async fn get_alarm(&self, id: i64) -> StoreResult<Option<AlarmRecord>> {
        Ok(one(self.find_typed(Collection::Alarms, doc! {"id": id}, doc! {}, 1).await?))
    }

    async fn ack_alarm(&self, id: i64, at_ms: i64) -> StoreResult<Option<AlarmRecord>> {
        let filter = self.filter(Collection::Alarms, doc! {"id": id, "state": "open"});
        let alarms = self.coll(Collection::Alarms);
        let ack = alarms.update_one(filter, doc! {"$set": {"state": "acked", "acked_at_ms": at_ms}});
        self.call("ack alarm", ack).await?;
        self.get_alarm(id).await
    }

    async fn delete_alarm(&self, id: i64) -> StoreResult<bool> {
        Ok(self.delete(Collection::Alarms, doc! {"id": id}).await? > 0)
    }

    async fn resolve_alarms(&self, subject: &str, kinds: &[&str], at_ms: i64) -> StoreResult<Vec<AlarmRecord>> {
        let unresolved = doc! {"subject": subject, "state": {"$ne": "resolved"}, "kind": {"$in": kinds}};
        let found: Vec<AlarmRecord> = self.find_typed(Collection::Alarms, unresolved, doc! {"id": 1}, 0).await?;
        if found.is_empty() {
            return Ok(found);
        }
        let ids: Vec<i64> = found.iter().map(|a| a.id).collect();
        let filter = self.filter(Collection::Alarms, doc! {"id": {"$in": &ids}});
        let alarms = self.coll(Collection::Alarms);
        let resolve = alarms.update_many(filter, doc! {"$set": {"state": "resolved", "resolved_at_ms": at_ms}});
        self.call("resolve alarms", resolve).await?;
        Ok(found
            .into_iter()
            .map(|a| AlarmRecord { state: "resolved".into(), resolved_at_ms: Some(at_ms), ..a })
            .collect())
    }

    async fn trim_alarms(&self, before_ms: i64, keep: u64) -> StoreResult<u64> {
        let old =
            self.delete(Collection::Alarms, doc! {"state": "resolved", "last_seen_ms": {"$lt": before_ms}}).await?;
        Ok(old + self.keep_newest(Collection::Alarms, doc! {}, keep).await?)
    }

    /// A SQLite file holding every record of this host (the backup archive's format).
    /// Collections are read one after the other, so unlike SQLite's online backup the
    /// copy is not one point in time: a write during the copy may or may not be in it.
    async fn snapshot_to(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            let source = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
            return Err(StoreError::Io { path: dest.display().to_string(), source });
        }
        let path = dest.to_path_buf();
        let copy = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))??;
        transfer::copy_all(self, &copy).await?;
        copy.into_single_file().await
    }

    async fn export_page(
        &self,
        collection: Collection,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> StoreResult<Vec<Value>> {
        if collection == Collection::ModuleKv {
            return legacy_kv_page(self, after, limit).await;
        }
        let filter = match after {
            None => doc! {},
            Some(RecordKey::Id(id)) => doc! {"id": {"$gt": id}},
            Some(RecordKey::Text(text)) => {
                let field = MongoStore::key_fields(collection)[0];
                doc! {field: {"$gt": text}}
            }
            Some(RecordKey::Pair(a, b)) => doc! {"$or": [{"module": {"$gt": a}}, {"module": a, "key": {"$gt": b}}]},
        };
        let records =
            self.find_records(collection, filter, MongoStore::sort(collection), 0, i64::from(limit.max(1))).await?;
        // Exports are compared with other backends' byte for byte: the record types'
        // own JSON (booleans as booleans, numbers as the types say).
        records
            .iter()
            .map(|r| {
                collection.canonical(r).map_err(|detail| StoreError::Corrupt { what: collection.name().into(), detail })
            })
            .collect()
    }

    async fn import_records(&self, collection: Collection, records: &[Value]) -> StoreResult<u64> {
        let mut keys = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let key = collection.key_of(record).map_err(|detail| StoreError::InvalidRecord {
                collection: collection.name(),
                index,
                detail,
            })?;
            keys.push(key);
        }
        match collection {
            Collection::ModuleKv => return legacy_kv_import(self, records).await,
            Collection::ModuleData | Collection::ModuleHeads => {
                self.data_import(collection, records).await?;
                return Ok(records.len() as u64);
            }
            _ => {}
        }
        // One round trip per record (an upsert by key has no bulk form every server
        // speaks), so several are in flight at once over the driver's pool.
        let pairs: Vec<_> = keys.iter().zip(records).collect();
        for chunk in pairs.chunks(IMPORT_CONCURRENCY) {
            let mut in_flight = Vec::with_capacity(chunk.len());
            for (key, record) in chunk {
                in_flight.push(self.upsert_keyed(collection, key, record));
            }
            futures::future::try_join_all(in_flight).await?;
        }
        let max_id = keys.iter().filter_map(|k| if let RecordKey::Id(id) = k { Some(*id) } else { None }).max();
        if let Some(id) = max_id {
            self.raise_counter(collection, id).await?;
        }
        Ok(records.len() as u64)
    }

    async fn count_records(&self, collection: Collection) -> StoreResult<u64> {
        // The legacy key-value view counts the module data it is made of.
        let collection = if collection == Collection::ModuleKv { Collection::ModuleData } else { collection };
        let filter = MongoStore::live(collection, self.filter(collection, doc! {}));
        self.call("count", self.coll(collection).count_documents(filter)).await
    }

    async fn migrations(&self) -> StoreResult<(u32, Vec<MigrationStep>)> {
        Ok((schema::version(self).await?, schema::steps()))
    }

    async fn apply_migrations(&self) -> StoreResult<Vec<MigrationStep>> {
        let applied = schema::migrate(self).await?;
        Ok(schema::steps().into_iter().filter(|s| applied.contains(&s.version)).collect())
    }

    async fn module_get(&self, module: &str, key: &str) -> StoreResult<Option<Entry>> {
        self.data_get(module, key).await
    }

    async fn module_list(&self, module: &str, prefix: &str, after: Option<&str>, limit: u32) -> StoreResult<Page> {
        self.data_list(module, prefix, after, limit).await
    }

    async fn module_commit(&self, module: &str, writes: &[Write]) -> StoreResult<Committed> {
        self.data_commit(module, writes).await
    }

    async fn module_head(&self, module: &str) -> StoreResult<u64> {
        self.data_head(module).await
    }

    async fn module_changes(&self, module: &str, prefix: &str, since: u64) -> StoreResult<Changes> {
        self.data_changes(module, prefix, since).await
    }

    async fn module_wait(&self, module: &str, seen: u64, timeout: Duration) -> u64 {
        if !self.feed_started.swap(true, Ordering::AcqRel) {
            let (db, hub, link) = (self.db.clone(), Arc::clone(&self.feed), Arc::clone(&self.link));
            tokio::spawn(module_feed::run(db, hub, link, self.probe_cancel.clone()));
        }
        self.feed.wait(module, seen, timeout).await
    }
}
