//! The operator's routes (behind the host's token): consumers and their rights, access
//! keys, release history and diffs, the audit trail, and the module's status. Secrets
//! and tokens appear once, in the answer that creates them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use plugin_api::{HandlerResult, ModuleError, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConfigCenter;
use crate::edit::{self, credentials};
use crate::model::{self, AccessKey, AuditRecord, Grant};

/// Most audit records one answer holds.
const MAX_AUDIT_LIMIT: u32 = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsumerBody {
    name: String,
    apps: BTreeMap<String, Grant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AccessKeyBody {
    mode: Option<u8>,
    enabled: Option<bool>,
}

/// The operator's name (the host authenticated every admin route).
fn operator(req: &Request) -> String {
    req.user.clone().unwrap_or_else(|| "operator".into())
}

fn masked(key: &AccessKey) -> Value {
    let visible: String = key.secret.chars().take(4).collect();
    json!({"id": key.id, "appId": key.app_id, "secret": format!("{visible}…"), "enabled": key.enabled, "mode": key.mode})
}

fn release_summary(release: &model::Release) -> Value {
    json!({
        "id": release.id, "releaseKey": release.release_key, "appId": release.ns.app,
        "cluster": release.ns.cluster, "namespace": release.ns.namespace, "name": release.name,
        "comment": release.comment, "author": release.author, "time": crate::wire::gson_date(release.time_ms),
        "abandoned": release.abandoned, "branchOf": release.branch_of,
    })
}

impl ConfigCenter {
    pub(crate) async fn admin_create_consumer(self: Arc<Self>, req: Request) -> HandlerResult {
        let body: ConsumerBody = req.json()?;
        let actor = operator(&req);
        let (consumer, token) =
            self.replica.transact(|s| credentials::create_consumer(s, &actor, &body.name, body.apps.clone())).await?;
        Ok(Response::json(&json!({"name": consumer.name, "apps": consumer.apps, "token": token})))
    }

    pub(crate) async fn admin_list_consumers(self: Arc<Self>, _req: Request) -> HandlerResult {
        let state = self.replica.read();
        let consumers: Vec<Value> = state
            .consumers
            .values()
            .map(|c| json!({"name": c.name, "apps": c.apps, "created": crate::wire::gson_date(c.stamp.created_ms)}))
            .collect();
        Ok(Response::json(&consumers))
    }

    pub(crate) async fn admin_delete_consumer(self: Arc<Self>, req: Request) -> HandlerResult {
        let name = req.required_param("name")?;
        self.replica.transact(|s| credentials::delete_consumer(s, &operator(&req), name)).await?;
        Ok(Response::empty(204))
    }

    pub(crate) async fn admin_grant(self: Arc<Self>, req: Request) -> HandlerResult {
        let (name, app) = (req.required_param("name")?, req.required_param("appId")?);
        let grant: Grant = req.json()?;
        let consumer = self.replica.transact(|s| credentials::grant(s, &operator(&req), name, app, grant)).await?;
        Ok(Response::json(&json!({"name": consumer.name, "apps": consumer.apps})))
    }

    pub(crate) async fn admin_create_access_key(self: Arc<Self>, req: Request) -> HandlerResult {
        let app = req.required_param("appId")?;
        let body: AccessKeyBody = if req.body.is_empty() { AccessKeyBody::default() } else { req.json()? };
        let mode = body.mode.unwrap_or(model::ACCESS_KEY_FILTER);
        let key = self.replica.transact(|s| credentials::create_access_key(s, &operator(&req), app, mode)).await?;
        Ok(Response::json(
            &json!({"id": key.id, "appId": key.app_id, "secret": key.secret, "enabled": key.enabled, "mode": key.mode}),
        ))
    }

    pub(crate) async fn admin_list_access_keys(self: Arc<Self>, req: Request) -> HandlerResult {
        let app = req.required_param("appId")?;
        let state = self.replica.read();
        if !state.apps.contains_key(app) {
            return Err(ModuleError::not_found(format!("app not found: {app}")));
        }
        Ok(Response::json(&state.access_keys_of(app).map(masked).collect::<Vec<_>>()))
    }

    pub(crate) async fn admin_update_access_key(self: Arc<Self>, req: Request) -> HandlerResult {
        let (app, id) = (req.required_param("appId")?, req.required_param("id")?);
        let body: AccessKeyBody = req.json()?;
        let key = self
            .replica
            .transact(|s| credentials::update_access_key(s, &operator(&req), app, id, body.enabled, body.mode))
            .await?;
        Ok(Response::json(&masked(&key)))
    }

    pub(crate) async fn admin_delete_access_key(self: Arc<Self>, req: Request) -> HandlerResult {
        let (app, id) = (req.required_param("appId")?, req.required_param("id")?);
        self.replica.transact(|s| credentials::delete_access_key(s, &operator(&req), app, id)).await?;
        Ok(Response::empty(204))
    }

    /// A namespace's releases, newest first (gray releases of its branches included).
    pub(crate) async fn admin_history(self: Arc<Self>, req: Request) -> HandlerResult {
        let (app, cluster, namespace) =
            (req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?);
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, cluster, namespace)?;
        let history: Vec<Value> = state
            .releases
            .values()
            .rev()
            .filter(|r| {
                r.ns == ns
                    || (r.branch_of.as_deref() == Some(&ns.cluster)
                        && r.ns.app == ns.app
                        && r.ns.namespace == ns.namespace)
            })
            .map(|r| release_summary(r))
            .collect();
        Ok(Response::json(&history))
    }

    pub(crate) async fn admin_get_release(self: Arc<Self>, req: Request) -> HandlerResult {
        let id: u64 = req
            .required_param("id")?
            .parse()
            .map_err(|_| ModuleError::bad_request("the release id must be a number"))?;
        let state = self.replica.read();
        let release =
            state.releases.get(&id).ok_or_else(|| ModuleError::not_found(format!("release not found: {id}")))?;
        let mut summary = release_summary(release);
        summary["configurations"] = json!(release.configurations);
        Ok(Response::json(&summary))
    }

    pub(crate) async fn admin_compare(self: Arc<Self>, req: Request) -> HandlerResult {
        let id = |name: &str| -> Result<u64, ModuleError> {
            req.query_param(name)
                .ok_or_else(|| ModuleError::bad_request(format!("?{name}=<release id> is required")))?
                .parse()
                .map_err(|_| ModuleError::bad_request(format!("{name} must be a release id")))
        };
        let (base, to) = (id("base")?, id("to")?);
        let state = self.replica.read();
        let get =
            |id: u64| state.releases.get(&id).ok_or_else(|| ModuleError::not_found(format!("release not found: {id}")));
        Ok(Response::json(&edit::releases::compare(&get(base)?.configurations, &get(to)?.configurations)))
    }

    /// Working items against the latest release: what a release would change.
    pub(crate) async fn admin_pending_changes(self: Arc<Self>, req: Request) -> HandlerResult {
        let (app, cluster, namespace) =
            (req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?);
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, cluster, namespace)?;
        let released = state.latest_release(&ns).map(|r| r.configurations.clone()).unwrap_or_default();
        let working = state.items.get(&ns).map(|i| i.configurations()).unwrap_or_default();
        Ok(Response::json(&edit::releases::compare(&released, &working)))
    }

    /// The newest audit records first (they are read from storage, not kept in memory).
    pub(crate) async fn admin_audit(self: Arc<Self>, req: Request) -> HandlerResult {
        let limit: u32 = match req.query_param("limit") {
            Some(v) => v.parse().map_err(|_| ModuleError::bad_request("limit must be a number"))?,
            None => 100,
        };
        let limit = limit.clamp(1, MAX_AUDIT_LIMIT);
        // Audit keys sort newest first.
        let page = self.replica.storage().list(model::AUDIT, None, limit).await?;
        let records = page.entries.iter().filter_map(|entry| serde_json::from_str::<AuditRecord>(&entry.value).ok());
        let newest_first: Vec<Value> = records
            .map(|r| json!({"time": crate::wire::gson_date(r.time_ms), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}))
            .collect();
        Ok(Response::json(&newest_first))
    }

    pub(crate) async fn admin_status(self: Arc<Self>, _req: Request) -> HandlerResult {
        let state = self.replica.read();
        Ok(Response::json(&json!({
            "parked_polls": self.parked.load(Ordering::Relaxed),
            "watch_keys": self.replica.watchers.watched_keys(),
            "notification_head": self.replica.head(),
            "namespaces_with_messages": state.message_count(),
            "apps": state.apps.len(),
            "releases": state.releases.len(),
            "envs": self.settings.envs,
            "long_poll_timeout_secs": self.settings.long_poll_hold.as_secs(),
        })))
    }
}
