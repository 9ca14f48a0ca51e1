//! Consul's catalog, health and status reads. Catalog and health endpoints are
//! blocking queries (`?index=&wait=`) over the topics their answer depends on, and
//! always carry `X-Consul-Index`. `?tag=` (repeatable) keeps instances holding every
//! tag; `?passing` drops an instance if any of its checks, node checks included, is not
//! passing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use plugin_api::Request;
use serde_json::{Value, json};

use crate::Catalog;
use crate::blocking;
use crate::filter;
use crate::state::topic;
use crate::views;
use crate::wire::{self, Answer, Fail};

fn tags_of(req: &Request) -> Vec<String> {
    req.query_pairs().into_iter().filter(|(k, _)| k == "tag").map(|(_, v)| v).collect()
}

fn has_tags(tags: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| tags.iter().any(|t| t.eq_ignore_ascii_case(w)))
}

impl Catalog {
    async fn blocking_json(
        &self,
        req: Request,
        topics: Vec<String>,
        query: impl Fn(&crate::state::State) -> Value,
    ) -> Answer {
        let filter = filter::of(&req)?;
        let blocking = blocking::Blocking::from_request(&req)?;
        drop(req);
        let (value, index) = blocking::run(&self.replica, &self.metrics.parked, blocking, topics.clone(), |state| {
            Ok((filter::apply(filter.as_ref(), query(state)), state.index(&topics)))
        })
        .await?;
        Ok(wire::json_indexed(&value, index))
    }

    pub(crate) async fn catalog_services(self: Arc<Self>, req: Request) -> Answer {
        self.blocking_json(req, vec![topic::SERVICES.into()], |state| {
            let mut map: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for s in state.services.values() {
                map.entry(s.record.name.as_str()).or_default().extend(s.record.tags.iter().map(String::as_str));
            }
            json!(map)
        })
        .await
    }

    pub(crate) async fn catalog_service(self: Arc<Self>, req: Request) -> Answer {
        let name = req.param("name").unwrap_or_default().to_string();
        let tags = tags_of(&req);
        self.blocking_json(req, vec![topic::service(&name)], |state| {
            let list: Vec<Value> = state
                .instances(&name)
                .filter(|(_, s)| has_tags(&s.record.tags, &tags))
                .map(|(node, s)| views::catalog_service(state, node, s))
                .collect();
            Value::Array(list)
        })
        .await
    }

    pub(crate) async fn catalog_nodes(self: Arc<Self>, req: Request) -> Answer {
        let me = self.node().to_string();
        self.blocking_json(req, vec![topic::NODES.into()], |state| {
            let mut names: BTreeSet<&str> = state.nodes.keys().map(String::as_str).collect();
            names.insert(me.as_str());
            Value::Array(names.into_iter().map(|n| views::node(state, n)).collect())
        })
        .await
    }

    pub(crate) async fn catalog_datacenters(self: Arc<Self>, _req: Request) -> Answer {
        Ok(wire::json(&json!([self.settings.datacenter])))
    }

    pub(crate) async fn health_service(self: Arc<Self>, req: Request) -> Answer {
        let name = req.param("name").unwrap_or_default().to_string();
        let tags = tags_of(&req);
        let passing = wire::flag(&req, "passing")?;
        self.blocking_json(req, vec![topic::service(&name)], |state| {
            let list: Vec<Value> = state
                .instances(&name)
                .filter(|(_, s)| has_tags(&s.record.tags, &tags))
                .map(|(node, s)| views::service_entry(state, node, s))
                .filter(|entry| !passing || entry["Checks"].as_array().is_some_and(|c| views::all_passing(c)))
                .collect();
            Value::Array(list)
        })
        .await
    }

    pub(crate) async fn health_checks(self: Arc<Self>, req: Request) -> Answer {
        let name = req.param("name").unwrap_or_default().to_string();
        self.blocking_json(req, vec![topic::service(&name)], |state| {
            let mut list: Vec<Value> = Vec::new();
            for (node, s) in state.instances(&name) {
                list.extend(views::service_checks(state, node, s));
            }
            list.sort_by(|a, b| a["CheckID"].as_str().cmp(&b["CheckID"].as_str()));
            Value::Array(list)
        })
        .await
    }

    pub(crate) async fn health_state(self: Arc<Self>, req: Request) -> Answer {
        let wanted = req.param("state").unwrap_or_default().to_string();
        if !matches!(wanted.as_str(), "any" | "passing" | "warning" | "critical") {
            return Err(Fail::bad_request(format!("Invalid check state: {wanted:?}")));
        }
        let me = self.node().to_string();
        self.blocking_json(req, vec![topic::CHECKS.into()], |state| {
            let mut nodes: BTreeSet<&str> = state.nodes.keys().map(String::as_str).collect();
            nodes.insert(me.as_str());
            nodes.extend(state.checks.keys().map(|(n, _)| n.as_str()));
            let list: Vec<Value> = nodes
                .into_iter()
                .flat_map(|n| views::all_checks_of_node(state, n))
                .filter(|c| wanted == "any" || c["Status"] == wanted.as_str())
                .collect();
            Value::Array(list)
        })
        .await
    }

    pub(crate) async fn health_node(self: Arc<Self>, req: Request) -> Answer {
        let node = req.param("node").unwrap_or_default().to_string();
        let me = self.node().to_string();
        self.blocking_json(req, vec![topic::CHECKS.into()], |state| {
            if node != me && !state.nodes.contains_key(&node) {
                return json!([]);
            }
            Value::Array(views::all_checks_of_node(state, &node))
        })
        .await
    }

    pub(crate) async fn status_leader(self: Arc<Self>, _req: Request) -> Answer {
        Ok(wire::json(&json!(format!("{}:8300", self.settings.node_address))))
    }

    pub(crate) async fn status_peers(self: Arc<Self>, _req: Request) -> Answer {
        Ok(wire::json(&json!([format!("{}:8300", self.settings.node_address)])))
    }
}
