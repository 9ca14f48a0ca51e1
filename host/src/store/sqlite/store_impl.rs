//! `Store` for SQLite: each call one closure over the connection (`SqliteStore::run`),
//! multi-statement changes in one transaction.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::export::{export_rows, import_rows};
use super::rows::*;
use super::schema::{migrate, migration_steps};
use super::snapshot::snapshot_file;
use super::{SqliteStore, module_data};
use crate::store::module_data::{
    Changes, Committed, Entry, Page, Write, import_heads, legacy_kv_import, legacy_kv_page,
};
use crate::store::*;

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        self.run(|c| c.pragma_query_value(None, "user_version", |r| r.get(0))).await
    }

    async fn upsert_model(&self, record: &ModelRecord) -> StoreResult<()> {
        let r = record.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO models (name, id, file, hash, model, loaded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(name) DO UPDATE SET id = excluded.id, file = excluded.file, hash = excluded.hash,
                     model = excluded.model, loaded_at_ms = excluded.loaded_at_ms",
                params![r.name, r.id, r.file, r.hash, r.model.to_string(), r.loaded_at_ms],
            )
            .map(drop)
        })
        .await
    }

    async fn remove_model(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.run(move |c| c.execute("DELETE FROM models WHERE name = ?1", [name]).map(drop)).await
    }

    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT name, id, file, hash, model, loaded_at_ms FROM models ORDER BY name")?;
            stmt.query_map([], model_from_row)?.collect()
        })
        .await
    }

    async fn put_runtime(&self, record: &RuntimeRecord) -> StoreResult<()> {
        let r = record.clone();
        let ports = serde_json::to_string(&r.ports).unwrap_or_else(|_| "[]".into());
        let processes = serde_json::to_string(&r.processes).unwrap_or_else(|_| "[]".into());
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO runtime (name, pid, ports, stop_operation, last_status, updated_at_ms, processes, restarts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, ports = excluded.ports,
                     stop_operation = excluded.stop_operation, last_status = excluded.last_status,
                     updated_at_ms = excluded.updated_at_ms, processes = excluded.processes,
                     restarts = excluded.restarts",
            )?
            .execute(params![r.name, r.pid, ports, r.stop_operation, r.last_status, r.updated_at_ms, processes, r.restarts])
            .map(drop)
        })
        .await
    }

    async fn get_runtime(&self, name: &str) -> StoreResult<Option<RuntimeRecord>> {
        let name = name.to_string();
        self.run(move |c| {
            c.query_row(&format!("SELECT {RUNTIME_COLUMNS} FROM runtime WHERE name = ?1"), [name], runtime_from_row)
                .optional()
        })
        .await
    }

    async fn list_runtime(&self) -> StoreResult<Vec<RuntimeRecord>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {RUNTIME_COLUMNS} FROM runtime ORDER BY name"))?;
            stmt.query_map([], runtime_from_row)?.collect()
        })
        .await
    }

    async fn insert_token(&self, record: &TokenRecord) -> StoreResult<()> {
        let r = record.clone();
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO tokens (token_hash, user, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![r.token_hash, r.user, r.created_at_ms, r.expires_at_ms],
            )
            .map(drop)
        })
        .await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = token_hash.to_string();
        self.run(move |c| {
            c.prepare_cached("SELECT token_hash, user, created_at_ms, expires_at_ms FROM tokens WHERE token_hash = ?1")?
                .query_row([hash], |row| {
                    Ok(TokenRecord {
                        token_hash: row.get(0)?,
                        user: row.get(1)?,
                        created_at_ms: row.get(2)?,
                        expires_at_ms: row.get(3)?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        let hash = token_hash.to_string();
        self.run(move |c| c.execute("DELETE FROM tokens WHERE token_hash = ?1", [hash]).map(|n| n > 0)).await
    }

    async fn purge_expired_tokens(&self, now_ms: i64) -> StoreResult<u64> {
        self.run(move |c| c.execute("DELETE FROM tokens WHERE expires_at_ms <= ?1", [now_ms]).map(|n| n as u64)).await
    }

    async fn revoke_all_tokens(&self) -> StoreResult<u64> {
        self.run(|c| c.execute("DELETE FROM tokens", []).map(|n| n as u64)).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.run(move |c| c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional())
            .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        let e = entry.clone();
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO audit (at_ms, actor, remote, method, path, status, result, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![e.at_ms, e.actor, e.remote, e.method, e.path, e.status, e.result, e.detail])?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn trim_audit(&self, keep: u64) -> StoreResult<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run(move |c| {
            c.execute("DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1)", [keep])
                .map(|n| n as u64)
        })
        .await
    }

    async fn append_task_run(&self, run: &TaskRunRecord) -> StoreResult<i64> {
        let r = run.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO task_runs (task, trigger, started_at_ms, duration_ms, result, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.task, r.trigger, r.started_at_ms, r.duration_ms, r.result, r.message],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn list_task_runs(&self, task: &str, limit: u32) -> StoreResult<Vec<TaskRunRecord>> {
        let task = task.to_string();
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, task, trigger, started_at_ms, duration_ms, result, message FROM task_runs
                 WHERE task = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![task, limit], task_run_from_row)?.collect()
        })
        .await
    }

    async fn trim_task_runs(&self, task: &str, keep: u64) -> StoreResult<u64> {
        let task = task.to_string();
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run(move |c| {
            c.execute(
                "DELETE FROM task_runs WHERE task = ?1 AND id <= (SELECT id FROM task_runs WHERE task = ?1
                     ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![task, keep],
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn raise_alarm(&self, raise: &AlarmRaise) -> StoreResult<(AlarmRecord, bool)> {
        let r = raise.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM alarms WHERE kind = ?1 AND subject = ?2 AND state != 'resolved'
                     ORDER BY id DESC LIMIT 1",
                    params![r.kind, r.subject],
                    |row| row.get(0),
                )
                .optional()?;
            let (id, new) = match existing {
                Some(id) => {
                    tx.execute(
                        "UPDATE alarms SET count = count + 1, last_seen_ms = ?2, message = ?3, severity = ?4
                         WHERE id = ?1",
                        params![id, r.at_ms, r.message, r.severity],
                    )?;
                    (id, false)
                }
                None => {
                    tx.execute(
                        "INSERT INTO alarms (kind, subject, severity, message, state, count, first_seen_ms, last_seen_ms)
                         VALUES (?1, ?2, ?3, ?4, 'open', 1, ?5, ?5)",
                        params![r.kind, r.subject, r.severity, r.message, r.at_ms],
                    )?;
                    (tx.last_insert_rowid(), true)
                }
            };
            let record = tx.query_row(&format!("{ALARM_SELECT} WHERE id = ?1"), params![id], alarm_from_row)?;
            tx.commit()?;
            Ok((record, new))
        })
        .await
    }

    async fn list_alarms(&self, state: Option<&str>) -> StoreResult<Vec<AlarmRecord>> {
        let state = state.map(str::to_string);
        self.run(move |c| {
            let mut stmt = c.prepare(&format!(
                "{ALARM_SELECT} WHERE ?1 IS NULL OR state = ?1 ORDER BY last_seen_ms DESC, id DESC"
            ))?;
            stmt.query_map(params![state], alarm_from_row)?.collect()
        })
        .await
    }

    async fn get_alarm(&self, id: i64) -> StoreResult<Option<AlarmRecord>> {
        self.run(move |c| c.query_row(&format!("{ALARM_SELECT} WHERE id = ?1"), params![id], alarm_from_row).optional())
            .await
    }

    async fn ack_alarm(&self, id: i64, at_ms: i64) -> StoreResult<Option<AlarmRecord>> {
        self.run(move |c| {
            c.execute(
                "UPDATE alarms SET state = 'acked', acked_at_ms = ?2 WHERE id = ?1 AND state = 'open'",
                params![id, at_ms],
            )?;
            c.query_row(&format!("{ALARM_SELECT} WHERE id = ?1"), params![id], alarm_from_row).optional()
        })
        .await
    }

    async fn delete_alarm(&self, id: i64) -> StoreResult<bool> {
        self.run(move |c| c.execute("DELETE FROM alarms WHERE id = ?1", params![id]).map(|n| n > 0)).await
    }

    async fn resolve_alarms(&self, subject: &str, kinds: &[&str], at_ms: i64) -> StoreResult<Vec<AlarmRecord>> {
        let subject = subject.to_string();
        let kinds = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        self.run(move |c| {
            let tx = c.transaction()?;
            let filter = "WHERE subject = ?1 AND state != 'resolved' AND kind IN (SELECT value FROM json_each(?2))";
            let ids: Vec<i64> = tx
                .prepare(&format!("SELECT id FROM alarms {filter}"))?
                .query_map(params![subject, kinds], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.execute(
                &format!("UPDATE alarms SET state = 'resolved', resolved_at_ms = ?3 {filter}"),
                params![subject, kinds, at_ms],
            )?;
            let mut resolved = Vec::with_capacity(ids.len());
            for id in ids {
                resolved.push(tx.query_row(&format!("{ALARM_SELECT} WHERE id = ?1"), params![id], alarm_from_row)?);
            }
            tx.commit()?;
            Ok(resolved)
        })
        .await
    }

    async fn trim_alarms(&self, before_ms: i64, keep: u64) -> StoreResult<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run(move |c| {
            let old =
                c.execute("DELETE FROM alarms WHERE state = 'resolved' AND last_seen_ms < ?1", params![before_ms])?;
            let over = c.execute(
                "DELETE FROM alarms WHERE id <= (SELECT id FROM alarms ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                params![keep],
            )?;
            Ok((old + over) as u64)
        })
        .await
    }

    async fn snapshot_to(&self, dest: &Path) -> StoreResult<()> {
        let (source, dest) = (self.path.clone(), dest.to_path_buf());
        let display = dest.display().to_string();
        tokio::task::spawn_blocking(move || {
            if dest.exists() {
                let source = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
                return Err(StoreError::Io { path: display, source });
            }
            snapshot_file(&source, &dest).map_err(|source| StoreError::Sqlite { path: display, source })
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    async fn export_page(
        &self,
        collection: Collection,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> StoreResult<Vec<Value>> {
        if collection == Collection::ModuleKv {
            return legacy_kv_page(self, after, limit).await;
        }
        let after = after.cloned();
        self.run(move |c| export_rows(c, collection, after, limit)).await
    }

    async fn import_records(&self, collection: Collection, records: &[Value]) -> StoreResult<u64> {
        for (index, record) in records.iter().enumerate() {
            collection.key_of(record).map_err(|detail| StoreError::InvalidRecord {
                collection: collection.name(),
                index,
                detail,
            })?;
        }
        match collection {
            Collection::ModuleKv => return legacy_kv_import(self, records).await,
            Collection::ModuleData | Collection::ModuleHeads => {
                let heads = import_heads(collection, records);
                let data = if collection == Collection::ModuleData { records.to_vec() } else { Vec::new() };
                let raised = self
                    .run(move |c| {
                        let tx = c.transaction()?;
                        let raised = module_data::import(&tx, &heads, &data)?;
                        tx.commit()?;
                        Ok(raised)
                    })
                    .await?;
                for (module, head) in raised {
                    self.feed.publish(&module, head);
                }
                return Ok(records.len() as u64);
            }
            _ => {}
        }
        let records = records.to_vec();
        self.run(move |c| import_rows(c, collection, &records)).await
    }

    async fn count_records(&self, collection: Collection) -> StoreResult<u64> {
        // The legacy key-value view counts the module data it is made of.
        let table = if collection == Collection::ModuleKv { "module_data" } else { collection.name() };
        // The table name comes from the closed `Collection` set, never from input.
        let sql = format!("SELECT COUNT(*) FROM {table}");
        self.run(move |c| c.query_row(&sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64)).await
    }

    async fn migrations(&self) -> StoreResult<(u32, Vec<MigrationStep>)> {
        let version = self.schema_version().await?;
        Ok((version, migration_steps()))
    }

    async fn apply_migrations(&self) -> StoreResult<Vec<MigrationStep>> {
        let path = self.path.display().to_string();
        let applied = {
            let mut guard = Arc::clone(&self.conn).lock_owned().await;
            tokio::task::spawn_blocking(move || migrate(&mut guard, &path))
                .await
                .map_err(|e| StoreError::Worker(e.to_string()))??
        };
        Ok(migration_steps().into_iter().filter(|s| applied.contains(&s.version)).collect())
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let before = query.before_id.unwrap_or(i64::MAX);
        let actor = query.actor.clone();
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, at_ms, actor, remote, method, path, status, result, detail FROM audit
                 WHERE id < ?1 AND (?2 IS NULL OR actor = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            stmt.query_map(params![before, actor, limit], audit_from_row)?.collect()
        })
        .await
    }

    async fn module_get(&self, module: &str, key: &str) -> StoreResult<Option<Entry>> {
        let (module, key) = (module.to_string(), key.to_string());
        self.run(move |c| module_data::get(c, &module, &key)).await
    }

    async fn module_list(&self, module: &str, prefix: &str, after: Option<&str>, limit: u32) -> StoreResult<Page> {
        let (module, prefix, after) = (module.to_string(), prefix.to_string(), after.map(str::to_string));
        self.run(move |c| module_data::list(c, &module, &prefix, after.as_deref(), limit)).await
    }

    async fn module_commit(&self, module: &str, writes: &[Write]) -> StoreResult<Committed> {
        let (name, writes) = (module.to_string(), writes.to_vec());
        let committed = self.run(move |c| module_data::commit(c, &name, &writes)).await??;
        self.feed.publish(module, committed.revision);
        Ok(committed)
    }

    async fn module_head(&self, module: &str) -> StoreResult<u64> {
        let module = module.to_string();
        self.run(move |c| module_data::head(c, &module).map(|(head, _)| head)).await
    }

    async fn module_changes(&self, module: &str, prefix: &str, since: u64) -> StoreResult<Changes> {
        let (module, prefix) = (module.to_string(), prefix.to_string());
        self.run(move |c| module_data::changes(c, &module, &prefix, since)).await?
    }

    async fn module_wait(&self, module: &str, seen: u64, timeout: Duration) -> u64 {
        // Only this process writes the file (one host per data directory), so its own
        // commits are every commit there is.
        self.feed.wait(module, seen, timeout).await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn audit_is_trimmed_to_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        for i in 0..10 {
            let e = AuditEntry {
                id: 0,
                at_ms: i,
                actor: "a".into(),
                remote: "r".into(),
                method: "POST".into(),
                path: format!("/{i}"),
                status: 200,
                result: "ok".into(),
                detail: String::new(),
            };
            s.append_audit(&e).await.unwrap();
        }
        assert_eq!(s.trim_audit(3).await.unwrap(), 7);
        let left = s.list_audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(left.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), vec!["/9", "/8", "/7"]);
    }

    use super::*;
    use crate::store::sqlite::migrations::latest_version;

    #[tokio::test]
    async fn round_trips_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            assert_eq!(s.schema_version().await.unwrap(), latest_version());
            s.put_setting("k", "v1").await.unwrap();
            s.put_setting("k", "v2").await.unwrap();
            let rt = RuntimeRecord { name: "a".into(), pid: Some(42), ports: vec![8080], ..Default::default() };
            s.put_runtime(&rt).await.unwrap();
            s.put_runtime(&rt).await.unwrap();
            let entry = AuditEntry {
                id: 0,
                at_ms: 1,
                actor: "admin".into(),
                remote: "unix".into(),
                method: "POST".into(),
                path: "/api/reload".into(),
                status: 200,
                result: "ok".into(),
                detail: String::new(),
            };
            s.append_audit(&entry).await.unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some("v2"));
        assert_eq!(s.list_runtime().await.unwrap().len(), 1);
        assert_eq!(s.get_runtime("a").await.unwrap().unwrap().ports, vec![8080]);
        assert_eq!(s.list_audit(&AuditQuery::default()).await.unwrap()[0].path, "/api/reload");
    }

    #[tokio::test]
    async fn module_kv_rows_become_module_data_on_upgrade() {
        use crate::store::sqlite::migrations::MIGRATIONS;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            // A store as a host of schema 6 left it, with key-value rows.
            let c = rusqlite::Connection::open(&path).unwrap();
            for step in MIGRATIONS.iter().filter(|m| m.version <= 6) {
                c.execute_batch(step.sql).unwrap();
            }
            c.pragma_update(None, "user_version", 6).unwrap();
            c.execute(
                "INSERT INTO module_kv (module, key, value) VALUES ('hello', 'visits', '41'), ('db', 'x', 'y')",
                [],
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let entry = s.module_get("hello", "visits").await.unwrap().unwrap();
        assert_eq!((entry.value.as_str(), entry.version, entry.revision), ("41", 1, 1));
        assert_eq!(s.module_kv_get("db", "x").await.unwrap().as_deref(), Some("y"));
        s.module_kv_set("hello", "visits", "42").await.unwrap();
        let entry = s.module_get("hello", "visits").await.unwrap().unwrap();
        assert_eq!((entry.value.as_str(), entry.version, entry.revision), ("42", 2, 2));
        // The log starts after the upgrade: a feed from 0 must list first.
        assert!(matches!(s.module_changes("hello", "", 0).await, Err(StoreError::ModuleCompacted { .. })));
        assert_eq!(s.module_changes("hello", "", 1).await.unwrap().changes.len(), 1);
        assert_eq!(s.count_records(Collection::ModuleKv).await.unwrap(), 2);
    }
}
