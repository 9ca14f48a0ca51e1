//! Which host events raise alarms, with what kind and severity, and which events
//! resolve them. Pure: no store, no I/O, so the mapping is unit-tested on its own.

use crate::events::Event;

/// The service alarm kinds resolved once the service has run stably again.
pub const SERVICE_KINDS: &[&str] = &["service_crashed", "service_errored", "restart_limit"];
/// The health alarm kinds, resolved as soon as the service is healthy again.
pub const HEALTH_KINDS: &[&str] = &["service_unhealthy", "health_failing"];

/// What an event means for the alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Raise {
        kind: &'static str,
        subject: String,
        severity: &'static str,
        message: String,
    },
    /// The service is running: its health alarms resolve now, its crash alarms once it
    /// has stayed up for `alarms.resolve_after_running_secs`.
    ServiceRunning {
        name: String,
    },
    /// The service left `running` (crash alarms are not resolved by an unstable run).
    ServiceNotRunning {
        name: String,
    },
}

pub fn classify(event: &Event) -> Vec<Signal> {
    let raise = |kind, subject: &str, severity, message: String| Signal::Raise {
        kind,
        subject: subject.to_string(),
        severity,
        message,
    };
    match event {
        Event::ServiceState { name, state, message, .. } => {
            let detail = |what: &str| if message.is_empty() { what.to_string() } else { format!("{what}: {message}") };
            let left = Signal::ServiceNotRunning { name: name.clone() };
            match state.as_str() {
                "running" => vec![Signal::ServiceRunning { name: name.clone() }],
                "backoff" => {
                    vec![left, raise("service_crashed", name, "warning", detail("exited; restarting after backoff"))]
                }
                "errored" => vec![left, raise("service_errored", name, "critical", detail("errored"))],
                "unhealthy" => vec![left, raise("service_unhealthy", name, "warning", detail("unhealthy"))],
                _ => vec![left],
            }
        }
        Event::RestartLimitReached { name, restarts } => {
            vec![raise("restart_limit", name, "critical", format!("restart limit reached after {restarts} restarts"))]
        }
        Event::HealthFailing { name, message } => {
            vec![raise("health_failing", name, "warning", format!("health check failing: {message}"))]
        }
        Event::ModuleLoad { name, file, outcome, .. } if outcome.starts_with("failed") => {
            let subject = if name.is_empty() { file } else { name };
            vec![raise("module_failed", subject, "warning", format!("module {file}: {outcome}"))]
        }
        Event::TaskRun { task, result, message, .. } if result == "error" => {
            vec![raise("task_failed", task, "warning", format!("task failed: {message}"))]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(state: &str) -> Event {
        Event::ServiceState { name: "web".into(), state: state.into(), pid: None, message: String::new() }
    }

    #[test]
    fn crashes_raise_and_running_is_reported() {
        let signals = classify(&state("backoff"));
        assert!(
            matches!(&signals[1], Signal::Raise { kind: "service_crashed", severity: "warning", subject, .. } if subject == "web")
        );
        assert!(matches!(&classify(&state("errored"))[1], Signal::Raise { severity: "critical", .. }));
        assert_eq!(classify(&state("running")), vec![Signal::ServiceRunning { name: "web".into() }]);
        let limit = Event::RestartLimitReached { name: "web".into(), restarts: 3 };
        assert!(matches!(&classify(&limit)[0], Signal::Raise { kind: "restart_limit", .. }));
    }

    #[test]
    fn failed_modules_and_tasks_raise_others_do_not() {
        let failed =
            Event::ModuleLoad { name: "m".into(), file: "m.so".into(), outcome: "failed: abi".into(), generation: 0 };
        assert!(matches!(&classify(&failed)[0], Signal::Raise { kind: "module_failed", .. }));
        let loaded =
            Event::ModuleLoad { name: "m".into(), file: "m.so".into(), outcome: "loaded".into(), generation: 1 };
        assert!(classify(&loaded).is_empty());
        let run = |result: &str| Event::TaskRun {
            task: "t".into(),
            trigger: "schedule".into(),
            result: result.into(),
            message: "boom".into(),
            duration_ms: 1,
        };
        assert!(matches!(&classify(&run("error"))[0], Signal::Raise { kind: "task_failed", .. }));
        assert!(classify(&run("ok")).is_empty());
        assert!(classify(&Event::ModelRemoved { name: "x".into() }).is_empty());
    }
}
