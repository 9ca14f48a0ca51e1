//! The shared store: one MongoDB database (the `mongodb` crate) that several hosts can
//! use at once. Records are the backend-neutral JSON of `transfer` stored as documents;
//! what belongs to one host (models, runtime, module data, task runs, alarms, audit) is
//! tagged with that host's `scope` (default: its hostname) so hosts never overwrite
//! each other's services, while logins and settings are shared by the fleet.
//!
//! Availability: a database that is down at start is waited for, with backoff, up to
//! `db.mongo.start_timeout_secs`, each failed attempt logged with its cause. One that
//! goes away later is noticed by the first failing call: from then on calls fail fast
//! with `StoreError::Unavailable` (the host keeps serving from memory) while a
//! background probe pings with backoff and restores service when the database answers.
//! It does not queue writes made while the database is down: callers see the error.
//!
//! Documents never rely on `_id`: each collection has its own unique key fields (the
//! MongoDB-wire test server, nx-27017, does not keep a client-chosen `_id` on upsert).
//!
//! Module data (`module_data.rs`, `module_feed.rs`) is the fleet's, not one host's: a
//! module sees the same keys on every host of the database, and each host's change
//! feed wakes on the others' commits.

mod connection;
mod module_data;
mod module_feed;
mod schema;
mod store_impl;

pub use connection::MongoTarget;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, Database};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::module_data::FeedHub;
use super::transfer::Collection;
use super::{RecordKey, StoreError, StoreResult};
use connection::Link;

#[derive(Debug)]
pub struct MongoStore {
    db: Database,
    /// `host:port/database` for messages: never the credentials.
    target: String,
    scope: String,
    link: Arc<Link>,
    /// Stops the background probe and the module-feed watcher when the store is dropped.
    probe_cancel: CancellationToken,
    /// Wakes this process's module change-feed waiters.
    feed: Arc<FeedHub>,
    /// Whether the module-feed watcher runs: started by the first wait, so stores that
    /// nobody waits on (module-db-migrate's targets) never open a change stream.
    feed_started: AtomicBool,
}

impl Drop for MongoStore {
    fn drop(&mut self) {
        self.probe_cancel.cancel();
    }
}

impl MongoStore {
    /// Connects (waiting for the database as described above) and, when
    /// `migrate_schema`, creates the collections' indexes.
    pub async fn connect(target: &MongoTarget, migrate_schema: bool) -> StoreResult<Self> {
        let options = target.client_options().await?;
        let client = Client::with_options(options)
            .map_err(|e| StoreError::InvalidTarget(format!("db.mongo.url {}: {e}", target.display())))?;
        let db = client.database(&target.database());
        let link = Arc::new(Link::default());
        connection::wait_reachable(&db, &target.display(), target.start_timeout()).await?;
        let probe_cancel = CancellationToken::new();
        tokio::spawn(connection::probe(db.clone(), target.display(), Arc::clone(&link), probe_cancel.clone()));
        let store = MongoStore {
            db,
            target: target.display(),
            scope: target.scope(),
            link,
            probe_cancel,
            feed: Arc::default(),
            feed_started: AtomicBool::new(false),
        };
        if migrate_schema {
            schema::migrate(&store).await?;
        } else {
            schema::check_not_newer(&store).await?;
        }
        Ok(store)
    }

    /// Runs one database call: fails fast while the database is known to be down, and
    /// turns a connectivity failure into `Unavailable` (waking the probe).
    async fn call<T>(
        &self,
        what: &'static str,
        fut: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> StoreResult<T> {
        self.check_link()?;
        fut.await.map_err(|e| self.failed(what, e))
    }

    /// `Unavailable` while the database is known to be down.
    fn check_link(&self) -> StoreResult<()> {
        match self.link.down_reason() {
            Some(detail) => Err(StoreError::Unavailable { target: self.target.clone(), detail }),
            None => Ok(()),
        }
    }

    /// The store error for a failed database call (a connectivity failure marks the
    /// link down and wakes the probe).
    fn failed(&self, what: &'static str, e: mongodb::error::Error) -> StoreError {
        if connection::is_connectivity(&e) {
            let detail = e.to_string();
            self.link.mark_down(&self.target, &detail);
            StoreError::Unavailable { target: self.target.clone(), detail }
        } else {
            StoreError::Mongo { target: self.target.clone(), what, detail: e.to_string() }
        }
    }

    /// Inserts `document` unless its unique key is taken: `false` when it was (the
    /// unique index is what makes the "insert if absent" steps safe across hosts).
    async fn insert_unique(
        &self,
        what: &'static str,
        collection: &mongodb::Collection<Document>,
        document: Document,
    ) -> StoreResult<bool> {
        self.check_link()?;
        match collection.insert_one(document).await {
            Ok(_) => Ok(true),
            Err(e) if connection::is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(self.failed(what, e)),
        }
    }

    fn coll(&self, collection: Collection) -> mongodb::Collection<Document> {
        self.db.collection(collection.name())
    }

    /// Logins, settings and module data are the fleet's; everything else is this host's.
    fn scoped(collection: Collection) -> bool {
        !matches!(
            collection,
            Collection::Tokens
                | Collection::Settings
                | Collection::ModuleData
                | Collection::ModuleHeads
                | Collection::ModuleKv
        )
    }

    /// `extra` restricted to this host's records where the collection is scoped.
    fn filter(&self, collection: Collection, mut extra: Document) -> Document {
        if Self::scoped(collection) {
            extra.insert("host", self.scope.clone());
        }
        extra
    }

    fn key_fields(collection: Collection) -> &'static [&'static str] {
        match collection {
            Collection::Settings => &["key"],
            Collection::Models | Collection::Runtime => &["name"],
            Collection::Tokens => &["token_hash"],
            Collection::ModuleKv | Collection::ModuleData => &["module", "key"],
            Collection::ModuleHeads => &["module"],
            Collection::Audit | Collection::TaskRuns | Collection::Alarms => &["id"],
        }
    }

