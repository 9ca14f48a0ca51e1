//! What the module stores, and under which storage keys. Every record is one JSON
//! value; a namespace's working items are one record, so an edit and a release each
//! change whole, consistent values.
//!
//! | key | value |
//! |---|---|
//! | `app/{app}` | [`App`] |
//! | `cluster/{app}/{cluster}` | [`Cluster`] (a gray branch is a cluster with a parent) |
//! | `appns/{app}/{namespace}` | [`AppNamespace`] |
//! | `items/{app}/{cluster}/{namespace}` | [`ItemSet`]: the working copy, edited, not yet served |
//! | `release/{id:020}` | [`Release`]: an immutable snapshot (only `abandoned` ever changes) |
//! | `seq/release` | the last release id is this key's version |
//! | `gray/{app}/{cluster}/{namespace}` | [`GrayRule`] of the namespace's one gray branch |
//! | `msg/{app+cluster+namespace}` | the watch key; the entry's revision is its notification id |
//! | `accesskey/{app}/{id}` | [`AccessKey`] |
//! | `consumer/{name}` | [`Consumer`]: an Open API token's holder (its SHA-256, never the token) |
//! | `audit/{i64::MAX - ms:019}-{random}` | [`AuditRecord`], newest first (not kept in memory) |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::Format;

pub const APP: &str = "app/";
pub const CLUSTER: &str = "cluster/";
pub const APP_NAMESPACE: &str = "appns/";
pub const ITEMS: &str = "items/";
pub const RELEASE: &str = "release/";
pub const RELEASE_SEQUENCE: &str = "seq/release";
pub const GRAY: &str = "gray/";
pub const MESSAGE: &str = "msg/";
pub const ACCESS_KEY: &str = "accesskey/";
pub const CONSUMER: &str = "consumer/";
pub const AUDIT: &str = "audit/";

pub fn app_key(app: &str) -> String {
    format!("{APP}{app}")
}

pub fn cluster_key(app: &str, cluster: &str) -> String {
    format!("{CLUSTER}{app}/{cluster}")
}

pub fn app_namespace_key(app: &str, namespace: &str) -> String {
    format!("{APP_NAMESPACE}{app}/{namespace}")
}

pub fn items_key(ns: &NsRef) -> String {
    format!("{ITEMS}{}/{}/{}", ns.app, ns.cluster, ns.namespace)
}

pub fn release_key(id: u64) -> String {
    format!("{RELEASE}{id:020}")
}

pub fn gray_key(ns: &NsRef) -> String {
    format!("{GRAY}{}/{}/{}", ns.app, ns.cluster, ns.namespace)
}

pub fn message_key(watch_key: &str) -> String {
    format!("{MESSAGE}{watch_key}")
}

pub fn access_key_key(app: &str, id: &str) -> String {
    format!("{ACCESS_KEY}{app}/{id}")
}

pub fn consumer_key(name: &str) -> String {
    format!("{CONSUMER}{name}")
}

/// One namespace of one cluster of one app, by its stored names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NsRef {
    pub app: String,
    pub cluster: String,
    pub namespace: String,
}

impl NsRef {
    pub fn new(app: &str, cluster: &str, namespace: &str) -> Self {
        Self { app: app.into(), cluster: cluster.into(), namespace: namespace.into() }
    }

    pub fn watch_key(&self) -> String {
        crate::names::watch_key(&self.app, &self.cluster, &self.namespace)
    }

    /// The same namespace in another cluster (a branch, its parent).
    pub fn in_cluster(&self, cluster: &str) -> Self {
        Self { cluster: cluster.into(), ..self.clone() }
    }
}

impl std::fmt::Display for NsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.app, self.cluster, self.namespace)
    }
}

/// Who changed a record, and when (ms since the epoch, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub created_by: String,
    pub created_ms: i64,
    pub modified_by: String,
    pub modified_ms: i64,
}

impl Stamp {
    pub fn new(by: &str, at_ms: i64) -> Self {
        Self { created_by: by.into(), created_ms: at_ms, modified_by: by.into(), modified_ms: at_ms }
    }

    pub fn touched(&self, by: &str, at_ms: i64) -> Self {
        Self { modified_by: by.into(), modified_ms: at_ms, ..self.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub org_id: String,
    pub org_name: String,
    pub owner_name: String,
    pub owner_email: String,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub app_id: String,
    pub name: String,
    /// A gray branch's parent cluster; `None` for a normal cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppNamespace {
    pub app_id: String,
    pub name: String,
    pub format: Format,
    pub is_public: bool,
    /// The app's own copy of another app's public namespace (keys it overrides).
    #[serde(default)]
    pub associated: bool,
    pub comment: String,
    pub stamp: Stamp,
}

/// A working item. Non-properties namespaces hold one, `content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub comment: String,
    pub stamp: Stamp,
}

/// The working items of a namespace, in the order they were created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSet {
    pub items: Vec<Item>,
}

