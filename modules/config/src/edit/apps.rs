//! Apps, clusters and app namespaces (private, public, and associations of another
//! app's public namespace).

use plugin_api::ModuleError;

use super::valid_name;
use crate::model::{self, App, AppNamespace, Cluster, Stamp};
use crate::names::{self, APPLICATION_NAMESPACE, DEFAULT_CLUSTER, Format};
use crate::replica::{Plan, now_ms};
use crate::state::State;

#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub app_id: String,
    pub name: String,
    pub org_id: String,
    pub org_name: String,
    pub owner_name: String,
    pub owner_email: String,
}

/// A new app with its `default` cluster and `application` namespace, as Ctrip creates it.
pub fn create_app(state: &State, actor: &str, new: &NewApp) -> Result<Plan<App>, ModuleError> {
    valid_name("appId", &new.app_id)?;
    if state.apps.keys().any(|a| a.eq_ignore_ascii_case(&new.app_id)) {
        return Err(ModuleError::bad_request(format!("app already exists: {}", new.app_id)));
    }
    if !new.org_id.is_empty() {
        valid_name("orgId", &new.org_id)?;
    }
    let stamp = Stamp::new(actor, now_ms());
    let app = App {
        app_id: new.app_id.clone(),
        name: if new.name.is_empty() { new.app_id.clone() } else { new.name.clone() },
        org_id: new.org_id.clone(),
        org_name: new.org_name.clone(),
        owner_name: if new.owner_name.is_empty() { actor.to_string() } else { new.owner_name.clone() },
        owner_email: new.owner_email.clone(),
        stamp: stamp.clone(),
    };
    let cluster =
        Cluster { app_id: app.app_id.clone(), name: DEFAULT_CLUSTER.into(), parent: None, stamp: stamp.clone() };
    let namespace = AppNamespace {
        app_id: app.app_id.clone(),
        name: APPLICATION_NAMESPACE.into(),
        format: Format::Properties,
        is_public: false,
        associated: false,
        comment: "default app namespace".into(),
        stamp,
    };
    let writes = vec![
        state.put(model::app_key(&app.app_id), &app),
        state.put(model::cluster_key(&app.app_id, DEFAULT_CLUSTER), &cluster),
        state.put(model::app_namespace_key(&app.app_id, APPLICATION_NAMESPACE), &namespace),
    ];
    Ok(Plan::new(writes, app.clone()).audited(actor, "create-app", app.app_id, ""))
}

pub fn create_cluster(state: &State, actor: &str, app: &str, name: &str) -> Result<Plan<Cluster>, ModuleError> {
    if !state.apps.contains_key(app) {
        return Err(ModuleError::not_found(format!("app not found: {app}")));
    }
    valid_name("cluster name", name)?;
    if state.cluster(app, name).is_some() {
        return Err(ModuleError::bad_request(format!("cluster already exists: {app}/{name}")));
    }
    let cluster = Cluster { app_id: app.into(), name: name.into(), parent: None, stamp: Stamp::new(actor, now_ms()) };
    let writes = vec![state.put(model::cluster_key(app, name), &cluster)];
    Ok(Plan::new(writes, cluster).audited(actor, "create-cluster", format!("{app}/{name}"), ""))
}

#[derive(Debug, Clone)]
pub struct NewNamespace {
    pub app_id: String,
    pub name: String,
    pub format: String,
    pub is_public: bool,
    pub append_namespace_prefix: bool,
    pub comment: String,
}

/// A namespace of an app. A public one is named `{orgId}.{name}` unless asked not to,
/// and is unique across apps; a private one named like another app's public namespace
/// is the app's association of it (its own overrides, merged over the public values).
pub fn create_app_namespace(state: &State, actor: &str, new: &NewNamespace) -> Result<Plan<AppNamespace>, ModuleError> {
    let Some(app) = state.apps.get(&new.app_id) else {
        return Err(ModuleError::not_found(format!("app not found: {}", new.app_id)));
    };
    let format = if new.format.is_empty() {
        Format::Properties
    } else {
        Format::parse(&new.format).ok_or_else(|| {
            ModuleError::bad_request(format!(
                "format {:?} is not one of properties, json, yaml, yml, xml, txt",
                new.format
            ))
        })?
    };
    valid_name("namespace name", &new.name)?;
    let mut name = names::strip_properties_suffix(&new.name).to_string();
    if new.is_public
        && new.append_namespace_prefix
        && !app.org_id.is_empty()
        && !name.starts_with(&format!("{}.", app.org_id))
    {
        name = format!("{}.{name}", app.org_id);
    }
    if format != Format::Properties && Format::of_namespace(&name) != format {
        name = format!("{name}.{}", format.as_str());
    }
    valid_name("namespace name", &name)?;
    if state.app_namespace(&new.app_id, &name).is_some() {
        return Err(ModuleError::bad_request(format!("namespace already exists: {}/{name}", new.app_id)));
    }
    let public = state.public_namespace(&name).filter(|ns| ns.app_id != new.app_id).cloned();
    if new.is_public && public.is_some() {
        return Err(ModuleError::bad_request(format!("a public namespace named {name} exists already")));
    }
    let namespace = AppNamespace {
        app_id: new.app_id.clone(),
        name: public.as_ref().map_or(name.clone(), |p| p.name.clone()),
        format: public.as_ref().map_or(format, |p| p.format),
        is_public: new.is_public,
        associated: public.is_some(),
        comment: new.comment.clone(),
        stamp: Stamp::new(actor, now_ms()),
    };
    let writes = vec![state.put(model::app_namespace_key(&new.app_id, &namespace.name), &namespace)];
    let action = if namespace.associated { "associate-namespace" } else { "create-namespace" };
    Ok(Plan::new(writes, namespace.clone()).audited(
        actor,
        action,
        format!("{}/{}", new.app_id, namespace.name),
        namespace.format.as_str(),
    ))
}
