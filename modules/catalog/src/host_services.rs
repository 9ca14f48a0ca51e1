//! The host's own services in the catalog: every managed service with ports is listed
//! on this node, one instance per supervised instance, with one check whose status is
//! the supervisor's view (running → passing; starting, stopping, backoff → warning;
//! anything else, or failing health probes, → critical). Re-read from
//! `Host::services()` at start and on every host event, so the catalog follows the
//! supervisor without polling; a service whose model is removed leaves the catalog.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use plugin_api::storage::Write;
use plugin_api::{Event, Host, ServiceInfo};

use crate::metrics::Metrics;
use crate::model::{self, CheckKind, CheckRecord, Origin, ServiceRecord};
use crate::replica::Replica;

/// A re-read even without events (the bus may drop some under load).
const RESYNC: Duration = Duration::from_secs(30);

pub async fn run(replica: Arc<Replica>, node: String, host: Host, metrics: Metrics) {
    while replica.wait_loaded().await.is_err() {}
    loop {
        // Only the node's current owner lists the host's services (see model::OWNER).
        replica.owned(&node).await;
        if replica.is_stopped() {
            return;
        }
        let known = known_instances(&replica, &node);
        let wanted = desired(&host.services(), &known);
        match sync(&replica, &node, &wanted).await {
            Ok((added, removed)) => {
                metrics.registrations.with(&["register", "host"]).inc_by(added);
                metrics.registrations.with(&["deregister", "host"]).inc_by(removed);
            }
            Err(e) => host.warn(&format!("catalog: cannot list the host's services: {e}")),
        }
        plugin_api::tokio::select! {
            event = host.next_event() => {
                if event == Event::Closed {
                    replica.stopped().await;
                    return;
                }
            }
            () = plugin_api::tokio::time::sleep(RESYNC) => {}
            () = replica.stopped() => return,
        }
    }
}

/// Consul's status for a supervisor state.
pub fn status_of(info: &ServiceInfo) -> &'static str {
    match info.state.as_str() {
        "running" if info.health_failures > 0 => "warning",
        "running" => "passing",
        "starting" | "stopping" | "backoff" => "warning",
        _ => "critical",
    }
}

/// This node's host-made instances now, by service name.
fn known_instances(replica: &Replica, node: &str) -> HashMap<String, Vec<ServiceRecord>> {
    let mut known: HashMap<String, Vec<ServiceRecord>> = HashMap::new();
    for s in replica.read().services_of_node(node).filter(|s| s.record.origin == Origin::Host) {
        known.entry(s.record.name.clone()).or_default().push(s.record.clone());
    }
    known
}

fn supervisor_check(info: &ServiceInfo, id: &str) -> CheckRecord {
    let status = status_of(info);
    let output = if info.message.is_empty() { info.state.clone() } else { format!("{}: {}", info.state, info.message) };
    CheckRecord {
        id: format!("service:{id}"),
        name: "Apollo supervisor".into(),
        status: status.into(),
        notes: "The service's state as the Apollo supervisor sees it".into(),
        output,
        service_id: id.to_string(),
        service_name: info.name.clone(),
        kind: CheckKind::Manual,
        critical_since_ms: (status == "critical").then(model::now_ms),
        ..Default::default()
    }
}

/// The instances the host's services make, with their checks. A stopped service has
/// no ports (the supervisor releases them): its instances listed so far (`known`) stay,
/// critical, until its model is removed.
pub fn desired(
    services: &[ServiceInfo],
    known: &HashMap<String, Vec<ServiceRecord>>,
) -> BTreeMap<String, (ServiceRecord, CheckRecord)> {
    let mut out = BTreeMap::new();
    for info in services.iter().filter(|s| s.mode != "unmanaged") {
        if info.ports.is_empty() {
            for record in known.get(&info.name).into_iter().flatten() {
                out.insert(record.id.clone(), (record.clone(), supervisor_check(info, &record.id)));
            }
            continue;
        }
        let numbers: Vec<u32> =
            if info.instances.len() > 1 { info.instances.iter().map(|i| i.instance).collect() } else { vec![0] };
        for (i, number) in numbers.iter().enumerate() {
            let id = if numbers.len() == 1 {
                format!("apollo-{}", info.name)
            } else {
                format!("apollo-{}-{number}", info.name)
            };
            let port = if info.ports.len() == numbers.len() { info.ports[i] } else { info.ports[0] };
            // The model's own catalog meta and tags, then the host's keys (which win).
            let mut meta = info.meta.clone();
            meta.insert("apollo-mode".to_string(), info.mode.clone());
            meta.insert("apollo-instance".to_string(), number.to_string());
            let service = ServiceRecord {
                id: id.clone(),
                name: info.name.clone(),
                tags: std::iter::once("apollo".to_owned()).chain(info.tags.iter().cloned()).collect(),
                meta,
                address: String::new(),
                port,
                origin: Origin::Host,
                ..Default::default()
            };
            let check = supervisor_check(info, &id);
            out.insert(id, (service, check));
        }
    }
    out
}

