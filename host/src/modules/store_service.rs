//! The store-administration host service (`HostObj::store_call`): what
//! module-db-migrate needs to migrate, export, import and copy stores, as JSON
//! operations over the record-level `store::transfer` interface. Only modules named in
//! `modules.store_access` (default: `db-migrate`) may call it: it reads every record,
//! login-token hashes included.
//!
//! Targets: `"active"` (or no target) is the host's own store; `{"sqlite": "name.db"}`
//! is a file under `<data_dir>/stores/` (a relative path with no `..`: a module cannot
//! make the host open or create files elsewhere; reading one that does not exist is an
//! error, only writes create it); `{"mongo": {"url", "name", "user", "pass_wd"}}` is a
//! MongoDB database, always with this host's scope. Opened targets are kept for later
//! calls (a copy makes thousands), keyed by everything that decides what they reach,
//! the password included. Errors carry a code the module maps to an HTTP status. It
//! never logs or returns a password, and does not decide what to copy when: that is
//! the module's. The requests and answers are `plugin_api::store_admin`'s types,
//! the one definition both sides share.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use plugin_api::store_admin::{
    self as wire, AdminRequest, CountAnswer, ImportAnswer, MigrateAnswer, MigrationsStatus, StepStatus, StoreInfo,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::transfer::{self, PAGE};
use crate::store::{
    Collection, MigrationStep, MongoTarget, Store, StoreError, StoreTarget, open_target, sqlite_migration_steps,
};

/// At most this many records per page or import call.
const MAX_PAGE: u32 = 5_000;
/// Foreign stores kept open at once.
const MAX_OPEN: usize = 8;
/// How long a MongoDB target named by a module may take to answer at first, and per
/// call: a wrong address must fail within the module's handler timeout.
const TARGET_CONNECT_SECS: u64 = 5;
const TARGET_CALL_SECS: u64 = 5;

/// A refused or failed call: `code` is what the module maps to an HTTP status
/// (`bad_request`, `not_found`, `forbidden`, `unavailable`, `conflict`, `internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: &'static str,
    pub message: String,
}

impl CallError {
    fn bad(message: impl Into<String>) -> Self {
        CallError { code: "bad_request", message: message.into() }
    }

    /// The JSON the module receives.
    pub fn to_json(&self) -> String {
        json!({"code": self.code, "message": self.message}).to_string()
    }
}

impl From<StoreError> for CallError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::InvalidRecord { .. } | StoreError::InvalidTarget(_) => "bad_request",
            StoreError::SchemaTooNew { .. } => "conflict",
            _ => "internal",
        };
        CallError { code, message: e.to_string() }
    }
}

/// What a call does to its target, which decides how the target is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads records: the store must exist (a typo must not create an empty one).
    Read,
    /// Writes records: created if missing, schema brought up to date.
    Write,
    /// Looks at the schema: opened as it is, never created or migrated.
    Inspect,
    /// Applies migrations: opened as it is (created if missing), so the steps it
    /// lacks are the ones applied and reported.
    Migrate,
}

#[derive(Debug)]
pub struct StoreAdmin {
    active: Arc<dyn Store>,
    active_target: StoreTarget,
    stores_dir: PathBuf,
    scope: String,
    allowed: Vec<String>,
    open: tokio::sync::Mutex<HashMap<String, Arc<dyn Store>>>,
}

/// Why a request does not parse, in the words of the checks it fails: an unknown op, a
/// bad target, a missing collection, or else serde's own reason.
fn request_error(request: &str, e: serde_json::Error) -> CallError {
    let Ok(raw) = serde_json::from_str::<Value>(request) else {
        return CallError::bad(format!("bad store request: {e}"));
    };
    let op = raw.get("op").and_then(Value::as_str);
    if let Some(other) = op.filter(|op| !AdminRequest::OPS.contains(op)) {
        return CallError::bad(format!("unknown store op {other:?}; known: {}", AdminRequest::OPS.join(", ")));
    }
    if let Some(target) = raw.get("target").filter(|t| !t.is_null())
        && let Err(e) = wire::StoreTarget::deserialize(target)
    {
        return CallError::bad(format!(
            "bad target: {e}; use \"active\", {{\"sqlite\": \"name.db\"}} or {{\"mongo\": {{\"url\": ...}}}}"
        ));
    }
    if op.is_some_and(AdminRequest::needs_collection) && raw.get("collection").is_none_or(Value::is_null) {
        return CallError::bad("missing `collection`");
    }
    CallError::bad(format!("bad store request: {e}"))
}

