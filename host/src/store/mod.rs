//! Persistence behind one trait, so the SQLite store (one file, the default) and the
//! MongoDB store (one database several hosts can share) are interchangeable. The store keeps what must survive a host crash:
//! models as loaded, runtime data, login tokens (hashed), settings, the audit log,
//! task run history.
//! It knows nothing about HTTP or processes.

pub mod module_data;
mod mongo;
mod open;
mod records;
mod sqlite;
pub mod transfer;

pub use mongo::{MongoStore, MongoTarget};
pub use open::{StoreTarget, open_configured, open_target};
pub use records::*;
pub use sqlite::{SqliteStore, sqlite_migration_steps};
pub use transfer::{Collection, MigrationStep, RecordKey};

use std::time::Duration;

pub use module_data::{Changes, Committed, Entry, Page, Write};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store: cannot create {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "store schema version {found} is newer than this host understands ({supported}); upgrade apollo or restore a backup"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("store: corrupt record {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("store worker stopped: {0}")]
    Worker(String),
    #[error("store mongodb {target}: {what}: {detail}")]
    Mongo { target: String, what: &'static str, detail: String },
    /// The database does not answer; calls fail fast until a background probe sees it
    /// again (the host keeps serving from memory meanwhile).
    #[error("store mongodb {target} is unreachable ({detail}); retrying in the background with backoff")]
    Unavailable { target: String, detail: String },
    /// A record handed to `import_records` is not one of its collection.
    #[error("store: {collection} record {index}: {detail}")]
    InvalidRecord { collection: &'static str, index: usize, detail: String },
    #[error("store: {0}")]
    InvalidTarget(String),
    /// A module-data write expected a version its key does not have: nothing was written.
    #[error("module {module}: key {key:?} is at version {current}, not {expected}")]
    ModuleConflict { module: String, key: String, expected: u64, current: u64 },
    /// A change-feed position the module's retained log cannot answer.
    #[error("module {module}: change feed position {since} {reason}; list again and continue from the head")]
    ModuleCompacted { module: String, since: u64, reason: String },
    /// Other writers kept winning for as long as a call may take (MongoDB only).
    #[error("module {module}: {detail}")]
    ModuleBusy { module: String, detail: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the host persists. Every write is idempotent (upserts keyed by name or
/// hash) so a retried call never duplicates a record.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `mongodb`, for status output.
    fn backend(&self) -> &'static str;
    async fn schema_version(&self) -> StoreResult<u32>;

    async fn upsert_model(&self, record: &ModelRecord) -> StoreResult<()>;
    async fn remove_model(&self, name: &str) -> StoreResult<()>;
    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>>;

    async fn put_runtime(&self, record: &RuntimeRecord) -> StoreResult<()>;
    async fn get_runtime(&self, name: &str) -> StoreResult<Option<RuntimeRecord>>;
    async fn list_runtime(&self) -> StoreResult<Vec<RuntimeRecord>>;

    async fn insert_token(&self, record: &TokenRecord) -> StoreResult<()>;
    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// `true` when a token was revoked.
    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool>;
    async fn purge_expired_tokens(&self, now_ms: i64) -> StoreResult<u64>;
    /// Ends every session (after a password change).
    async fn revoke_all_tokens(&self) -> StoreResult<u64>;

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;

    /// Appends and returns the entry's id.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64>;
    /// Newest first.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    /// Keeps the newest `keep` entries; returns how many were dropped.
    async fn trim_audit(&self, keep: u64) -> StoreResult<u64>;

    /// Appends a task run and returns its id.
    async fn append_task_run(&self, run: &TaskRunRecord) -> StoreResult<i64>;
    /// A task's runs, newest first.
    async fn list_task_runs(&self, task: &str, limit: u32) -> StoreResult<Vec<TaskRunRecord>>;
    /// Keeps a task's newest `keep` runs; returns how many were dropped.
    async fn trim_task_runs(&self, task: &str, keep: u64) -> StoreResult<u64>;

    /// Records an occurrence: bumps the unresolved alarm with the same kind and subject
    /// or inserts a new open one. `true` with a new alarm.
    async fn raise_alarm(&self, raise: &AlarmRaise) -> StoreResult<(AlarmRecord, bool)>;
    /// `state`: `open`, `acked`, `resolved`, or `None` for all; newest first.
    async fn list_alarms(&self, state: Option<&str>) -> StoreResult<Vec<AlarmRecord>>;
    async fn get_alarm(&self, id: i64) -> StoreResult<Option<AlarmRecord>>;
    /// Marks an open alarm acked (an acked one stays as it was); `None` if unknown.
    async fn ack_alarm(&self, id: i64, at_ms: i64) -> StoreResult<Option<AlarmRecord>>;
    /// `true` when an alarm was deleted.
    async fn delete_alarm(&self, id: i64) -> StoreResult<bool>;
    /// Resolves the unresolved alarms of `subject` whose kind is in `kinds`.
    async fn resolve_alarms(&self, subject: &str, kinds: &[&str], at_ms: i64) -> StoreResult<Vec<AlarmRecord>>;
    /// Drops resolved alarms last seen before `before_ms`, then all but the newest
    /// `keep` alarms; returns how many were dropped.
    async fn trim_alarms(&self, before_ms: i64, keep: u64) -> StoreResult<u64>;

    /// Writes a consistent copy of the whole store to `dest` (which must not exist)
    /// while the host keeps running, for backups. Never a copy of the live files: those
    /// may be mid-transaction, and the WAL holds commits the main file does not.
    async fn snapshot_to(&self, dest: &std::path::Path) -> StoreResult<()>;

    /// Up to `limit` records of `collection` in key order, after `after` (exclusive),
    /// each in its backend-neutral JSON form (see `transfer`).
    async fn export_page(
        &self,
        collection: Collection,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> StoreResult<Vec<serde_json::Value>>;
    /// Upserts records by key (ids kept as they are); every record is checked before
    /// any is written. Returns how many were written.
    async fn import_records(&self, collection: Collection, records: &[serde_json::Value]) -> StoreResult<u64>;
    async fn count_records(&self, collection: Collection) -> StoreResult<u64>;

    /// The schema version this store is at, and every step this build knows.
    async fn migrations(&self) -> StoreResult<(u32, Vec<MigrationStep>)>;
    /// Applies the steps above the store's version, in order; returns those applied.
    async fn apply_migrations(&self) -> StoreResult<Vec<MigrationStep>>;

    // ---- Module data (`module_data.rs`): each module's keys with versions, its
    // revisions and change feed, namespaced by `module`. Requests are checked against
    // the protocol's limits by the caller (`modules/storage_service.rs`). ----

    async fn module_get(&self, module: &str, key: &str) -> StoreResult<Option<Entry>>;
    /// Keys starting with `prefix` and after `after` (exclusive), in byte order: one
    /// consistent page of at most `limit` entries.
    async fn module_list(&self, module: &str, prefix: &str, after: Option<&str>, limit: u32) -> StoreResult<Page>;
    /// Applies every write or none under one new revision; `ModuleConflict` names the
    /// first key whose expected version does not match. On MongoDB an `Unavailable`
    /// error may come after the commit happened: expected versions make a retry safe.
    async fn module_commit(&self, module: &str, writes: &[Write]) -> StoreResult<Committed>;
    /// The module's latest revision (0 before its first write).
    async fn module_head(&self, module: &str) -> StoreResult<u64>;
    /// Changes after `since` to keys starting with `prefix`, whole commits, as many as
    /// one answer holds; never waits. `ModuleCompacted` for a position the log cannot
    /// answer.
    async fn module_changes(&self, module: &str, prefix: &str, since: u64) -> StoreResult<Changes>;
    /// Resolves once `module` may be past revision `seen` (a commit here or, on
    /// MongoDB, on another host), or after `timeout`; returns the head then known. No
    /// database call: the caller reads the changes.
    async fn module_wait(&self, module: &str, seen: u64, timeout: Duration) -> u64;

    /// The key-value view of module data (host services `kv_get`/`kv_set`).
    async fn module_kv_get(&self, module: &str, key: &str) -> StoreResult<Option<String>> {
        Ok(self.module_get(module, key).await?.map(|entry| entry.value))
    }
    async fn module_kv_set(&self, module: &str, key: &str, value: &str) -> StoreResult<()> {
        self.module_commit(module, &[Write::put(key, value)]).await.map(drop)
    }
}
