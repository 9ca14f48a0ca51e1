//! Which release a client gets (protocol §1.1 steps 3–8, §1.6, §2): the app's own
//! namespace with cluster fallback and gray rules, merged with the public namespace of
//! that name when another app owns it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{NsRef, Release};
use crate::names::{self, Format, NO_APP_ID_PLACEHOLDER};
use crate::state::State;

/// Who asks, for what.
#[derive(Debug, Clone, Default)]
pub struct ClientQuery<'a> {
    pub app: &'a str,
    pub cluster: &'a str,
    /// Normalised (stored spelling, no `.properties`).
    pub namespace: &'a str,
    pub data_center: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub label: Option<&'a str>,
}

/// What the client is served.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The cluster of the own release served (a branch name for gray clients).
    pub cluster: String,
    pub configurations: BTreeMap<String, String>,
    /// Release keys joined with `+`.
    pub release_key: String,
    pub format: Format,
}

/// The release of `config_app`'s namespace this client gets, and the cluster it is from.
fn load(state: &State, config_app: &str, query: &ClientQuery<'_>) -> Option<(Arc<Release>, String)> {
    for cluster in names::cluster_fallback(query.cluster, query.data_center) {
        let ns = NsRef::new(config_app, cluster, query.namespace);
        if let Some(rule) = state.gray.get(&ns)
            && let Some(release) = rule.release_id.and_then(|id| state.releases.get(&id))
            && !release.abandoned
            && rule.rules.iter().any(|item| item.matches(query.app, query.ip, query.label))
        {
            return Some((Arc::clone(release), rule.branch.clone()));
        }
        if let Some(release) = state.latest_release(&ns) {
            return Some((Arc::clone(release), cluster.to_string()));
        }
    }
    None
}

pub fn resolve(state: &State, query: &ClientQuery<'_>) -> Option<Resolved> {
    let own = (query.app != NO_APP_ID_PLACEHOLDER).then(|| load(state, query.app, query)).flatten();
    let public = if state.owns_namespace(query.app, query.namespace) {
        None
    } else {
        state
            .public_namespace(query.namespace)
            .filter(|ns| ns.app_id != query.app)
            .and_then(|ns| load(state, &ns.app_id.clone(), query))
    };
    let format = state
        .app_namespace(query.app, query.namespace)
        .or_else(|| state.public_namespace(query.namespace))
        .map_or_else(|| Format::of_namespace(query.namespace), |ns| ns.format);
    let cluster = own.as_ref().map_or_else(|| query.cluster.to_string(), |(_, cluster)| cluster.clone());
    // Own first, then public.
    let releases: Vec<Arc<Release>> = own.into_iter().chain(public).map(|(release, _)| release).collect();
    if releases.is_empty() {
        return None;
    }
    let mut configurations = BTreeMap::new();
    // Public first, own over it.
    for release in releases.iter().rev() {
        configurations.extend(release.configurations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let release_key = releases.iter().map(|r| r.release_key.as_str()).collect::<Vec<_>>().join("+");
    Some(Resolved { cluster, configurations, release_key, format })
}

/// The watch keys of a namespace for a client (protocol §1.3 step 2): its cluster, its
/// data center, `default`, and the same for the public namespace's owner. Lowercase.
pub fn watch_keys(state: &State, app: &str, cluster: &str, data_center: Option<&str>, namespace: &str) -> Vec<String> {
    let clusters = names::cluster_fallback(cluster, data_center);
    let mut apps = vec![app.to_string()];
    if !state.owns_namespace(app, namespace)
        && let Some(public) = state.public_namespace(namespace)
        && public.app_id != app
    {
        apps.push(public.app_id.clone());
    }
    let mut keys = Vec::with_capacity(apps.len() * clusters.len());
    for app in &apps {
        for cluster in &clusters {
            keys.push(names::watch_key(app, cluster, namespace).to_ascii_lowercase());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppNamespace, GrayRule, RuleItem, Stamp};

    fn release(id: u64, ns: NsRef, pairs: &[(&str, &str)]) -> String {
        serde_json::to_string(&Release {
            id,
            release_key: format!("key{id}"),
            ns,
            name: "t".into(),
            comment: String::new(),
            configurations: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            author: "u".into(),
            time_ms: 0,
            abandoned: false,
            branch_of: None,
        })
        .unwrap()
    }

    fn state() -> State {
        let mut s = State::default();
        let public = AppNamespace {
            app_id: "owner".into(),
            name: "FX.shared".into(),
            format: Format::Properties,
            is_public: true,
            associated: false,
            comment: String::new(),
            stamp: Stamp::default(),
        };
        s.apply("appns/owner/FX.shared", Some(&serde_json::to_string(&public).unwrap()), 1, 1);
        s.apply("release/1", Some(&release(1, NsRef::new("app", "default", "application"), &[("a", "default")])), 1, 2);
        s.apply("release/2", Some(&release(2, NsRef::new("app", "sha", "application"), &[("a", "sha")])), 1, 3);
        let shared = NsRef::new("owner", "default", "FX.shared");
        s.apply("release/3", Some(&release(3, shared, &[("x", "public"), ("y", "public")])), 1, 4);
        s.apply("release/4", Some(&release(4, NsRef::new("app", "default", "FX.shared"), &[("y", "own")])), 1, 5);
        s
    }

    fn query<'a>(cluster: &'a str, namespace: &'a str) -> ClientQuery<'a> {
        ClientQuery { app: "app", cluster, namespace, ..Default::default() }
    }

    #[test]
    fn clusters_fall_back_to_default() {
        let s = state();
        assert_eq!(resolve(&s, &query("sha", "application")).unwrap().configurations["a"], "sha");
        let other = resolve(&s, &query("other", "application")).unwrap();
        assert_eq!((other.configurations["a"].as_str(), other.cluster.as_str()), ("default", "default"));
        assert!(resolve(&s, &query("default", "missing")).is_none());
    }

    #[test]
    fn public_namespaces_merge_under_the_apps_own_values() {
        let s = state();
        let merged = resolve(&s, &query("default", "FX.shared")).unwrap();
        assert_eq!(merged.configurations["x"], "public");
        assert_eq!(merged.configurations["y"], "own");
        assert_eq!(merged.release_key, "key4+key3");
        let keys = watch_keys(&s, "app", "default", None, "FX.shared");
        assert_eq!(keys, vec!["app+default+fx.shared", "owner+default+fx.shared"]);
    }

    #[test]
    fn gray_clients_get_the_branch_release() {
        let mut s = state();
        let ns = NsRef::new("app", "default", "application");
        s.apply("release/5", Some(&release(5, ns.in_cluster("gray1"), &[("a", "gray")])), 1, 6);
        let rule = GrayRule {
            ns: ns.clone(),
            branch: "gray1".into(),
            rules: vec![RuleItem {
                client_app_id: "app".into(),
                client_ip_list: vec!["10.0.0.9".into()],
                ..Default::default()
            }],
            release_id: Some(5),
            deleted_keys: Vec::new(),
            stamp: Stamp::default(),
        };
        s.apply("gray/app/default/application", Some(&serde_json::to_string(&rule).unwrap()), 1, 7);
        let gray = resolve(&s, &ClientQuery { ip: Some("10.0.0.9"), ..query("default", "application") }).unwrap();
        assert_eq!((gray.configurations["a"].as_str(), gray.cluster.as_str()), ("gray", "gray1"));
        let master = resolve(&s, &ClientQuery { ip: Some("10.0.0.8"), ..query("default", "application") }).unwrap();
        assert_eq!(master.configurations["a"], "default");
    }
}
