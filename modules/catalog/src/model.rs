//! What the catalog stores, one storage key per record, and the key layout. Everything
//! a fleet shares lives here: nodes, their heartbeats, services, checks, KV entries and
//! ACL tokens. Records are JSON; indexes (`CreateIndex`/`ModifyIndex`) are storage
//! revisions, never stored counters, so every host of a fleet computes the same ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `node/<name>` → [`NodeRecord`].
pub const NODE: &str = "node/";
/// `beat/<name>` → the node's last heartbeat, unix ms (no index moves on a beat).
pub const BEAT: &str = "beat/";
/// `svc/<node>/<service id>` → [`ServiceRecord`].
pub const SERVICE: &str = "svc/";
/// `chk/<node>/<check id>` → [`CheckRecord`].
pub const CHECK: &str = "chk/";
/// `kv/<key>` → [`KvRecord`].
pub const KV: &str = "kv/";
/// `acl/<accessor id>` → [`TokenRecord`].
pub const TOKEN: &str = "acl/";
/// `owner/<node>` → the token of the module instance that runs this node's heartbeat,
/// checks and host services now (the latest one started: a reloaded generation, or a
/// second host mistakenly given the same `node_name`, takes over from the older one).
pub const OWNER: &str = "owner/";

pub fn node_key(node: &str) -> String {
    format!("{NODE}{node}")
}
pub fn beat_key(node: &str) -> String {
    format!("{BEAT}{node}")
}
pub fn service_key(node: &str, id: &str) -> String {
    format!("{SERVICE}{node}/{id}")
}
pub fn check_key(node: &str, id: &str) -> String {
    format!("{CHECK}{node}/{id}")
}
pub fn owner_key(node: &str) -> String {
    format!("{OWNER}{node}")
}
pub fn kv_key(key: &str) -> String {
    format!("{KV}{key}")
}

/// `<node>/<id>` split at the first `/` (ids may hold more).
pub fn split_node(rest: &str) -> Option<(&str, &str)> {
    rest.split_once('/').filter(|(node, id)| !node.is_empty() && !id.is_empty())
}

/// A node of the catalog: one Apollo host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NodeRecord {
    pub name: String,
    /// A UUID derived from the name, stable across restarts.
    pub id: String,
    pub address: String,
    pub datacenter: String,
    /// `serfHealth`: `passing` while the node heart-beats, `critical` once a peer saw
    /// its heartbeat go stale.
    pub serf_status: String,
    pub serf_output: String,
    /// Node maintenance (`PUT /v1/agent/maintenance`): the reason, when on.
    pub maintenance: Option<String>,
    pub create_index: u64,
}

/// Where a service came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Registered by a client over the agent API.
    #[default]
    Agent,
    /// One supervised instance of the host's own services.
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    pub passing: i64,
    pub warning: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Self { passing: 1, warning: 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServiceRecord {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub address: String,
    pub port: u16,
    /// As given (`{"lan":{"Address","Port"}}`); only rendered when set.
    pub tagged_addresses: Option<serde_json::Value>,
    pub weights: Weights,
    pub enable_tag_override: bool,
    pub origin: Origin,
    /// Service maintenance (`_service_maintenance:<id>`): the reason, when on.
    pub maintenance: Option<String>,
    pub create_index: u64,
}

/// What a check does. Only the owner node runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CheckKind {
    /// Status set by clients (`/v1/agent/check/update`) or the host's supervisor.
    #[default]
    Manual,
    Ttl {
        ttl_ms: u64,
    },
    Http {
        url: String,
        method: String,
        header: BTreeMap<String, Vec<String>>,
        body: String,
        interval_ms: u64,
        timeout_ms: u64,
    },
    Tcp {
        address: String,
        interval_ms: u64,
        timeout_ms: u64,
    },
    Script {
        args: Vec<String>,
        interval_ms: u64,
        timeout_ms: u64,
    },
}

impl CheckKind {
    /// Consul's `Type` word.
    pub fn type_word(&self) -> &'static str {
        match self {
            Self::Manual => "",
            Self::Ttl { .. } => "ttl",
            Self::Http { .. } => "http",
            Self::Tcp { .. } => "tcp",
            Self::Script { .. } => "script",
        }
    }

    pub fn interval_ms(&self) -> u64 {
        match self {
            Self::Http { interval_ms, .. } | Self::Tcp { interval_ms, .. } | Self::Script { interval_ms, .. } => {
                *interval_ms
            }
            _ => 0,
        }
    }

    pub fn timeout_ms(&self) -> u64 {
        match self {
            Self::Http { timeout_ms, .. } | Self::Tcp { timeout_ms, .. } | Self::Script { timeout_ms, .. } => {
                *timeout_ms
            }
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CheckRecord {
    pub id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    pub kind: CheckKind,
    /// `DeregisterCriticalServiceAfter`, already raised to Consul's 1 min minimum.
    pub deregister_after_ms: u64,
    /// Unix ms since when the check has been critical (for the reaper).
    pub critical_since_ms: Option<i64>,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    pub create_index: u64,
}

/// A KV entry; the value is kept base64 so any bytes survive the text storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct KvRecord {
    pub value: Option<String>,
    pub flags: u64,
    pub create_index: u64,
}

/// An ACL token the operator made on the admin routes. The secret itself is never
/// stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TokenRecord {
    pub accessor: String,
    pub description: String,
    pub secret_sha256: String,
    /// `read` or `write` (write implies read).
    pub rights: String,
    pub created_ms: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub fn sha256_hex(text: &str) -> String {
    use plugin_api::signing::sha2::{Digest as _, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A UUID-shaped id derived from `name` (a node's `ID` must stay the same across
/// restarts and be the same on every host of a fleet).
pub fn uuid_from(name: &str) -> String {
    let h = sha256_hex(name);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
