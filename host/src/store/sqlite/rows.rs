//! Row <-> record mapping of the SQLite store: the column lists and the functions that
//! turn a row into its record type (JSON columns included). No queries of its own.

use crate::store::*;

pub(super) fn to_json_col<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

pub(super) fn task_run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRunRecord> {
    Ok(TaskRunRecord {
        id: row.get(0)?,
        task: row.get(1)?,
        trigger: row.get(2)?,
        started_at_ms: row.get(3)?,
        duration_ms: row.get(4)?,
        result: row.get(5)?,
        message: row.get(6)?,
    })
}

pub(super) fn json_col<T: serde::de::DeserializeOwned>(idx: usize, text: String) -> rusqlite::Result<T> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

pub(super) fn model_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ModelRecord> {
    Ok(ModelRecord {
        name: row.get(0)?,
        id: row.get(1)?,
        file: row.get(2)?,
        hash: row.get(3)?,
        model: json_col(4, row.get(4)?)?,
        loaded_at_ms: row.get(5)?,
    })
}

pub(super) const RUNTIME_COLUMNS: &str =
    "name, pid, ports, stop_operation, last_status, updated_at_ms, processes, restarts";

pub(super) fn runtime_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RuntimeRecord> {
    Ok(RuntimeRecord {
        name: row.get(0)?,
        pid: row.get(1)?,
        ports: json_col(2, row.get(2)?)?,
        stop_operation: row.get(3)?,
        last_status: row.get(4)?,
        updated_at_ms: row.get(5)?,
        processes: json_col(6, row.get(6)?)?,
        restarts: row.get(7)?,
    })
}

pub(super) const ALARM_SELECT: &str =
    "SELECT id, kind, subject, severity, message, state, count, first_seen_ms, last_seen_ms,
     acked_at_ms, resolved_at_ms FROM alarms";

pub(super) fn alarm_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlarmRecord> {
    Ok(AlarmRecord {
        id: row.get(0)?,
        kind: row.get(1)?,
        subject: row.get(2)?,
        severity: row.get(3)?,
        message: row.get(4)?,
        state: row.get(5)?,
        count: row.get(6)?,
        first_seen_ms: row.get(7)?,
        last_seen_ms: row.get(8)?,
        acked_at_ms: row.get(9)?,
        resolved_at_ms: row.get(10)?,
    })
}

pub(super) fn audit_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        at_ms: row.get(1)?,
        actor: row.get(2)?,
        remote: row.get(3)?,
        method: row.get(4)?,
        path: row.get(5)?,
        status: row.get(6)?,
        result: row.get(7)?,
        detail: row.get(8)?,
    })
}
