//! The nested sections of the config (`log`, `db`, `server`, `ci`, and our `auth`,
//! `registry`, `modules`), each with the defaults an operator gets with no file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `log.*`: seed keys, mapped onto `tracing` by `crate::logging`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `false` keeps only warnings and errors.
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub enable_log: bool,
    /// Print the span stack (the request/task context) on each line.
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub enable_stack: bool,
    /// Print the emitting module path (`target`).
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub enable_function: bool,
    /// Print source file and line.
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub enable_caller: bool,
    /// Append to this file instead of standard error. Empty: standard error.
    pub log_file: PathBuf,
    pub encoding: LogEncoding,
    /// Ours: an `EnvFilter` directive, e.g. `info` or `apollo_host=debug`.
    /// `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            enable_log: true,
            enable_stack: false,
            enable_function: false,
            enable_caller: false,
            log_file: PathBuf::new(),
            encoding: LogEncoding::Console,
            level: "info".into(),
        }
    }
}

/// `log.encoding`: `"console"` (the default, also for the seed's `""`) for humans,
/// `"json"` for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    #[default]
    Console,
    Json,
}

/// `db.*`: the seed's `sqlite`, `mongo`, `redis` objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DbConfig {
    pub sqlite: SqliteConfig,
    pub mongo: MongoConfig,
    /// Accepted for seed compatibility; no feature uses Redis yet.
    pub redis: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SqliteConfig {
    /// Ours: the database file. Default `<data_dir>/apollo.db`.
    pub path: PathBuf,
}

/// `db.mongo`: a non-empty `url` selects the MongoDB store instead of SQLite.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MongoConfig {
    /// Database name (default `apollo`).
    pub name: String,
    /// `mongodb://host:port` or the seed's bare `host:port`; empty: use SQLite.
    pub url: String,
    pub user: String,
    #[serde(alias = "passwd", skip_serializing)]
    pub pass_wd: String,
    /// Ours: tag of this host's records in a shared database (default: hostname).
    pub scope: String,
    /// Ours: how long to wait for the database at start (default 30).
    pub start_timeout_secs: u64,
    /// Ours: how long one call waits for a server (default 5).
    pub timeout_secs: u64,
}

/// `server.*`: where the API listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub host: String,
    /// `0` asks the OS for a free port (tests use this).
    pub port: u16,
    /// Unix socket path. Default `<data_dir>/apollo.sock`.
    pub uds: PathBuf,
    /// Ours: largest accepted request body.
    pub body_limit_bytes: usize,
    /// Ours: a request that takes longer is answered 503 and dropped.
    pub request_timeout_secs: u64,
    /// Ours: a client must send a whole request head within this (nginx's
    /// `client_header_timeout`), or the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Ours: a connection with no request in flight and no bytes moving is closed after
    /// this (nginx's `keepalive_timeout`).
    pub keepalive_timeout_secs: u64,
    /// Ours: connections open at once on each listener; more wait in the backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 9090,
            uds: PathBuf::new(),
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 60,
            header_read_timeout_secs: 60,
            keepalive_timeout_secs: 75,
            max_connections: 4096,
        }
    }
}

/// `ci.*`: Docker engine settings, used by the Docker manager and container services.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CiConfig {
    pub docker_host: String,
    pub docker_timeout: u64,
    pub docker_api_version: String,
    /// Host directories (besides `app_root`) that container services may bind-mount.
    pub container_mount_roots: Vec<PathBuf>,
}

impl Default for CiConfig {
    fn default() -> Self {
        Self {
            docker_host: "unix:///var/run/docker.sock".into(),
            docker_timeout: 5,
            docker_api_version: "1.41".into(),
            container_mount_roots: Vec::new(),
        }
    }
}

/// `auth.*` (ours): the admin account and token policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub admin_user: String,
    /// An argon2 PHC string from `apollo passwd`. `APOLLO_ADMIN_PASSWORD` wins over it.
    #[serde(skip_serializing)]
    pub admin_password_hash: String,
    pub token_ttl_secs: u64,
    /// Failed logins from one client before it is made to wait.
    pub max_failed_logins: u32,
    /// First lockout after `max_failed_logins`; doubles per further failure.
    pub lockout_base_secs: u64,
    /// Upper bound for the lockout.
    pub lockout_max_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_user: "admin".into(),
            admin_password_hash: String::new(),
            token_ttl_secs: 12 * 3600,
            max_failed_logins: 5,
            lockout_base_secs: 2,
            lockout_max_secs: 300,
        }
    }
}

/// `registry.*` (ours): how the model folder is watched.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// Watch the folder with inotify; changes apply within `debounce_ms`.
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub watch: bool,
    pub debounce_ms: u64,
    /// Full re-read period, a safety net for filesystems without change events.
    pub rescan_secs: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { watch: true, debounce_ms: 200, rescan_secs: 30 }
    }
}

/// `modules.*` (ours): where module `.so` files are picked up, and their settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ModulesConfig {
    /// Default `modules-dist/` next to the config file (or the working directory).
    pub dir: PathBuf,
    /// A module request taking longer is answered 504.
    pub handler_timeout_secs: u64,
    /// Panics after which a module is reported `degraded` (it keeps serving).
    pub degraded_after_panics: u64,
    /// Each module's own configuration, by module name, handed to its `init`.
    pub config: std::collections::BTreeMap<String, serde_json::Value>,
    /// Modules allowed to administer the store (read and write every record, run
    /// migrations): default `["db-migrate"]`.
    pub store_access: Vec<String>,
    /// A module's own listener, by module name (`{"gateway": "0.0.0.0:8080"}`): its
    /// listener-mounted routes served at the root of that address, outside the admin
    /// API; opened when the module loads, closed when it is disabled or removed.
    pub listeners: std::collections::BTreeMap<String, String>,
}

