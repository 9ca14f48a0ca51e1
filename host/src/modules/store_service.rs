//! The store-administration host service (`HostObj::store_call`): what
//! module-db-migrate needs to migrate, export, import and copy stores, as JSON
//! operations over the record-level `store::transfer` interface. Only modules named in
//! `modules.store_access` (default: `db-migrate`) may call it: it reads every record,
//! login-token hashes included.
//!
//! Targets: `"active"` (or no target) is the host's own store; `{"sqlite": "name.db"}`
//! is a file under `<data_dir>/stores/` (a relative path with no `..`: a module cannot
//! make the host open or create files elsewhere); `{"mongo": {"url", "name", "user",
//! "pass_wd"}}` is a MongoDB database, tagged with this host's scope. Opened targets
//! are kept for later calls (a copy makes thousands). It never logs or returns a
//! password, and does not decide what to copy when: that is the module's.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::transfer::{self, PAGE};
use crate::store::{Collection, MongoTarget, RecordKey, Store, StoreTarget, open_target};

/// At most this many records per page or import call.
const MAX_PAGE: u32 = 5_000;
/// Foreign stores kept open at once.
const MAX_OPEN: usize = 8;
/// How long a MongoDB target named by a module may take to answer at first.
const TARGET_CONNECT_SECS: u64 = 5;

#[derive(Debug)]
pub struct StoreAdmin {
    active: Arc<dyn Store>,
    active_target: StoreTarget,
    stores_dir: PathBuf,
    scope: String,
    allowed: Vec<String>,
    open: tokio::sync::Mutex<HashMap<String, Arc<dyn Store>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TargetSpec {
    Sqlite(String),
    Mongo(MongoTarget),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    op: String,
    #[serde(default)]
    target: Option<Value>,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    after: Option<RecordKey>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    records: Vec<Value>,
    #[serde(default)]
    dry_run: bool,
}

impl StoreAdmin {
    pub fn new(
        active: Arc<dyn Store>,
        active_target: StoreTarget,
        data_dir: &Path,
        scope: String,
        allowed: Vec<String>,
    ) -> Self {
        StoreAdmin {
            active,
            active_target,
            stores_dir: data_dir.join("stores"),
            scope,
            allowed,
            open: Default::default(),
        }
    }

    pub fn allows(&self, module: &str) -> bool {
        self.allowed.iter().any(|m| m == module)
    }

    /// Runs one operation for `module`; errors are one line saying what and how to fix.
    pub async fn call(&self, module: &str, request: &str) -> Result<Value, String> {
        if !self.allows(module) {
            return Err(format!(
                "forbidden: module {module} may not administer the store; add it to modules.store_access"
            ));
        }
        let request: Request = serde_json::from_str(request).map_err(|e| format!("bad store request: {e}"))?;
        let collection = || -> Result<Collection, String> {
            let name = request.collection.as_deref().ok_or("missing `collection`")?;
            Collection::parse(name).ok_or_else(|| {
                let known: Vec<_> = Collection::ALL.iter().map(|c| c.name()).collect();
                format!("unknown collection {name:?}; known: {}", known.join(", "))
            })
        };
        let err = |e: crate::store::StoreError| e.to_string();
        match request.op.as_str() {
            "info" => {
                let (target, store) = self.resolve(request.target.as_ref(), true).await?;
                let mut counts = serde_json::Map::new();
                for c in Collection::ALL {
                    counts.insert(c.name().into(), json!(store.count_records(c).await.map_err(err)?));
                }
                Ok(json!({
                    "target": target.describe(),
                    "backend": store.backend(),
                    "schema_version": store.schema_version().await.map_err(err)?,
                    "counts": counts,
                }))
            }
            "migrations" | "migrate" => {
                let (target, store) = self.resolve(request.target.as_ref(), false).await?;
                let (version, steps) = store.migrations().await.map_err(err)?;
                let pending: Vec<_> = steps.iter().filter(|s| s.version > version).cloned().collect();
                let listed: Vec<Value> = steps
                    .iter()
                    .map(|s| json!({"version": s.version, "description": s.description, "applied": s.version <= version}))
                    .collect();
                if request.op == "migrations" {
                    return Ok(json!({
                        "target": target.describe(),
                        "backend": store.backend(),
                        "version": version,
                        "latest": steps.last().map(|s| s.version).unwrap_or(0),
                        "steps": listed,
                        "pending": pending.len(),
                    }));
                }
                if request.dry_run {
                    return Ok(
                        json!({"target": target.describe(), "dry_run": true, "version": version, "would_apply": pending}),
                    );
                }
                let applied = store.apply_migrations().await.map_err(err)?;
                let now = store.schema_version().await.map_err(err)?;
                Ok(json!({"target": target.describe(), "dry_run": false, "version": now, "applied": applied}))
            }
            "count" => {
                let (_, store) = self.resolve(request.target.as_ref(), true).await?;
                Ok(json!({"count": store.count_records(collection()?).await.map_err(err)?}))
            }
            "digest" => {
                let (_, store) = self.resolve(request.target.as_ref(), true).await?;
                let digest = transfer::digest(store.as_ref(), collection()?).await.map_err(err)?;
                Ok(serde_json::to_value(digest).unwrap_or(Value::Null))
            }
            "export_page" => {
                let (_, store) = self.resolve(request.target.as_ref(), true).await?;
                let collection = collection()?;
                let limit = request.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
                let records = store.export_page(collection, request.after.as_ref(), limit).await.map_err(err)?;
                let last = records.last().and_then(|r| collection.key_of(r).ok());
                Ok(json!({"records": records, "last": last, "more": records.len() == limit as usize}))
            }
            "import" => {
                if request.records.len() > MAX_PAGE as usize {
                    return Err(format!("at most {MAX_PAGE} records per import call"));
                }
                let (_, store) = self.resolve(request.target.as_ref(), true).await?;
                let written = store.import_records(collection()?, &request.records).await.map_err(err)?;
                Ok(json!({"written": written}))
            }
            other => Err(format!(
                "unknown store op {other:?}; known: info, migrations, migrate, count, digest, export_page, import"
            )),
        }
    }

