//! `modules.config.config`: what an operator may tune, with the protocol's bounds.

use std::time::Duration;

use plugin_api::ModuleError;
use serde::Deserialize;

/// The module's config section, as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The `{env}` names of the Open API this host serves (Ctrip's `DEV`, `FAT`, `UAT`,
    /// `PRO`, or any name of the operator's), compared case-insensitively.
    pub envs: Vec<String>,
    /// How long `/notifications/v2` holds a poll before its 304. Clients give up at 70 s,
    /// so at most 69.
    pub long_poll_timeout_secs: u64,
    /// How far an access-key signature's `Timestamp` may be from this host's clock.
    pub access_key_tolerance_secs: u64,
    /// Longest item value, in characters (Ctrip's `item.value.length.limit`).
    pub item_value_max_chars: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            envs: vec!["DEV".into()],
            long_poll_timeout_secs: 60,
            access_key_tolerance_secs: 60,
            item_value_max_chars: 20_000,
        }
    }
}

/// The checked settings the module runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub envs: Vec<String>,
    pub long_poll_hold: Duration,
    pub access_key_tolerance_ms: i64,
    pub item_value_max_chars: usize,
}

/// Clients time out their poll at 70 s (ctrip-apollo, apollo-config-client).
const MAX_HOLD_SECS: u64 = 69;

impl Settings {
    pub fn from_config(config: Config) -> Result<Self, ModuleError> {
        let invalid = |message: String| ModuleError::bad_request(format!("modules.config.config.{message}"));
        if !(1..=MAX_HOLD_SECS).contains(&config.long_poll_timeout_secs) {
            return Err(invalid(format!(
                "long_poll_timeout_secs: {} is outside 1..={MAX_HOLD_SECS} (clients give up at 70 s)",
                config.long_poll_timeout_secs
            )));
        }
        if config.envs.is_empty() {
            return Err(invalid("envs: name at least one environment, e.g. [\"DEV\"]".into()));
        }
        if let Some(bad) = config.envs.iter().find(|e| !crate::names::is_valid_name(e)) {
            return Err(invalid(format!("envs: {bad:?} is not a valid environment name (letters, digits, _ - .)")));
        }
        if config.item_value_max_chars == 0 {
            return Err(invalid("item_value_max_chars: must be at least 1".into()));
        }
        Ok(Self {
            envs: config.envs.iter().map(|e| e.to_ascii_uppercase()).collect(),
            long_poll_hold: Duration::from_secs(config.long_poll_timeout_secs),
            access_key_tolerance_ms: i64::try_from(config.access_key_tolerance_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            item_value_max_chars: config.item_value_max_chars,
        })
    }

    /// The configured spelling of `env` (any case), if this host serves it.
    pub fn env(&self, env: &str) -> Option<&str> {
        self.envs.iter().find(|e| e.eq_ignore_ascii_case(env)).map(String::as_str)
    }
}
