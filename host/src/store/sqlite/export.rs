//! Record pages in and out of the SQLite store (`Store::export_page` and
//! `import_records`), each collection in its backend-neutral form (`store/transfer.rs`).
//! Runs inside the connection's thread; it does not check records (the caller did).

use rusqlite::{Connection, params};
use serde_json::Value;

use super::module_data;
use super::rows::*;
use crate::store::transfer::{SettingRecord, to_record, typed};
use crate::store::*;

/// Exported records, converted in the connection's thread.
pub(super) fn export_rows(
    c: &Connection,
    collection: Collection,
    after: Option<RecordKey>,
    limit: u32,
) -> rusqlite::Result<Vec<Value>> {
    let (text, second, id) = match after {
        Some(RecordKey::Text(t)) => (Some(t), None, None),
        Some(RecordKey::Pair(a, b)) => (Some(a), Some(b), None),
        Some(RecordKey::Id(i)) => (None, None, Some(i)),
        None => (None, None, None),
    };
    let json = |v: Result<Value, StoreError>| {
        v.map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e.to_string()))))
    };
    let by_text = "(?1 IS NULL OR {k} > ?1) ORDER BY {k} LIMIT ?2";
    let by_id = "(?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2";
    let mut out = Vec::new();
    match collection {
        Collection::Settings => {
            let mut stmt =
                c.prepare(&format!("SELECT key, value FROM settings WHERE {}", by_text.replace("{k}", "key")))?;
            let rows =
                stmt.query_map(params![text, limit], |r| Ok(SettingRecord { key: r.get(0)?, value: r.get(1)? }))?;
            for r in rows {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::Models => {
            let sql = format!(
                "SELECT name, id, file, hash, model, loaded_at_ms FROM models WHERE {}",
                by_text.replace("{k}", "name")
            );
            for r in c.prepare(&sql)?.query_map(params![text, limit], model_from_row)? {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::Runtime => {
            let sql = format!("SELECT {RUNTIME_COLUMNS} FROM runtime WHERE {}", by_text.replace("{k}", "name"));
            for r in c.prepare(&sql)?.query_map(params![text, limit], runtime_from_row)? {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::Tokens => {
            let sql = format!(
                "SELECT token_hash, user, created_at_ms, expires_at_ms FROM tokens WHERE {}",
                by_text.replace("{k}", "token_hash")
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params![text, limit], |row| {
                Ok(TokenRecord {
                    token_hash: row.get(0)?,
                    user: row.get(1)?,
                    created_at_ms: row.get(2)?,
                    expires_at_ms: row.get(3)?,
                })
            })?;
            for r in rows {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::ModuleData => {
            let sql = "SELECT module, key, value, version, revision FROM module_data
                       WHERE ?1 IS NULL OR (module, key) > (?1, ?2) ORDER BY module, key LIMIT ?3";
            for r in c.prepare(sql)?.query_map(params![text, second, limit], module_data::data_record)? {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::ModuleHeads => {
            let sql = format!("SELECT module, revision FROM module_heads WHERE {}", by_text.replace("{k}", "module"));
            for r in c.prepare(&sql)?.query_map(params![text, limit], module_data::head_record)? {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::ModuleKv => return Err(served_elsewhere(collection)),
        Collection::Audit => {
            let sql = format!(
                "SELECT id, at_ms, actor, remote, method, path, status, result, detail FROM audit WHERE {by_id}"
            );
            for r in c.prepare(&sql)?.query_map(params![id, limit], audit_from_row)? {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::TaskRuns => {
            let sql = format!(
                "SELECT id, task, trigger, started_at_ms, duration_ms, result, message FROM task_runs WHERE {by_id}"
            );
            for r in c.prepare(&sql)?.query_map(params![id, limit], task_run_from_row)? {
                out.push(json(to_record(&r?))?);
            }
        }
        Collection::Alarms => {
            let sql = format!("{ALARM_SELECT} WHERE {by_id}");
            for r in c.prepare(&sql)?.query_map(params![id, limit], alarm_from_row)? {
                out.push(json(to_record(&r?))?);
            }
        }
    }
    Ok(out)
}

/// Module data goes through `module_data.rs` (heads move with it) and the legacy
/// `module_kv` through `store::module_data`: never here.
fn served_elsewhere(collection: Collection) -> rusqlite::Error {
    let detail = format!("{} records are not paged by export.rs", collection.name());
    rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(detail)))
}

/// Upserts already-checked records in one transaction.
pub(super) fn import_rows(c: &mut Connection, collection: Collection, records: &[Value]) -> rusqlite::Result<u64> {
    let tx = c.transaction()?;
    let bad = |e: String| rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e)));
    for record in records {
        match collection {
            Collection::Settings => {
                let r: SettingRecord = typed(record).map_err(bad)?;
                tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![r.key, r.value],
                )?;
            }
            Collection::Models => {
                let r: ModelRecord = typed(record).map_err(bad)?;
                tx.execute(
                    "INSERT OR REPLACE INTO models (name, id, file, hash, model, loaded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![r.name, r.id, r.file, r.hash, r.model.to_string(), r.loaded_at_ms],
                )?;
            }
            Collection::Runtime => {
                let r: RuntimeRecord = typed(record).map_err(bad)?;
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO runtime ({RUNTIME_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        r.name,
                        r.pid,
                        to_json_col(&r.ports),
                        r.stop_operation,
                        r.last_status,
                        r.updated_at_ms,
                        to_json_col(&r.processes),
                        r.restarts
                    ],
                )?;
            }
            Collection::Tokens => {
                let r: TokenRecord = typed(record).map_err(bad)?;
                tx.execute(
                    "INSERT OR REPLACE INTO tokens (token_hash, user, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![r.token_hash, r.user, r.created_at_ms, r.expires_at_ms],
                )?;
            }
            Collection::ModuleKv | Collection::ModuleData | Collection::ModuleHeads => {
                return Err(served_elsewhere(collection));
            }
            Collection::Audit => {
                let e: AuditEntry = typed(record).map_err(bad)?;
                tx.execute(
                    "INSERT OR REPLACE INTO audit (id, at_ms, actor, remote, method, path, status, result, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![e.id, e.at_ms, e.actor, e.remote, e.method, e.path, e.status, e.result, e.detail],
                )?;
            }
            Collection::TaskRuns => {
                let r: TaskRunRecord = typed(record).map_err(bad)?;
                tx.execute(
                    "INSERT OR REPLACE INTO task_runs (id, task, trigger, started_at_ms, duration_ms, result, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![r.id, r.task, r.trigger, r.started_at_ms, r.duration_ms, r.result, r.message],
                )?;
            }
            Collection::Alarms => {
                let a: AlarmRecord = typed(record).map_err(bad)?;
                tx.execute(
                    "INSERT OR REPLACE INTO alarms (id, kind, subject, severity, message, state, count, first_seen_ms,
                         last_seen_ms, acked_at_ms, resolved_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        a.id,
                        a.kind,
                        a.subject,
                        a.severity,
                        a.message,
                        a.state,
                        a.count,
                        a.first_seen_ms,
                        a.last_seen_ms,
                        a.acked_at_ms,
                        a.resolved_at_ms
                    ],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(records.len() as u64)
}
