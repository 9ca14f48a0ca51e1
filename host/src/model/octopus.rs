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
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
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
