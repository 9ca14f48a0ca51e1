//! Store administration ([`crate::Host::store_admin`]): the wire types of every
//! operation the host's `modules/store_service.rs` answers — targets, requests and
//! typed answers — defined once here for both sides, and [`StoreAdmin`], the typed
//! calls a module makes. Records stay `serde_json::Value`: the backend-neutral record
//! form, opaque to the module. Only modules named in the host's `modules.store_access`
//! may call it.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::digest::RecordDigest;
use crate::host::HostApi;

/// A store: `"active"` (the host's own), `{"sqlite": "name.db"}` (a file under the
/// host's `<data_dir>/stores/`) or `{"mongo": {"url", "name", "user", "pass_wd"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreTarget {
    #[default]
    Active,
    Sqlite(String),
    Mongo(MongoTarget),
}

/// A MongoDB database; the host always adds its own scope. `Debug` never shows the
/// password (nor credentials in the url).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MongoTarget {
    /// `mongodb://host:port` (a bare `host:port` is accepted).
    pub url: String,
    /// Database name (empty: the host's default, `apollo`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub user: String,
    #[serde(default, alias = "passwd")]
    pub pass_wd: String,
}

impl std::fmt::Debug for MongoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials may sit in the url: keep only what follows `@`.
        let url = self.url.rsplit_once('@').map(|(_, rest)| rest).unwrap_or(&self.url);
        let pass_wd = if self.pass_wd.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("MongoTarget")
            .field("url", &url)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("pass_wd", &pass_wd)
            .finish()
    }
}

/// Missing or `null` is the host's own store.
fn target_or_active<'de, D: Deserializer<'de>>(d: D) -> Result<StoreTarget, D::Error> {
    Ok(Option::<StoreTarget>::deserialize(d)?.unwrap_or_default())
}

/// What orders a collection's records, and resumes a page walk after a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordKey {
    Id(i64),
    Text(String),
    Pair(String, String),
}

/// One step of a backend's schema history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStep {
    pub version: u32,
    pub description: String,
    /// What the step runs (SQL, or the MongoDB indexes it creates), for dry runs.
    pub statements: String,
}

/// One store-administration request: `{"op": …, "target": T, …}`. `collection` is a
/// collection's name (`settings`, `models`, …, `alarms`; `module_kv` for imports of
/// old archives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// The backend, schema version and record counts: [`StoreInfo`].
    Info {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
    },
    /// Every schema step and whether it is applied, without changing the store:
    /// [`MigrationsStatus`].
    Migrations {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
    },
    /// Applies the pending steps, or lists them (`dry_run`): [`MigrateAnswer`].
    Migrate {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
        #[serde(default)]
        dry_run: bool,
    },
    /// Records in a collection: [`CountAnswer`].
    Count {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
        collection: String,
    },
    /// Count and checksum of a whole collection: [`RecordDigest`].
    Digest {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
        collection: String,
    },
    /// Up to `limit` records (default 500, at most 5000) after the key `after`:
    /// [`ExportPage`].
    ExportPage {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
        collection: String,
        #[serde(default)]
        after: Option<RecordKey>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Upserts up to 5000 records (the target is created if missing): [`ImportAnswer`].
    Import {
        #[serde(default, deserialize_with = "target_or_active")]
        target: StoreTarget,
        collection: String,
        #[serde(default)]
        records: Vec<Value>,
    },
}

impl AdminRequest {
    /// Every op, as the wire names it.
    pub const OPS: [&'static str; 7] = ["info", "migrations", "migrate", "count", "digest", "export_page", "import"];

    /// Whether `op` needs a `collection`.
    pub fn needs_collection(op: &str) -> bool {
        matches!(op, "count" | "digest" | "export_page" | "import")
    }
}

/// Answer to `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    /// The target as the host describes it (never with a password).
    pub target: String,
    pub backend: String,
    pub schema_version: u32,
    /// Records per collection, in the host's collection order.
    pub counts: Counts,
}

