//! The catalog as this host knows it: every record of the module's storage, decoded,
//! with each record's indexes and, per blocking-query topic, the revision of its last
//! change (deletions included, as Consul's tombstones do). [`State::apply`] is the one
//! place a storage change enters; it says which topics moved so the replica wakes
//! exactly the blocking queries parked on them.

use std::collections::{BTreeMap, HashMap, HashSet};

use plugin_api::storage::Write;
use serde::de::DeserializeOwned;

use crate::model::{self, CheckRecord, KvRecord, NodeRecord, ServiceRecord, TokenRecord};

/// A record with its storage indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub record: T,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyVersion {
    pub version: u64,
    pub revision: u64,
}

/// Topics a blocking query can wait on.
pub mod topic {
    pub const SERVICES: &str = "services";
    pub const NODES: &str = "nodes";
    pub const CHECKS: &str = "checks";
    pub const KV: &str = "kv";
    pub fn service(name: &str) -> String {
        format!("service:{name}")
    }
    pub fn kv_key(key: &str) -> String {
        format!("kv:{key}")
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub nodes: BTreeMap<String, Stored<NodeRecord>>,
    /// Last heartbeat per node, unix ms.
    pub beats: BTreeMap<String, i64>,
    /// By (node, service id).
    pub services: BTreeMap<(String, String), Stored<ServiceRecord>>,
    /// By (node, check id).
    pub checks: BTreeMap<(String, String), Stored<CheckRecord>>,
    pub kv: BTreeMap<String, Stored<KvRecord>>,
    pub tokens: BTreeMap<String, TokenRecord>,
    /// Node → the token of the module instance that owns it now.
    pub owners: BTreeMap<String, String>,
    /// Every storage key's version and revision (for planned writes and late changes).
    versions: HashMap<String, KeyVersion>,
    /// Topic → revision of its last change.
    topics: HashMap<String, u64>,
    /// The head of the last full load: every topic's index is at least this, since a
    /// deletion before the load left no trace.
    base_index: u64,
    /// Check outputs newer than their stored record (output-only changes, which Consul
    /// does not sync either: they would wake every watcher).
    pub outputs: HashMap<(String, String), String>,
}

fn parse<T: DeserializeOwned>(value: &str) -> Option<T> {
    serde_json::from_str(value).ok()
}

impl State {
    /// The writes that remove service `id` of `node` and every check of it, expecting
    /// the versions held here.
    pub fn deregistration(&self, node: &str, id: &str) -> Vec<Write> {
        let key = model::service_key(node, id);
        let mut writes = vec![Write::delete(key.clone()).expect_version(self.version(&key))];
        for c in self.checks_of_node(node).filter(|c| c.record.service_id == id) {
            let key = model::check_key(node, &c.record.id);
            writes.push(Write::delete(key.clone()).expect_version(self.version(&key)));
        }
        writes
    }

    pub fn with_base(base_index: u64) -> Self {
        Self { base_index, ..Self::default() }
    }

    /// The version of a storage key now (0: absent).
    pub fn version(&self, key: &str) -> u64 {
        self.versions.get(key).map_or(0, |v| v.version)
    }

    /// The index a blocking query on `topics` reports: the latest change of any, never 0.
    pub fn index(&self, topics: &[String]) -> u64 {
        topics.iter().filter_map(|t| self.topics.get(t)).copied().max().unwrap_or(0).max(self.base_index).max(1)
    }

    fn touch(&mut self, touched: &mut HashSet<String>, topic: String, revision: u64) {
        let entry = self.topics.entry(topic.clone()).or_insert(0);
        *entry = (*entry).max(revision);
        touched.insert(topic);
    }

