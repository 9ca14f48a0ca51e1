//! The octopus model types, field for field with the seed (`name, id, type, …,
//! resource_limit`). Unknown keys are kept in `extra` maps so a seed file round-trips
//! through the store and the API without losing anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// One service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Octopus {
    /// Unique service name; also its directory name under app_root and app_manager.
    pub name: String,
    /// Unique id.
    pub id: String,
    /// `Service`, `Middleware`, `NoEngine`, … (free text in the seed).
    #[serde(rename = "type")]
    pub kind: String,
    /// `published | pending | testing`.
    pub release_status: String,
    pub eng_des: String,
    pub chs_des: String,
    /// The URL the service offers to the outside.
    pub link: String,
    pub manage_cmd: ManageCmd,
    pub meta: Meta,
    pub run_data: RunData,
    pub runtime: Runtime,
    pub resource_limit: ResourceLimit,
    /// Ours: how the host keeps the service alive (restart policy, stop, instances).
    pub supervise: Supervise,
    /// Ours: how the host checks that the service works.
    pub health: HealthCheck,
    /// Ours: run the service as a Docker container (with `type` `Container` or `NoEngine`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<super::ContainerSection>,
    /// Keys this version does not know, kept verbatim.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Script file names inside `<app_manager>/<name>/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ManageCmd {
    pub start: String,
    pub stop: String,
    pub restart: String,
    pub force_kill: String,
    pub check: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Meta {
    pub author: String,
    pub domain: String,
    pub language: Vec<String>,
    pub create_date: String,
    pub version: String,
    pub dynamic_conf: bool,
    pub conf_type: String,
    pub conf_path: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// What the service needs to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RunData {
    /// `NAME=value` strings, exported to the service's scripts.
    pub envs: Vec<String>,
    /// Static ports; checked to be 1–65535.
    pub ports: Vec<i64>,
    /// Ask the host for a free port at start instead of static ones.
    pub random_port: bool,
    pub host: String,
    /// Services that must be running before this one starts.
    pub run_dep: Vec<String>,
    /// Services stopped together with this one.
    pub stop_chain: Vec<String>,
    /// Ours: a foreground command (argv, no shell) the host spawns and owns. When set,
    /// the service is supervised; otherwise it is run through its manage scripts.
    pub command: Vec<String>,
    /// Working directory of `command`, relative to the service's directory
    /// (`<app_root>/<name>`). Empty: that directory.
    pub cwd: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl RunData {
    /// `run_data.tags`: the tags a service registry (module-catalog) lists the service
    /// with; entries that are not strings are ignored.
    pub fn catalog_tags(&self) -> Vec<String> {
        let Some(serde_json::Value::Array(tags)) = self.extra.get("tags") else { return Vec::new() };
        tags.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect()
    }

    /// `run_data.meta`: key/values a service registry lists the service with (such as
    /// `seneca_pin`, the Seneca patterns module-gateway routes to it); numbers and
    /// booleans count as their text, other values are ignored.
    pub fn catalog_meta(&self) -> BTreeMap<String, String> {
        let Some(serde_json::Value::Object(meta)) = self.extra.get("meta") else { return BTreeMap::new() };
        meta.iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Some((k.clone(), v.to_string())),
                _ => None,
            })
            .collect()
    }
}

/// Runtime data as the seed kept it. The host keeps the live copy in the store; a
/// value written in the file is only the starting point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Runtime {
    /// The main pid. The seed wrote it as a string; numbers are accepted too.
    #[serde(deserialize_with = "string_or_number")]
    pub pid: String,
    pub ports: Vec<i64>,
    /// Set when an operator stopped the service on purpose: it is not restarted.
    pub stop_operation: bool,
}

/// Resource limits, as the seed named them (all optional, 0 = unset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ResourceLimit {
    pub min_cpu: i64,
    pub max_cpu: i64,
    pub min_mem: i64,
    pub max_mem: i64,
    pub ave_cpu_peak: i64,
    pub ave_mem_peak: i64,
    pub max_read: i64,
    pub max_write: i64,
    pub max_request: i64,
    pub max_client: i64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// When a supervised service is restarted after it exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Never,
    /// Restart unless the exit code is one of `success_exit_codes`.
    #[default]
    OnFailure,
    Always,
}

