//! The host configuration: the seed's `.pig` (JSON) keys plus ours, with defaults.
//!
//! `load` turns a file into a [`Config`] whose paths are absolute; parse and value
//! errors name the file, `line:column` and the key. This module only describes and
//! validates settings: it opens no sockets and creates no directories, and it calls
//! into no other part of the host: each section validates itself here (`alarms.rs`,
//! `tasks.rs` with `schedule.rs`), and the subsystems use the values checked here.

mod alarms;
mod locate;
mod schedule;
mod sections;
pub mod seed_values;
mod tasks;

pub use alarms::{AlarmsConfig, DeliveryConfig, EmailConfig, HttpTarget, SEVERITIES, WebhookConfig};
pub use locate::{locate_key, locate_value};
pub use schedule::{Schedule, ScheduleError};
pub use sections::*;
pub use tasks::{TaskConfig, TasksConfig};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the host looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "conf/apollo.pig";
/// The root of everything the host writes when no config says otherwise.
pub const DEFAULT_SERVICE_ROOT: &str = "apollo-data";

/// The whole configuration. Every seed key is here; paths left empty are derived from
/// `service_root` by [`Config::resolve`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Root of the host's own files; the other directories default to children of it.
    pub service_root: PathBuf,
    /// Where services live: `<app_root>/<name>/`, models in `<app_root>/.octopus/`.
    pub app_root: PathBuf,
    /// Manage scripts: `<app_manager>/<name>/start.sh` and friends.
    pub app_manager: PathBuf,
    pub app_cache_dir: PathBuf,
    pub app_log_dir: PathBuf,
    pub app_tmp_dir: PathBuf,
    pub app_back_up: PathBuf,
    pub app_pids: PathBuf,
    /// Ours: the host's state (SQLite store, unix socket, loaded-module copies).
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub db: DbConfig,
    pub server: ServerConfig,
    pub ci: CiConfig,
    pub auth: AuthConfig,
    pub registry: RegistryConfig,
    pub modules: ModulesConfig,
    pub audit: AuditConfig,
    pub supervisor: SupervisorConfig,
    pub files: FilesConfig,
    pub tasks: TasksConfig,
    pub backup: BackupConfig,
    pub alarms: AlarmsConfig,
    pub metrics: MetricsConfig,
    /// Set by `load`: the file this config came from, for messages.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// A config file that could not be used. `Display` is the one line an operator sees.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read config: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        /// Dotted key path, e.g. `server.port`; `(document)` for syntax errors.
        key: String,
        message: String,
    },
}

