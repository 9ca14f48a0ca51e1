//! The module's records in memory: a replica of its storage, kept by applying every
//! change (this host's commits at once, other hosts' through the change feed), with the
//! indices the client protocol reads on every request. Reads never touch the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use plugin_api::storage::Write;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{self, AccessKey, App, AppNamespace, Cluster, Consumer, GrayRule, ItemSet, NsRef, Release};
use crate::names::{self, APPLICATION_NAMESPACE};

/// A key's version and the revision of its last write (kept after a delete, so an
/// older write arriving late through the feed is recognised and skipped).
#[derive(Debug, Clone, Copy, Default)]
struct KeyVersion {
    version: u64,
    revision: u64,
}

/// What applying a change did that someone waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    /// A release message: the watch key (lowercase), the key as the message was written,
    /// and its new notification id.
    Message {
        watch_key: String,
        spelling: String,
        id: i64,
    },
}

#[derive(Debug, Default)]
pub struct State {
    pub apps: BTreeMap<String, App>,
    pub clusters: BTreeMap<(String, String), Cluster>,
    pub app_namespaces: BTreeMap<(String, String), AppNamespace>,
    /// Lowercase public namespace name → (owner app, stored name).
    public_namespaces: HashMap<String, (String, String)>,
    pub items: HashMap<NsRef, ItemSet>,
    pub releases: BTreeMap<u64, Arc<Release>>,
    /// Releases not rolled back, per namespace: the last is what clients get.
    active: HashMap<NsRef, BTreeSet<u64>>,
    pub gray: HashMap<NsRef, GrayRule>,
    /// Lowercase watch key → (the key as written, notification id).
    messages: HashMap<String, (String, i64)>,
    pub access_keys: BTreeMap<(String, String), AccessKey>,
    pub consumers: BTreeMap<String, Consumer>,
    /// The last release id handed out (the value of `seq/release`).
    pub release_sequence: u64,
    versions: HashMap<String, KeyVersion>,
}

fn parse<T: DeserializeOwned>(key: &str, value: &str) -> Option<T> {
    match serde_json::from_str(value) {
        Ok(v) => Some(v),
        Err(e) => {
            plugin_api::tracing::warn!("config: skipping unreadable record {key}: {e}");
            None
        }
    }
}

fn split2(rest: &str) -> Option<(String, String)> {
    rest.split_once('/').map(|(a, b)| (a.to_string(), b.to_string()))
}

impl State {
    /// The version a write must expect to replace what this replica holds (0: absent).
    pub fn version(&self, key: &str) -> u64 {
        self.versions.get(key).map_or(0, |v| v.version)
    }

    /// A write of `value` under `key`, expecting the version held here.
    pub fn put<T: Serialize>(&self, key: String, value: &T) -> Write {
        let json = serde_json::to_string(value).unwrap_or_default();
        let version = self.version(&key);
        Write::put(key, json).expect_version(version)
    }

    /// A delete of `key`, expecting the version held here.
    pub fn delete(&self, key: String) -> Write {
        let version = self.version(&key);
        Write::delete(key).expect_version(version)
    }

