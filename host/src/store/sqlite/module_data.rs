//! Module data on SQLite: reads, commits (checks, writes, log rows and the head bump in
//! one IMMEDIATE transaction, so a commit is all-or-nothing for readers and crashes),
//! the log trim, and imports of exported module data. Runs inside the connection's
//! thread; waking feed waiters is the caller's, after the transaction is committed.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use crate::store::module_data::{
    Change, Changes, Committed, Entry, ModuleDataRecord, ModuleHeadRecord, Page, Write, position_problem, trim_to,
};
use crate::store::transfer::typed;
use crate::store::{StoreError, StoreResult};
use plugin_api::storage::{MAX_ANSWER_BYTES, MAX_COMMIT_WRITES, changes_of, page_of, prefix_end};

/// A page of a module's keys from a prefix, after a key.
const LIST_SQL: &str = "SELECT key, value, version, revision FROM module_data
     WHERE module = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3) AND (?4 IS NULL OR key > ?4)
     ORDER BY key LIMIT ?5";

/// A module's changes under a prefix since a revision: what its change feed reads.
pub(super) const CHANGES_SQL: &str = "SELECT revision, key, value, version FROM module_changes
     WHERE module = ?1 AND revision > ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4)
     ORDER BY revision, seq LIMIT ?5";

/// A module's `(head, floor)`: `(0, 0)` before its first write.
pub(super) fn head(c: &Connection, module: &str) -> rusqlite::Result<(u64, u64)> {
    Ok(c.prepare_cached("SELECT revision, floor FROM module_heads WHERE module = ?1")?
        .query_row([module], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))
        .optional()?
        .unwrap_or((0, 0)))
}

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        key: row.get(0)?,
        value: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        revision: row.get::<_, i64>(3)? as u64,
    })
}

pub(super) fn get(c: &Connection, module: &str, key: &str) -> rusqlite::Result<Option<Entry>> {
    c.prepare_cached("SELECT key, value, version, revision FROM module_data WHERE module = ?1 AND key = ?2")?
        .query_row([module, key], entry_from_row)
        .optional()
}

pub(super) fn list(
    c: &Connection,
    module: &str,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Page> {
    let end = prefix_end(prefix);
    let mut stmt = c.prepare_cached(LIST_SQL)?;
    let rows = stmt.query_map(params![module, prefix, end, after, i64::from(limit) + 1], entry_from_row)?;
    // Rows are read one by one: stop once the answer is full, not after a thousand
    // values of a megabyte each are in memory.
    let mut entries = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let entry = row?;
        bytes += entry.key.len() + entry.value.len();
        entries.push(entry);
        if bytes > MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(page_of(entries, limit))
}

/// `Err` inside `Ok`: the commit was refused (nothing written); the transaction rolls
/// back when dropped.
pub(super) fn commit(c: &mut Connection, module: &str, writes: &[Write]) -> rusqlite::Result<StoreResult<Committed>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (head, floor) = head(&tx, module)?;
    let mut current = Vec::with_capacity(writes.len());
    for write in writes {
        let version: u64 = tx
            .prepare_cached("SELECT version FROM module_data WHERE module = ?1 AND key = ?2")?
            .query_row([module, &write.key], |r| r.get::<_, i64>(0))
            .optional()?
            .map_or(0, |v| v as u64);
        if let Some(expected) = write.expect
            && expected != version
        {
            return Ok(Err(StoreError::ModuleConflict {
                module: module.into(),
                key: write.key.clone(),
                expected,
                current: version,
            }));
        }
        current.push(version);
    }
    let revision = head + 1;
    let mut versions = Vec::with_capacity(writes.len());
    for (seq, (write, old)) in writes.iter().zip(current).enumerate() {
        let version = match &write.value {
            Some(value) => {
                tx.prepare_cached(
                    "INSERT INTO module_data (module, key, value, version, revision) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(module, key) DO UPDATE SET value = excluded.value, version = excluded.version,
                         revision = excluded.revision",
                )?
                .execute(params![module, write.key, value, (old + 1) as i64, revision as i64])?;
                old + 1
            }
            // Deleting a missing key changes nothing and logs nothing.
            None if old == 0 => {
                versions.push(0);
                continue;
            }
            None => {
                tx.prepare_cached("DELETE FROM module_data WHERE module = ?1 AND key = ?2")?
                    .execute([module, &write.key])?;
                0
            }
        };
        tx.prepare_cached(
            "INSERT INTO module_changes (module, revision, seq, key, value, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![module, revision as i64, seq as i64, write.key, write.value, version as i64])?;
        versions.push(version);
    }
    set_head(&tx, module, revision, floor)?;
    if let Some(to) = trim_to(revision, floor) {
        trim(&tx, module, to)?;
    }
    tx.commit()?;
    Ok(Ok(Committed { revision, versions }))
}

fn set_head(tx: &Transaction<'_>, module: &str, revision: u64, floor: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO module_heads (module, revision, floor) VALUES (?1, ?2, ?3)
         ON CONFLICT(module) DO UPDATE SET revision = excluded.revision",
    )?
    .execute(params![module, revision as i64, floor as i64])
    .map(drop)
}