/// A config plus what a human should be told about it but that does not stop it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates `path`. Relative paths inside the file are resolved against
    /// the file's directory, so a config means the same thing from any working directory.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut loaded = Self::parse(&text, &file)?;
        loaded.config.source = Some(path.to_path_buf());
        loaded.config.resolve(&absolute(&base));
        Ok(loaded)
    }

    /// `--config` if given, else `./conf/apollo.pig` if present, else defaults
    /// rooted at `./apollo-data/`.
    pub fn discover(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
        if let Some(path) = explicit {
            return Self::load(path);
        }
        let conventional = Path::new(DEFAULT_CONFIG_PATH);
        if conventional.is_file() {
            return Self::load(conventional);
        }
        let mut config = Config::default();
        config.resolve(&absolute(Path::new(".")));
        Ok(Loaded { config, warnings: Vec::new() })
    }

    /// Parses config text; `file` is only used in messages.
    ///
    /// Two passes: the text into a JSON tree (syntax errors, exact positions), then the
    /// tree, with its `""`/`null` values removed ([`seed_values::drop_empty_values`]),
    /// into [`Config`]; a type error there is placed with [`locate_value`], which finds
    /// the same position a streaming parse would have reported.
    pub fn parse(text: &str, file: &str) -> Result<Loaded, ConfigError> {
        let invalid = |line, column, key: String, message: String| ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            key,
            message,
        };
        let mut tree: serde_json::Value = serde_json::from_str(text).map_err(|err| {
            let message = err.to_string();
            let message = message.split(" at line ").next().unwrap_or_default().to_string();
            invalid(err.line(), err.column(), "(document)".into(), message)
        })?;
        seed_values::drop_empty_values(&mut tree);
        let mut unknown = Vec::new();
        let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let tracked = serde_ignored::Deserializer::new(tree, &mut note_unknown);
        let config: Config = serde_path_to_error::deserialize(tracked).map_err(|err| {
            let key = err.path().to_string();
            let (line, column) = locate_value(text, &key).or_else(|| locate_key(text, &key)).unwrap_or((1, 1));
            let key = if key == "." { "(document)".into() } else { key };
            invalid(line, column, key, err.into_inner().to_string())
        })?;
        config.validate(text, file)?;
        let warnings = unknown.into_iter().map(|key| unknown_key_warning(text, file, &key)).collect();
        Ok(Loaded { config, warnings })
    }

    /// Checks that serde's types cannot express. Errors point at the key's position.
    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| {
            let (line, column) = locate_key(text, key).unwrap_or((1, 1));
            Err(ConfigError::Invalid { file: file.to_string(), line, column, key: key.to_string(), message })
        };
        if self.server.host.trim().is_empty() {
            return fail("server.host", "must not be empty (e.g. \"127.0.0.1\")".into());
        }
        if self.server.host.contains(':') && self.server.host.parse::<std::net::Ipv6Addr>().is_err() {
            return fail(
                "server.host",
                format!(
                    "{:?} must be a host name or IP address without a port; put the port in server.port",
                    self.server.host
                ),
            );
        }
        if !self.log.level.is_empty() && tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return fail(
                "log.level",
                format!("{:?} is not a log filter; use e.g. \"info\" or \"apollo_host=debug\"", self.log.level),
            );
        }
        if self.auth.token_ttl_secs == 0 {
            return fail("auth.token_ttl_secs", "must be at least 1 second".into());
        }
        if self.server.body_limit_bytes < 1024 {
            return fail(
                "server.body_limit_bytes",
                format!("{} is too small; use at least 1024", self.server.body_limit_bytes),
            );
        }
        if self.auth.admin_user.trim().is_empty() {
            return fail("auth.admin_user", "must not be empty".into());
        }
        if !self.auth.admin_password_hash.is_empty() && !self.auth.admin_password_hash.starts_with("$argon2") {
            return fail("auth.admin_password_hash", "is not an argon2 hash; generate one with `apollo passwd`".into());
        }
        if self.backup.retention == 0 {
            return fail("backup.retention", "must be at least 1 (the number of backups kept)".into());
        }
        // Sections with more than a rule or two check themselves (`alarms.rs`, `tasks.rs`).
        if let Err((key, message)) = self.alarms.validate() {
            return fail(&key, message);
        }
        if let Err((key, message)) = self.tasks.validate() {
            return fail(&key, message);
        }
        Ok(())
    }

    /// Fills empty paths from `service_root` and makes every path absolute against `base`.
    pub fn resolve(&mut self, base: &Path) {
        let join = |p: &Path| absolute(&base.join(p));
        if self.service_root.as_os_str().is_empty() {
            self.service_root = PathBuf::from(DEFAULT_SERVICE_ROOT);
        }
        self.service_root = join(&self.service_root);
        let root = self.service_root.clone();
        let derive = |p: &mut PathBuf, child: &str| {
            *p = if p.as_os_str().is_empty() { root.join(child) } else { join(p) };
        };
        derive(&mut self.app_root, "app");
        derive(&mut self.app_manager, "manager");
        derive(&mut self.app_cache_dir, "cache");
        derive(&mut self.app_log_dir, "log");
        derive(&mut self.app_tmp_dir, "tmp");
        derive(&mut self.app_back_up, "backup");
        derive(&mut self.app_pids, "pids");
        derive(&mut self.data_dir, "data");
        if self.server.uds.as_os_str().is_empty() {
            self.server.uds = self.data_dir.join("apollo.sock");
        } else {
            self.server.uds = join(&self.server.uds);
        }
        self.db.sqlite.path = if self.db.sqlite.path.as_os_str().is_empty() {
            self.data_dir.join("apollo.db")
        } else {
            join(&self.db.sqlite.path)
        };
        if !self.log.log_file.as_os_str().is_empty() {
            self.log.log_file = join(&self.log.log_file);
        }
        for root in &mut self.ci.container_mount_roots {
            *root = join(root);
        }
        self.modules.dir =
            if self.modules.dir.as_os_str().is_empty() { base.join("modules-dist") } else { join(&self.modules.dir) };
    }

    /// The directory holding service models: `.octopus/`, or the seed's `octopusMeta/`
    /// when only that one exists.
    pub fn models_dir(&self) -> PathBuf {
        let primary = self.app_root.join(".octopus");
        let fallback = self.app_root.join("octopusMeta");
        if !primary.exists() && fallback.is_dir() { fallback } else { primary }
    }

    /// A short name for messages: the config file, or "defaults".
    pub fn source_name(&self) -> String {
        self.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "defaults".into())
    }
}

