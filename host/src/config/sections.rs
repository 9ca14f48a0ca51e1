//! The nested sections of the config (`log`, `db`, `server`, `ci`, and our `auth`,
//! `registry`, `modules`, `audit`, `supervisor`, `backup`, `files`), each with the
//! defaults an operator gets with no file. `alarms` and `tasks`, which check more than
//! serde can, have files of their own.

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
    /// Ours: at shutdown, how long requests in flight may finish before their
    /// connections are closed (a held long poll or a followed log would otherwise keep
    /// the host up for as long as its client likes).
    pub shutdown_drain_secs: u64,
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
            shutdown_drain_secs: 10,
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
    /// Seconds between two samples of each running service's CPU and RSS, kept for the
    /// last 360 samples (an hour at 10 s) for the dashboard's charts; 0: no sampling.
    pub history_interval_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, public: false, history_interval_secs: 10 }
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