    /// Applies one storage change (`value` `None`: deleted). A change not newer than the
    /// key's last applied one is skipped (the feed repeats this host's own commits).
    /// Returns the topics it moved.
    pub fn apply(&mut self, key: &str, value: Option<&str>, version: u64, revision: u64) -> HashSet<String> {
        let mut touched = HashSet::new();
        if self.versions.get(key).is_some_and(|known| known.revision >= revision) {
            return touched;
        }
        self.versions
            .insert(key.to_string(), KeyVersion { version: if value.is_some() { version } else { 0 }, revision });
        if let Some(name) = key.strip_prefix(model::BEAT) {
            match value.and_then(|v| v.parse().ok()) {
                Some(ms) => self.beats.insert(name.to_string(), ms),
                None => self.beats.remove(name),
            };
        } else if let Some(name) = key.strip_prefix(model::NODE) {
            let old = self.nodes.remove(name);
            if let Some(record) = value.and_then(parse::<NodeRecord>) {
                let create_index = old.as_ref().map_or(revision, |o| o.create_index);
                let create_index = if record.create_index > 0 { record.create_index } else { create_index };
                self.nodes.insert(name.to_string(), Stored { record, create_index, modify_index: revision });
            }
            // A node's checks (serfHealth, maintenance) are part of every one of its
            // services' health.
            self.touch(&mut touched, topic::NODES.into(), revision);
            self.touch(&mut touched, topic::CHECKS.into(), revision);
            let names: Vec<String> = self.services_of_node(name).map(|s| s.record.name.clone()).collect();
            for service in names {
                self.touch(&mut touched, topic::service(&service), revision);
            }
        } else if let Some((node, id)) = key.strip_prefix(model::SERVICE).and_then(model::split_node) {
            let id_key = (node.to_string(), id.to_string());
            let old = self.services.remove(&id_key);
            if let Some(old) = &old {
                self.touch(&mut touched, topic::service(&old.record.name), revision);
            }
            if let Some(record) = value.and_then(parse::<ServiceRecord>) {
                let create_index = match (&old, record.create_index) {
                    (_, c) if c > 0 => c,
                    (Some(o), _) => o.create_index,
                    (None, _) => revision,
                };
                self.touch(&mut touched, topic::service(&record.name), revision);
                self.services.insert(id_key, Stored { record, create_index, modify_index: revision });
            }
            self.touch(&mut touched, topic::SERVICES.into(), revision);
            self.touch(&mut touched, topic::NODES.into(), revision);
            self.touch(&mut touched, topic::CHECKS.into(), revision);
        } else if let Some((node, id)) = key.strip_prefix(model::CHECK).and_then(model::split_node) {
            let id_key = (node.to_string(), id.to_string());
            self.outputs.remove(&id_key);
            let old = self.checks.remove(&id_key);
            if let Some(old) = &old {
                self.touch_check_service(&mut touched, node, &old.record, revision);
            }
            if let Some(record) = value.and_then(parse::<CheckRecord>) {
                let create_index = match (&old, record.create_index) {
                    (_, c) if c > 0 => c,
                    (Some(o), _) => o.create_index,
                    (None, _) => revision,
                };
                self.touch_check_service(&mut touched, node, &record, revision);
                self.checks.insert(id_key, Stored { record, create_index, modify_index: revision });
            }
            self.touch(&mut touched, topic::CHECKS.into(), revision);
        } else if let Some(kv) = key.strip_prefix(model::KV) {
            let old = self.kv.remove(kv);
            if let Some(record) = value.and_then(parse::<KvRecord>) {
                let create_index = match (&old, record.create_index) {
                    (_, c) if c > 0 => c,
                    (Some(o), _) => o.create_index,
                    (None, _) => revision,
                };
                self.kv.insert(kv.to_string(), Stored { record, create_index, modify_index: revision });
            }
            self.touch(&mut touched, topic::kv_key(kv), revision);
            self.touch(&mut touched, topic::KV.into(), revision);
        } else if let Some(node) = key.strip_prefix(model::OWNER) {
            match value {
                Some(token) => self.owners.insert(node.to_string(), token.to_string()),
                None => self.owners.remove(node),
            };
        } else if let Some(accessor) = key.strip_prefix(model::TOKEN) {
            match value.and_then(parse::<TokenRecord>) {
                Some(token) => self.tokens.insert(accessor.to_string(), token),
                None => self.tokens.remove(accessor),
            };
        }
        touched
    }

    fn touch_check_service(&mut self, touched: &mut HashSet<String>, node: &str, check: &CheckRecord, revision: u64) {
        if !check.service_name.is_empty() {
            self.touch(touched, topic::service(&check.service_name), revision);
        } else {
            // A node-level check moves every service of its node.
            let names: Vec<String> = self.services_of_node(node).map(|s| s.record.name.clone()).collect();
            for service in names {
                self.touch(touched, topic::service(&service), revision);
            }
        }
    }

