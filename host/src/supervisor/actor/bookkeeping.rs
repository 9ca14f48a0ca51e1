//! The actor's bookkeeping: state changes (persisted, published, and announced on the
//! bus), the runtime record in the store, and the status snapshot readers get from the
//! watch channel. It decides nothing.

use super::{Actor, mode_name};
use crate::events::Event;
use crate::store::{RuntimeRecord, now_ms};
use crate::supervisor::state::{InstanceStatus, ServiceState, ServiceStatus};

impl Actor {
    pub(super) fn live_instances(&self) -> usize {
        self.run.instances.iter().flatten().count()
    }

    pub(super) async fn set_state(&mut self, state: ServiceState) {
        let changed = self.run.state != state;
        self.run.state = state;
        self.persist().await;
        if changed {
            let pid = self.run.instances.iter().flatten().next().map(|i| i.record.pid);
            self.host.events.publish(Event::ServiceState {
                name: self.spec.name.clone(),
                state: state.as_str().to_string(),
                pid,
                message: self.run.message.clone(),
            });
        }
    }

    /// Stores the runtime record and publishes the status.
    pub(super) async fn persist(&self) {
        self.publish_status();
        let record = RuntimeRecord {
            name: self.spec.name.clone(),
            pid: self.run.instances.iter().flatten().next().map(|i| i64::from(i.record.pid)),
            ports: self.run.ports.clone(),
            stop_operation: self.run.stop_operation,
            last_status: self.run.state.as_str().to_string(),
            updated_at_ms: now_ms(),
            processes: self.run.instances.iter().flatten().map(|i| i.record).collect(),
            restarts: self.restarts.count,
        };
        if let Err(e) = self.host.store.put_runtime(&record).await {
            tracing::error!(service = %self.spec.name, "runtime data not stored: {e}");
        }
    }

    pub(super) fn publish_status(&self) {
        self.host.status.send_replace(self.status());
    }

    pub(super) fn status(&self) -> ServiceStatus {
        let instances: Vec<InstanceStatus> = self
            .run
            .instances
            .iter()
            .flatten()
            .map(|i| InstanceStatus {
                instance: i.record.instance,
                pid: Some(i.record.pid),
                started_at: chrono::DateTime::from_timestamp_millis(i.started_at_ms).map(|t| t.to_rfc3339()),
                rss_bytes: None,
                cpu_time_ms: None,
                adopted: i.adopted,
            })
            .collect();
        ServiceStatus {
            name: self.spec.name.clone(),
            state: self.run.state,
            mode: mode_name(&self.spec.mode).into(),
            pid: instances.first().and_then(|i| i.pid),
            instances,
            ports: self.run.ports.clone(),
            restarts: self.restarts.count,
            stop_operation: self.run.stop_operation,
            health_failures: self.health.failures,
            message: self.run.message.clone(),
            container: self.container.current.clone(),
            tags: self.spec.model.run_data.catalog_tags(),
            meta: self.spec.model.run_data.catalog_meta(),
        }
    }
}