    /// Reads skip deleted module keys (kept as tombstones a while, see `module_data.rs`).
    fn live(collection: Collection, mut filter: Document) -> Document {
        if collection == Collection::ModuleData {
            filter.insert("deleted", doc! {"$ne": true});
        }
        filter
    }

    fn key_filter(&self, collection: Collection, key: &RecordKey) -> Document {
        let fields = Self::key_fields(collection);
        let mut filter = Document::new();
        match key {
            RecordKey::Id(id) => {
                filter.insert(fields[0], *id);
            }
            RecordKey::Text(text) => {
                filter.insert(fields[0], text.clone());
            }
            RecordKey::Pair(a, b) => {
                filter.insert(fields[0], a.clone());
                filter.insert(fields[1], b.clone());
            }
        }
        self.filter(collection, filter)
    }

    fn sort(collection: Collection) -> Document {
        Self::key_fields(collection).iter().map(|f| (f.to_string(), Bson::Int32(1))).collect()
    }

    /// A record's document: its JSON plus the scope, with a model's free-form JSON kept
    /// as text (its keys may hold `.` or `$`, which MongoDB field names cannot).
    fn to_document(&self, collection: Collection, record: &Value) -> StoreResult<Document> {
        let mut record = record.clone();
        if collection == Collection::Models
            && let Some(model) = record.get_mut("model")
        {
            *model = Value::String(model.to_string());
        }
        let mut document = mongodb::bson::to_document(&record)
            .map_err(|e| StoreError::Corrupt { what: collection.name().into(), detail: e.to_string() })?;
        if Self::scoped(collection) {
            document.insert("host", self.scope.clone());
        }
        Ok(document)
    }

    /// The record a document holds, as JSON (typed reads deserialise it once; exports
    /// put it in canonical form).
    fn record_of(collection: Collection, mut document: Document) -> StoreResult<Value> {
        document.remove("_id");
        document.remove("host");
        let mut value = Bson::Document(document).into_relaxed_extjson();
        if collection == Collection::Models
            && let Some(model) = value.get_mut("model")
            && let Some(text) = model.as_str()
        {
            *model = serde_json::from_str(text)
                .map_err(|e| StoreError::Corrupt { what: "models.model".into(), detail: e.to_string() })?;
        }
        Ok(value)
    }

    async fn find_records(
        &self,
        collection: Collection,
        filter: Document,
        sort: Document,
        skip: u64,
        limit: i64,
    ) -> StoreResult<Vec<Value>> {
        use futures::TryStreamExt;
        let filter = Self::live(collection, self.filter(collection, filter));
        let find = async {
            let coll = self.coll(collection);
            let mut action = coll.find(filter).sort(sort).skip(skip);
            if limit > 0 {
                action = action.limit(limit);
            }
            action.await?.try_collect::<Vec<Document>>().await
        };
        let documents = self.call("find", find).await?;
        documents.into_iter().map(|d| Self::record_of(collection, d)).collect()
    }

    async fn find_typed<T: serde::de::DeserializeOwned>(
        &self,
        collection: Collection,
        filter: Document,
        sort: Document,
        limit: i64,
    ) -> StoreResult<Vec<T>> {
        self.find_records(collection, filter, sort, 0, limit)
            .await?
            .iter()
            .map(|v| {
                super::transfer::typed(v)
                    .map_err(|detail| StoreError::Corrupt { what: collection.name().into(), detail })
            })
            .collect()
    }

    /// Inserts or replaces the record with the same key. Idempotent: a retried call
    /// writes the same document again.
    async fn upsert(&self, collection: Collection, record: &Value) -> StoreResult<()> {
        let key = collection
            .key_of(record)
            .map_err(|detail| StoreError::Corrupt { what: collection.name().into(), detail })?;
        self.upsert_keyed(collection, &key, record).await
    }

    /// `upsert` for a record whose key the caller already took (and so checked).
    async fn upsert_keyed(&self, collection: Collection, key: &RecordKey, record: &Value) -> StoreResult<()> {
        let document = self.to_document(collection, record)?;
        let filter = self.key_filter(collection, key);
        self.call("upsert", self.coll(collection).update_one(filter, doc! {"$set": document}).upsert(true)).await?;
        Ok(())
    }

    /// The next id of a numbered collection. Taken before the insert, so retrying the
    /// insert reuses it (a lost id is harmless, a duplicate record is not).
    async fn next_id(&self, collection: Collection) -> StoreResult<i64> {
        let counters = self.db.collection::<Document>(schema::COUNTERS);
        let bump = counters
            .find_one_and_update(doc! {"name": collection.name()}, doc! {"$inc": {"seq": 1_i64}})
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After);
        let document = self.call("next id", bump).await?;
        document
            .and_then(|d| d.get("seq").and_then(|s| s.as_i64().or_else(|| s.as_i32().map(i64::from))))
            .ok_or_else(|| StoreError::Corrupt { what: "counters".into(), detail: "no sequence returned".into() })
    }

    /// After an import, the counter must be above every imported id.
    async fn raise_counter(&self, collection: Collection, at_least: i64) -> StoreResult<()> {
        let counters = self.db.collection::<Document>(schema::COUNTERS);
        let raise =
            counters.update_one(doc! {"name": collection.name()}, doc! {"$max": {"seq": at_least}}).upsert(true);
        self.call("raise counter", raise).await.map(drop)
    }
}
