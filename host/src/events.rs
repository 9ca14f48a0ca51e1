//! The in-process event bus: a broadcast channel every subsystem publishes to
//! (model changes, service states, alarms, tasks and modules).
//! Subscribers that fall behind lose the oldest events and are told how many
//! (`RecvError::Lagged`), so a slow consumer never blocks a publisher.

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// How many events a slow subscriber may fall behind before it loses the oldest.
const CAPACITY: usize = 1024;

/// Something that happened, as subscribers (websocket, alarms, modules) see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
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
    /// A service changed state (`running`, `backoff`, `errored`, …).
    ServiceState {
        name: String,
        state: String,
        pid: Option<i32>,
        message: String,
    },
    /// A service crashed too often in a row and was given up on.
    RestartLimitReached {
        name: String,
        restarts: u32,
    },
    /// A service's health check crossed `failures_before_unhealthy`.
    HealthFailing {
        name: String,
        message: String,
    },
    /// Module loading: `loaded` (with its generation) or `failed`.
    ModuleLoad {
        name: String,
        file: String,
        outcome: String,
        generation: u64,
    },
    /// Published by a module through host services.
    ModuleEvent {
        module: String,
        topic: String,
        payload: String,
    },
    /// A scheduled task finished a run (`ok`, `error`) or skipped one (`skipped`: the
    /// previous run was still going when this one was due).
    TaskRun {
        task: String,
        /// `schedule` or `manual`.
        trigger: String,
        result: String,
        message: String,
        duration_ms: u64,
    },
    /// A new alarm (repeats of an unresolved one only bump its count).
    AlarmRaised {
        id: i64,
        alarm_kind: String,
        subject: String,
        severity: String,
        message: String,
    },
    /// An alarm's subject recovered.
    AlarmResolved {
        id: i64,
        alarm_kind: String,
        subject: String,
    },
}

#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self { sender: broadcast::channel(CAPACITY).0 }
    }

    /// Publishes to current subscribers; having none is normal and not an error.
    pub fn publish(&self, event: Event) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    /// Modules read these events through `plugin_api::Event`, a separate type in a
    /// separately built crate: every kind the host publishes must parse there as itself,
    /// with every field (an unknown kind would reach modules as `Other`).
    #[test]
    fn every_host_event_parses_as_the_plugin_api_event() {
        let s = || "x".to_string();
        let events = [
            Event::ModelAdded { name: s(), file: s() },
            Event::ModelChanged { name: s(), file: s() },
            Event::ModelRemoved { name: s() },
            Event::ModelProblem { file: s(), message: s() },
            Event::ServiceState { name: s(), state: s(), pid: Some(7), message: s() },
            Event::RestartLimitReached { name: s(), restarts: 3 },
            Event::HealthFailing { name: s(), message: s() },
            Event::ModuleLoad { name: s(), file: s(), outcome: s(), generation: 2 },
            Event::ModuleEvent { module: s(), topic: s(), payload: s() },
            Event::TaskRun { task: s(), trigger: s(), result: s(), message: s(), duration_ms: 5 },
            Event::AlarmRaised { id: 1, alarm_kind: s(), subject: s(), severity: s(), message: s() },
            Event::AlarmResolved { id: 1, alarm_kind: s(), subject: s() },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            let seen: plugin_api::Event = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(seen.kind(), json["kind"], "{json}");
            assert_eq!(serde_json::to_value(&seen).unwrap(), json, "every field reaches modules");
        }
    }
}
