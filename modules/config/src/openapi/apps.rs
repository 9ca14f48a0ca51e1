//! Open API: apps, clusters and namespaces.

use std::sync::Arc;

use plugin_api::{HandlerResult, ModuleError, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Right, dto};
use crate::ConfigCenter;
use crate::edit::{self, apps::NewApp, apps::NewNamespace};
use crate::model::NsRef;
use crate::wire;

/// `POST /openapi/v1/apps`: Ctrip 2.x wraps the app (`{"app": {...}, "admins": [...]}`);
/// a bare app is taken too.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AppBody {
    app_id: String,
    name: String,
    org_id: String,
    org_name: String,
    owner_name: String,
    owner_email: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CreateAppBody {
    app: Option<AppBody>,
    #[serde(flatten)]
    bare: AppBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ClusterBody {
    name: String,
    app_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AppNamespaceBody {
    name: String,
    app_id: String,
    format: String,
    is_public: bool,
    append_namespace_prefix: bool,
    comment: String,
}

impl Default for AppNamespaceBody {
    fn default() -> Self {
        Self {
            name: String::new(),
            app_id: String::new(),
            format: "properties".into(),
            is_public: false,
            append_namespace_prefix: true,
            comment: String::new(),
        }
    }
}

impl ConfigCenter {
    pub(crate) async fn open_create_app(self: Arc<Self>, req: Request) -> HandlerResult {
        let body: CreateAppBody = req.json()?;
        let body = body.app.unwrap_or(body.bare);
        let actor = self.open_api_caller(&req, &body.app_id, Right::Operate)?;
        let new = NewApp {
            app_id: body.app_id,
            name: body.name,
            org_id: body.org_id,
            org_name: body.org_name,
            owner_name: body.owner_name,
            owner_email: body.owner_email,
        };
        let app = self.replica.transact(|s| edit::apps::create_app(s, &actor, &new)).await?;
        Ok(wire::json(&dto::app(&app)))
    }

    pub(crate) async fn open_list_apps(self: Arc<Self>, req: Request) -> HandlerResult {
        let wanted: Option<Vec<String>> = req
            .query_param("appIds")
            .map(|ids| ids.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
        let caller = self.caller(&req)?;
        let state = self.replica.read();
        let apps: Vec<Value> = state
            .apps
            .values()
            .filter(|app| wanted.as_ref().is_none_or(|w| w.contains(&app.app_id)))
            .filter(|app| caller.may(&app.app_id, Right::Read))
            .map(dto::app)
            .collect();
        Ok(wire::json(&apps))
    }

    pub(crate) async fn open_env_clusters(self: Arc<Self>, req: Request) -> HandlerResult {
        let app = req.required_param("appId")?;
        self.open_api_caller(&req, app, Right::Read)?;
        let state = self.replica.read();
        if !state.apps.contains_key(app) {
            return Err(ModuleError::not_found(format!("app not found: {app}")));
        }
        let clusters: Vec<&str> =
            state.clusters_of(app).filter(|c| c.parent.is_none()).map(|c| c.name.as_str()).collect();
        let envs: Vec<Value> = self.settings.envs.iter().map(|env| json!({"env": env, "clusters": clusters})).collect();
        Ok(wire::json(&envs))
    }

    pub(crate) async fn open_create_cluster(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let app = req.required_param("appId")?.to_string();
        let actor = self.open_api_caller(&req, &app, Right::Edit)?;
        let body: ClusterBody = req.json()?;
        if !body.app_id.is_empty() && body.app_id != app {
            return Err(ModuleError::bad_request(format!(
                "appId {} in the body is not {app} of the path",
                body.app_id
            )));
        }
        let cluster = self.replica.transact(|s| edit::apps::create_cluster(s, &actor, &app, &body.name)).await?;
        Ok(wire::json(&dto::cluster(&cluster)))
    }

    pub(crate) async fn open_get_cluster(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster) = (req.required_param("appId")?, req.required_param("cluster")?);
        self.open_api_caller(&req, app, Right::Read)?;
        let state = self.replica.read();
        let cluster = state
            .cluster(app, cluster)
            .ok_or_else(|| ModuleError::not_found(format!("cluster not found: {app}/{cluster}")))?;
        Ok(wire::json(&dto::cluster(cluster)))
    }

    pub(crate) async fn open_create_app_namespace(self: Arc<Self>, req: Request) -> HandlerResult {
        let app = req.required_param("appId")?.to_string();
        let actor = self.open_api_caller(&req, &app, Right::Edit)?;
        let body: AppNamespaceBody = req.json()?;
        if !body.app_id.is_empty() && body.app_id != app {
            return Err(ModuleError::bad_request(format!(
                "appId {} in the body is not {app} of the path",
                body.app_id
            )));
        }
        let new = NewNamespace {
            app_id: app,
            name: body.name,
            format: body.format,
            is_public: body.is_public,
            append_namespace_prefix: body.append_namespace_prefix,
            comment: body.comment,
        };
        let namespace = self.replica.transact(|s| edit::apps::create_app_namespace(s, &actor, &new)).await?;
        Ok(wire::json(&dto::app_namespace(&namespace)))
    }

    pub(crate) async fn open_list_namespaces(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster) = (req.required_param("appId")?, req.required_param("cluster")?);
        self.open_api_caller(&req, app, Right::Read)?;
        let fill = req.query_param("fillItemDetail").is_none_or(|v| v != "false");
        let state = self.replica.read();
        if state.cluster(app, cluster).is_none() {
            return Err(ModuleError::not_found(format!("cluster not found: {app}/{cluster}")));
        }
        let namespaces: Vec<Value> = state
            .namespaces_of(app)
            .map(|ns| {
                let at = NsRef::new(app, cluster, &ns.name);
                dto::namespace(&at, ns, state.items.get(&at), fill)
            })
            .collect();
        Ok(wire::json(&namespaces))
    }

    pub(crate) async fn open_get_namespace(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) =
            (req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?);
        self.open_api_caller(&req, app, Right::Read)?;
        let fill = req.query_param("fillItemDetail").is_none_or(|v| v != "false");
        let state = self.replica.read();
        let (ns, app_namespace) = edit::existing_namespace(&state, app, cluster, namespace)?;
        Ok(wire::json(&dto::namespace(&ns, &app_namespace, state.items.get(&ns), fill)))
    }

    /// Namespaces are never locked here: edits are atomic commits, not portal sessions.
    pub(crate) async fn open_namespace_lock(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) =
            (req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?);
        self.open_api_caller(&req, app, Right::Read)?;
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, cluster, namespace)?;
        Ok(wire::json(&json!({"namespaceName": ns.namespace, "isLocked": false})))
    }
}