/// Forgets the log up to revision `to` (inclusive).
fn trim(tx: &Transaction<'_>, module: &str, to: u64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM module_changes WHERE module = ?1 AND revision <= ?2", params![module, to as i64])?;
    tx.execute("UPDATE module_heads SET floor = max(floor, ?2) WHERE module = ?1", params![module, to as i64])?;
    Ok(())
}

pub(super) fn changes(
    c: &mut Connection,
    module: &str,
    prefix: &str,
    since: u64,
) -> rusqlite::Result<StoreResult<Changes>> {
    // One read transaction: the head and the rows are one point in time.
    let tx = c.transaction()?;
    let (head, floor) = head(&tx, module)?;
    if let Some(reason) = position_problem(since, head, floor) {
        return Ok(Err(StoreError::ModuleCompacted { module: module.into(), since, reason }));
    }
    let end = prefix_end(prefix);
    let mut stmt = tx.prepare_cached(CHANGES_SQL)?;
    let limit = MAX_COMMIT_WRITES as i64 + 1;
    let rows = stmt.query_map(params![module, since as i64, prefix, end, limit], |r| {
        Ok(Change {
            revision: r.get::<_, i64>(0)? as u64,
            key: r.get(1)?,
            value: r.get(2)?,
            version: r.get::<_, i64>(3)? as u64,
        })
    })?;
    let mut found = Vec::new();
    let mut bytes = 0;
    let mut complete = true;
    for row in rows {
        let change = row?;
        bytes += change.key.len() + change.value.as_ref().map_or(0, String::len);
        found.push(change);
        if found.len() > MAX_COMMIT_WRITES || bytes > MAX_ANSWER_BYTES {
            complete = false;
            break;
        }
    }
    Ok(Ok(changes_of(found, complete, head)))
}

/// Imports exported data or head records (checked by the caller) in one transaction.
/// Every module's head is raised first to cover what is imported, and its log is
/// treated as compacted up to that head: the log is not part of an export, so feed
/// positions from before the import must list again. Returns the heads to publish.
pub(super) fn import(
    tx: &Transaction<'_>,
    heads: &[(String, u64)],
    data: &[Value],
) -> rusqlite::Result<Vec<(String, u64)>> {
    let bad = |e: String| rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e)));
    let mut raised = Vec::with_capacity(heads.len());
    for (module, revision) in heads {
        let head: i64 = tx.query_row(
            "INSERT INTO module_heads (module, revision, floor) VALUES (?1, ?2, ?2)
             ON CONFLICT(module) DO UPDATE SET revision = max(revision, excluded.revision),
                 floor = max(revision, excluded.revision)
             RETURNING revision",
            params![module, *revision as i64],
            |r| r.get(0),
        )?;
        tx.execute("DELETE FROM module_changes WHERE module = ?1 AND revision <= ?2", params![module, head])?;
        raised.push((module.clone(), head as u64));
    }
    for record in data {
        let r: ModuleDataRecord = typed(record).map_err(bad)?;
        tx.execute(
            "INSERT OR REPLACE INTO module_data (module, key, value, version, revision) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r.module, r.key, r.value, r.version as i64, r.revision as i64],
        )?;
    }
    Ok(raised)
}

pub(super) fn data_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ModuleDataRecord> {
    Ok(ModuleDataRecord {
        module: row.get(0)?,
        key: row.get(1)?,
        value: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        revision: row.get::<_, i64>(4)? as u64,
    })
}

pub(super) fn head_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ModuleHeadRecord> {
    Ok(ModuleHeadRecord { module: row.get(0)?, revision: row.get::<_, i64>(1)? as u64 })
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn the_change_feed_read_stays_prepared_from_call_to_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let mut conn = store.conn.blocking_lock();
        for value in ["1", "2", "3"] {
            commit(&mut conn, "config", &[Write::put("a", value)]).unwrap().unwrap();
        }
        // A new `since` each call: a plan steered by bound values would be redone.
        for since in [0, 1, 2, 0] {
            let read = changes(&mut conn, "config", "", since).unwrap().unwrap();
            assert_eq!(read.changes.len(), 3 - since.min(3) as usize);
        }
        let kept = conn.prepare_cached(CHANGES_SQL).unwrap();
        assert_eq!(kept.get_status(StatementStatus::RePrepare), 0, "the cached read was parsed again");
    }
}