impl Default for ModulesConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            handler_timeout_secs: 30,
            degraded_after_panics: 5,
            config: Default::default(),
            store_access: vec!["db-migrate".into()],
            listeners: Default::default(),
        }
    }
}

/// `metrics.*` (ours): `GET /metrics`, the Prometheus text format.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve `/metrics` and time HTTP requests, module calls and store operations.
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub enabled: bool,
    /// Serve `/metrics` over TCP without a token. Off by default: the figures name
    /// services, modules and routes, which an anonymous caller has no business reading.
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub public: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, public: false }
    }
}

/// `audit.*` (ours): retention of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// The newest entries kept; older ones are dropped hourly.
    pub max_entries: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { max_entries: 100_000 }
    }
}

/// `supervisor.*` (ours): host-wide supervision settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SupervisorConfig {
    /// Stop every service when the host shuts down. Default `false`: services keep
    /// running and the next host re-adopts them (a host upgrade causes no downtime).
    #[serde(deserialize_with = "super::seed_values::flag")]
    pub stop_services_on_exit: bool,
}

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

/// `backup.*` (ours): backups in `app_back_up`; their schedule is `tasks.backup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupConfig {
    /// Backups kept: after each new one, all but the newest `retention` are deleted.
    pub retention: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { retention: 7 }
    }
}

/// `files.*` (ours): the file manager over `app_root`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesConfig {
    /// Largest file accepted by upload (streamed to disk, never held in memory).
    pub max_upload_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self { max_upload_bytes: 512 * 1024 * 1024 }
    }
}

/// `alarms.*` (ours): alarms raised from host events and the disk check, their
/// retention, and who is notified of new ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AlarmsConfig {
    /// Check the filesystem of `service_root` this often (0: never).
    pub disk_check_secs: u64,
    /// A `disk_full` alarm (critical) when this share of the filesystem is used.
    pub disk_full_percent: u8,
    /// A service's crash alarms resolve once it has been running this long.
    pub resolve_after_running_secs: u64,
    /// Resolved alarms older than this are dropped (checked hourly and at start).
    pub retention_days: u64,
    /// At most this many alarms are kept (the newest).
    pub max_alarms: u64,
    /// JSON POST of each new alarm (`http://` only).
    pub webhooks: Vec<WebhookConfig>,
    /// E-mail of each new alarm over SMTP.
    pub email: Vec<EmailConfig>,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            disk_check_secs: 60,
            disk_full_percent: 90,
            resolve_after_running_secs: 30,
            retention_days: 30,
            max_alarms: 10_000,
            webhooks: Vec::new(),
            email: Vec::new(),
        }
    }
}

/// How a notifier retries: `retries` more attempts after the first, waiting
/// `backoff_ms`, then twice that, and so on; each attempt bounded by `timeout_ms`.
/// (The same three keys sit in each webhook and e-mail entry.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    pub timeout_ms: u64,
    pub retries: u32,
    pub backoff_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self { timeout_ms: 5000, retries: 3, backoff_ms: 500 }
    }
}

/// One webhook in `alarms.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// e.g. `http://127.0.0.1:8080/alarms`.
    pub url: String,
    /// The severities sent here (`info`, `warning`, `critical`).
    pub severities: Vec<String>,
    /// Each attempt's bound.
    pub timeout_ms: u64,
    /// Attempts after the first; the waits between double from `backoff_ms`.
    pub retries: u32,
    pub backoff_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let d = DeliveryConfig::default();
        Self {
            url: String::new(),
            severities: default_severities(),
            timeout_ms: d.timeout_ms,
            retries: d.retries,
            backoff_ms: d.backoff_ms,
        }
    }
}

/// One SMTP recipient list in `alarms.email` (plain SMTP, no TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    /// Optional SMTP AUTH; empty: none.
    pub username: String,
    #[serde(skip_serializing)]
    pub password: String,
    /// The severities mailed here (`info`, `warning`, `critical`).
    pub severities: Vec<String>,
    /// Each attempt's bound.
    pub timeout_ms: u64,
    /// Attempts after the first; the waits between double from `backoff_ms`.
    pub retries: u32,
    pub backoff_ms: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            from: "apollo@localhost".into(),
            to: Vec::new(),
            username: String::new(),
            password: String::new(),
            severities: default_severities(),
            timeout_ms: DeliveryConfig::default().timeout_ms,
            retries: DeliveryConfig::default().retries,
            backoff_ms: DeliveryConfig::default().backoff_ms,
        }
    }
}

impl WebhookConfig {
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig { timeout_ms: self.timeout_ms, retries: self.retries, backoff_ms: self.backoff_ms }
    }
}

impl EmailConfig {
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig { timeout_ms: self.timeout_ms, retries: self.retries, backoff_ms: self.backoff_ms }
    }
}

fn default_severities() -> Vec<String> {
    vec!["warning".into(), "critical".into()]
}
