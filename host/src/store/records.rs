//! The records the store keeps, as plain data shared by every backend.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A model as last loaded from its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelRecord {
    pub name: String,
    pub id: String,
    pub file: String,
    /// SHA-256 of the file's bytes, to tell a real change from a touch.
    pub hash: String,
    /// The model as JSON (after `$VAR` substitution).
    #[schema(value_type = Object)]
    pub model: serde_json::Value,
    pub loaded_at_ms: i64,
}

/// Live runtime data of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeRecord {
    pub name: String,
    pub pid: Option<i64>,
    pub ports: Vec<u16>,
    /// The operator stopped it on purpose: do not restart it.
    #[serde(deserialize_with = "bool_or_int")]
    pub stop_operation: bool,
    pub last_status: String,
    pub updated_at_ms: i64,
    /// Processes the host started for a supervised service, to re-adopt after a crash.
    pub processes: Vec<ProcessRecord>,
    /// Restarts since the service was last started by an operator.
    pub restarts: u32,
}

/// One process the host owns, identified by pid *and* start time so a recycled pid is
/// never mistaken for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProcessRecord {
    pub instance: u32,
    pub pid: i32,
    /// Process group (the pid: children are group leaders).
    pub pgid: i32,
    /// Field 22 of /proc/<pid>/stat: clock ticks after boot.
    pub start_ticks: u64,
}

/// A login token, stored only as the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub token_hash: String,
    pub user: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One mutating API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    /// `admin`, `unix-socket`, or `anonymous` for calls without a valid token.
    pub actor: String,
    /// Client address (`127.0.0.1:5000`) or `unix`.
    pub remote: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `ok` or `error`.
    pub result: String,
    /// What the call acted on when the path does not say (e.g. `from -> to` of a move).
    #[serde(default)]
    pub detail: String,
}

/// Put on a response by a handler whose request body names what it changed; the audit
/// trail records it as the entry's `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDetail(pub String);

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many entries (default 100, max 1000).
    pub limit: Option<u32>,
    /// Only entries with an id below this one (for paging).
    pub before_id: Option<i64>,
    /// Only entries by this actor.
    pub actor: Option<String>,
}

/// One run (or skipped run) of a scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRunRecord {
    pub id: i64,
    pub task: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    /// `ok`, `error` or `skipped`.
    pub result: String,
    pub message: String,
}

/// An alarm as stored. `state` is `open`, `acked` or `resolved`; while not resolved
/// the same `(kind, subject)` is never stored twice (a repeat bumps `count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlarmRecord {
    pub id: i64,
    /// e.g. `service_crashed`, `restart_limit`, `disk_full`.
    pub kind: String,
    /// What the alarm is about: a service, module, task or path.
    pub subject: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The latest occurrence's message.
    pub message: String,
    pub state: String,
    /// Occurrences while unresolved.
    pub count: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub acked_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
}

/// An occurrence to record: a new alarm, or a repeat of an unresolved one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRaise {
    pub kind: String,
    pub subject: String,
    pub severity: String,
    pub message: String,
    pub at_ms: i64,
}

/// Accepts `0`/`1` for a boolean: the MongoDB-wire test server (nx-27017, SQLite
/// underneath) returns stored booleans as integers.
fn bool_or_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Int(i) => i != 0,
    })
}

/// Milliseconds since the Unix epoch: the store's one time format.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
