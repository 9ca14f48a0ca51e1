//! A registered service that no actor runs yet. Most registered services sit stopped
//! for the host's whole life; an actor costs each of them a task, two channels, a
//! status watch and its boxed state (~12 KiB at 1 000 services), so a service that has
//! nothing to own keeps only its restored runtime record (its model is the registry's)
//! until the first command that needs an actor (a start, stop, restart or kill), which
//! creates the actor from the registry's model and that record: it then restores and
//! runs exactly as if it had been created at registration.

use super::actor::{self, ActorHandle};
use super::spec::{Mode, ServiceSpec};
use super::state::ServiceStatus;
use super::watch::WatchPlan;
use crate::store::RuntimeRecord;

/// The supervisor's entry for one registered service.
#[derive(Debug)]
pub enum Entry {
    /// No actor yet.
    Dormant(Dormant),
    Live(ActorHandle),
}

/// What the actor will be created with, besides the model.
#[derive(Debug)]
pub struct Dormant {
    /// Handed to the actor, which restores from it as at registration. Only records
    /// with nothing to re-adopt are ever kept here (`can_wait`).
    pub restored: Option<RuntimeRecord>,
}

impl Dormant {
    /// Whether the service can go without an actor until its first command: nothing
    /// runs that an actor must watch or re-adopt, and nothing of it acts on its own.
    /// A record of processes or of a service meant to run means re-adoption (or the
    /// check script, or finishing an interrupted stop) is due now; a container-mode
    /// record means asking the engine; a watched service needs a channel for its
    /// restarts.
    pub fn can_wait(spec: &ServiceSpec, restored: Option<&RuntimeRecord>) -> bool {
        let nothing_to_restore =
            restored.is_none_or(|r| r.processes.is_empty() && !actor::was_active(r) && spec.mode != Mode::Container);
        nothing_to_restore && WatchPlan::for_spec(spec).is_none()
    }

    /// What the API shows until the actor exists: the status the actor would start
    /// with, from the service's current model (`spec`).
    pub fn status(&self, spec: &ServiceSpec) -> ServiceStatus {
        actor::initial_status(spec, self.restored.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProcessRecord;
    use crate::supervisor::spec::for_test as spec;

    fn sleeper() -> ServiceSpec {
        spec(serde_json::json!({"name": "web", "id": "app_web", "run_data": {"command": ["/bin/sleep", "100"]}}))
    }

    fn record(last_status: &str, processes: Vec<ProcessRecord>) -> RuntimeRecord {
        RuntimeRecord {
            name: "web".into(),
            last_status: last_status.into(),
            stop_operation: true,
            restarts: 3,
            processes,
            ..Default::default()
        }
    }

    #[test]
    fn only_services_with_nothing_to_adopt_or_watch_wait_for_their_actor() {
        assert!(Dormant::can_wait(&sleeper(), None));
        assert!(Dormant::can_wait(&sleeper(), Some(&record("stopped", vec![]))));
        assert!(Dormant::can_wait(&sleeper(), Some(&record("errored", vec![]))));
        // Processes to re-adopt, or a service that was meant to run: the actor restores now.
        let process = ProcessRecord { instance: 0, pid: 4242, pgid: 4242, start_ticks: 1 };
        assert!(!Dormant::can_wait(&sleeper(), Some(&record("running", vec![process]))));
        assert!(!Dormant::can_wait(&sleeper(), Some(&record("running", vec![]))));
        assert!(!Dormant::can_wait(&sleeper(), Some(&record("stopping", vec![]))));
        // A container may outlive the host with no process recorded: the engine is asked.
        let container = spec(serde_json::json!({
            "name": "web", "id": "app_web", "type": "Container", "container": {"image": "busybox:1"}
        }));
        assert!(Dormant::can_wait(&container, None));
        assert!(!Dormant::can_wait(&container, Some(&record("stopped", vec![]))));
        // A watched service's restarts need the actor's channel.
        let watched = spec(serde_json::json!({
            "name": "web", "id": "app_web", "run_data": {"command": ["/bin/sleep", "100"]},
            "supervise": {"watch": {"enabled": true}}
        }));
        assert!(!Dormant::can_wait(&watched, None));
    }

    #[test]
    fn a_dormant_service_shows_the_status_its_actor_starts_with() {
        let dormant = Dormant { restored: Some(record("stopped", vec![])) };
        let status = dormant.status(&sleeper());
        assert_eq!(status.state, crate::supervisor::ServiceState::Stopped);
        assert_eq!(status.mode, "supervised");
        assert_eq!((status.restarts, status.stop_operation), (3, true), "the record's count and operator stop");
    }
}
