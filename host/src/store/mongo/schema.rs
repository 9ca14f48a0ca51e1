//! Versioned schema of the MongoDB store: the indexes every collection needs (unique
//! keys make every upsert idempotent) and the rare data step. The version lives in
//! `apollo_meta`; each step is idempotent itself (creating an existing index is a
//! no-op, data steps only insert what is missing), so a host that stops mid-step simply
//! runs it again. Never edit a shipped step: append a new one.

use futures::TryStreamExt;
use futures::future::BoxFuture;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;

use super::MongoStore;
use crate::store::transfer::MigrationStep;
use crate::store::{StoreError, StoreResult};

pub const META: &str = "apollo_meta";
pub const COUNTERS: &str = "counters";
/// Module data (`module_data.rs`): keys, head revisions (+ a pending commit), the log.
pub const MODULE_DATA: &str = "module_data";
pub const MODULE_HEADS: &str = "module_heads";
pub const MODULE_CHANGES: &str = "module_changes";

/// `(collection, keys, unique)`.
type IndexSpec = (&'static str, Document, bool);

/// A step's data change, run after its indexes.
type DataStep = for<'a> fn(&'a MongoStore) -> BoxFuture<'a, StoreResult<()>>;

struct Step {
    version: u32,
    description: &'static str,
    indexes: fn() -> Vec<IndexSpec>,
    /// What the data change does, for dry runs, and the change itself.
    data: Option<(&'static str, DataStep)>,
}

const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "unique keys and lookup indexes of every collection",
        indexes: || {
            vec![
                (META, doc! {"name": 1}, true),
                (COUNTERS, doc! {"name": 1}, true),
                ("settings", doc! {"key": 1}, true),
                ("tokens", doc! {"token_hash": 1}, true),
                ("tokens", doc! {"expires_at_ms": 1}, false),
                ("models", doc! {"host": 1, "name": 1}, true),
                ("runtime", doc! {"host": 1, "name": 1}, true),
                ("module_kv", doc! {"host": 1, "module": 1, "key": 1}, true),
                // Ids are unique per host: a database shared by hosts holds each one's
                // audit, runs and alarms, and an imported host keeps its own ids.
                ("audit", doc! {"host": 1, "id": 1}, true),
                ("audit", doc! {"host": 1, "actor": 1, "id": 1}, false),
                ("task_runs", doc! {"host": 1, "id": 1}, true),
                ("task_runs", doc! {"host": 1, "task": 1, "id": 1}, false),
                ("alarms", doc! {"host": 1, "id": 1}, true),
                ("alarms", doc! {"host": 1, "kind": 1, "subject": 1, "state": 1}, false),
            ]
        },
        data: None,
    },
    Step {
        version: 2,
        description: "module data: versioned keys, head revisions and change log shared by the fleet; module_kv copied in",
        indexes: || {
            vec![
                (MODULE_DATA, doc! {"module": 1, "key": 1}, true),
                (MODULE_HEADS, doc! {"module": 1}, true),
                (MODULE_CHANGES, doc! {"module": 1, "revision": 1}, true),
            ]
        },
        data: Some((
            "copy module_kv into module_data as version 1 of revision 1 (module data is the fleet's: where several \
             hosts kept the same module key, the first host scope in name order wins); module_kv is left as it was",
            copy_module_kv,
        )),
    },
];

/// Step 2's data: each host's old key-value documents become the module's data, where
/// the key is not there yet (re-running inserts nothing twice).
fn copy_module_kv(store: &MongoStore) -> BoxFuture<'_, StoreResult<()>> {
    Box::pin(async move {
        let data = store.db.collection::<Document>(MODULE_DATA);
        let heads = store.db.collection::<Document>(MODULE_HEADS);
        let old = store.db.collection::<Document>("module_kv");
        let mut cursor =
            store.call("read module_kv", old.find(doc! {}).sort(doc! {"module": 1, "key": 1, "host": 1})).await?;
        let mut modules = std::collections::BTreeSet::new();
        while let Some(document) = store.call("read module_kv", cursor.try_next()).await? {
            let (Ok(module), Ok(key), Ok(value)) =
                (document.get_str("module"), document.get_str("key"), document.get_str("value"))
            else {
                continue;
            };
            let entry = doc! {
                "module": module, "key": key, "value": value, "version": 1_i64, "revision": 1_i64, "deleted": false,
            };
            store.insert_unique("copy module_kv", &data, entry).await?;
            modules.insert(module.to_string());
        }
        for module in modules {
            // The log starts after revision 1: a feed from 0 is told to list first.
            let head = doc! {
                "module": &module, "revision": 1_i64, "floor": 1_i64, "pending_rev": Bson::Null, "pending": Bson::Null,
            };
            store.insert_unique("copy module_kv", &heads, head).await?;
        }
        Ok(())
    })
}

pub fn latest_version() -> u32 {
    STEPS.last().map(|s| s.version).unwrap_or(0)
}

pub fn steps() -> Vec<MigrationStep> {
    STEPS
        .iter()
        .map(|s| MigrationStep {
            version: s.version,
            description: s.description.into(),
            statements: (s.indexes)()
                .iter()
                .map(|(c, keys, unique)| format!("createIndex {c} {keys}{}", if *unique { " unique" } else { "" }))
                .chain(s.data.map(|(what, _)| what.to_string()))
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect()
}

pub async fn version(store: &MongoStore) -> StoreResult<u32> {
    let meta = store.db.collection::<Document>(META);
    let found = store.call("schema version", meta.find_one(doc! {"name": "schema"})).await?;
    Ok(found
        .and_then(|d| d.get("version").and_then(|v| v.as_i64().or_else(|| v.as_i32().map(i64::from))))
        .map(|v| v as u32)
        .unwrap_or(0))
}

pub async fn check_not_newer(store: &MongoStore) -> StoreResult<u32> {
    let found = version(store).await?;
    if found > latest_version() {
        return Err(StoreError::SchemaTooNew { found, supported: latest_version() });
    }
    Ok(found)
}

/// Applies the steps above the stored version; returns their versions.
pub async fn migrate(store: &MongoStore) -> StoreResult<Vec<u32>> {
    let current = check_not_newer(store).await?;
    let mut applied = Vec::new();
    for step in STEPS.iter().filter(|s| s.version > current) {
        for (collection, keys, unique) in (step.indexes)() {
            let index =
                IndexModel::builder().keys(keys).options(IndexOptions::builder().unique(unique).build()).build();
            store.call("create index", store.db.collection::<Document>(collection).create_index(index)).await?;
        }
        if let Some((_, data)) = step.data {
            data(store).await?;
        }
        let meta = store.db.collection::<Document>(META);
        let bump = meta
            .update_one(doc! {"name": "schema"}, doc! {"$set": {"name": "schema", "version": step.version as i64}})
            .upsert(true);
        store.call("schema version", bump).await?;
        tracing::info!(target: "store", version = step.version, "mongodb schema migrated");
        applied.push(step.version);
    }
    Ok(applied)
}
