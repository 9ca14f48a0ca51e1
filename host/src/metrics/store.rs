//! The store as the host sees it when metrics are on: every `Store` call goes through
//! this wrapper, which times it into `apollo_store_operation_duration_seconds` (label:
//! the method's name) and counts errors. One place instead of timing at each call site;
//! a new `Store` method does not compile until it is forwarded here. It changes no
//! result and adds no retries.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Metrics;
use crate::store::{
    AlarmRaise, AlarmRecord, AuditEntry, AuditQuery, Changes, Collection, Committed, Entry, MigrationStep, ModelRecord,
    Page, RecordKey, RuntimeRecord, Store, StoreResult, TaskRunRecord, TokenRecord, Write,
};

/// A `Store` that times the calls of the one it wraps.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl InstrumentedStore {
    /// `inner` timed into `metrics`; `inner` itself when metrics are off (no cost then).
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        if metrics.enabled() { Arc::new(Self { inner, metrics }) } else { inner }
    }

    async fn timed<T>(&self, operation: &'static str, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let start = Instant::now();
        let result = call.await;
        self.metrics.observe_store(operation, start.elapsed(), result.is_err());
        result
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        self.timed("schema_version", self.inner.schema_version()).await
    }

    async fn upsert_model(&self, record: &ModelRecord) -> StoreResult<()> {
        self.timed("upsert_model", self.inner.upsert_model(record)).await
    }

    async fn remove_model(&self, name: &str) -> StoreResult<()> {
        self.timed("remove_model", self.inner.remove_model(name)).await
    }

    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>> {
        self.timed("list_models", self.inner.list_models()).await
    }

    async fn put_runtime(&self, record: &RuntimeRecord) -> StoreResult<()> {
        self.timed("put_runtime", self.inner.put_runtime(record)).await
    }

    async fn get_runtime(&self, name: &str) -> StoreResult<Option<RuntimeRecord>> {
        self.timed("get_runtime", self.inner.get_runtime(name)).await
    }

    async fn list_runtime(&self) -> StoreResult<Vec<RuntimeRecord>> {
        self.timed("list_runtime", self.inner.list_runtime()).await
    }

    async fn insert_token(&self, record: &TokenRecord) -> StoreResult<()> {
        self.timed("insert_token", self.inner.insert_token(record)).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.timed("find_token", self.inner.find_token(token_hash)).await
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        self.timed("revoke_token", self.inner.revoke_token(token_hash)).await
    }

    async fn purge_expired_tokens(&self, now_ms: i64) -> StoreResult<u64> {
        self.timed("purge_expired_tokens", self.inner.purge_expired_tokens(now_ms)).await
    }

    async fn revoke_all_tokens(&self) -> StoreResult<u64> {
        self.timed("revoke_all_tokens", self.inner.revoke_all_tokens()).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.timed("get_setting", self.inner.get_setting(key)).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.timed("put_setting", self.inner.put_setting(key, value)).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        self.timed("append_audit", self.inner.append_audit(entry)).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.timed("list_audit", self.inner.list_audit(query)).await
    }

    async fn trim_audit(&self, keep: u64) -> StoreResult<u64> {
        self.timed("trim_audit", self.inner.trim_audit(keep)).await
    }

    async fn module_get(&self, module: &str, key: &str) -> StoreResult<Option<Entry>> {
        self.timed("module_get", self.inner.module_get(module, key)).await
    }

    async fn module_list(&self, module: &str, prefix: &str, after: Option<&str>, limit: u32) -> StoreResult<Page> {
        self.timed("module_list", self.inner.module_list(module, prefix, after, limit)).await
    }

    async fn module_commit(&self, module: &str, writes: &[Write]) -> StoreResult<Committed> {
        self.timed("module_commit", self.inner.module_commit(module, writes)).await
    }

    async fn module_head(&self, module: &str) -> StoreResult<u64> {
        self.timed("module_head", self.inner.module_head(module)).await
    }

    async fn module_changes(&self, module: &str, prefix: &str, since: u64) -> StoreResult<Changes> {
        self.timed("module_changes", self.inner.module_changes(module, prefix, since)).await
    }

    /// Not timed: it waits for other writers by design, which is no store latency.
    async fn module_wait(&self, module: &str, seen: u64, timeout: Duration) -> u64 {
        self.inner.module_wait(module, seen, timeout).await
    }

    async fn append_task_run(&self, run: &TaskRunRecord) -> StoreResult<i64> {
        self.timed("append_task_run", self.inner.append_task_run(run)).await
    }

    async fn list_task_runs(&self, task: &str, limit: u32) -> StoreResult<Vec<TaskRunRecord>> {
        self.timed("list_task_runs", self.inner.list_task_runs(task, limit)).await
    }

    async fn trim_task_runs(&self, task: &str, keep: u64) -> StoreResult<u64> {
        self.timed("trim_task_runs", self.inner.trim_task_runs(task, keep)).await
    }

    async fn raise_alarm(&self, raise: &AlarmRaise) -> StoreResult<(AlarmRecord, bool)> {
        self.timed("raise_alarm", self.inner.raise_alarm(raise)).await
    }

    async fn list_alarms(&self, state: Option<&str>) -> StoreResult<Vec<AlarmRecord>> {
        self.timed("list_alarms", self.inner.list_alarms(state)).await
    }

    async fn get_alarm(&self, id: i64) -> StoreResult<Option<AlarmRecord>> {
        self.timed("get_alarm", self.inner.get_alarm(id)).await
    }

    async fn ack_alarm(&self, id: i64, at_ms: i64) -> StoreResult<Option<AlarmRecord>> {
        self.timed("ack_alarm", self.inner.ack_alarm(id, at_ms)).await
    }

    async fn delete_alarm(&self, id: i64) -> StoreResult<bool> {
        self.timed("delete_alarm", self.inner.delete_alarm(id)).await
    }

    async fn resolve_alarms(&self, subject: &str, kinds: &[&str], at_ms: i64) -> StoreResult<Vec<AlarmRecord>> {
        self.timed("resolve_alarms", self.inner.resolve_alarms(subject, kinds, at_ms)).await
    }

    async fn trim_alarms(&self, before_ms: i64, keep: u64) -> StoreResult<u64> {
        self.timed("trim_alarms", self.inner.trim_alarms(before_ms, keep)).await
    }

    async fn snapshot_to(&self, dest: &std::path::Path) -> StoreResult<()> {
        self.timed("snapshot_to", self.inner.snapshot_to(dest)).await
    }

    async fn export_page(
        &self,
        collection: Collection,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> StoreResult<Vec<serde_json::Value>> {
        self.timed("export_page", self.inner.export_page(collection, after, limit)).await
    }

    async fn import_records(&self, collection: Collection, records: &[serde_json::Value]) -> StoreResult<u64> {
        self.timed("import_records", self.inner.import_records(collection, records)).await
    }

    async fn count_records(&self, collection: Collection) -> StoreResult<u64> {
        self.timed("count_records", self.inner.count_records(collection)).await
    }

    async fn migrations(&self) -> StoreResult<(u32, Vec<MigrationStep>)> {
        self.timed("migrations", self.inner.migrations()).await
    }

    async fn apply_migrations(&self) -> StoreResult<Vec<MigrationStep>> {
        self.timed("apply_migrations", self.inner.apply_migrations()).await
    }
}
