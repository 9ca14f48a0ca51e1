//! Consul's agent endpoints (`/v1/agent/...`): this node's services and checks,
//! registration, TTL updates, maintenance, and the agent's own description. Agent
//! reads are not index-blocking and carry no `X-Consul-Index` (contract §1.1).

use std::collections::BTreeMap;
use std::sync::Arc;

use plugin_api::storage::Write;
use plugin_api::{Request, Response};
use serde_json::{Value, json};

use crate::Catalog;
use crate::checks::{self, Update};
use crate::decode::{self, Fields};
use crate::filter;
use crate::model::{self, CheckRecord, Origin};
use crate::views;
use crate::wire::{self, Answer, Fail};

fn unknown_service(id: &str) -> Fail {
    Fail::not_found(format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."))
}

fn unknown_check(id: &str) -> Fail {
    Fail::not_found(format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."))
}

fn enc<T: serde::Serialize>(value: &T) -> Result<String, Fail> {
    serde_json::to_string(value).map_err(|e| Fail::new(500, format!("cannot encode a record: {e}")))
}

impl Catalog {
    pub(crate) fn node(&self) -> &str {
        &self.settings.node_name
    }

    pub(crate) async fn agent_self(self: Arc<Self>, _req: Request) -> Answer {
        let state = self.replica.read();
        let (n, _, _) = views::node_record(&state, self.node());
        let config = json!({
            "Datacenter": self.settings.datacenter, "NodeName": n.name, "NodeID": n.id, "Server": true,
            "Revision": "apollo", "Version": "1.16.0", "PrimaryDatacenter": self.settings.datacenter,
        });
        Ok(wire::json(&json!({
            "Config": config,
            "DebugConfig": {"EnableScriptChecks": self.settings.enable_script_checks},
            "Coord": null,
            "Member": views::member(&n, true),
            "Stats": {"agent": {"services": state.services_of_node(self.node()).count().to_string(),
                                "checks": state.checks_of_node(self.node()).count().to_string()}},
            "Meta": {},
            "xDS": {},
        })))
    }

    pub(crate) async fn members(self: Arc<Self>, _req: Request) -> Answer {
        let state = self.replica.read();
        let mut names: Vec<String> = state.nodes.keys().cloned().collect();
        if !names.iter().any(|n| n == self.node()) {
            names.push(self.node().to_string());
        }
        let members: Vec<Value> = names
            .iter()
            .map(|name| {
                let (n, _, _) = views::node_record(&state, name);
                let alive = n.serf_status.is_empty() || n.serf_status == "passing";
                views::member(&n, alive)
            })
            .collect();
        Ok(wire::json(&members))
    }

    pub(crate) async fn agent_services(self: Arc<Self>, req: Request) -> Answer {
        let filter = filter::of(&req)?;
        let state = self.replica.read();
        let map: BTreeMap<&str, Value> = state
            .services_of_node(self.node())
            .map(|s| (s.record.id.as_str(), views::agent_service(&s.record, &self.settings.datacenter)))
            .collect();
        Ok(wire::json(&filter::apply(filter.as_ref(), json!(map))))
    }

    pub(crate) async fn agent_service(self: Arc<Self>, req: Request) -> Answer {
        let id = req.param("id").unwrap_or_default();
        let state = self.replica.read();
        let s = state.service(self.node(), id).ok_or_else(|| Fail::not_found(format!("unknown service ID: {id}")))?;
        let mut v = views::agent_service(&s.record, &self.settings.datacenter);
        v["ContentHash"] = json!(format!("{:016x}", s.modify_index));
        Ok(wire::json(&v))
    }

    pub(crate) async fn agent_checks(self: Arc<Self>, req: Request) -> Answer {
        let filter = filter::of(&req)?;
        let state = self.replica.read();
        let mut map = serde_json::Map::new();
        for s in state.services_of_node(self.node()).filter(|s| s.record.maintenance.is_some()) {
            for c in views::service_checks(&state, self.node(), s).into_iter().take(1) {
                map.insert(c["CheckID"].as_str().unwrap_or_default().to_string(), c);
            }
        }
        for c in views::node_checks(&state, self.node()).into_iter().skip(1) {
            map.insert(c["CheckID"].as_str().unwrap_or_default().to_string(), c);
        }
        for c in state.checks_of_node(self.node()) {
            map.insert(c.record.id.clone(), views::stored_check(&state, self.node(), c));
        }
        Ok(wire::json(&filter::apply(filter.as_ref(), Value::Object(map))))
    }

    pub(crate) async fn register_service(self: Arc<Self>, req: Request) -> Answer {
        let registration =
            decode::registration(&req.body, self.settings.enable_script_checks).map_err(Fail::bad_request)?;
        let replace_checks = wire::flag(&req, "replace-existing-checks")?;
        let node = self.node().to_string();
        let limits = self.settings.limits.clone();
        self.replica
            .transact(|state| {
                let mut service = registration.service.clone();
                let existing = state.service(&node, &service.id);
                if existing.is_none() {
                    let agent_services =
                        state.services_of_node(&node).filter(|s| s.record.origin == Origin::Agent).count();
                    if agent_services >= limits.max_services {
                        return Err(plugin_api::ModuleError::new(
                            429,
                            "too_many",
                            format!(
                                "Too many services: this node holds {agent_services} (limits.max_services); deregister some first"
                            ),
                        ));
                    }
                }
                let new_checks = registration.checks.iter().filter(|c| state.check(&node, &c.id).is_none()).count();
                if state.checks_of_node(&node).count() + new_checks > limits.max_checks {
                    return Err(plugin_api::ModuleError::new(
                        429,
                        "too_many",
                        "Too many checks on this node (limits.max_checks); deregister some first",
                    ));
                }
                if let Some(old) = existing {
                    service.create_index = old.create_index;
                    service.maintenance = old.record.maintenance.clone();
                }
                let key = model::service_key(&node, &service.id);
                let mut writes = vec![
                    Write::put(key.clone(), serde_json::to_string(&service)?).expect_version(state.version(&key)),
                ];
                for check in &registration.checks {
                    writes.push(check_write(state, &node, check.clone())?);
                }
                if replace_checks {
                    for old in state.checks_of_node(&node).filter(|c| c.record.service_id == service.id) {
                        if !registration.checks.iter().any(|c| c.id == old.record.id) {
                            let key = model::check_key(&node, &old.record.id);
                            writes.push(Write::delete(key.clone()).expect_version(state.version(&key)));
                        }
                    }
                }
                Ok((writes, ()))
            })
            .await?;
        self.metrics.registrations.with(&["register", "agent"]).inc();
        Ok(wire::empty())
    }

    pub(crate) async fn deregister_service(self: Arc<Self>, req: Request) -> Answer {
        let id = req.param("id").unwrap_or_default().to_string();
        let node = self.node().to_string();
        let found = self
            .replica
            .transact(|state| {
                let Some(service) = state.service(&node, &id) else { return Ok((Vec::new(), None)) };
                Ok((state.deregistration(&node, &id), Some(service.record.origin)))
            })
            .await?;
        let origin = found.ok_or_else(|| unknown_service(&id))?;
        let origin = if origin == Origin::Host { "host" } else { "agent" };
        self.metrics.registrations.with(&["deregister", origin]).inc();
        Ok(wire::empty())
    }

    pub(crate) async fn service_maintenance(self: Arc<Self>, req: Request) -> Answer {
        let id = req.param("id").unwrap_or_default().to_string();
        let enable = maintenance_flag(&req)?;
        let reason = req.query_param("reason").unwrap_or_default();
        let node = self.node().to_string();
        let found = self
            .replica
            .transact(|state| {
                let Some(s) = state.service(&node, &id) else { return Ok((Vec::new(), false)) };
                let mut record = s.record.clone();
                record.create_index = s.create_index;
                record.maintenance = enable.then(|| reason.clone());
                if record.maintenance == s.record.maintenance {
                    return Ok((Vec::new(), true));
                }
                let key = model::service_key(&node, &id);
                Ok((
                    vec![Write::put(key.clone(), serde_json::to_string(&record)?).expect_version(state.version(&key))],
                    true,
                ))
            })
            .await?;
        if !found {
            return Err(unknown_service(&id));
        }
        Ok(wire::empty())
    }

    pub(crate) async fn node_maintenance(self: Arc<Self>, req: Request) -> Answer {
        let enable = maintenance_flag(&req)?;
        let reason = req.query_param("reason").unwrap_or_default();
        let node = self.node().to_string();
        self.replica
            .transact(|state| {
                let (mut record, create, _) = views::node_record(state, &node);
                record.create_index = create;
                let wanted = enable.then(|| reason.clone());
                if record.maintenance == wanted {
                    return Ok((Vec::new(), ()));
                }
                record.maintenance = wanted;
                let key = model::node_key(&node);
                Ok((
                    vec![Write::put(key.clone(), serde_json::to_string(&record)?).expect_version(state.version(&key))],
                    (),
                ))
            })
            .await?;
        Ok(wire::empty())
    }

    pub(crate) async fn register_check(self: Arc<Self>, req: Request) -> Answer {
        let value = decode::body_object(&req.body).map_err(Fail::bad_request)?;
        let fields = Fields::of(&value, "the body").map_err(Fail::bad_request)?;
        let mut check = decode::check(&fields, self.settings.enable_script_checks).map_err(Fail::bad_request)?;
        if check.name.is_empty() {
            return Err(Fail::bad_request("Missing check name"));
        }
        if check.id.is_empty() {
            check.id = check.name.clone();
        }
        let node = self.node().to_string();
        let max_checks = self.settings.limits.max_checks;
        let outcome = self
            .replica
            .transact(|state| {
                let mut check = check.clone();
                if !check.service_id.is_empty() {
                    match state.service(&node, &check.service_id) {
                        Some(s) => check.service_name = s.record.name.clone(),
                        None => return Ok((Vec::new(), Err(check.service_id.clone()))),
                    }
                }
                if state.check(&node, &check.id).is_none() && state.checks_of_node(&node).count() >= max_checks {
                    return Err(plugin_api::ModuleError::new(
                        429,
                        "too_many",
                        "Too many checks on this node (limits.max_checks); deregister some first",
                    ));
                }
                Ok((vec![check_write(state, &node, check)?], Ok(())))
            })
            .await?;
        outcome.map_err(|service| Fail::not_found(format!("ServiceID {service:?} does not exist")))?;
        Ok(wire::empty())
    }

    pub(crate) async fn deregister_check(self: Arc<Self>, req: Request) -> Answer {
        let id = req.param("id").unwrap_or_default().to_string();
        let node = self.node().to_string();
        let found = self
            .replica
            .transact(|state| {
                if state.check(&node, &id).is_none() {
                    return Ok((Vec::new(), false));
                }
                let key = model::check_key(&node, &id);
                Ok((vec![Write::delete(key.clone()).expect_version(state.version(&key))], true))
            })
            .await?;
        if !found {
            return Err(unknown_check(&id));
        }
        Ok(wire::empty())
    }

    pub(crate) async fn check_pass(self: Arc<Self>, req: Request) -> Answer {
        self.ttl_update(&req, "passing", req.query_param("note").unwrap_or_default()).await
    }

    pub(crate) async fn check_warn(self: Arc<Self>, req: Request) -> Answer {
        self.ttl_update(&req, "warning", req.query_param("note").unwrap_or_default()).await
    }

    pub(crate) async fn check_fail(self: Arc<Self>, req: Request) -> Answer {
        self.ttl_update(&req, "critical", req.query_param("note").unwrap_or_default()).await
    }

    pub(crate) async fn check_update(self: Arc<Self>, req: Request) -> Answer {
        let value = decode::body_object(&req.body).map_err(Fail::bad_request)?;
        let fields = Fields::of(&value, "the body").map_err(Fail::bad_request)?;
        let status = fields.string_or_empty("Status").map_err(Fail::bad_request)?;
        if !matches!(status.as_str(), "passing" | "warning" | "critical") {
            return Err(Fail::bad_request(format!("Invalid check status: '{status}'")));
        }
        let output = fields.string_or_empty("Output").map_err(Fail::bad_request)?;
        self.ttl_update(&req, &status, output).await
    }

    async fn ttl_update(&self, req: &Request, status: &str, output: String) -> Answer {
        let id = req.param("id").unwrap_or_default().to_string();
        let is_ttl = {
            let state = self.replica.read();
            let check = state.check(self.node(), &id).ok_or_else(|| unknown_check(&id))?;
            matches!(check.record.kind, model::CheckKind::Ttl { .. })
        };
        if !is_ttl {
            return Err(Fail::new(500, format!("CheckID {id:?} does not have associated TTL")));
        }
        self.runner.ttl_reset(&id);
        checks::set_status(&self.replica, self.node(), &id, Update::new(status, output)).await?;
        Ok(wire::empty())
    }

    /// `(aggregated status, entries)` of this node's instances matching `pick`.
    fn local_health(&self, pick: impl Fn(&model::ServiceRecord) -> bool) -> Vec<(String, Value)> {
        let state = self.replica.read();
        state
            .services_of_node(self.node())
            .filter(|s| pick(&s.record))
            .map(|s| {
                let mut checks = views::node_checks(&state, self.node());
                checks.extend(views::service_checks(&state, self.node(), s));
                let status = views::aggregate(&checks).to_string();
                let entry = json!({
                    "AggregatedStatus": status,
                    "Service": views::agent_service(&s.record, &self.settings.datacenter),
                    "Checks": checks,
                });
                (status, entry)
            })
            .collect()
    }

    pub(crate) async fn agent_health_by_id(self: Arc<Self>, req: Request) -> Answer {
        let id = req.param("id").unwrap_or_default().to_string();
        let text = req.query_param("format").as_deref() == Some("text");
        let found = self.local_health(|s| s.id == id);
        let Some((status, entry)) = found.into_iter().next() else {
            let message = format!("ServiceId {id} not found");
            return Ok(if text {
                Response::text(message).with_status(404)
            } else {
                Fail::not_found(message).to_response()
            });
        };
        Ok(health_answer(&status, if text { None } else { Some(entry) }))
    }

    pub(crate) async fn agent_health_by_name(self: Arc<Self>, req: Request) -> Answer {
        let name = req.param("name").unwrap_or_default().to_string();
        let text = req.query_param("format").as_deref() == Some("text");
        let found = self.local_health(|s| s.name == name);
        if found.is_empty() {
            let message = format!("ServiceName {name} Not Found");
            return Ok(if text {
                Response::text(message).with_status(404)
            } else {
                Fail::not_found(message).to_response()
            });
        }
        let statuses: Vec<Value> = found.iter().map(|(s, _)| json!({"Status": s})).collect();
        let status = views::aggregate(&statuses).to_string();
        let entries: Vec<Value> = found.into_iter().map(|(_, e)| e).collect();
        Ok(health_answer(&status, if text { None } else { Some(Value::Array(entries)) }))
    }
}

/// 200 passing, 429 warning, 503 critical; the body is the JSON or the word.
fn health_answer(status: &str, body: Option<Value>) -> Response {
    let code = match status {
        "passing" => 200,
        "warning" => 429,
        _ => 503,
    };
    match body {
        Some(body) => Response::json(&body).with_status(code),
        None => Response::text(status.to_string()).with_status(code),
    }
}

fn maintenance_flag(req: &Request) -> Result<bool, Fail> {
    match req.query_param("enable").as_deref() {
        None | Some("") => Err(Fail::bad_request("Missing value for enable")),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(Fail::bad_request(format!("Invalid value for enable: {other:?}"))),
    }
}

/// The write of a check registration. A check re-registered with the same definition
/// keeps its status and output (an idempotent re-registration does not flap it).
pub fn check_write(
    state: &crate::state::State,
    node: &str,
    mut check: CheckRecord,
) -> Result<Write, plugin_api::ModuleError> {
    let key = model::check_key(node, &check.id);
    if let Some(old) = state.check(node, &check.id) {
        check.create_index = old.create_index;
        if old.record.kind == check.kind {
            check.status = old.record.status.clone();
            check.output = old.record.output.clone();
            check.critical_since_ms = old.record.critical_since_ms;
        }
    }
    if check.status == "critical" && check.critical_since_ms.is_none() {
        check.critical_since_ms = Some(model::now_ms());
    }
    let text = enc(&check).map_err(|f| plugin_api::ModuleError::internal(f.message))?;
    Ok(Write::put(key.clone(), text).expect_version(state.version(&key)))
}