    /// The store a request names. `migrated` targets are cached; a look at a foreign
    /// store's migrations opens it as it is, without changing it.
    async fn resolve(&self, target: Option<&Value>, migrated: bool) -> Result<(StoreTarget, Arc<dyn Store>), String> {
        let spec = match target {
            None => return Ok((self.active_target.clone(), Arc::clone(&self.active))),
            Some(Value::String(s)) if s == "active" => {
                return Ok((self.active_target.clone(), Arc::clone(&self.active)));
            }
            Some(v) => TargetSpec::deserialize(v).map_err(|e| {
                format!(
                    "bad target: {e}; use \"active\", {{\"sqlite\": \"name.db\"}} or {{\"mongo\": {{\"url\": ...}}}}"
                )
            })?,
        };
        let target = match spec {
            TargetSpec::Sqlite(name) => StoreTarget::Sqlite(self.confined(&name)?),
            TargetSpec::Mongo(mut mongo) => {
                if mongo.scope.is_empty() {
                    mongo.scope = self.scope.clone();
                }
                // A wrong address must fail within the module's handler timeout, not
                // after the 30 s a host gives its own database at start.
                if mongo.start_timeout_secs == 0 {
                    mongo.start_timeout_secs = TARGET_CONNECT_SECS;
                }
                StoreTarget::Mongo(mongo)
            }
        };
        let key = match &target {
            StoreTarget::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreTarget::Mongo(m) => format!("mongo:{}:{}:{}", m.display(), m.user, m.scope),
        };
        if key == self.active_key() {
            return Ok((target, Arc::clone(&self.active)));
        }
        if !migrated {
            let store = open_target(&target, false).await.map_err(|e| e.to_string())?;
            return Ok((target, store));
        }
        let mut open = self.open.lock().await;
        if let Some(store) = open.get(&key) {
            return Ok((target, Arc::clone(store)));
        }
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        if let StoreTarget::Sqlite(path) = &target {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.stores_dir))
                .map_err(|e| format!("cannot create {}: {e}", self.stores_dir.display()))?;
        }
        let store = open_target(&target, true).await.map_err(|e| e.to_string())?;
        open.insert(key, Arc::clone(&store));
        Ok((target, store))
    }

    fn active_key(&self) -> String {
        match &self.active_target {
            StoreTarget::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreTarget::Mongo(m) => format!("mongo:{}:{}:{}", m.display(), m.user, self.scope),
        }
    }

    /// `name` under `<data_dir>/stores/`: relative, plain components only.
    fn confined(&self, name: &str) -> Result<PathBuf, String> {
        let path = Path::new(name);
        let plain =
            !name.is_empty() && !name.contains('\0') && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(format!(
                "sqlite target {name:?} must be a relative path without `..` (it is a file under {})",
                self.stores_dir.display()
            ));
        }
        let full = self.stores_dir.join(path);
        // A symlink planted under stores/ must not lead the host elsewhere.
        let mut walked = self.stores_dir.clone();
        for component in path.components() {
            walked.push(component);
            if walked.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                return Err(format!("sqlite target {name:?} goes through a symlink; refused"));
            }
        }
        Ok(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    async fn admin(dir: &Path) -> StoreAdmin {
        let active: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("apollo.db")).unwrap());
        let target = StoreTarget::Sqlite(dir.join("apollo.db"));
        StoreAdmin::new(active, target, dir, "h".into(), vec!["db-migrate".into()])
    }

    #[tokio::test]
    async fn only_granted_modules_and_confined_paths() {
        let dir = tempfile::tempdir().unwrap();
        let admin = admin(dir.path()).await;
        let err = admin.call("sys", r#"{"op":"info"}"#).await.unwrap_err();
        assert!(err.contains("modules.store_access"), "{err}");
        for bad in ["../x.db", "/etc/x.db", "a/../../x.db", ""] {
            let req = json!({"op": "count", "collection": "audit", "target": {"sqlite": bad}}).to_string();
            let err = admin.call("db-migrate", &req).await.unwrap_err();
            assert!(err.contains("relative path"), "{bad}: {err}");
        }
        std::fs::create_dir_all(dir.path().join("stores")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("stores/link")).unwrap();
        let req = json!({"op": "count", "collection": "audit", "target": {"sqlite": "link/x.db"}}).to_string();
        assert!(admin.call("db-migrate", &req).await.unwrap_err().contains("symlink"));
        let req = json!({"op": "count", "collection": "audit", "target": {"sqlite": "copy.db"}}).to_string();
        assert_eq!(admin.call("db-migrate", &req).await.unwrap(), json!({"count": 0}));
        assert!(dir.path().join("stores/copy.db").exists());
    }

    #[tokio::test]
    async fn errors_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let admin = admin(dir.path()).await;
        let err = admin.call("db-migrate", r#"{"op":"count","collection":"nope"}"#).await.unwrap_err();
        assert!(err.contains("unknown collection") && err.contains("task_runs"), "{err}");
        let err = admin.call("db-migrate", r#"{"op":"explode"}"#).await.unwrap_err();
        assert!(err.contains("known: info"), "{err}");
        let err = admin.call("db-migrate", r#"{"op":"info","target":{"ftp":"x"}}"#).await.unwrap_err();
        assert!(err.contains("bad target"), "{err}");
    }
}