    pub fn services_of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Stored<ServiceRecord>> + 'a {
        self.services
            .range((node.to_string(), String::new())..)
            .take_while(move |((n, _), _)| n == node)
            .map(|(_, s)| s)
    }

    pub fn checks_of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Stored<CheckRecord>> + 'a {
        self.checks.range((node.to_string(), String::new())..).take_while(move |((n, _), _)| n == node).map(|(_, c)| c)
    }

    pub fn service(&self, node: &str, id: &str) -> Option<&Stored<ServiceRecord>> {
        self.services.get(&(node.to_string(), id.to_string()))
    }

    pub fn check(&self, node: &str, id: &str) -> Option<&Stored<CheckRecord>> {
        self.checks.get(&(node.to_string(), id.to_string()))
    }

    /// A check's output: the local newer one when there is one.
    pub fn output<'a>(&'a self, node: &str, check: &'a CheckRecord) -> &'a str {
        self.outputs.get(&(node.to_string(), check.id.clone())).map_or(check.output.as_str(), String::as_str)
    }

    /// Instances of service `name`, in (node, id) order.
    pub fn instances<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a Stored<ServiceRecord>)> + 'a {
        self.services.iter().filter(move |(_, s)| s.record.name == name).map(|((node, _), s)| (node.as_str(), s))
    }

    /// Forgets deletions every change up to `head` has gone past: their tombstones
    /// only guard against an older write of the key arriving late from the feed, which
    /// cannot happen once the feed is applied beyond them. Keeps memory bounded under
    /// KV churn. A missing key's index falls back to the KV table's, which its deletion
    /// moved too.
    pub fn prune_tombstones(&mut self, head: u64) {
        self.versions.retain(|_, v| v.version > 0 || v.revision > head);
        let kv = &self.kv;
        self.topics.retain(|topic, revision| {
            *revision > head || topic.strip_prefix("kv:").is_none_or(|key| kv.contains_key(key))
        });
    }

    /// Bytes of KV values stored (base64 text, as kept).
    pub fn kv_bytes(&self) -> usize {
        self.kv.iter().map(|(k, v)| k.len() + v.record.value.as_ref().map_or(0, String::len)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> String {
        serde_json::to_string(&ServiceRecord { id: name.into(), name: name.into(), ..Default::default() }).unwrap()
    }

    #[test]
    fn a_deletion_moves_the_topic_index_and_late_changes_are_skipped() {
        let mut state = State::with_base(3);
        assert_eq!(state.index(&[topic::service("web")]), 3, "the load's head is the floor");
        let touched = state.apply("svc/n1/web", Some(&service("web")), 1, 5);
        assert!(touched.contains("service:web") && touched.contains("services"));
        assert_eq!(state.service("n1", "web").unwrap().create_index, 5);
        state.apply("svc/n1/web", None, 0, 7);
        assert!(state.service("n1", "web").is_none());
        assert_eq!(state.index(&[topic::service("web")]), 7, "a deregistration moves the index");
        assert!(state.apply("svc/n1/web", Some(&service("web")), 1, 6).is_empty(), "older than the delete");
        assert_eq!(State::default().index(&[topic::KV.into()]), 1, "never 0");
    }

    #[test]
    fn tombstones_behind_the_head_are_forgotten() {
        let mut state = State::default();
        let kv = serde_json::to_string(&KvRecord::default()).unwrap();
        state.apply("kv/a", Some(&kv), 1, 1);
        state.apply("kv/a", None, 0, 2);
        state.apply("kv/b", Some(&kv), 1, 3);
        state.prune_tombstones(2);
        assert_eq!(state.versions.len(), 1, "only kv/b's version is left");
        assert!(!state.topics.contains_key("kv:a") && state.topics.contains_key("kv:b"));
        assert_eq!(state.index(&[topic::kv_key("a"), topic::KV.into()]), 3, "a miss reports the table's index");
    }

    #[test]
    fn a_node_change_moves_its_services() {
        let mut state = State::default();
        state.apply("svc/n1/a", Some(&service("a")), 1, 1);
        state.apply("svc/n2/b", Some(&service("b")), 1, 2);
        let touched = state.apply("node/n1", Some("{}"), 1, 3);
        assert!(touched.contains("service:a") && !touched.contains("service:b"));
    }
}