impl ItemSet {
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.key == key)
    }

    /// The key → value map a release snapshots.
    pub fn configurations(&self) -> BTreeMap<String, String> {
        self.items.iter().map(|i| (i.key.clone(), i.value.clone())).collect()
    }
}

/// An immutable snapshot of a namespace (of a cluster, or of a gray branch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: u64,
    pub release_key: String,
    pub ns: NsRef,
    /// The title.
    pub name: String,
    pub comment: String,
    pub configurations: BTreeMap<String, String>,
    pub author: String,
    pub time_ms: i64,
    /// Rolled back: never served again.
    #[serde(default)]
    pub abandoned: bool,
    /// A gray release: `ns.cluster` is the branch, this its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_of: Option<String>,
}

/// Who a gray branch serves: a client app and any of its IPs or labels (`*`: all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleItem {
    pub client_app_id: String,
    #[serde(default)]
    pub client_ip_list: Vec<String>,
    #[serde(default)]
    pub client_label_list: Vec<String>,
}

impl RuleItem {
    /// Ctrip's matching: the app (any case) and (an IP or a label, `*` for any).
    pub fn matches(&self, client_app: &str, ip: Option<&str>, label: Option<&str>) -> bool {
        let listed = |list: &[String], value: Option<&str>| {
            list.iter().any(|v| v == "*") || value.is_some_and(|value| list.iter().any(|v| v == value))
        };
        self.client_app_id.eq_ignore_ascii_case(client_app)
            && (listed(&self.client_ip_list, ip) || listed(&self.client_label_list, label))
    }
}

/// The gray branch of a namespace and whom it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrayRule {
    /// The parent namespace (`ns.cluster` is the parent cluster).
    pub ns: NsRef,
    pub branch: String,
    pub rules: Vec<RuleItem>,
    /// The branch's latest gray release, once published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_id: Option<u64>,
    /// Master keys a gray-delete release removed for the branch's clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_keys: Vec<String>,
    pub stamp: Stamp,
}

impl GrayRule {
    /// What the branch's clients get over `master`: the master without the keys the
    /// branch deleted, with the branch's own items over it.
    pub fn configurations(
        &self,
        master: &BTreeMap<String, String>,
        branch_items: Option<&ItemSet>,
    ) -> BTreeMap<String, String> {
        let mut configurations: BTreeMap<String, String> = master
            .iter()
            .filter(|(k, _)| !self.deleted_keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        configurations.extend(branch_items.map(ItemSet::configurations).unwrap_or_default());
        configurations
    }
}

/// 0 = FILTER (enforced), 1 = OBSERVER (mismatches only logged), as in Ctrip.
pub const ACCESS_KEY_FILTER: u8 = 0;
pub const ACCESS_KEY_OBSERVER: u8 = 1;
/// Ctrip allows five keys per app.
pub const MAX_ACCESS_KEYS_PER_APP: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub app_id: String,
    pub secret: String,
    pub enabled: bool,
    pub mode: u8,
    pub stamp: Stamp,
}

/// An Open API consumer's rights on one app: editing and releasing are separate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(default)]
    pub edit: bool,
    #[serde(default)]
    pub release: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub name: String,
    /// Hex SHA-256 of the token: the token itself is shown once and never stored.
    pub token_sha256: String,
    pub apps: BTreeMap<String, Grant>,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_rules_match_app_and_ip_or_label() {
        let rule = RuleItem {
            client_app_id: "App1".into(),
            client_ip_list: vec!["10.0.0.1".into()],
            client_label_list: vec!["canary".into()],
        };
        assert!(rule.matches("app1", Some("10.0.0.1"), None));
        assert!(rule.matches("APP1", None, Some("canary")));
        assert!(!rule.matches("app1", Some("10.0.0.2"), Some("stable")));
        assert!(!rule.matches("app2", Some("10.0.0.1"), None));
        let everyone =
            RuleItem { client_app_id: "app1".into(), client_ip_list: vec!["*".into()], ..Default::default() };
        assert!(everyone.matches("app1", None, None));
    }

    #[test]
    fn release_keys_sort_by_id() {
        assert!(release_key(9) < release_key(10));
        assert_eq!(release_key(42), "release/00000000000000000042");
    }
}