/// Seed keys that we recognise but deliberately do not act on, with the reason.
const RETIRED_SEED_KEYS: &[(&str, &str)] = &[
    (
        "server.passwd",
        "clear-text passwords are not read; set auth.admin_password_hash (from `apollo passwd`) or APOLLO_ADMIN_PASSWORD",
    ),
    ("server.account", "use auth.admin_user"),
    ("server.auth_expire", "use auth.token_ttl_secs"),
];

fn unknown_key_warning(text: &str, file: &str, key: &str) -> String {
    let (line, column) = locate_key(text, key).unwrap_or((1, 1));
    match RETIRED_SEED_KEYS.iter().find(|(k, _)| *k == key) {
        Some((_, why)) => format!("{file}:{line}:{column}: {key}: ignored: {why}"),
        None => format!(
            "{file}:{line}:{column}: {key}: unknown key, ignored (check the spelling against README's configuration reference)"
        ),
    }
}

/// Absolute and lexically clean (`a/b/../c` → `a/c`), so messages and the socket path
/// read the way an operator would write them. Symlinks are not resolved.
fn absolute(path: &Path) -> PathBuf {
    let raw = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for part in raw.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_live_under_service_root() {
        let mut c = Config::default();
        c.resolve(Path::new("/srv"));
        assert_eq!(c.service_root, Path::new("/srv/apollo-data"));
        let mut up = Config { service_root: PathBuf::from("../../data"), ..Config::default() };
        up.resolve(Path::new("/srv/a/b"));
        assert_eq!(up.app_root, Path::new("/srv/data/app"), "paths are lexically clean");
        assert_eq!(c.app_root, Path::new("/srv/apollo-data/app"));
        assert_eq!(c.server.uds, Path::new("/srv/apollo-data/data/apollo.sock"));
        assert_eq!(c.server.port, 9090);
        assert_eq!(c.server.host, "127.0.0.1");
    }

    #[test]
    fn type_error_names_line_column_and_key() {
        let text = "{\n  \"server\": {\n    \"port\": 70000\n  }\n}";
        let err = Config::parse(text, "a.pig").unwrap_err().to_string();
        assert!(err.starts_with("a.pig:3:17: server.port: "), "{err}");
    }

    #[test]
    fn syntax_error_names_position() {
        let err = Config::parse("{\n \"app_root\": \"x\",,\n}", "b.pig").unwrap_err().to_string();
        assert!(err.starts_with("b.pig:2:"), "{err}");
    }

    #[test]
    fn unknown_keys_warn_with_position() {
        let loaded = Config::parse("{\n \"server\": {\"prot\": 1}\n}", "c.pig").unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("c.pig:2:") && loaded.warnings[0].contains("server.prot"));
    }

    #[test]
    fn seed_mongo_keys_are_accepted() {
        let text = r#"{"db":{"sqlite":{},"mongo":{"name":"ApolloMongo","url":"127.0.0.1:27017","user":"","passwd":""},"redis":{}}}"#;
        let loaded = Config::parse(text, "d.pig").unwrap();
        assert_eq!(loaded.config.db.mongo.name, "ApolloMongo");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    /// The seed's config files, verbatim (see tests/fixtures/seed/README.md).
    const SEED_README_CONFIG: &str = include_str!("../../../tests/fixtures/seed/readme-apollo.pig");
    const SEED_REPO_CONFIG: &str = include_str!("../../../tests/fixtures/seed/repo-apollo.pig");

    #[test]
    fn seed_readme_config_loads_as_written() {
        let loaded = Config::parse(SEED_README_CONFIG, "readme.pig").unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = &loaded.config;
        assert!(c.log.enable_log, "\"\" is the default: logging on");
        assert!(!c.log.enable_stack && !c.log.enable_function && !c.log.enable_caller, "\"no\"");
        assert_eq!(c.log.encoding, LogEncoding::Console);
        assert_eq!(c.db.mongo.name, "ApolloMongo");
        assert_eq!((c.server.host.as_str(), c.server.port), ("0.0.0.0", 9090));
        assert_eq!(c.ci.docker_timeout, 5);
    }

    #[test]
    fn seed_repo_config_warns_about_what_it_does_not_know() {
        let loaded = Config::parse(SEED_REPO_CONFIG, "repo.pig").unwrap();
        let warned = |key: &str| loaded.warnings.iter().any(|w| w.contains(&format!(": {key}: ")));
        for key in ["app_bridge", "db.tidb", "server.grpc", "server.oauth", "module", "grpc", "aes", "experiment"] {
            assert!(warned(key), "{key} not in {:#?}", loaded.warnings);
        }
        assert!(warned("server.passwd") && warned("server.account"), "retired keys say why");
        assert!(loaded.config.log.enable_log);
    }

    #[test]
    fn every_yes_no_spelling_reads_for_every_log_flag() {
        let defaults = LogConfig::default();
        type ReadFlag = fn(&LogConfig) -> bool;
        let flags: [(&str, ReadFlag); 4] = [
            ("enable_log", |l| l.enable_log),
            ("enable_stack", |l| l.enable_stack),
            ("enable_function", |l| l.enable_function),
            ("enable_caller", |l| l.enable_caller),
        ];
        let spellings = [
            (serde_json::json!(true), Some(true)),
            (serde_json::json!(false), Some(false)),
            (serde_json::json!("yes"), Some(true)),
            (serde_json::json!("No"), Some(false)),
            (serde_json::json!("TRUE"), Some(true)),
            (serde_json::json!("false"), Some(false)),
            (serde_json::json!("on"), Some(true)),
            (serde_json::json!("OFF"), Some(false)),
            (serde_json::json!(""), None),
            (serde_json::Value::Null, None),
        ];
        for (key, read) in flags {
            for (spelling, want) in &spellings {
                let text = serde_json::json!({ "log": { key: spelling } }).to_string();
                let config = Config::parse(&text, "f.pig").unwrap_or_else(|e| panic!("{key} = {spelling}: {e}")).config;
                assert_eq!(read(&config.log), want.unwrap_or(read(&defaults)), "{key} = {spelling}");
            }
        }
    }

    #[test]
    fn a_bad_yes_no_value_names_file_position_key_and_spellings() {
        let text = "{\n  \"log\": {\n    \"enable_stack\": \"maybe\"\n  }\n}";
        let err = Config::parse(text, "e.pig").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "e.pig:3:27: log.enable_stack: \"maybe\" is not a yes/no value: use {}",
                seed_values::FLAG_SPELLINGS
            )
        );
        let err = Config::parse("{\"registry\": {\"watch\": 1}}", "n.pig").unwrap_err().to_string();
        assert!(err.starts_with("n.pig:1:24: registry.watch: 1 is not a yes/no value: use true/false"), "{err}");
    }

    #[test]
    fn an_empty_or_null_seed_key_means_its_default() {
        const SEED_KEYS: &[&str] = &[
            "service_root",
            "app_root",
            "app_manager",
            "app_cache_dir",
            "app_log_dir",
            "app_tmp_dir",
            "app_back_up",
            "app_pids",
            "log",
            "log.enable_log",
            "log.enable_stack",
            "log.enable_function",
            "log.enable_caller",
            "log.log_file",
            "log.encoding",
            "db",
            "db.sqlite",
            "db.mongo",
            "db.mongo.name",
            "db.mongo.url",
            "db.mongo.user",
            "db.mongo.pass_wd",
            "db.redis",
            "server",
            "server.host",
            "server.port",
            "server.uds",
            "ci",
            "ci.docker_host",
            "ci.docker_timeout",
            "ci.docker_api_version",
        ];
        let resolved = |mut c: Config| {
            c.resolve(Path::new("/srv"));
            serde_json::to_value(c).unwrap()
        };
        let defaults = resolved(Config::default());
        for empty in [serde_json::json!(""), serde_json::Value::Null] {
            for key in SEED_KEYS {
                let mut tree = serde_json::json!({});
                let mut at = &mut tree;
                for part in key.split('.') {
                    at = at.as_object_mut().unwrap().entry(part).or_insert(serde_json::json!({}));
                }
                *at = empty.clone();
                let loaded =
                    Config::parse(&tree.to_string(), "e.pig").unwrap_or_else(|e| panic!("{key} = {empty}: {e}"));
                assert!(loaded.warnings.is_empty(), "{key}: {:?}", loaded.warnings);
                assert_eq!(resolved(loaded.config), defaults, "{key} = {empty}");
            }
        }
    }
}
