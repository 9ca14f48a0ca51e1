//! The module's configuration: `modules.config.influx` in the host config, handed to
//! `init` as a [`Section`] (the SDK warns about keys it does not have). Every key has a
//! default; a value of the wrong type or out of range is an error naming the key, so a
//! typo in a number never silently becomes a default. The credentials never leave this
//! file except as an `Authorization` header: `Debug` and [`Config::public`] leave them out.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::influx::Endpoint;

/// Where errors point: the full path of the section in the host config.
const SECTION: &str = "modules.config.influx";

/// The section as the SDK deserialises it: the keys this module reads, each still as
/// JSON (`null` is absent) so [`Config::from_section`] checks types and ranges itself
/// and its errors name the key and what it accepts.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Section {
    pub url: Option<Value>,
    pub database: Option<Value>,
    pub username: Option<Value>,
    pub password: Option<Value>,
    pub retention_policy: Option<Value>,
    pub interval_secs: Option<Value>,
    pub batch_size: Option<Value>,
    pub buffer_capacity: Option<Value>,
    pub timeout_secs: Option<Value>,
    pub create_database: Option<Value>,
    pub retry_initial_ms: Option<Value>,
    pub retry_max_secs: Option<Value>,
    pub host_tag: Option<Value>,
}

/// Hand-written: the section holds the credentials.
impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Section { .. }")
    }
}

