//! The states a service goes through and the status the API reports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Stopped,
    Starting,
    Running,
    Stopping,
    /// Exited; waiting out the restart delay.
    Backoff,
    /// Gave up: restart limit reached, or a start that cannot succeed.
    Errored,
    /// Running but failing its health check.
    Unhealthy,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Backoff => "backoff",
            Self::Errored => "errored",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// States in which the service has (or is about to have) processes.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Backoff | Self::Unhealthy)
    }
}

impl std::str::FromStr for ServiceState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "stopped" => Self::Stopped,
            "starting" => Self::Starting,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "backoff" => Self::Backoff,
            "errored" => Self::Errored,
            "unhealthy" => Self::Unhealthy,
            _ => return Err(()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceStatus {
    pub instance: u32,
    pub pid: Option<i32>,
    /// RFC 3339, when this process started.
    pub started_at: Option<String>,
    pub rss_bytes: Option<u64>,
    /// CPU time (user + system) the process has used, in milliseconds; two readings
    /// give a CPU percentage.
    #[serde(default)]
    pub cpu_time_ms: Option<u64>,
    /// Adopted after a host restart (not a child of this host process).
    pub adopted: bool,
}

/// `GET /api/apps/{name}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    /// `supervised`, `script`, `container` or `unmanaged`.
    pub mode: String,
    pub pid: Option<i32>,
    pub instances: Vec<InstanceStatus>,
    pub ports: Vec<u16>,
    /// Restarts since the last operator start.
    pub restarts: u32,
    /// The operator stopped it: it stays stopped across host restarts.
    pub stop_operation: bool,
    /// Consecutive failed health checks.
    pub health_failures: u32,
    /// The latest notable thing: last exit, script result, health error.
    pub message: String,
    /// Container mode: the service's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerStatus>,
    /// The model's `run_data.tags`: what a service registry lists it with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The model's `run_data.meta` (e.g. `seneca_pin`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub meta: std::collections::BTreeMap<String, String>,
}

/// The container of a container-mode service, as the supervisor last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContainerStatus {
    pub id: String,
    /// `apollo-<service>`.
    pub name: String,
    pub image: String,
    /// `running`, `exited (code N)`, ...
    pub state: String,
}
