//! Scrape-time figures of the supervised services, read from the supervisor's status
//! API (the same statuses `GET /api/apps/{name}/status` answers, with fresh RSS and
//! CPU time from /proc): services by state, each service's state and restarts, and
//! per instance CPU seconds, resident memory and uptime. Reads only; never asks an
//! actor to do anything.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{Labels, counters, gauges};
use crate::supervisor::{ServiceState, ServiceStatus, Supervisor};

/// Every state, so `apollo_services{state="errored"} 0` exists before the first error
/// (an alert on it needs the series).
const STATES: [ServiceState; 7] = [
    ServiceState::Stopped,
    ServiceState::Starting,
    ServiceState::Running,
    ServiceState::Stopping,
    ServiceState::Backoff,
    ServiceState::Errored,
    ServiceState::Unhealthy,
];

/// The statuses of one scrape.
#[derive(Debug)]
pub(super) struct ServiceFigures {
    statuses: Vec<ServiceStatus>,
    now: chrono::DateTime<chrono::Utc>,
}

impl ServiceFigures {
    pub(super) async fn read(supervisor: &Supervisor) -> Self {
        Self { statuses: supervisor.statuses().await, now: chrono::Utc::now() }
    }

    /// One sample per running instance. The label is `instance_id` (the `INSTANCE_ID`
    /// the process gets): Prometheus owns `instance` (the scrape target).
    fn per_instance<V>(&self, value: impl Fn(&crate::supervisor::InstanceStatus) -> Option<V>) -> Vec<(Labels, V)> {
        self.statuses
            .iter()
            .flat_map(|s| {
                s.instances.iter().filter_map(|i| {
                    Some((vec![("service", s.name.clone()), ("instance_id", i.instance.to_string())], value(i)?))
                })
            })
            .collect()
    }
}

impl Collector for ServiceFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let by_state: Vec<(Labels, u64)> = STATES
            .iter()
            .map(|state| {
                let n = self.statuses.iter().filter(|s| s.state == *state).count();
                (vec![("state", state.as_str().to_string())], n as u64)
            })
            .collect();
        gauges(&mut encoder, "apollo_services", "Services by state", &by_state)?;
        let state: Vec<(Labels, u64)> = self
            .statuses
            .iter()
            .map(|s| (vec![("service", s.name.clone()), ("state", s.state.as_str().to_string())], 1))
            .collect();
        gauges(&mut encoder, "apollo_service_state", "1 for each service, labelled with its current state", &state)?;
        let restarts: Vec<(Labels, u64)> =
            self.statuses.iter().map(|s| (vec![("service", s.name.clone())], u64::from(s.restarts))).collect();
        counters(
            &mut encoder,
            "apollo_service_restarts",
            "Restarts since an operator last started the service (back to 0 then: a counter reset)",
            &restarts,
        )?;
        let cpu = self.per_instance(|i| Some(i.cpu_time_ms? as f64 / 1000.0));
        counters(
            &mut encoder,
            "apollo_service_cpu_seconds",
            "CPU time (user + system) of the instance's process",
            &cpu,
        )?;
        let rss = self.per_instance(|i| i.rss_bytes);
        gauges(
            &mut encoder,
            "apollo_service_resident_memory_bytes",
            "Resident memory of the instance's process",
            &rss,
        )?;
        let uptime = self.per_instance(|i| {
            let started = chrono::DateTime::parse_from_rfc3339(i.started_at.as_deref()?).ok()?;
            Some((self.now - started.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as f64 / 1000.0)
        });
        gauges(&mut encoder, "apollo_service_uptime_seconds", "Seconds since the instance's process started", &uptime)
    }
}