    /// Applies one stored change; `value` `None` is a delete. A change not newer than
    /// the key's last applied write is skipped (the feed repeats this host's commits).
    pub fn apply(&mut self, key: &str, value: Option<&str>, version: u64, revision: u64) -> Applied {
        if key.starts_with(model::AUDIT) {
            return Applied::Nothing;
        }
        if self.versions.get(key).is_some_and(|known| known.revision >= revision) {
            return Applied::Nothing;
        }
        self.versions
            .insert(key.to_string(), KeyVersion { version: if value.is_some() { version } else { 0 }, revision });
        if let Some(rest) = key.strip_prefix(model::APP) {
            match value.and_then(|v| parse::<App>(key, v)) {
                Some(app) => self.apps.insert(rest.to_string(), app),
                None => self.apps.remove(rest),
            };
        } else if let Some(rest) = key.strip_prefix(model::CLUSTER) {
            let Some(id) = split2(rest) else { return Applied::Nothing };
            match value.and_then(|v| parse::<Cluster>(key, v)) {
                Some(cluster) => self.clusters.insert(id, cluster),
                None => self.clusters.remove(&id),
            };
        } else if let Some(rest) = key.strip_prefix(model::APP_NAMESPACE) {
            let Some(id) = split2(rest) else { return Applied::Nothing };
            if let Some(old) = self.app_namespaces.remove(&id)
                && old.is_public
            {
                self.public_namespaces.remove(&old.name.to_ascii_lowercase());
            }
            if let Some(ns) = value.and_then(|v| parse::<AppNamespace>(key, v)) {
                if ns.is_public {
                    self.public_namespaces.insert(ns.name.to_ascii_lowercase(), (ns.app_id.clone(), ns.name.clone()));
                }
                self.app_namespaces.insert(id, ns);
            }
        } else if let Some(rest) = key.strip_prefix(model::ITEMS) {
            let mut parts = rest.splitn(3, '/');
            let (Some(app), Some(cluster), Some(namespace)) = (parts.next(), parts.next(), parts.next()) else {
                return Applied::Nothing;
            };
            let ns = NsRef::new(app, cluster, namespace);
            match value.and_then(|v| parse::<ItemSet>(key, v)) {
                Some(items) => self.items.insert(ns, items),
                None => self.items.remove(&ns),
            };
        } else if key.starts_with(model::RELEASE) {
            let Some(release) = value.and_then(|v| parse::<Release>(key, v)) else { return Applied::Nothing };
            let active = self.active.entry(release.ns.clone()).or_default();
            if release.abandoned {
                active.remove(&release.id);
            } else {
                active.insert(release.id);
            }
            self.releases.insert(release.id, Arc::new(release));
        } else if let Some(rest) = key.strip_prefix(model::GRAY) {
            let mut parts = rest.splitn(3, '/');
            let (Some(app), Some(cluster), Some(namespace)) = (parts.next(), parts.next(), parts.next()) else {
                return Applied::Nothing;
            };
            let ns = NsRef::new(app, cluster, namespace);
            match value.and_then(|v| parse::<GrayRule>(key, v)) {
                Some(rule) => self.gray.insert(ns, rule),
                None => self.gray.remove(&ns),
            };
        } else if let Some(watch_key) = key.strip_prefix(model::MESSAGE) {
            if value.is_some() {
                let id = i64::try_from(revision).unwrap_or(i64::MAX);
                let lower = watch_key.to_ascii_lowercase();
                self.messages.insert(lower.clone(), (watch_key.to_string(), id));
                return Applied::Message { watch_key: lower, spelling: watch_key.to_string(), id };
            }
        } else if let Some(rest) = key.strip_prefix(model::ACCESS_KEY) {
            let Some(id) = split2(rest) else { return Applied::Nothing };
            match value.and_then(|v| parse::<AccessKey>(key, v)) {
                Some(access_key) => self.access_keys.insert(id, access_key),
                None => self.access_keys.remove(&id),
            };
        } else if key == model::RELEASE_SEQUENCE {
            self.release_sequence = value.and_then(|v| v.parse().ok()).unwrap_or(self.release_sequence);
        } else if let Some(name) = key.strip_prefix(model::CONSUMER) {
            match value.and_then(|v| parse::<Consumer>(key, v)) {
                Some(consumer) => self.consumers.insert(name.to_string(), consumer),
                None => self.consumers.remove(name),
            };
        }
        Applied::Nothing
    }

    /// The app's namespace of that name, any case.
    pub fn app_namespace(&self, app: &str, name: &str) -> Option<&AppNamespace> {
        self.app_namespaces
            .range((app.to_string(), String::new())..)
            .take_while(|((a, _), _)| a == app)
            .find(|((_, n), _)| n.eq_ignore_ascii_case(name))
            .map(|(_, ns)| ns)
    }

    /// The public namespace of that name (any case), whoever owns it.
    pub fn public_namespace(&self, name: &str) -> Option<&AppNamespace> {
        let (app, stored) = self.public_namespaces.get(&name.to_ascii_lowercase())?;
        self.app_namespaces.get(&(app.clone(), stored.clone()))
    }

    /// Every namespace of an app (its own and its associations), by name.
    pub fn namespaces_of(&self, app: &str) -> impl Iterator<Item = &AppNamespace> {
        self.app_namespaces
            .range((app.to_string(), String::new())..)
            .take_while(move |((a, _), _)| a == app)
            .map(|(_, ns)| ns)
    }

    /// Every cluster of an app, branches included.
    pub fn clusters_of(&self, app: &str) -> impl Iterator<Item = &Cluster> {
        self.clusters.range((app.to_string(), String::new())..).take_while(move |((a, _), _)| a == app).map(|(_, c)| c)
    }

    pub fn cluster(&self, app: &str, cluster: &str) -> Option<&Cluster> {
        self.clusters.get(&(app.to_string(), cluster.to_string()))
    }

