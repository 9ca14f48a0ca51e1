//! The `alarms.*` section: its types and defaults, and the checks serde cannot make
//! (threshold ranges, severity names, webhook URLs, e-mail addresses), so a bad value
//! is a config error at load rather than a failed delivery later. It sends nothing:
//! the notifiers in `crate::alarms` use the values checked here.

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

/// The severities an alarm can have, `info` < `warning` < `critical`: what
/// `severities` lists in a webhook or e-mail entry may name.
pub const SEVERITIES: &[&str] = &["info", "warning", "critical"];

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

impl AlarmsConfig {
    /// Checks `alarms.*` beyond what serde can: `Err((dotted key, message))`, for
    /// `Config::validate` to place at the key's line and column.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let severities = |key: String, list: &[String]| match list.iter().find(|s| !SEVERITIES.contains(&s.as_str())) {
            Some(bad) => Err((key, format!("{bad:?} is not a severity; use info, warning or critical"))),
            None => Ok(()),
        };
        if !(1..=100).contains(&self.disk_full_percent) {
            return Err(("alarms.disk_full_percent".into(), "must be between 1 and 100".into()));
        }
        if self.max_alarms == 0 {
            return Err(("alarms.max_alarms".into(), "must be at least 1".into()));
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            HttpTarget::parse(&hook.url).map_err(|e| (format!("alarms.webhooks.{i}.url"), e))?;
            severities(format!("alarms.webhooks.{i}.severities"), &hook.severities)?;
        }
        for (i, mail) in self.email.iter().enumerate() {
            mail.validate().map_err(|e| (format!("alarms.email.{i}"), e))?;
            severities(format!("alarms.email.{i}.severities"), &mail.severities)?;
        }
        Ok(())
    }
}

impl EmailConfig {
    /// Checks the addresses, so a bad one is a config error rather than a failed delivery.
    pub fn validate(&self) -> Result<(), String> {
        self.from.parse::<Mailbox>().map_err(|e| format!("from {:?}: {e}", self.from))?;
        if self.to.is_empty() {
            return Err("to: needs at least one address".into());
        }
        for to in &self.to {
            to.parse::<Mailbox>().map_err(|e| format!("to {to:?}: {e}"))?;
        }
        Ok(())
    }
}

/// `http://host[:port][/path]` split into the address to dial, the Host header and the
/// request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub authority: String,
    pub address: String,
    pub path: String,
}

impl HttpTarget {
    /// A webhook URL: `http://` only, a host and no user info; port 80 when none is given.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?}: needs a host (and no user info)"));
        }
        let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| !p.ends_with(']') && !p.is_empty());
        let address = if has_port { authority.to_string() } else { format!("{authority}:80") };
        Ok(Self { authority: authority.to_string(), address, path: path.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked_with_its_key() {
        let mut config = AlarmsConfig::default();
        assert!(config.validate().is_ok());
        config.webhooks.push(WebhookConfig { url: "http://h/x".into(), ..Default::default() });
        config.webhooks[0].severities = vec!["loud".into()];
        assert_eq!(config.validate().unwrap_err().0, "alarms.webhooks.0.severities");
        config.webhooks.clear();
        config.email.push(EmailConfig::default());
        assert_eq!(config.validate().unwrap_err().0, "alarms.email.0", "no recipients");
        config.email.clear();
        config.disk_full_percent = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn urls_are_split_and_only_http_is_accepted() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/hooks/a?x=1").unwrap();
        assert_eq!((t.address.as_str(), t.path.as_str()), ("127.0.0.1:8080", "/hooks/a?x=1"));
        assert_eq!(HttpTarget::parse("http://example.com").unwrap().address, "example.com:80");
        assert!(HttpTarget::parse("https://example.com/").is_err());
        assert!(HttpTarget::parse("http:///x").is_err());
    }
}
