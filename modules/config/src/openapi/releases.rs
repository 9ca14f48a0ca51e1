//! Open API: releases and rollback.

use std::sync::Arc;

use plugin_api::{HandlerResult, ModuleError, Request, Response};
use serde::Deserialize;

use super::{Right, dto};
use crate::ConfigCenter;
use crate::edit::{self, releases::ReleaseInfo};
use crate::wire;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ReleaseBody {
    pub release_title: String,
    pub release_comment: String,
}

impl ConfigCenter {
    pub(crate) async fn open_release(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) =
            (req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?);
        let actor = self.open_api_caller(&req, app, Right::Release)?;
        let body: ReleaseBody = req.json()?;
        let info = ReleaseInfo { title: &body.release_title, comment: &body.release_comment };
        let release =
            self.replica.transact(|s| edit::releases::publish(s, &actor, app, cluster, namespace, &info)).await?;
        self.metrics.releases.with(&["normal"]).inc();
        Ok(wire::json(&dto::release(&release)))
    }

    /// The release clients of the namespace get now; an empty 200 when there is none.
    pub(crate) async fn open_latest_release(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) =
            (req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?);
        self.open_api_caller(&req, app, Right::Read)?;
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, cluster, namespace)?;
        Ok(match state.latest_release(&ns) {
            Some(release) => wire::json(&dto::release(release)),
            None => Response::empty(200),
        })
    }

    pub(crate) async fn open_rollback(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let id: u64 = req
            .required_param("releaseId")?
            .parse()
            .map_err(|_| ModuleError::bad_request("releaseId must be a number"))?;
        let app = self.replica.read().releases.get(&id).map(|r| r.ns.app.clone());
        let app = app.ok_or_else(|| ModuleError::not_found(format!("release not found: {id}")))?;
        let actor = self.open_api_caller(&req, &app, Right::Release)?;
        self.replica.transact(|s| edit::releases::rollback(s, &actor, id)).await?;
        self.metrics.releases.with(&["rollback"]).inc();
        Ok(Response::empty(200))
    }
}
