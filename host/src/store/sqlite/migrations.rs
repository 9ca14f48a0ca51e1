//! Versioned schema of the SQLite store. Each step runs once, in order, inside one
//! transaction together with the `user_version` bump, so a crash mid-migration leaves
//! the previous version intact. Never edit a shipped step: append a new one.

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub description: &'static str,
    pub sql: &'static str,
}

/// Versions are consecutive from 1.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "models, runtime, tokens, settings and audit tables",
        sql: "CREATE TABLE models (
         name TEXT PRIMARY KEY,
         id TEXT NOT NULL,
         file TEXT NOT NULL,
         hash TEXT NOT NULL,
         model TEXT NOT NULL,
         loaded_at_ms INTEGER NOT NULL
     );
     CREATE TABLE runtime (
         name TEXT PRIMARY KEY,
         pid INTEGER,
         ports TEXT NOT NULL DEFAULT '[]',
         stop_operation INTEGER NOT NULL DEFAULT 0,
         last_status TEXT NOT NULL DEFAULT '',
         updated_at_ms INTEGER NOT NULL
     );
     CREATE TABLE tokens (
         token_hash TEXT PRIMARY KEY,
         user TEXT NOT NULL,
         created_at_ms INTEGER NOT NULL,
         expires_at_ms INTEGER NOT NULL
     );
     CREATE INDEX tokens_expiry ON tokens(expires_at_ms);
     CREATE TABLE settings (
         key TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     CREATE TABLE audit (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         at_ms INTEGER NOT NULL,
         actor TEXT NOT NULL,
         remote TEXT NOT NULL,
         method TEXT NOT NULL,
         path TEXT NOT NULL,
         status INTEGER NOT NULL,
         result TEXT NOT NULL
     );
     CREATE INDEX audit_actor ON audit(actor, id);",
    },
    Migration {
        version: 2,
        description: "runtime: processes to re-adopt and the restart counter",
        // The processes of a supervised service (one per instance) with the identity
        // needed to re-adopt them after a host crash, and the restart counter.
        sql: "ALTER TABLE runtime ADD COLUMN processes TEXT NOT NULL DEFAULT '[]';
         ALTER TABLE runtime ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;",
    },
    Migration {
        version: 3,
        description: "module_kv: each module's own key-value data",
        // Each module's own key-value store (host services `kv_get` / `kv_set`).
        sql: "CREATE TABLE module_kv (
             module TEXT NOT NULL,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (module, key)
         );",
    },
    Migration {
        version: 4,
        description: "task_runs: the task manager's run history",
        // The task manager's run history (ok, error, skipped), newest kept per task.
        sql: "CREATE TABLE task_runs (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             task TEXT NOT NULL,
             trigger TEXT NOT NULL,
             started_at_ms INTEGER NOT NULL,
             duration_ms INTEGER NOT NULL,
             result TEXT NOT NULL,
             message TEXT NOT NULL
         );
         CREATE INDEX task_runs_task ON task_runs(task, id);",
    },
    Migration {
        version: 5,
        description: "alarms: one row per (kind, subject) while unresolved",
        // Alarms: one row per (kind, subject) while unresolved; repeats bump `count`.
        sql: "CREATE TABLE alarms (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             kind TEXT NOT NULL,
             subject TEXT NOT NULL,
             severity TEXT NOT NULL,
             message TEXT NOT NULL,
             state TEXT NOT NULL,
             count INTEGER NOT NULL,
             first_seen_ms INTEGER NOT NULL,
             last_seen_ms INTEGER NOT NULL,
             acked_at_ms INTEGER,
             resolved_at_ms INTEGER
         );
         CREATE INDEX alarms_key ON alarms(kind, subject, state);",
    },
    Migration {
        version: 6,
        description: "audit: detail column (what a call changed when its path does not say)",
        // What a mutating call acted on when that is not in its path (a move's `from`
        // and `to`, a new directory), so the audit log names it.
        sql: "ALTER TABLE audit ADD COLUMN detail TEXT NOT NULL DEFAULT '';",
    },
];

/// The newest schema this build knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}
