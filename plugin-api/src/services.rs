//! Typed views of what the host tells a module: its services ([`ServiceInfo`]) and the
//! events on its bus ([`Event`]). Fields the host adds later are ignored, and an event
//! kind this SDK does not know arrives as [`Event::Other`], so an older module keeps
//! working with a newer host.

use serde::{Deserialize, Serialize};

/// One process of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct InstanceInfo {
    pub instance: u32,
    pub pid: Option<i32>,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub rss_bytes: Option<u64>,
    /// CPU time (user + system) used so far.
    pub cpu_time_ms: Option<u64>,
}

/// A registered service as the supervisor sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServiceInfo {
    pub name: String,
    /// `stopped`, `starting`, `running`, `stopping`, `backoff`, `errored`, `unhealthy`.
    pub state: String,
    /// `supervised`, `script`, `container` or `unmanaged`.
    pub mode: String,
    pub pid: Option<i32>,
    pub instances: Vec<InstanceInfo>,
    pub ports: Vec<u16>,
    /// Restarts since the last operator start.
    pub restarts: u32,
    /// Consecutive failed health checks.
    pub health_failures: u32,
    /// The latest notable thing: last exit, script result, health error.
    pub message: String,
    /// The model's `run_data.tags`: the tags a service registry lists it with.
    pub tags: Vec<String>,
    /// The model's `run_data.meta`: key/values a registry lists it with
    /// (`seneca_pin`: the Seneca patterns it serves).
    pub meta: std::collections::BTreeMap<String, String>,
}

impl ServiceInfo {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// Something that happened on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    ModelAdded {
        name: String,
        file: String,
    },
    ModelChanged {
        name: String,
        file: String,
    },
    ModelRemoved {
        name: String,
    },
    ModelProblem {
        file: String,
        message: String,
    },
    /// A service changed state.
    ServiceState {
        name: String,
        state: String,
        pid: Option<i32>,
        message: String,
    },
    RestartLimitReached {
        name: String,
        restarts: u32,
    },
    HealthFailing {
        name: String,
        message: String,
    },
    /// `outcome`: `loaded` or `failed`.
    ModuleLoad {
        name: String,
        file: String,
        outcome: String,
        generation: u64,
    },
    /// Published by a module (`payload` is its JSON text).
    ModuleEvent {
        module: String,
        topic: String,
        payload: String,
    },
    TaskRun {
        task: String,
        trigger: String,
        result: String,
        message: String,
        duration_ms: u64,
    },
    AlarmRaised {
        id: i64,
        alarm_kind: String,
        subject: String,
        severity: String,
        message: String,
    },
    AlarmResolved {
        id: i64,
        alarm_kind: String,
        subject: String,
    },
    /// This module fell behind the bus and missed `missed` events (newer ones follow).
    Lagged {
        missed: u64,
    },
    /// The host is shutting the bus down.
    Closed,
    /// A kind this SDK does not know yet.
    #[serde(other)]
    Other,
}

impl Event {
    /// The `kind` word, as on the host's event stream.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ModelAdded { .. } => "model_added",
            Self::ModelChanged { .. } => "model_changed",
            Self::ModelRemoved { .. } => "model_removed",
            Self::ModelProblem { .. } => "model_problem",
            Self::ServiceState { .. } => "service_state",
            Self::RestartLimitReached { .. } => "restart_limit_reached",
            Self::HealthFailing { .. } => "health_failing",
            Self::ModuleLoad { .. } => "module_load",
            Self::ModuleEvent { .. } => "module_event",
            Self::TaskRun { .. } => "task_run",
            Self::AlarmRaised { .. } => "alarm_raised",
            Self::AlarmResolved { .. } => "alarm_resolved",
            Self::Lagged { .. } => "lagged",
            Self::Closed => "closed",
            Self::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_events_parse_and_unknown_kinds_are_other() {
        let e: Event =
            serde_json::from_str(r#"{"kind":"service_state","name":"web","state":"running","pid":7,"message":""}"#)
                .unwrap();
        assert_eq!(e.kind(), "service_state");
        let other: Event = serde_json::from_str(r#"{"kind":"from_the_future","x":1}"#).unwrap();
        assert_eq!(other, Event::Other);
    }

    #[test]
    fn service_info_ignores_fields_it_does_not_know() {
        let s: ServiceInfo =
            serde_json::from_str(r#"{"name":"web","state":"running","ports":[80],"container":null,"new":1}"#).unwrap();
        assert!(s.is_running());
        assert_eq!(s.ports, vec![80]);
    }
}
