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
    Migration {
        version: 7,
        description: "module data: versioned keys, head revisions and change log; module_kv moves into module_data",
        // Module storage (`store/module_data.rs`): keys with versions and the revision
        // of their last write, each module's head revision and log floor, and the log
        // (one row per write; `value` NULL for a delete). The key-value rows of step 3
        // become version 1 of revision 1, and the log starts after that revision (a
        // feed from 0 is told to list first). Keys compare as bytes (BINARY).
        sql: "CREATE TABLE module_data (
             module TEXT NOT NULL,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             version INTEGER NOT NULL,
             revision INTEGER NOT NULL,
             PRIMARY KEY (module, key)
         );
         CREATE TABLE module_heads (
             module TEXT PRIMARY KEY,
             revision INTEGER NOT NULL,
             floor INTEGER NOT NULL
         );
         CREATE TABLE module_changes (
             module TEXT NOT NULL,
             revision INTEGER NOT NULL,
             seq INTEGER NOT NULL,
             key TEXT NOT NULL,
             value TEXT,
             version INTEGER NOT NULL,
             PRIMARY KEY (module, revision, seq)
         );
         INSERT INTO module_data (module, key, value, version, revision)
             SELECT module, key, value, 1, 1 FROM module_kv;
         INSERT INTO module_heads (module, revision, floor) SELECT DISTINCT module, 1, 1 FROM module_kv;
         DROP TABLE module_kv;",
    },
];

/// The newest schema this build knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}