    /// The namespace name a client means (protocol §1.5): `.properties` stripped, then
    /// the stored spelling of the app's namespace or of a public one, else as given.
    pub fn normalize_namespace(&self, app: &str, given: &str) -> String {
        let given = names::strip_properties_suffix(given);
        if let Some(ns) = self.app_namespace(app, given) {
            return ns.name.clone();
        }
        if let Some(ns) = self.public_namespace(given) {
            return ns.name.clone();
        }
        given.to_string()
    }

    /// Whether `namespace` is the app's own (not a public one it only reads or overrides).
    pub fn owns_namespace(&self, app: &str, namespace: &str) -> bool {
        namespace.eq_ignore_ascii_case(APPLICATION_NAMESPACE)
            || self.app_namespace(app, namespace).is_some_and(|ns| !ns.associated)
    }

    /// The release clients of this namespace get (the newest not rolled back).
    pub fn latest_release(&self, ns: &NsRef) -> Option<&Arc<Release>> {
        let id = self.active.get(ns)?.last()?;
        self.releases.get(id)
    }

    /// Active releases of a namespace (not rolled back), oldest first.
    pub fn active_ids(&self, ns: &NsRef) -> Vec<u64> {
        self.active.get(ns).map(|ids| ids.iter().copied().collect()).unwrap_or_default()
    }

    /// The notification id of a watch key (any case); `None` before its first message.
    pub fn message_id(&self, watch_key: &str) -> Option<i64> {
        self.messages.get(&watch_key.to_ascii_lowercase()).map(|(_, id)| *id)
    }

    /// A watch key (any case) as its messages spell it.
    pub fn message_key_spelling(&self, watch_key: &str) -> Option<String> {
        self.messages.get(&watch_key.to_ascii_lowercase()).map(|(key, _)| key.clone())
    }

    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    pub fn access_keys_of(&self, app: &str) -> impl Iterator<Item = &AccessKey> {
        self.access_keys
            .range((app.to_string(), String::new())..)
            .take_while(move |((a, _), _)| a == app)
            .map(|(_, k)| k)
    }

    pub fn consumer_by_token_hash(&self, token_sha256: &str) -> Option<&Consumer> {
        self.consumers.values().find(|c| c.token_sha256 == token_sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stamp;
    use crate::names::Format;

    fn namespace(app: &str, name: &str, is_public: bool) -> String {
        serde_json::to_string(&AppNamespace {
            app_id: app.into(),
            name: name.into(),
            format: Format::Properties,
            is_public,
            associated: false,
            comment: String::new(),
            stamp: Stamp::default(),
        })
        .unwrap()
    }

    #[test]
    fn namespaces_normalise_to_the_stored_spelling() {
        let mut state = State::default();
        state.apply("appns/app1/Datasource", Some(&namespace("app1", "Datasource", false)), 1, 1);
        state.apply("appns/owner/FX.apollo", Some(&namespace("owner", "FX.apollo", true)), 1, 2);
        assert_eq!(state.normalize_namespace("app1", "datasource.properties"), "Datasource");
        assert_eq!(state.normalize_namespace("app1", "fx.apollo"), "FX.apollo");
        assert_eq!(state.normalize_namespace("app1", "Unknown"), "Unknown");
        assert!(!state.owns_namespace("app1", "FX.apollo"));
        assert!(state.owns_namespace("owner", "fx.apollo"));
    }

    #[test]
    fn a_late_older_write_is_skipped_and_deletes_are_remembered() {
        let mut state = State::default();
        state.apply("consumer/a", None, 0, 5);
        let consumer =
            Consumer { name: "a".into(), token_sha256: "x".into(), apps: Default::default(), stamp: Stamp::default() };
        state.apply("consumer/a", Some(&serde_json::to_string(&consumer).unwrap()), 1, 4);
        assert!(state.consumers.is_empty(), "revision 4 is older than the delete at 5");
        assert_eq!(state.version("consumer/a"), 0);
    }

    #[test]
    fn messages_carry_the_revision_as_their_id() {
        let mut state = State::default();
        let applied = state.apply("msg/App1+default+application", Some("App1+default+application"), 3, 17);
        assert_eq!(
            applied,
            Applied::Message {
                watch_key: "app1+default+application".into(),
                spelling: "App1+default+application".into(),
                id: 17
            }
        );
        assert_eq!(state.message_id("APP1+DEFAULT+APPLICATION"), Some(17));
    }
}