/// A typed answer as the JSON the module receives.
fn answer<T: Serialize>(answer: T) -> Result<Value, CallError> {
    serde_json::to_value(answer)
        .map_err(|e| CallError { code: "internal", message: format!("cannot encode the store answer: {e}") })
}

/// `name` as a collection, or an error listing the known ones.
fn collection(name: &str) -> Result<Collection, CallError> {
    Collection::parse(name).ok_or_else(|| {
        let known: Vec<_> = Collection::ALL.iter().map(|c| c.name()).collect();
        CallError::bad(format!("unknown collection {name:?}; known: {}", known.join(", ")))
    })
}

/// Identifies an opened store: everything that decides what the connection can reach,
/// the password included (hashed), so a call without the right password never gets a
/// store opened with it.
fn target_key(target: &StoreTarget) -> String {
    match target {
        StoreTarget::Sqlite(path) => format!("sqlite:{}", path.display()),
        StoreTarget::Mongo(m) => {
            let secret = Sha256::digest(format!("{}\0{}", m.url, m.pass_wd).as_bytes());
            let secret: String = secret.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("mongo:{}:{}:{}:{}", m.display(), m.user, m.scope, secret)
        }
    }
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
    pub async fn call(&self, module: &str, request: &str) -> Result<Value, CallError> {
        if !self.allows(module) {
            return Err(CallError {
                code: "forbidden",
                message: format!("module {module} may not administer the store; add it to modules.store_access"),
            });
        }
        let request: AdminRequest = serde_json::from_str(request).map_err(|e| request_error(request, e))?;
        match request {
            AdminRequest::Info { target } => {
                let (target, store) = self.resolve(&target, Access::Read).await?;
                let mut counts = Vec::new();
                for c in Collection::ALL {
                    counts.push((c.name().to_string(), store.count_records(c).await?));
                }
                answer(StoreInfo {
                    target: target.describe(),
                    backend: store.backend().into(),
                    schema_version: store.schema_version().await?,
                    counts: wire::Counts(counts),
                })
            }
            AdminRequest::Migrations { target } => answer(self.migrations(&target).await?),
            AdminRequest::Migrate { target, dry_run } => answer(self.migrate(&target, dry_run).await?),
            AdminRequest::Count { target, collection: name } => {
                let (_, store) = self.resolve(&target, Access::Read).await?;
                answer(CountAnswer { count: store.count_records(collection(&name)?).await? })
            }
            AdminRequest::Digest { target, collection: name } => {
                let (_, store) = self.resolve(&target, Access::Read).await?;
                answer(transfer::digest(store.as_ref(), collection(&name)?).await?)
            }
            AdminRequest::ExportPage { target, collection: name, after, limit } => {
                let (_, store) = self.resolve(&target, Access::Read).await?;
                let collection = collection(&name)?;
                let limit = limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
                let records = store.export_page(collection, after.as_ref(), limit).await?;
                let last = records.last().and_then(|r| collection.key_of(r).ok());
                let more = records.len() == limit as usize;
                answer(wire::ExportPage { records, last, more })
            }
            AdminRequest::Import { target, collection: name, records } => {
                if records.len() > MAX_PAGE as usize {
                    return Err(CallError::bad(format!("at most {MAX_PAGE} records per import call")));
                }
                let collection = collection(&name)?;
                let (_, store) = self.resolve(&target, Access::Write).await?;
                answer(ImportAnswer { written: store.import_records(collection, &records).await? })
            }
        }
    }

    /// A store's schema steps and which are applied, the store opened as it is. A
    /// SQLite target that does not exist yet is at version 0 with every step pending.
    async fn migrations(&self, target: &wire::StoreTarget) -> Result<MigrationsStatus, CallError> {
        let (described, version, steps, store) = self.schema(target, Access::Inspect).await?;
        Ok(MigrationsStatus {
            target: described,
            exists: store.is_some(),
            backend: store.as_ref().map(|s| s.backend()).unwrap_or("sqlite").into(),
            version,
            latest: steps.last().map(|s| s.version).unwrap_or(0),
            steps: steps
                .iter()
                .map(|s| StepStatus {
                    version: s.version,
                    description: s.description.clone(),
                    applied: s.version <= version,
                })
                .collect(),
            pending: steps.iter().filter(|s| s.version > version).count() as u64,
        })
    }

    /// Applies the pending steps, or lists them (`dry_run`: the store opened as it is,
    /// a missing SQLite file not created).
    async fn migrate(&self, target: &wire::StoreTarget, dry_run: bool) -> Result<MigrateAnswer, CallError> {
        let access = if dry_run { Access::Inspect } else { Access::Migrate };
        let (described, version, steps, store) = self.schema(target, access).await?;
        if dry_run {
            let pending: Vec<_> = steps.into_iter().filter(|s| s.version > version).collect();
            return Ok(MigrateAnswer {
                target: described,
                dry_run: true,
                version,
                would_apply: Some(pending),
                applied: None,
            });
        }
        let store = store.ok_or_else(|| CallError { code: "internal", message: "store not opened".into() })?;
        let applied = store.apply_migrations().await?;
        let now = store.schema_version().await?;
        Ok(MigrateAnswer { target: described, dry_run: false, version: now, would_apply: None, applied: Some(applied) })
    }

    /// The target's description, schema version and steps, and the store if it exists.
    /// Only for `Access::Inspect` does a SQLite target that is not there count as
    /// version 0.
    async fn schema(
        &self,
        target: &wire::StoreTarget,
        access: Access,
    ) -> Result<(String, u32, Vec<MigrationStep>, Option<Arc<dyn Store>>), CallError> {
        match self.resolve(target, access).await {
            Ok((t, store)) => {
                let (version, steps) = store.migrations().await?;
                Ok((t.describe(), version, steps, Some(store)))
            }
            Err(missing) if missing.code == "not_found" && access == Access::Inspect => {
                let path = self.sqlite_path(target)?;
                Ok((StoreTarget::Sqlite(path).describe(), 0, sqlite_migration_steps(), None))
            }
            Err(e) => Err(e),
        }
    }

    /// The SQLite path a request names (for a target that does not exist yet).
    fn sqlite_path(&self, target: &wire::StoreTarget) -> Result<PathBuf, CallError> {
        match target {
            wire::StoreTarget::Sqlite(name) => self.confined(name),
            _ => Err(CallError::bad("not a sqlite target")),
        }
    }

    /// The store a request names, opened for `access`. Stores opened for reading and
    /// writing are kept for later calls; a look at the schema opens it as it is.
    async fn resolve(
        &self,
        target: &wire::StoreTarget,
        access: Access,
    ) -> Result<(StoreTarget, Arc<dyn Store>), CallError> {
        let target = match target {
            wire::StoreTarget::Active => return Ok((self.active_target.clone(), Arc::clone(&self.active))),
            wire::StoreTarget::Sqlite(name) => {
                let path = self.confined(name)?;
                if matches!(access, Access::Read | Access::Inspect) && !path.exists() {
                    return Err(CallError {
                        code: "not_found",
                        message: format!(
                            "no store {name:?} under {} (an import or a copy creates it)",
                            self.stores_dir.display()
                        ),
                    });
                }
                StoreTarget::Sqlite(path)
            }
            wire::StoreTarget::Mongo(mongo) => StoreTarget::Mongo(MongoTarget {
                url: mongo.url.clone(),
                name: mongo.name.clone(),
                user: mongo.user.clone(),
                pass_wd: mongo.pass_wd.clone(),
                // Always this host's records: a module cannot reach another host's.
                scope: self.scope.clone(),
                start_timeout_secs: TARGET_CONNECT_SECS,
                timeout_secs: TARGET_CALL_SECS,
            }),
        };
        let key = target_key(&target);
        if key == target_key(&self.active_target) {
            return Ok((target, Arc::clone(&self.active)));
        }
        if let StoreTarget::Sqlite(path) = &target
            && matches!(access, Access::Write | Access::Migrate)
        {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.stores_dir)).map_err(|e| CallError {
                code: "internal",
                message: format!("cannot create {}: {e}", self.stores_dir.display()),
            })?;
        }
        if matches!(access, Access::Inspect | Access::Migrate) {
            let store = open_target(&target, false).await?;
            return Ok((target, store));
        }
        if let Some(store) = self.open.lock().await.get(&key) {
            return Ok((target, Arc::clone(store)));
        }
        // Connected without holding the lock: one slow or wrong target must not hold
        // up calls to the others. Two first calls may both connect; one is kept.
        let store = open_target(&target, true).await?;
        let mut open = self.open.lock().await;
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        let store = Arc::clone(open.entry(key).or_insert(store));
        Ok((target, store))
    }

    /// `name` under `<data_dir>/stores/`: relative, plain components only.
    fn confined(&self, name: &str) -> Result<PathBuf, CallError> {
        let path = Path::new(name);
        let plain =
            !name.is_empty() && !name.contains('\0') && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(CallError::bad(format!(
                "sqlite target {name:?} must be a relative path without `..` (it is a file under {})",
                self.stores_dir.display()
            )));
        }
        let full = self.stores_dir.join(path);
        // A symlink planted under stores/ must not lead the host elsewhere.
        let mut walked = self.stores_dir.clone();
        for component in path.components() {
            walked.push(component);
            if walked.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                return Err(CallError::bad(format!("sqlite target {name:?} goes through a symlink; refused")));
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
        assert_eq!(err.code, "forbidden");
        assert!(err.message.contains("modules.store_access"), "{err:?}");
        for bad in ["../x.db", "/etc/x.db", "a/../../x.db", ""] {
            let req = json!({"op": "count", "collection": "audit", "target": {"sqlite": bad}}).to_string();
            let err = admin.call("db-migrate", &req).await.unwrap_err();
            assert!(err.message.contains("relative path"), "{bad}: {err:?}");
        }
        std::fs::create_dir_all(dir.path().join("stores")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("stores/link")).unwrap();
        let req = json!({"op": "count", "collection": "audit", "target": {"sqlite": "link/x.db"}}).to_string();
        assert!(admin.call("db-migrate", &req).await.unwrap_err().message.contains("symlink"));
        // Reading a store that is not there is an error, not a new empty store.
        let req = json!({"op": "count", "collection": "audit", "target": {"sqlite": "copy.db"}}).to_string();
        assert_eq!(admin.call("db-migrate", &req).await.unwrap_err().code, "not_found");
        assert!(!dir.path().join("stores/copy.db").exists());
        let import = json!({"op": "import", "collection": "settings", "target": {"sqlite": "copy.db"},
            "records": [{"key": "k", "value": "v"}]});
        assert_eq!(admin.call("db-migrate", &import.to_string()).await.unwrap(), json!({"written": 1}));
        assert_eq!(admin.call("db-migrate", &req).await.unwrap(), json!({"count": 0}));
        assert!(dir.path().join("stores/copy.db").exists());
    }

    #[tokio::test]
    async fn errors_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let admin = admin(dir.path()).await;
        let err = admin.call("db-migrate", r#"{"op":"count","collection":"nope"}"#).await.unwrap_err();
        assert!(err.message.contains("unknown collection") && err.message.contains("task_runs"), "{err:?}");
        let err = admin.call("db-migrate", r#"{"op":"explode"}"#).await.unwrap_err();
        assert!(err.message.contains("known: info"), "{err:?}");
        let err = admin.call("db-migrate", r#"{"op":"count"}"#).await.unwrap_err();
        assert_eq!((err.code, err.message.as_str()), ("bad_request", "missing `collection`"));
        let err = admin.call("db-migrate", r#"{"op":"info","colection":"audit"}"#).await.unwrap_err();
        assert!(err.message.starts_with("bad store request: unknown field `colection`"), "{err:?}");
        let err = admin.call("db-migrate", r#"{"op":"info","target":{"ftp":"x"}}"#).await.unwrap_err();
        assert_eq!(err.code, "bad_request");
        assert!(err.message.contains("bad target"), "{err:?}");
        let bad = json!({"op": "import", "collection": "settings", "records": [{"key": "k"}]}).to_string();
        assert_eq!(admin.call("db-migrate", &bad).await.unwrap_err().code, "bad_request");
    }
}
