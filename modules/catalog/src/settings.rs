//! `modules.config.catalog`: the operator's settings, validated once at load, with the
//! defaults and limits this module documents in its README.

use std::time::Duration;

use plugin_api::ModuleError;
use serde::Deserialize;

use crate::duration;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// This host's node name (default: the machine's hostname).
    pub node_name: Option<String>,
    /// The address other nodes and clients reach this node at (default 127.0.0.1).
    pub node_address: Option<String>,
    pub datacenter: Option<String>,
    /// Run `Args` checks (off by default, as in Consul): a registered check can make
    /// this host run a program.
    pub enable_script_checks: bool,
    /// Heartbeat period (Go duration, default `10s`).
    pub heartbeat_interval: Option<String>,
    /// A node whose heartbeat is older gets `serfHealth` critical (default `30s`).
    pub node_critical_after: Option<String>,
    /// A node whose heartbeat is older is removed with its services (default `72h`).
    pub node_remove_after: Option<String>,
    pub acl: AclConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AclConfig {
    /// `allow` (default) or `deny`: reads without a token from non-loopback peers.
    pub default_read: Option<String>,
    /// Whether loopback peers may write without a token (default true).
    pub trust_loopback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub max_services: Option<usize>,
    pub max_checks: Option<usize>,
    pub max_kv_value_bytes: Option<usize>,
    pub max_kv_total_bytes: Option<usize>,
    pub max_kv_keys: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Agent-registered services on this node.
    pub max_services: usize,
    /// Checks on this node.
    pub max_checks: usize,
    pub max_kv_value_bytes: usize,
    pub max_kv_total_bytes: usize,
    pub max_kv_keys: usize,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub node_name: String,
    pub node_address: String,
    pub datacenter: String,
    pub enable_script_checks: bool,
    pub heartbeat_interval: Duration,
    pub node_critical_after: Duration,
    pub node_remove_after: Duration,
    pub read_needs_token: bool,
    pub trust_loopback: bool,
    pub limits: Limits,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "apollo".into())
}

fn dur(field: &str, value: Option<&String>, default: Duration) -> Result<Duration, ModuleError> {
    match value {
        None => Ok(default),
        Some(text) => {
            duration::parse(text).map_err(|e| ModuleError::bad_request(format!("modules.config.catalog.{field}: {e}")))
        }
    }
}

impl Settings {
    pub fn from_config(config: Config) -> Result<Self, ModuleError> {
        let node_name = config.node_name.unwrap_or_else(hostname);
        if node_name.is_empty() || node_name.contains('/') {
            return Err(ModuleError::bad_request(format!(
                "modules.config.catalog.node_name {node_name:?}: must be non-empty without '/'"
            )));
        }
        let default_read = config.acl.default_read.as_deref().unwrap_or("allow");
        let read_needs_token = match default_read {
            "allow" => false,
            "deny" => true,
            other => {
                return Err(ModuleError::bad_request(format!(
                    "modules.config.catalog.acl.default_read {other:?}: expected \"allow\" or \"deny\""
                )));
            }
        };
        let heartbeat_interval =
            dur("heartbeat_interval", config.heartbeat_interval.as_ref(), Duration::from_secs(10))?;
        let node_critical_after =
            dur("node_critical_after", config.node_critical_after.as_ref(), Duration::from_secs(30))?;
        let node_remove_after =
            dur("node_remove_after", config.node_remove_after.as_ref(), Duration::from_secs(72 * 3600))?;
        if heartbeat_interval < Duration::from_millis(100) || node_critical_after <= heartbeat_interval {
            return Err(ModuleError::bad_request(
                "modules.config.catalog: heartbeat_interval must be at least 100ms and below node_critical_after",
            ));
        }
        if node_remove_after <= node_critical_after {
            return Err(ModuleError::bad_request(
                "modules.config.catalog: node_remove_after must be longer than node_critical_after",
            ));
        }
        let l = config.limits;
        Ok(Self {
            node_name,
            node_address: config.node_address.unwrap_or_else(|| "127.0.0.1".into()),
            datacenter: config.datacenter.unwrap_or_else(|| "dc1".into()),
            enable_script_checks: config.enable_script_checks,
            heartbeat_interval,
            node_critical_after,
            node_remove_after,
            read_needs_token,
            trust_loopback: config.acl.trust_loopback.unwrap_or(true),
            limits: Limits {
                max_services: l.max_services.unwrap_or(5_000),
                max_checks: l.max_checks.unwrap_or(10_000),
                max_kv_value_bytes: l.max_kv_value_bytes.unwrap_or(512 * 1024),
                max_kv_total_bytes: l.max_kv_total_bytes.unwrap_or(64 * 1024 * 1024),
                max_kv_keys: l.max_kv_keys.unwrap_or(100_000),
            },
        })
    }
}
