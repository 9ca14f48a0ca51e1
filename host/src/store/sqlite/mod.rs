//! The embedded store: one SQLite file in WAL mode. Calls run on tokio's blocking
//! pool behind one connection mutex; SQLite serialises writers anyway, and the host's
//! write rate (audit lines, model changes) is far below what one connection sustains.
//!
//! Durability: WAL + `synchronous=NORMAL` survives a `kill -9` of the host (every
//! committed transaction is in the WAL file); only an OS crash may lose the last few.
//!
//! Files: `schema.rs` (+ `migrations.rs`) versions the tables, `rows.rs` maps rows to
//! records, `export.rs` pages records in and out, `snapshot.rs` copies the live file,
//! `module_data.rs` is module storage, `store_impl.rs` is the `Store` itself.

mod export;
mod migrations;
mod module_data;
mod rows;
mod schema;
mod snapshot;
mod store_impl;

pub use schema::sqlite_migration_steps;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::config::DbConfig;

use super::module_data::FeedHub;
use super::{StoreError, StoreResult};

/// SQLite's own page cache, in KiB (its default is 2 000). The host reads little from
/// the file (modules keep their replicas in memory; lookups walk a few index pages) and
/// the kernel's page cache holds the file anyway, so a page missed here costs a `pread`
/// of memory. With the default, the cache grew with the registered services' records
/// and was most of what a registered service cost: massif at 1 000 services found
/// 1.6 MiB of cached pages, against 0.9 MiB for the services' models themselves.
const PAGE_CACHE_KIB: i64 = 512;

/// Prepared statements the connection keeps (`prepare_cached`): the hot paths' (module
/// data reads and commits, the change feed, token lookups, audit and runtime writes)
/// with room to spare; beyond it the least recently used is finalized, not an error.
const CACHED_STATEMENTS: usize = 32;

/// Statements are parsed once and kept. The query planner's stability guarantee
/// (QPSG) is what lets a kept statement stay prepared: without it SQLite lets the value
/// bound to a `LIMIT ?` steer the plan, so binding it again expires the statement and
/// its next step parses and plans it anew. The module change feed's read was re-parsed
/// that way on every call. Our tables have no ANALYZE statistics for bound values to
/// refine a plan with anyway.
fn configure_statements(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop)
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: PathBuf,
    /// Async lock: callers queue here, not on blocking-pool threads (200 services
    /// writing at once must not park 200 OS threads on a mutex).
    conn: Arc<tokio::sync::Mutex<Connection>>,
    /// Wakes module change-feed waiters after each commit (no polling of the file).
    feed: Arc<FeedHub>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, true)
    }

    /// Opens the database as it is, migrating only when asked: module-db-migrate shows
    /// a foreign store's pending steps (and a dry run) before anything changes it.
    pub fn open_with(path: &Path, migrate_schema: bool) -> StoreResult<Self> {
        let display = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::Io { path: parent.display().to_string(), source })?;
        }
        let sql_err = |source| StoreError::Sqlite { path: display.clone(), source };
        let mut conn = Connection::open(path).map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql_err)?;
        // Negative: a size in KiB rather than a number of pages.
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB).map_err(sql_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_err)?;
        configure_statements(&conn).map_err(sql_err)?;
        if migrate_schema {
            schema::migrate(&mut conn, &display)?;
        } else {
            schema::check_not_newer(&conn, &display)?;
        }
        Ok(Self { path: path.to_path_buf(), conn: Arc::new(tokio::sync::Mutex::new(conn)), feed: Arc::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the file self-contained (no `-wal` beside it) for an archive: used by
    /// the MongoDB store's backup snapshot once it has copied every record in.
    pub async fn into_single_file(self) -> StoreResult<()> {
        self.run(|c| c.pragma_update(None, "journal_mode", "DELETE")).await
    }

    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let mut guard = Arc::clone(&self.conn).lock_owned().await;
        let path = self.path.display().to_string();
        tokio::task::spawn_blocking(move || f(&mut guard).map_err(|source| StoreError::Sqlite { path, source }))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}
