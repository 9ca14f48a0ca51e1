//! The SQLite store's schema version: the steps of `migrations.rs` applied in order,
//! each in one transaction with its `user_version` bump, and the refusal to open a
//! file a newer host has migrated. It does not hold the steps themselves.

use rusqlite::Connection;

use super::migrations::{MIGRATIONS, latest_version};
use crate::store::{MigrationStep, StoreError, StoreResult};

pub(super) fn check_not_newer(conn: &Connection, path: &str) -> StoreResult<u32> {
    let current: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| StoreError::Sqlite { path: path.to_string(), source })?;
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew { found: current, supported: latest_version() });
    }
    Ok(current)
}

/// Runs the steps above the file's version; returns the versions applied.
pub(super) fn migrate(conn: &mut Connection, path: &str) -> StoreResult<Vec<u32>> {
    let sql_err = |source| StoreError::Sqlite { path: path.to_string(), source };
    let current = check_not_newer(conn, path)?;
    let mut applied = Vec::new();
    for step in MIGRATIONS.iter().filter(|m| m.version > current) {
        let tx = conn.transaction().map_err(sql_err)?;
        tx.execute_batch(step.sql).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", step.version).map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        tracing::info!(version = step.version, "store schema migrated");
        applied.push(step.version);
    }
    Ok(applied)
}

/// Every schema step of the SQLite store, for a file that does not exist yet.
pub fn sqlite_migration_steps() -> Vec<MigrationStep> {
    migration_steps()
}

pub(super) fn migration_steps() -> Vec<MigrationStep> {
    MIGRATIONS
        .iter()
        .map(|m| MigrationStep { version: m.version, description: m.description.into(), statements: m.sql.into() })
        .collect()
}