/// Records per collection, as a JSON object that keeps the host's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub Vec<(String, u64)>);

impl Counts {
    pub fn get(&self, collection: &str) -> Option<u64> {
        self.0.iter().find(|(name, _)| name == collection).map(|(_, n)| *n)
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Counts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of record counts")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Counts, M::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Counts(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One schema step in a `migrations` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStatus {
    pub version: u32,
    pub description: String,
    pub applied: bool,
}

/// Answer to `migrations`. A SQLite target that does not exist yet is at version 0
/// with every step pending (`exists: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationsStatus {
    pub target: String,
    pub exists: bool,
    pub backend: String,
    pub version: u32,
    pub latest: u32,
    pub steps: Vec<StepStatus>,
    /// How many steps are not applied.
    pub pending: u64,
}

/// Answer to `migrate`: `would_apply` for a dry run, `applied` otherwise; `version`
/// is the schema version after the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateAnswer {
    pub target: String,
    pub dry_run: bool,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_apply: Option<Vec<MigrationStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<MigrationStep>>,
}

/// Answer to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountAnswer {
    pub count: u64,
}

/// Answer to `export_page`: `last` is the key of the last record (continue after it),
/// `more` whether the page was full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportPage {
    pub records: Vec<Value>,
    pub last: Option<RecordKey>,
    pub more: bool,
}

/// Answer to `import`: records written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportAnswer {
    pub written: u64,
}

/// Why the host refused or failed a store-administration call. `code` is one of
/// `bad_request`, `not_found`, `forbidden`, `unavailable`, `conflict`, `internal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCallError {
    pub code: String,
    pub message: String,
}

impl StoreCallError {
    fn internal(message: String) -> Self {
        StoreCallError { code: "internal".into(), message }
    }
}

impl std::fmt::Display for StoreCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreCallError {}

/// The host's store administration, as typed calls (from [`crate::Host::store_admin`]).
/// Cheap to clone.
#[derive(Clone)]
pub struct StoreAdmin {
    api: Arc<dyn HostApi>,
}

impl std::fmt::Debug for StoreAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreAdmin")
    }
}

impl StoreAdmin {
    pub(crate) fn new(api: Arc<dyn HostApi>) -> Self {
        StoreAdmin { api }
    }