#[derive(Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub database: String,
    pub credentials: Option<Credentials>,
    /// None: the database's default retention policy.
    pub retention_policy: Option<String>,
    pub interval: Duration,
    /// Points per write request.
    pub batch_size: usize,
    /// Points held while InfluxDB cannot take them; the oldest go first beyond this.
    pub buffer_capacity: usize,
    /// For one whole request: connect, send, read the answer.
    pub timeout: Duration,
    pub create_database: bool,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// The `host` tag on every point (default: this machine's hostname), so several
    /// hosts can share one database.
    pub host_tag: String,
}

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Hand-written so a `{:?}` in a log line or a panic message cannot leak the secrets.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.endpoint.url())
            .field("database", &self.database)
            .field("credentials", &self.credentials.as_ref().map(|_| "<redacted>"))
            .field("retention_policy", &self.retention_policy)
            .field("interval", &self.interval)
            .field("batch_size", &self.batch_size)
            .field("buffer_capacity", &self.buffer_capacity)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Validates the section.
    pub fn from_section(section: &Section, default_host: &str) -> Result<Self, String> {
        let s = section;
        let url = string(s.url.as_ref(), "url")?.unwrap_or_else(|| "http://127.0.0.1:8086".into());
        let endpoint = Endpoint::parse(&url).map_err(|e| format!("{SECTION}.url: {e}"))?;
        let database = string(s.database.as_ref(), "database")?.unwrap_or_else(|| "apollo".into());
        if database.is_empty() {
            return Err(format!("{SECTION}.database: must not be empty"));
        }
        let credentials = match (string(s.username.as_ref(), "username")?, string(s.password.as_ref(), "password")?) {
            (None, None) => None,
            (Some(username), password) if !username.is_empty() => {
                Some(Credentials { username, password: password.unwrap_or_default() })
            }
            _ => return Err(format!("{SECTION}.username: required (and not empty) when a password is set")),
        };
        let retention_policy = string(s.retention_policy.as_ref(), "retention_policy")?.filter(|rp| !rp.is_empty());
        let host_tag = string(s.host_tag.as_ref(), "host_tag")?.unwrap_or_else(|| default_host.to_string());
        if host_tag.is_empty() {
            return Err(format!("{SECTION}.host_tag: must not be empty"));
        }
        let interval_secs = integer(s.interval_secs.as_ref(), "interval_secs", 1, 3600)?.unwrap_or(10);
        let batch_size = integer(s.batch_size.as_ref(), "batch_size", 1, 100_000)?.unwrap_or(5000);
        let buffer_capacity = integer(s.buffer_capacity.as_ref(), "buffer_capacity", 1, 10_000_000)?.unwrap_or(100_000);
        let timeout_secs = integer(s.timeout_secs.as_ref(), "timeout_secs", 1, 300)?.unwrap_or(5);
        let retry_initial_ms = integer(s.retry_initial_ms.as_ref(), "retry_initial_ms", 10, 60_000)?.unwrap_or(500);
        let retry_max_secs = integer(s.retry_max_secs.as_ref(), "retry_max_secs", 1, 3600)?.unwrap_or(30);
        if retry_max_secs * 1000 < retry_initial_ms {
            return Err(format!(
                "{SECTION}.retry_max_secs: must be at least retry_initial_ms ({retry_initial_ms} ms), got {retry_max_secs} s"
            ));
        }
        let create_database = match s.create_database.as_ref() {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!("{SECTION}.create_database: expected true or false, got {}", kind(other)));
            }
        };
        let config = Self {
            endpoint,
            database,
            credentials,
            retention_policy,
            interval: Duration::from_secs(interval_secs),
            batch_size: batch_size as usize,
            buffer_capacity: buffer_capacity as usize,
            timeout: Duration::from_secs(timeout_secs),
            create_database,
            retry_initial: Duration::from_millis(retry_initial_ms),
            retry_max: Duration::from_secs(retry_max_secs),
            host_tag,
        };
        Ok(config)
    }

    /// What `GET /status` shows: everything but the credentials, of which only their
    /// presence is told.
    pub fn public(&self) -> Value {
        json!({
            "url": self.endpoint.url(),
            "database": self.database,
            "retention_policy": self.retention_policy,
            "authenticated": self.credentials.is_some(),
            "interval_secs": self.interval.as_secs(),
            "batch_size": self.batch_size,
            "buffer_capacity": self.buffer_capacity,
            "timeout_secs": self.timeout.as_secs(),
            "create_database": self.create_database,
            "retry_initial_ms": self.retry_initial.as_millis() as u64,
            "retry_max_secs": self.retry_max.as_secs(),
            "host_tag": self.host_tag,
            "precision": "ms",
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(v: Option<&Value>, key: &str) -> Result<Option<String>, String> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{SECTION}.{key}: expected a string, got {}", kind(other))),
    }
}

fn integer(v: Option<&Value>, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
    match v {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!("{SECTION}.{key}: expected an integer from {min} to {max}, got {value}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the SDK hands the section over (`null` is the default), then validated.
    fn parse(v: Value) -> Result<Config, String> {
        let section =
            if v.is_null() { Section::default() } else { serde_json::from_value(v).map_err(|e| e.to_string())? };
        Config::from_section(&section, "box")
    }

    #[test]
    fn defaults_from_null_or_empty() {
        for v in [Value::Null, json!({})] {
            let c = parse(v).unwrap();
            assert_eq!(c.endpoint.url(), "http://127.0.0.1:8086");
            assert_eq!(c.database, "apollo");
            assert!(c.credentials.is_none() && c.retention_policy.is_none() && c.create_database);
            assert_eq!((c.interval.as_secs(), c.batch_size, c.buffer_capacity), (10, 5000, 100_000));
            assert_eq!(c.host_tag, "box");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (json!({"interval_secs": 0}), "modules.config.influx.interval_secs"),
            (json!({"interval_secs": "5"}), "modules.config.influx.interval_secs"),
            (json!({"batch_size": -1}), "modules.config.influx.batch_size"),
            (json!({"url": "https://db:8086"}), "modules.config.influx.url"),
            (json!({"url": 8086}), "modules.config.influx.url"),
            (json!({"database": ""}), "modules.config.influx.database"),
            (json!({"password": "x"}), "modules.config.influx.username"),
            (json!({"create_database": "yes"}), "modules.config.influx.create_database"),
            (json!({"retry_initial_ms": 5000, "retry_max_secs": 2}), "modules.config.influx.retry_max_secs"),
        ];
        for (v, key) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.starts_with(key), "{v}: {e}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_status() {
        let c = parse(json!({"username": "writer-name", "password": "hunter2-secret"})).unwrap();
        let shown = format!("{c:?} {}", c.public());
        assert!(!shown.contains("hunter2-secret") && !shown.contains("writer-name"), "{shown}");
        assert_eq!(c.public()["authenticated"], true);
    }
}
