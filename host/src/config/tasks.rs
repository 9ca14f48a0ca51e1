//! The `tasks.*` section: the built-in tasks' schedules as an operator states them,
//! with their defaults, and the check that each states at most one valid schedule.
//! Which task runs what, and each one's default schedule, is `crate::tasks::builtin`'s.

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;

/// `tasks.*` (ours): the built-in scheduled tasks (`crate::tasks::builtin`). Each task
/// takes at most one of `cron`, `every_secs`, `once_after_secs`; with none it keeps its
/// default schedule, and `"enabled": false` turns it off. The config key is the task id
/// with `_` for `-` (`tasks.reload_models` is the task `reload-models`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TasksConfig {
    /// Run history kept per task in the store (the newest entries).
    pub history_keep: u32,
    /// A run taking longer is abandoned and reported as an error.
    pub run_timeout_secs: u64,
    /// Re-read the model folder. Default: every 300 s.
    pub reload_models: TaskConfig,
    /// Check the store's runtime records against the supervisor. Default: every 60 s.
    pub sync_runtime: TaskConfig,
    /// Report the size of the service logs. Default: cron `0 0 * * * *` (hourly).
    pub log_rotation: TaskConfig,
    /// Count services by state. Default: every 30 s.
    pub recheck_services: TaskConfig,
    /// Write a backup (see `backup.*`). Default: cron `0 0 3 * * *` (daily, 03:00 UTC).
    pub backup: TaskConfig,
    /// Drop expired login tokens and trim the audit log to `audit.max_entries`.
    /// Default: cron `0 30 * * * *` (hourly, at half past).
    pub housekeeping: TaskConfig,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            history_keep: 500,
            run_timeout_secs: 3600,
            reload_models: TaskConfig::default(),
            sync_runtime: TaskConfig::default(),
            log_rotation: TaskConfig::default(),
            recheck_services: TaskConfig::default(),
            backup: TaskConfig::default(),
            housekeeping: TaskConfig::default(),
        }
    }
}

/// One task's schedule in `tasks.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskConfig {
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub enabled: bool,
    /// 6 fields (`sec min hour day-of-month month day-of-week`) or 7 (+ year), UTC,
    /// e.g. `"0 */5 * * * *"`; or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub cron: Option<String>,
    /// Every N seconds, the first run N seconds after the host starts.
    pub every_secs: Option<u64>,
    /// Once, N seconds after the host starts.
    pub once_after_secs: Option<u64>,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self { enabled: true, cron: None, every_secs: None, once_after_secs: None }
    }
}

impl TasksConfig {
    /// Every built-in task's config key (under `tasks.`) and its settings.
    pub fn each(&self) -> [(&'static str, &TaskConfig); 6] {
        [
            ("reload_models", &self.reload_models),
            ("sync_runtime", &self.sync_runtime),
            ("log_rotation", &self.log_rotation),
            ("recheck_services", &self.recheck_services),
            ("backup", &self.backup),
            ("housekeeping", &self.housekeeping),
        ]
    }

    /// Checks every `tasks.*` schedule; on error returns the dotted key and the message,
    /// for `Config::validate` to place at the key's line and column.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.history_keep == 0 {
            return Err(("tasks.history_keep".into(), "must be at least 1".into()));
        }
        for (key, task_config) in self.each() {
            if let Err((field, e)) = Schedule::stated(task_config) {
                let key = if field.is_empty() { format!("tasks.{key}") } else { format!("tasks.{key}.{field}") };
                return Err((key, e.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn bad_cron_in_config_names_file_line_column_and_key() {
        let text = "{\n  \"tasks\": {\n    \"recheck_services\": {\"cron\": \"*/5 * * * *\"}\n  }\n}";
        let err = Config::parse(text, "t.pig").unwrap_err().to_string();
        assert!(err.starts_with("t.pig:3:26: tasks.recheck_services.cron: \"*/5 * * * *\" is not a cron"), "{err}");
        let text = "{\"tasks\": {\"sync_runtime\": {\"every_secs\": 5, \"cron\": \"* * * * * *\"}}}";
        let err = Config::parse(text, "t.pig").unwrap_err().to_string();
        assert!(err.starts_with("t.pig:1:12: tasks.sync_runtime: set only one of"), "{err}");
        let text = "{\"tasks\": {\"log_rotation\": {\"enabled\": false, \"every_secs\": 0}}}";
        let err = Config::parse(text, "t.pig").unwrap_err().to_string();
        assert!(err.contains("tasks.log_rotation.every_secs: must be at least 1 second"), "{err}");
    }

    #[test]
    fn good_task_config_loads_without_warnings() {
        let text = r#"{"tasks": {"history_keep": 10, "reload_models": {"cron": "0 */10 * * * *"},
            "sync_runtime": {"every_secs": 30}, "log_rotation": {"enabled": false},
            "recheck_services": {"once_after_secs": 5}}}"#;
        let loaded = Config::parse(text, "t.pig").unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.config.tasks.history_keep, 10);
    }
}