    /// Sends one request and reads its answer as `A` (the answer type the request's
    /// op documents).
    pub async fn call<A: DeserializeOwned>(&self, request: &AdminRequest) -> Result<A, StoreCallError> {
        let text = serde_json::to_string(request)
            .map_err(|e| StoreCallError::internal(format!("cannot encode the store request: {e}")))?;
        match self.api.store_call(text).await {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| StoreCallError::internal(format!("bad store answer: {e}")))
            }
            Err(text) => Err(serde_json::from_str(&text).unwrap_or(StoreCallError::internal(text))),
        }
    }

    pub async fn info(&self, target: &StoreTarget) -> Result<StoreInfo, StoreCallError> {
        self.call(&AdminRequest::Info { target: target.clone() }).await
    }

    pub async fn migrations(&self, target: &StoreTarget) -> Result<MigrationsStatus, StoreCallError> {
        self.call(&AdminRequest::Migrations { target: target.clone() }).await
    }

    pub async fn migrate(&self, target: &StoreTarget, dry_run: bool) -> Result<MigrateAnswer, StoreCallError> {
        self.call(&AdminRequest::Migrate { target: target.clone(), dry_run }).await
    }

    pub async fn count(&self, target: &StoreTarget, collection: &str) -> Result<u64, StoreCallError> {
        let request = AdminRequest::Count { target: target.clone(), collection: collection.into() };
        Ok(self.call::<CountAnswer>(&request).await?.count)
    }

    pub async fn digest(&self, target: &StoreTarget, collection: &str) -> Result<RecordDigest, StoreCallError> {
        self.call(&AdminRequest::Digest { target: target.clone(), collection: collection.into() }).await
    }

    pub async fn page(
        &self,
        target: &StoreTarget,
        collection: &str,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> Result<ExportPage, StoreCallError> {
        let request = AdminRequest::ExportPage {
            target: target.clone(),
            collection: collection.into(),
            after: after.cloned(),
            limit: Some(limit),
        };
        self.call(&request).await
    }

    /// Upserts `records`; returns how many were written.
    pub async fn import(
        &self,
        target: &StoreTarget,
        collection: &str,
        records: &[Value],
    ) -> Result<u64, StoreCallError> {
        let request =
            AdminRequest::Import { target: target.clone(), collection: collection.into(), records: records.to_vec() };
        Ok(self.call::<ImportAnswer>(&request).await?.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_keep_their_json_shape() {
        let mongo = StoreTarget::Mongo(MongoTarget {
            url: "mongodb://h:1".into(),
            name: "db".into(),
            user: "u".into(),
            pass_wd: "secret".into(),
        });
        for (target, wire) in [
            (StoreTarget::Active, json!("active")),
            (StoreTarget::Sqlite("x.db".into()), json!({"sqlite": "x.db"})),
            (mongo.clone(), json!({"mongo": {"url": "mongodb://h:1", "name": "db", "user": "u", "pass_wd": "secret"}})),
        ] {
            assert_eq!(serde_json::to_value(&target).unwrap(), wire);
            assert_eq!(serde_json::from_value::<StoreTarget>(wire).unwrap(), target);
        }
        let short: StoreTarget = serde_json::from_value(json!({"mongo": {"url": "h:1", "passwd": "p"}})).unwrap();
        assert!(matches!(short, StoreTarget::Mongo(m) if m.pass_wd == "p" && m.name.is_empty()));
        assert!(serde_json::from_value::<StoreTarget>(json!({"ftp": "x"})).is_err());
    }

    #[test]
    fn passwords_stay_out_of_debug() {
        let target = StoreTarget::Mongo(MongoTarget {
            url: "mongodb://u:hunter2@h:1".into(),
            pass_wd: "hunter2".into(),
            ..Default::default()
        });
        let request = AdminRequest::Count { target, collection: "audit".into() };
        let shown = format!("{request:?}");
        assert!(!shown.contains("hunter2") && shown.contains("h:1") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn requests_keep_their_json_shape() {
        let request = AdminRequest::ExportPage {
            target: StoreTarget::Sqlite("a.db".into()),
            collection: "models".into(),
            after: Some(RecordKey::Pair("m".into(), "k".into())),
            limit: Some(7),
        };
        let wire = json!({"op": "export_page", "target": {"sqlite": "a.db"}, "collection": "models",
                          "after": ["m", "k"], "limit": 7});
        assert_eq!(serde_json::to_value(&request).unwrap(), wire);
        assert_eq!(serde_json::from_value::<AdminRequest>(wire).unwrap(), request);
        // No target (or null) is the host's own store; unknown fields are refused.
        let info: AdminRequest = serde_json::from_str(r#"{"op":"info","target":null}"#).unwrap();
        assert_eq!(info, AdminRequest::Info { target: StoreTarget::Active });
        let migrate: AdminRequest = serde_json::from_str(r#"{"op":"migrate"}"#).unwrap();
        assert_eq!(migrate, AdminRequest::Migrate { target: StoreTarget::Active, dry_run: false });
        assert!(serde_json::from_str::<AdminRequest>(r#"{"op":"info","colection":"x"}"#).is_err());
        let ops: Vec<String> = [
            json!({"op": "info"}),
            json!({"op": "migrations"}),
            json!({"op": "migrate"}),
            json!({"op": "count", "collection": "a"}),
            json!({"op": "digest", "collection": "a"}),
            json!({"op": "export_page", "collection": "a"}),
            json!({"op": "import", "collection": "a"}),
        ]
        .into_iter()
        .map(|v| serde_json::to_value(serde_json::from_value::<AdminRequest>(v).unwrap()).unwrap()["op"].to_string())
        .collect();
        assert_eq!(ops, AdminRequest::OPS.map(|op| format!("{op:?}")));
    }
}
