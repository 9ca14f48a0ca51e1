//! Choosing and opening a store: the host's own (SQLite, unless `db.mongo.url` is
//! set) and the other stores module-db-migrate names as copy or migration targets.
//! Where a named SQLite file may live is the caller's rule (host services confine it
//! to the data directory); this file only opens what it is given.

use std::path::PathBuf;
use std::sync::Arc;

use super::{MongoStore, MongoTarget, SqliteStore, Store, StoreError, StoreResult};
use crate::config::DbConfig;

/// A store to open.
#[derive(Debug, Clone)]
pub enum StoreTarget {
    Sqlite(PathBuf),
    Mongo(MongoTarget),
}

impl StoreTarget {
    /// The store the config selects.
    pub fn configured(db: &DbConfig) -> StoreTarget {
        if db.mongo.url.trim().is_empty() {
            StoreTarget::Sqlite(db.sqlite.path.clone())
        } else {
            StoreTarget::Mongo(MongoTarget::from(&db.mongo))
        }
    }

    /// For messages: a path or `host:port/database`, never credentials.
    pub fn describe(&self) -> String {
        match self {
            StoreTarget::Sqlite(path) => format!("sqlite {}", path.display()),
            StoreTarget::Mongo(target) => format!("mongodb {}", target.display()),
        }
    }
}

/// Opens a store; `migrate_schema` brings its schema up to date first (the host's own
/// store always is; a dry run looks at a foreign one as it is).
pub async fn open_target(target: &StoreTarget, migrate_schema: bool) -> StoreResult<Arc<dyn Store>> {
    match target {
        StoreTarget::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open_with(&path, migrate_schema))
                .await
                .map_err(|e| StoreError::Worker(e.to_string()))??;
            Ok(Arc::new(store))
        }
        StoreTarget::Mongo(target) => Ok(Arc::new(MongoStore::connect(target, migrate_schema).await?)),
    }
}

/// The host's own store, as the config selects it.
pub async fn open_configured(db: &DbConfig) -> StoreResult<Arc<dyn Store>> {
    let target = StoreTarget::configured(db);
    let store = open_target(&target, true).await?;
    tracing::info!(store = %target.describe(), "store open");
    Ok(store)
}
