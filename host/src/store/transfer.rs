//! Record-level access to a whole store, the same for every backend: the list of
//! collections, one backend-neutral JSON form per record (the record type's serde
//! form, so a record read from SQLite and the same record read from MongoDB are
//! byte-identical), paging keys, an order-independent checksum, and a resumable
//! page-by-page copy between two stores. Export/import archives, backend copies
//! (module-db-migrate) and MongoDB's backup snapshot are built from these.
//!
//! It does not decide *where* records go (that is the caller's) and never deletes:
//! an import upserts by key, so re-running a page after an interruption is harmless.

use plugin_api::digest::RecordDigest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::module_data::{ModuleDataRecord, ModuleHeadRecord};
use super::*;

/// A store collection (a SQLite table, a MongoDB collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Settings,
    Models,
    Runtime,
    Tokens,
    /// Each module's keys, values and versions (`module_data::ModuleDataRecord`).
    ModuleData,
    /// Each module's head revision (`module_data::ModuleHeadRecord`).
    ModuleHeads,
    Audit,
    TaskRuns,
    Alarms,
    /// The key-value view of module data that older stores and archives hold: still
    /// read and written (as ordinary writes), never listed among `ALL`.
    ModuleKv,
}

/// What orders a collection's records, and resumes a page walk after a record (a
/// store-administration wire type, defined once in plugin-api).
pub use plugin_api::store_admin::RecordKey;

/// A setting, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingRecord {
    pub key: String,
    pub value: String,
}

/// One entry of a module's key-value data, as older stores exported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleKvRecord {
    pub module: String,
    pub key: String,
    pub value: String,
}

impl Collection {
    /// Every collection, in the order copies and exports visit them.
    pub const ALL: [Collection; 9] = [
        Collection::Settings,
        Collection::Models,
        Collection::Runtime,
        Collection::Tokens,
        Collection::ModuleData,
        Collection::ModuleHeads,
        Collection::Audit,
        Collection::TaskRuns,
        Collection::Alarms,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collection::Settings => "settings",
            Collection::Models => "models",
            Collection::Runtime => "runtime",
            Collection::Tokens => "tokens",
            Collection::ModuleData => "module_data",
            Collection::ModuleHeads => "module_heads",
            Collection::ModuleKv => "module_kv",
            Collection::Audit => "audit",
            Collection::TaskRuns => "task_runs",
            Collection::Alarms => "alarms",
        }
    }

    pub fn parse(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().chain([Collection::ModuleKv]).find(|c| c.name() == name)
    }

    /// Records of these collections are numbered by the store (`id`).
    pub fn has_numeric_ids(self) -> bool {
        matches!(self, Collection::Audit | Collection::TaskRuns | Collection::Alarms)
    }

    /// The record's key, after checking that it is a well-formed record of this
    /// collection (every field present with the right type).
    pub fn key_of(self, record: &Value) -> Result<RecordKey, String> {
        Ok(match self {
            Collection::Settings => RecordKey::Text(typed::<SettingRecord>(record)?.key),
            Collection::Models => RecordKey::Text(typed::<ModelRecord>(record)?.name),
            Collection::Runtime => RecordKey::Text(typed::<RuntimeRecord>(record)?.name),
            Collection::Tokens => RecordKey::Text(typed::<TokenRecord>(record)?.token_hash),
            Collection::ModuleKv => {
                let r = typed::<ModuleKvRecord>(record)?;
                RecordKey::Pair(r.module, r.key)
            }
            Collection::ModuleData => {
                let r = typed::<ModuleDataRecord>(record)?;
                RecordKey::Pair(r.module, r.key)
            }
            Collection::ModuleHeads => RecordKey::Text(typed::<ModuleHeadRecord>(record)?.module),
            Collection::Audit => RecordKey::Id(typed::<AuditEntry>(record)?.id),
            Collection::TaskRuns => RecordKey::Id(typed::<TaskRunRecord>(record)?.id),
            Collection::Alarms => RecordKey::Id(typed::<AlarmRecord>(record)?.id),
        })
    }

    /// Re-serialises a record through its type, so the same record always has the same
    /// bytes whatever backend (and number types) it came from.
    pub fn canonical(self, record: &Value) -> Result<Value, String> {
        fn round<T: Serialize + for<'de> Deserialize<'de>>(v: &Value) -> Result<Value, String> {
            serde_json::to_value(typed::<T>(v)?).map_err(|e| e.to_string())
        }
        match self {
            Collection::Settings => round::<SettingRecord>(record),
            Collection::Models => round::<ModelRecord>(record),
            Collection::Runtime => round::<RuntimeRecord>(record),
            Collection::Tokens => round::<TokenRecord>(record),
            Collection::ModuleKv => round::<ModuleKvRecord>(record),
            Collection::ModuleData => round::<ModuleDataRecord>(record),
            Collection::ModuleHeads => round::<ModuleHeadRecord>(record),
            Collection::Audit => round::<AuditEntry>(record),
            Collection::TaskRuns => round::<TaskRunRecord>(record),
            Collection::Alarms => round::<AlarmRecord>(record),
        }
    }
}

