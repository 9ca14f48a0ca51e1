//! `modules.config.gateway`: the operator's settings as written, with their defaults.
//! Routes are checked and compiled by [`crate::table`]; the rest is checked here once at
//! load, so a bad value refuses the load naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{seneca, trace};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The data-plane listeners the module opens itself (`127.0.0.1:0` picks a port;
    /// `GET /api/module/gateway/listeners` tells which).
    pub listen: Vec<String>,
    /// Threads of the data plane's own runtime.
    pub workers: usize,
    pub catalog: CatalogSettings,
    /// The route table at load; `PUT /api/module/gateway/routes` replaces it at run
    /// time (kept in the module's storage, which then wins over this list).
    pub routes: Vec<RouteSpec>,
    pub outlier: OutlierSettings,
    pub circuit: CircuitSettings,
    pub retry_budget: RetryBudgetSettings,
    pub limits: LimitSettings,
    pub access_log: AccessLogSettings,
    pub seneca: seneca::Settings,
    pub tracing: trace::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec!["127.0.0.1:8080".into()],
            workers: 1,
            catalog: CatalogSettings::default(),
            routes: Vec::new(),
            outlier: OutlierSettings::default(),
            circuit: CircuitSettings::default(),
            retry_budget: RetryBudgetSettings::default(),
            limits: LimitSettings::default(),
            access_log: AccessLogSettings::default(),
            seneca: seneca::Settings::default(),
            tracing: trace::Settings::default(),
        }
    }
}

/// Where service names are resolved: a Consul-compatible agent (module-catalog's own
/// listener, `modules.listeners.catalog`), watched with blocking queries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// `host:port` of the agent; none: only static upstreams route.
    pub address: Option<String>,
    /// Sent as `X-Consul-Token` when the catalog enforces ACLs.
    pub token: Option<String>,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self { address: Some("127.0.0.1:8500".into()), token: None }
    }
}

/// One route as the operator writes it (config and admin API alike).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    /// Host header values (port ignored, `*.example.com` matches subdomains); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Matches this path and everything below it (segment-wise: `/api` matches
    /// `/api/x`, not `/apix`).
    pub path_prefix: String,
    /// Drop the matched prefix before forwarding.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strip_prefix: bool,
    /// Put this in place of the matched prefix (implies stripping it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
    /// Allowed methods; empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Headers that must be present with these values (`*` = present with any value).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A service resolved through the catalog (passing instances only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Fixed upstreams, when no service is named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<StaticUpstream>,
    pub balance: Balance,
    /// Overall deadline for the response head, all tries included.
    pub timeout_ms: u64,
    /// Deadline of one try (connect + response head).
    pub try_timeout_ms: u64,
    /// Extra tries after the first.
    pub retries: u32,
    /// Retry POST/PATCH after an upstream reset, 502/503/504 or try timeout too (they
    /// always retry when the connection could not even be made).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retry_non_idempotent: bool,
    /// Answer this when no instance can: circuit open, none healthy, tries exhausted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticUpstream {
    /// `host:port` (an IP address; names are not resolved on the request path).
    pub address: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each healthy instance in turn, weights honoured (smooth weighted round robin).
    #[default]
    RoundRobin,
    /// Power of two choices: of two random healthy instances, the one with fewer
    /// requests in flight (weighted: `weight / (active + 1)`).
    LeastRequest,
    /// Random, in proportion to weight.
    Weighted,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Fallback {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Passive health: an instance failing `consecutive_failures` times in a row (connect
/// errors, resets, 502/503/504, try timeouts) sits out `base_ejection_ms × times ejected`
/// (capped); at most `max_ejected_percent` of an upstream is out (always at least one);
/// if every instance is out the whole set is used anyway (panic mode).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierSettings {
    pub consecutive_failures: u32,
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    pub max_ejected_percent: u32,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        Self { consecutive_failures: 5, base_ejection_ms: 30_000, max_ejection_ms: 300_000, max_ejected_percent: 50 }
    }
}

