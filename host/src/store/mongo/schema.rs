//! Versioned schema of the MongoDB store: the indexes every collection needs (unique
//! keys make every upsert idempotent). The version lives in `apollo_meta`; each step is
//! idempotent itself (creating an existing index is a no-op), so a host that stops
//! mid-step simply runs it again. Never edit a shipped step: append a new one.

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;

use super::MongoStore;
use crate::store::transfer::MigrationStep;
use crate::store::{StoreError, StoreResult};

pub const META: &str = "apollo_meta";
pub const COUNTERS: &str = "counters";

/// `(collection, keys, unique)`.
type IndexSpec = (&'static str, Document, bool);

struct Step {
    version: u32,
    description: &'static str,
    indexes: fn() -> Vec<IndexSpec>,
}

const STEPS: &[Step] = &[Step {
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
}];

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