/// Deserialises one exported record, naming what is wrong with it.
pub fn typed<T: for<'de> Deserialize<'de>>(record: &Value) -> Result<T, String> {
    T::deserialize(record).map_err(|e| format!("not a valid record: {e}"))
}

/// Serialises a typed record into its exported form.
pub fn to_record<T: Serialize>(record: &T) -> StoreResult<Value> {
    serde_json::to_value(record).map_err(|e| StoreError::Corrupt { what: "record".into(), detail: e.to_string() })
}

/// Count and checksum of one collection, by `plugin_api::digest` (the rule
/// module-db-migrate uses too): order-free, and key order does not matter.
pub type CollectionDigest = RecordDigest;

/// Page size for walks over a collection.
pub const PAGE: u32 = 500;

/// Reads a whole collection and digests it.
pub async fn digest(store: &dyn Store, collection: Collection) -> StoreResult<CollectionDigest> {
    let mut digest = CollectionDigest::default();
    let mut after = None;
    loop {
        let page = store.export_page(collection, after.as_ref(), PAGE).await?;
        for record in &page {
            let canonical = collection
                .canonical(record)
                .map_err(|detail| StoreError::Corrupt { what: collection.name().into(), detail })?;
            digest.add(&canonical);
        }
        match next_after(collection, &page)? {
            Some(key) => after = Some(key),
            None => return Ok(digest),
        }
    }
}

/// Where the walk goes on after a page: its last key, or `None` when it was the last.
fn next_after(collection: Collection, page: &[Value]) -> StoreResult<Option<RecordKey>> {
    match page.last() {
        Some(last) if page.len() == PAGE as usize => collection
            .key_of(last)
            .map(Some)
            .map_err(|detail| StoreError::Corrupt { what: collection.name().into(), detail }),
        _ => Ok(None),
    }
}

/// Copies every record of every collection from `from` into `to` (upserts), page by
/// page. Used for MongoDB's backup snapshot; module-db-migrate drives its own walk
/// through the same calls so it can report progress and resume.
pub async fn copy_all(from: &dyn Store, to: &dyn Store) -> StoreResult<u64> {
    let mut copied = 0;
    for collection in Collection::ALL {
        let mut after = None;
        loop {
            let page = from.export_page(collection, after.as_ref(), PAGE).await?;
            copied += to.import_records(collection, &page).await?;
            match next_after(collection, &page)? {
                Some(key) => after = Some(key),
                None => break,
            }
        }
    }
    Ok(copied)
}

/// One step of a backend's schema history (a store-administration wire type, defined
/// once in plugin-api).
pub use plugin_api::store_admin::MigrationStep;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_typed() {
        let kv = serde_json::json!({"module": "m", "key": "k", "value": "v"});
        assert_eq!(Collection::ModuleKv.key_of(&kv).unwrap(), RecordKey::Pair("m".into(), "k".into()));
        let err = Collection::Audit.key_of(&serde_json::json!({"id": 1})).unwrap_err();
        assert!(err.contains("missing field"), "{err}");
        assert_eq!(Collection::parse("task_runs"), Some(Collection::TaskRuns));
        assert_eq!(serde_json::to_value(RecordKey::Id(5)).unwrap(), serde_json::json!(5));
    }
}