/// Writes what differs; returns (instances added, instances removed).
async fn sync(
    replica: &Replica,
    node: &str,
    wanted: &BTreeMap<String, (ServiceRecord, CheckRecord)>,
) -> Result<(u64, u64), plugin_api::ModuleError> {
    replica
        .transact(|state| {
            let mut writes = Vec::new();
            let (mut added, mut removed) = (0, 0);
            for (id, (service, check)) in wanted {
                let key = model::service_key(node, id);
                match state.service(node, id) {
                    Some(s)
                        if {
                            let mut r = s.record.clone();
                            r.create_index = 0;
                            r.maintenance = None;
                            r == *service
                        } => {}
                    existing => {
                        if existing.is_none() {
                            added += 1;
                        }
                        let mut service = service.clone();
                        if let Some(s) = existing {
                            service.create_index = s.create_index;
                            service.maintenance = s.record.maintenance.clone();
                        }
                        writes.push(
                            Write::put(key.clone(), serde_json::to_string(&service)?)
                                .expect_version(state.version(&key)),
                        );
                    }
                }
                let key = model::check_key(node, &check.id);
                match state.check(node, &check.id) {
                    Some(c) if c.record.status == check.status && c.record.name == check.name => {}
                    existing => {
                        let mut check = check.clone();
                        if let Some(c) = existing {
                            check.create_index = c.create_index;
                        }
                        writes.push(
                            Write::put(key.clone(), serde_json::to_string(&check)?).expect_version(state.version(&key)),
                        );
                    }
                }
            }
            let gone: HashMap<&str, ()> = state
                .services_of_node(node)
                .filter(|s| s.record.origin == Origin::Host && !wanted.contains_key(&s.record.id))
                .map(|s| (s.record.id.as_str(), ()))
                .collect();
            for id in gone.keys() {
                removed += 1;
                writes.extend(state.deregistration(node, id));
            }
            writes.truncate(plugin_api::storage::MAX_COMMIT_WRITES);
            Ok((writes, (added, removed)))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::InstanceInfo;

    #[test]
    fn one_instance_per_supervised_process_with_its_port() {
        let web = ServiceInfo {
            name: "web".into(),
            state: "running".into(),
            mode: "supervised".into(),
            ports: vec![8001, 8002],
            instances: vec![
                InstanceInfo { instance: 0, ..Default::default() },
                InstanceInfo { instance: 1, ..Default::default() },
            ],
            ..Default::default()
        };
        let quiet = ServiceInfo { name: "cron".into(), state: "running".into(), ..Default::default() };
        let down = ServiceInfo { name: "db".into(), state: "errored".into(), ports: vec![5432], ..Default::default() };
        let wanted = desired(&[web, quiet, down.clone()], &HashMap::new());
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["apollo-db", "apollo-web-0", "apollo-web-1"]);
        assert_eq!(wanted["apollo-web-1"].0.port, 8002);
        assert_eq!(wanted["apollo-web-0"].1.status, "passing");
        assert_eq!(wanted["apollo-db"].1.status, "critical");
        assert_eq!(wanted["apollo-db"].1.id, "service:apollo-db");
        // Stopped: the supervisor released its port; the instance stays, critical.
        let stopped = ServiceInfo { ports: Vec::new(), state: "stopped".into(), ..down };
        let known = HashMap::from([("db".to_string(), vec![wanted["apollo-db"].0.clone()])]);
        let again = desired(&[stopped], &known);
        assert_eq!(again["apollo-db"].0.port, 5432);
        assert_eq!(again["apollo-db"].1.status, "critical");
    }
}
