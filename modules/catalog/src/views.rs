//! The JSON shapes Consul clients read (contract §1.3), built from the state: field
//! names exact, nothing listed omitted, empty lists `[]` and empty maps `{}`.

use serde_json::{Value, json};

use crate::duration;
use crate::model::{CheckRecord, NodeRecord, ServiceRecord};
use crate::state::{State, Stored};
use std::time::Duration;

pub const SERF_CHECK: &str = "serfHealth";
pub const NODE_MAINTENANCE: &str = "_node_maintenance";
pub const SERVICE_MAINTENANCE_PREFIX: &str = "_service_maintenance:";

/// A node as records know it, or a stand-in while its record is not there yet.
pub fn node_record(state: &State, node: &str) -> (NodeRecord, u64, u64) {
    match state.nodes.get(node) {
        Some(s) => (s.record.clone(), s.create_index, s.modify_index),
        None => (
            NodeRecord {
                name: node.into(),
                id: crate::model::uuid_from(node),
                address: "127.0.0.1".into(),
                datacenter: "dc1".into(),
                serf_status: "passing".into(),
                ..Default::default()
            },
            1,
            1,
        ),
    }
}

fn tagged_node(address: &str) -> Value {
    json!({"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address})
}

pub fn node(state: &State, name: &str) -> Value {
    let (n, create, modify) = node_record(state, name);
    json!({
        "ID": n.id, "Node": n.name, "Address": n.address, "Datacenter": n.datacenter,
        "TaggedAddresses": tagged_node(&n.address), "Meta": {"consul-network-segment": ""},
        "CreateIndex": create, "ModifyIndex": modify,
    })
}

pub fn agent_service(s: &ServiceRecord, datacenter: &str) -> Value {
    let mut v = json!({
        "ID": s.id, "Service": s.name, "Tags": s.tags, "Meta": s.meta, "Port": s.port, "Address": s.address,
        "Weights": s.weights, "EnableTagOverride": s.enable_tag_override, "Datacenter": datacenter,
    });
    if let Some(tagged) = &s.tagged_addresses {
        v["TaggedAddresses"] = tagged.clone();
    }
    v
}

fn check_json(state: &State, node: &str, c: &CheckRecord, create: u64, modify: u64) -> Value {
    let tags = if c.service_id.is_empty() {
        Vec::new()
    } else {
        state.service(node, &c.service_id).map(|s| s.record.tags.clone()).unwrap_or_default()
    };
    let interval = duration::format(Duration::from_millis(c.kind.interval_ms()));
    let timeout = duration::format(Duration::from_millis(c.kind.timeout_ms()));
    json!({
        "Node": node, "CheckID": c.id, "Name": c.name, "Status": c.status, "Notes": c.notes,
        "Output": state.output(node, c), "ServiceID": c.service_id, "ServiceName": c.service_name,
        "ServiceTags": tags, "Type": c.kind.type_word(), "Interval": interval, "Timeout": timeout,
        "ExposedPort": 0, "Definition": {}, "CreateIndex": create, "ModifyIndex": modify,
    })
}

pub fn stored_check(state: &State, node: &str, c: &Stored<CheckRecord>) -> Value {
    check_json(state, node, &c.record, c.create_index, c.modify_index)
}

/// A node's own checks: `serfHealth`, and `_node_maintenance` while in maintenance.
pub fn node_checks(state: &State, node: &str) -> Vec<Value> {
    let (n, create, modify) = node_record(state, node);
    let status = if n.serf_status.is_empty() { "passing".to_string() } else { n.serf_status.clone() };
    let output = if status == "passing" { "Agent alive and reachable".to_string() } else { n.serf_output.clone() };
    let serf =
        CheckRecord { id: SERF_CHECK.into(), name: "Serf Health Status".into(), status, output, ..Default::default() };
    let mut out = vec![check_json(state, node, &serf, create, modify)];
    if let Some(reason) = &n.maintenance {
        let m = CheckRecord {
            id: NODE_MAINTENANCE.into(),
            name: "Node Maintenance Mode".into(),
            status: "critical".into(),
            notes: if reason.is_empty() { "Maintenance mode is enabled for this node".into() } else { reason.clone() },
            ..Default::default()
        };
        out.push(check_json(state, node, &m, modify, modify));
    }
    out
}

/// A service's own checks, its maintenance check first when on.
pub fn service_checks(state: &State, node: &str, s: &Stored<ServiceRecord>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(reason) = &s.record.maintenance {
        let m = CheckRecord {
            id: format!("{SERVICE_MAINTENANCE_PREFIX}{}", s.record.id),
            name: "Service Maintenance Mode".into(),
            status: "critical".into(),
            notes: if reason.is_empty() {
                "Maintenance mode is enabled for this service".into()
            } else {
                reason.clone()
            },
            service_id: s.record.id.clone(),
            service_name: s.record.name.clone(),
            ..Default::default()
        };
        out.push(check_json(state, node, &m, s.modify_index, s.modify_index));
    }
    out.extend(
        state.checks_of_node(node).filter(|c| c.record.service_id == s.record.id).map(|c| stored_check(state, node, c)),
    );
    out
}

/// Every check of a node, as `/v1/agent/checks` and `/v1/health/*` list them.
pub fn all_checks_of_node(state: &State, node: &str) -> Vec<Value> {
    let mut out = node_checks(state, node);
    for s in state.services_of_node(node) {
        if s.record.maintenance.is_some() {
            out.extend(service_checks(state, node, s).into_iter().take(1));
        }
    }
    out.extend(state.checks_of_node(node).map(|c| stored_check(state, node, c)));
    out
}

pub fn service_entry(state: &State, node: &str, s: &Stored<ServiceRecord>) -> Value {
    let r = &s.record;
    let mut checks = node_checks(state, node);
    checks.extend(service_checks(state, node, s));
    let mut service = json!({
        "ID": r.id, "Service": r.name, "Tags": r.tags, "Address": r.address, "Meta": r.meta, "Port": r.port,
        "Weights": r.weights, "EnableTagOverride": r.enable_tag_override,
        "CreateIndex": s.create_index, "ModifyIndex": s.modify_index,
    });
    if let Some(tagged) = &r.tagged_addresses {
        service["TaggedAddresses"] = tagged.clone();
    }
    json!({"Node": self::node(state, node), "Service": service, "Checks": checks})
}

pub fn catalog_service(state: &State, node: &str, s: &Stored<ServiceRecord>) -> Value {
    let (n, _, _) = node_record(state, node);
    let r = &s.record;
    json!({
        "ID": n.id, "Node": n.name, "Address": n.address, "Datacenter": n.datacenter,
        "TaggedAddresses": tagged_node(&n.address), "NodeMeta": {"consul-network-segment": ""},
        "ServiceKind": "", "ServiceID": r.id, "ServiceName": r.name, "ServiceTags": r.tags,
        "ServiceAddress": r.address, "ServicePort": r.port, "ServiceMeta": r.meta,
        "ServiceWeights": r.weights, "ServiceEnableTagOverride": r.enable_tag_override,
        "ServiceTaggedAddresses": r.tagged_addresses.clone().unwrap_or_else(|| json!({})),
        "ServiceProxy": {}, "ServiceConnect": {}, "CreateIndex": s.create_index, "ModifyIndex": s.modify_index,
    })
}

/// Whether every check in `checks` (JSON as rendered) is passing.
pub fn all_passing(checks: &[Value]) -> bool {
    checks.iter().all(|c| c["Status"] == "passing")
}

/// The aggregated status of some checks: critical beats warning beats passing.
pub fn aggregate(checks: &[Value]) -> &'static str {
    if checks.iter().any(|c| c["Status"] == "critical") {
        "critical"
    } else if checks.iter().any(|c| c["Status"] == "warning") {
        "warning"
    } else {
        "passing"
    }
}

pub fn member(n: &NodeRecord, alive: bool) -> Value {
    json!({
        "Name": n.name, "Addr": n.address, "Port": 8301,
        "Tags": {"dc": n.datacenter, "role": "consul", "port": "8300", "id": n.id, "build": "apollo",
                 "vsn": "2", "vsn_min": "2", "vsn_max": "3", "segment": ""},
        "Status": if alive { 1 } else { 4 },
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}