/// Supervision settings (ours). Defaults follow PM2 where it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Supervise {
    pub restart: RestartPolicy,
    /// Exit codes that count as a clean exit for `on-failure`.
    pub success_exit_codes: Vec<i32>,
    /// First restart delay; each further unstable restart multiplies it by 1.5.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A run at least this long is stable: the delay and the restart count reset.
    pub min_uptime_ms: u64,
    /// Unstable restarts in a row before the service is `errored`.
    pub max_restarts: u32,
    /// Signal sent to the process group to stop it (`SIGTERM`, `SIGINT`, …).
    pub stop_signal: String,
    /// After this, SIGKILL to the whole group.
    pub kill_timeout_ms: u64,
    /// Copies to run; each gets `INSTANCE_ID` (0-based).
    pub instances: u32,
    /// Restart an instance whose RSS exceeds this many bytes (0: off).
    pub max_memory_restart: u64,
    /// Start with the host (unless an operator stopped it).
    pub autostart: bool,
    /// Manage scripts are killed (whole process group) after this.
    pub script_timeout_secs: u64,
    /// Rotate the service's log beyond this size, keeping `log_keep` old files.
    pub log_max_bytes: u64,
    pub log_keep: usize,
    /// Restart the service when its files change (PM2's `--watch`).
    pub watch: WatchSettings,
}

/// `supervise.watch`: which files restart the service when they change. A burst of
/// changes within `debounce_ms` is one restart. The service's log, pid and tmp files
/// never count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct WatchSettings {
    pub enabled: bool,
    /// Directories or files to watch, relative to the service's directory
    /// (`<app_root>/<name>`; no `..`, not absolute). Empty: that whole directory.
    pub paths: Vec<String>,
    /// Globs of paths (relative to the service's directory) whose changes are ignored,
    /// e.g. `"*.tmp"`, `"node_modules/**"`; `*` also crosses `/`.
    pub ignore: Vec<String>,
    /// Quiet time after the last change before the one restart.
    pub debounce_ms: u64,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self { enabled: false, paths: Vec::new(), ignore: Vec::new(), debounce_ms: 500 }
    }
}

impl Default for Supervise {
    fn default() -> Self {
        Self {
            restart: RestartPolicy::OnFailure,
            success_exit_codes: vec![0],
            backoff_initial_ms: 100,
            backoff_max_ms: 15_000,
            min_uptime_ms: 1_000,
            max_restarts: 15,
            stop_signal: "SIGTERM".into(),
            kill_timeout_ms: 5_000,
            instances: 1,
            max_memory_restart: 0,
            autostart: false,
            script_timeout_secs: 30,
            log_max_bytes: 10 * 1024 * 1024,
            log_keep: 5,
            watch: WatchSettings::default(),
        }
    }
}

/// The kinds of health check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthKind {
    /// No check: running means the process is alive.
    #[default]
    None,
    /// `GET url` answers 2xx.
    Http,
    /// A TCP connect to `127.0.0.1:port` succeeds (port 0: the first port in effect).
    Tcp,
    /// The `check` manage script (or `script`) exits 0.
    Script,
    /// The service itself calls `POST /api/apps/{name}/heartbeat` at least every `ttl_secs`.
    Ttl,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HealthCheck {
    pub kind: HealthKind,
    /// For `http`: `http://127.0.0.1:{port}/healthz`; `{port}` is the first port in effect.
    pub url: String,
    pub port: u16,
    /// For `script`: a script in the manager directory; empty means `manage_cmd.check`.
    pub script: String,
    pub interval_secs: u64,
    pub timeout_secs: u64,
    /// Consecutive failures before the service is `unhealthy` (and restarted per policy).
    pub failures_before_unhealthy: u32,
    pub ttl_secs: u64,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            kind: HealthKind::None,
            url: String::new(),
            port: 0,
            script: String::new(),
            interval_secs: 10,
            timeout_secs: 2,
            failures_before_unhealthy: 3,
            ttl_secs: 30,
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Pid {
        Text(String),
        Number(i64),
    }
    Ok(match Option::<Pid>::deserialize(de)? {
        Some(Pid::Text(s)) => s,
        Some(Pid::Number(n)) => n.to_string(),
        None => String::new(),
    })
}

impl Octopus {
    /// The names in `run_dep` and `stop_chain`, each with the key it came from.
    pub fn references(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.run_data
            .run_dep
            .iter()
            .map(|n| ("run_data.run_dep", n.as_str()))
            .chain(self.run_data.stop_chain.iter().map(|n| ("run_data.stop_chain", n.as_str())))
    }

    /// The one-line description an operator sees in tables.
    pub fn description(&self) -> &str {
        if self.eng_des.is_empty() { &self.chs_des } else { &self.eng_des }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_tags_and_meta_come_from_run_data_leniently() {
        let run_data: RunData = serde_json::from_value(serde_json::json!({
            "tags": ["web", 3, "v1"],
            "meta": {"seneca_pin": "role:math", "weight": 2, "canary": true, "nested": {"x": 1}}
        }))
        .unwrap();
        assert_eq!(run_data.catalog_tags(), vec!["web", "v1"]);
        let meta = run_data.catalog_meta();
        assert_eq!(meta["seneca_pin"], "role:math");
        assert_eq!((meta["weight"].as_str(), meta["canary"].as_str()), ("2", "true"));
        assert!(!meta.contains_key("nested"));
        assert!(RunData::default().catalog_tags().is_empty() && RunData::default().catalog_meta().is_empty());
    }
}