/// Per upstream: requests in flight, and requests waiting for a new connection.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitSettings {
    pub max_requests: usize,
    pub max_pending: usize,
    /// Idle keep-alive connections kept per instance.
    pub max_idle_per_instance: usize,
    pub connect_timeout_ms: u64,
    pub idle_timeout_ms: u64,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        Self {
            max_requests: 1024,
            max_pending: 1024,
            max_idle_per_instance: 128,
            connect_timeout_ms: 1_000,
            idle_timeout_ms: 60_000,
        }
    }
}

/// Retries may add at most `percent` % of the requests of the last `window_secs`, with
/// a floor of `min_per_sec` so a quiet gateway can still retry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetSettings {
    pub percent: f32,
    pub min_per_sec: u32,
    pub window_secs: u64,
}

impl Default for RetryBudgetSettings {
    fn default() -> Self {
        Self { percent: 20.0, min_per_sec: 3, window_secs: 10 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Request line and headers together (431 above it).
    pub max_header_bytes: usize,
    /// A client must finish sending its head within this (slowloris).
    pub header_read_timeout_ms: u64,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// Bodies up to this size are held so a failed try can be sent again elsewhere;
    /// larger ones stream through and are retried only if the connection failed.
    pub retry_buffer_bytes: usize,
    /// `/act` messages larger than this are refused (413).
    pub max_act_bytes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            header_read_timeout_ms: 10_000,
            max_connections: 10_000,
            retry_buffer_bytes: 64 * 1024,
            max_act_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogSettings {
    pub enabled: bool,
    /// An absolute file path to append JSON lines to; none: the host's log.
    pub path: Option<String>,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        Self { enabled: true, path: None }
    }
}

impl Config {
    /// Checks everything but the routes; the message names the key.
    pub fn check(&self) -> Result<Vec<SocketAddr>, String> {
        let mut listen = Vec::new();
        for (i, text) in self.listen.iter().enumerate() {
            let addr = text.parse::<SocketAddr>().map_err(|_| {
                format!("modules.config.gateway.listen[{i}]: `{text}` is not ip:port (e.g. 127.0.0.1:8080)")
            })?;
            listen.push(addr);
        }
        if self.workers == 0 || self.workers > 64 {
            return Err("modules.config.gateway.workers: must be 1..=64".into());
        }
        if let Some(address) = &self.catalog.address {
            address_of(address).map_err(|e| format!("modules.config.gateway.catalog.address: {e}"))?;
        }
        let o = &self.outlier;
        if o.consecutive_failures == 0 || o.base_ejection_ms == 0 || o.max_ejection_ms < o.base_ejection_ms {
            return Err("modules.config.gateway.outlier: consecutive_failures and base_ejection_ms must be > 0 and \
                        max_ejection_ms ≥ base_ejection_ms"
                .into());
        }
        if o.max_ejected_percent > 100 {
            return Err("modules.config.gateway.outlier.max_ejected_percent: must be 0..=100".into());
        }
        let c = &self.circuit;
        if c.max_requests == 0 || c.max_pending == 0 || c.connect_timeout_ms == 0 {
            return Err(
                "modules.config.gateway.circuit: max_requests, max_pending and connect_timeout_ms must be > 0".into()
            );
        }
        let b = &self.retry_budget;
        if !(0.0..=1000.0).contains(&b.percent) || b.window_secs == 0 || b.window_secs > 60 {
            return Err("modules.config.gateway.retry_budget: percent must be 0..=1000, window_secs 1..=60".into());
        }
        let l = &self.limits;
        if l.max_header_bytes < 8192 || l.header_read_timeout_ms == 0 || l.max_connections == 0 {
            return Err("modules.config.gateway.limits: max_header_bytes ≥ 8192, header_read_timeout_ms and \
                        max_connections > 0"
                .into());
        }
        if let Some(path) = &self.access_log.path
            && !std::path::Path::new(path).is_absolute()
        {
            return Err(format!("modules.config.gateway.access_log.path: `{path}` must be absolute"));
        }
        self.tracing.check().map_err(|e| format!("modules.config.gateway.tracing: {e}"))?;
        Ok(listen)
    }
}

/// `host:port` with an IP host, as the request path never waits for name resolution.
pub fn address_of(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| format!("`{text}` is not ip:port (e.g. 127.0.0.1:9000)"))
}
