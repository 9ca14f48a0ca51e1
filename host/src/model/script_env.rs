//! The environment a service's manage scripts run with: the seed's contract
//! (`SERVICE_ROOT APP_ROOT APP_LOG APP_PID APP_TMP APP PORTS`, the `APP_*` status
//! codes) plus the model's `run_data.envs`. Shared by the scaffolder's tests and the
//! script runner so both agree on one definition.

use std::path::PathBuf;

use super::Octopus;
use crate::config::Config;

/// The seed's status codes, exported to every script.
pub const STATUS_CODES: &[(&str, i32)] = &[
    ("APP_STATUS_OK", 0),
    ("APP_STATUS_ERR", 101),
    ("APP_START_ERR", 102),
    ("APP_STOP_ERR", 103),
    ("APP_EXIT_ERR", 104),
    ("APP_RESTART_ERR", 105),
    ("APP_KILL_ERR", 106),
    ("APP_RUN_ERR", 107),
];

/// Where one service's files are.
#[derive(Debug, Clone)]
pub struct ScriptPaths {
    /// `<app_root>/<name>`: the service's own directory, the scripts' working directory.
    pub app_root: PathBuf,
    /// `<app_manager>/<name>`: where its scripts are.
    pub manager_dir: PathBuf,
    /// `<app_log_dir>/<name>/<name>.log`.
    pub log_file: PathBuf,
    /// `<app_pids>/<name>.pid`.
    pub pid_file: PathBuf,
    /// `<app_tmp_dir>/<name>`.
    pub tmp_dir: PathBuf,
}

impl ScriptPaths {
    pub fn new(cfg: &Config, name: &str) -> Self {
        Self {
            app_root: cfg.app_root.join(name),
            manager_dir: cfg.app_manager.join(name),
            log_file: cfg.app_log_dir.join(name).join(format!("{name}.log")),
            pid_file: cfg.app_pids.join(format!("{name}.pid")),
            tmp_dir: cfg.app_tmp_dir.join(name),
        }
    }
}

/// The full environment for one script run. `ports` are the ports in effect (static or
/// allocated); `PORTS` is them space-separated.
pub fn script_env(cfg: &Config, model: &Octopus, ports: &[u16]) -> Vec<(String, String)> {
    let paths = ScriptPaths::new(cfg, &model.name);
    // The model's envs come first and the contract last: with `Command::envs` a later
    // entry wins, so a model cannot redirect APP_PID or APP_LOG by accident.
    let mut env: Vec<(String, String)> = model
        .run_data
        .envs
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let contract = [
        ("SERVICE_ROOT", cfg.service_root.display().to_string()),
        ("APP_ROOT", paths.app_root.display().to_string()),
        ("APP_LOG", paths.log_file.display().to_string()),
        ("APP_PID", paths.pid_file.display().to_string()),
        ("APP_TMP", paths.tmp_dir.display().to_string()),
        ("APP", model.name.clone()),
        ("PORTS", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" ")),
    ];
    env.extend(contract.into_iter().map(|(k, v)| (k.to_string(), v)));
    env.extend(STATUS_CODES.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}
