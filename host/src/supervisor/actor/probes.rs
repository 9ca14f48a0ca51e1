//! The health probe inside a service's actor: which check is in force, the probe task
//! (readiness first, then every interval, tagged with a probe generation), and what a
//! result does: `running` once healthy, `unhealthy` after enough failures in a row,
//! then a replacement unless the policy is `never`. The checks themselves are
//! `supervisor/health.rs`'s.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Actor, Note};
use crate::events::Event;
use crate::model::{HealthKind, RestartPolicy};
use crate::supervisor::health::Probe;
use crate::supervisor::spec::Mode;
use crate::supervisor::state::ServiceState;

impl Actor {
    /// The health check in force: the model's, or for script services without one,
    /// their `check` script ("check exiting 0 means running").
    pub(super) fn health_kind(&self) -> HealthKind {
        let check = &self.spec.model.manage_cmd.check;
        let has_check = !check.is_empty() && self.spec.script_path(check).is_file();
        match self.spec.health.kind {
            HealthKind::None if self.spec.mode == Mode::Script && has_check => HealthKind::Script,
            kind => kind,
        }
    }

    pub(super) fn start_probe(&mut self) {
        self.stop_probe();
        let kind = self.health_kind();
        if kind == HealthKind::None {
            return;
        }
        let cancel = CancellationToken::new();
        self.health.probe = Some(cancel.clone());
        self.generation += 1;
        self.health.probe_generation = self.generation;
        let generation = self.generation;
        let script = match self.spec.health.script.as_str() {
            "" if self.spec.model.manage_cmd.check.is_empty() => None,
            "" => Some(self.spec.script_path(&self.spec.model.manage_cmd.check)),
            s => Some(self.spec.script_path(s)),
        };
        let mut check = self.spec.health.clone();
        check.kind = kind;
        let probe = Probe {
            check,
            host: self.spec.host_ip,
            first_port: self.run.ports.first().copied(),
            script,
            cwd: self.spec.paths.app_root.clone(),
            env: self.spec.env(&self.run.ports, None),
            log: self.log.clone(),
        };
        let notes = self.host.notes.clone();
        let interval = Duration::from_secs(self.spec.health.interval_secs);
        self.host.tracker.spawn(async move {
            // The first probe soon after start (readiness), then every interval.
            let mut delay = Duration::from_millis(200).min(interval);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                let result = probe.run().await;
                // A probe that finished after its service was stopped reports nothing.
                if cancel.is_cancelled() || notes.send(Note::Probe { generation, result }).await.is_err() {
                    return;
                }
                delay = interval;
            }
        });
    }

    pub(super) fn stop_probe(&mut self) {
        if let Some(cancel) = self.health.probe.take() {
            cancel.cancel();
        }
        // Whatever a finishing probe still sends no longer counts.
        self.health.probe_generation = 0;
    }

    pub(super) async fn on_probe(&mut self, mut result: Result<(), String>) {
        if self.spec.health.kind == HealthKind::Ttl {
            let ttl = Duration::from_secs(self.spec.health.ttl_secs);
            if self.health.last_heartbeat.elapsed() > ttl {
                result = Err(format!(
                    "no heartbeat for {} s (ttl {} s)",
                    self.health.last_heartbeat.elapsed().as_secs(),
                    ttl.as_secs()
                ));
            }
        }
        match result {
            Ok(()) => {
                self.health.failures = 0;
                if matches!(self.run.state, ServiceState::Starting | ServiceState::Unhealthy) {
                    self.set_state(ServiceState::Running).await;
                }
            }
            Err(e) => {
                self.health.failures += 1;
                self.run.message = format!("health check failed ({}x): {e}", self.health.failures);
                if self.health.failures >= self.spec.health.failures_before_unhealthy
                    && self.run.state != ServiceState::Unhealthy
                {
                    self.log.host_line(&self.run.message.clone());
                    self.set_state(ServiceState::Unhealthy).await;
                    self.host.events.publish(Event::HealthFailing { name: self.spec.name.clone(), message: e });
                    if self.spec.supervise.restart != RestartPolicy::Never {
                        self.replace_instances().await;
                    }
                } else {
                    self.publish_status();
                }
            }
        }
    }
}
