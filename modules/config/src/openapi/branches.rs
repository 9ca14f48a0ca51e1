//! Open API: a namespace's gray branch, its rules, gray publish, merge and abandon.

use std::sync::Arc;

use plugin_api::{HandlerResult, ModuleError, Request, Response};
use serde::Deserialize;

use super::releases::ReleaseBody;
use super::{Right, dto};
use crate::ConfigCenter;
use crate::edit::{self, gray::BranchAt, releases::ReleaseInfo};
use crate::model::RuleItem;
use crate::wire;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GrayDeleteBody {
    release_title: String,
    release_comment: String,
    gray_del_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RulesBody {
    rule_items: Vec<RuleItem>,
}

fn coordinates(req: &Request) -> Result<(&str, &str, &str), ModuleError> {
    Ok((req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?))
}

fn branch_at(req: &Request) -> Result<BranchAt<'_>, ModuleError> {
    let (app, cluster, namespace) = coordinates(req)?;
    Ok(BranchAt { app, cluster, namespace, branch: req.required_param("branch")? })
}

impl ConfigCenter {
    /// The namespace's branch (as a namespace of the branch cluster); empty 200 if none.
    pub(crate) async fn open_get_branch(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        self.open_api_caller(&req, app, Right::Read)?;
        let state = self.replica.read();
        let (ns, app_namespace) = edit::existing_namespace(&state, app, cluster, namespace)?;
        Ok(match state.gray.get(&ns) {
            Some(rule) => {
                let branch = ns.in_cluster(&rule.branch);
                wire::json(&dto::namespace(&branch, &app_namespace, state.items.get(&branch), true))
            }
            None => Response::empty(200),
        })
    }

    pub(crate) async fn open_create_branch(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        let actor = self.open_api_caller(&req, app, Right::Edit)?;
        let (branch, _) = self.replica.transact(|s| edit::gray::create(s, &actor, app, cluster, namespace)).await?;
        let state = self.replica.read();
        let app_namespace = state.app_namespace(app, &branch.namespace).cloned();
        let app_namespace = app_namespace.ok_or_else(|| ModuleError::not_found("namespace vanished"))?;
        Ok(wire::json(&dto::namespace(&branch, &app_namespace, None, true)))
    }

    pub(crate) async fn open_delete_branch(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let at = branch_at(&req)?;
        let app = at.app;
        let actor = self.open_api_caller(&req, app, Right::Release)?;
        self.replica.transact(|s| edit::gray::abandon(s, &actor, &at)).await?;
        Ok(Response::empty(200))
    }

    pub(crate) async fn open_get_rules(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let at = branch_at(&req)?;
        let app = at.app;
        self.open_api_caller(&req, app, Right::Read)?;
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, at.cluster, at.namespace)?;
        match state.gray.get(&ns).filter(|rule| rule.branch == at.branch) {
            Some(rule) => Ok(wire::json(&dto::gray_rule(rule))),
            None => Err(ModuleError::not_found(format!("branch not found: {}", at.branch))),
        }
    }

    pub(crate) async fn open_set_rules(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let at = branch_at(&req)?;
        let app = at.app;
        let actor = self.open_api_caller(&req, app, Right::Release)?;
        let body: RulesBody = req.json()?;
        self.replica.transact(|s| edit::gray::set_rules(s, &actor, &at, body.rule_items.clone())).await?;
        Ok(Response::empty(200))
    }

    pub(crate) async fn open_gray_release(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let at = branch_at(&req)?;
        let app = at.app;
        let actor = self.open_api_caller(&req, app, Right::Release)?;
        let body: ReleaseBody = req.json()?;
        let info = ReleaseInfo { title: &body.release_title, comment: &body.release_comment };
        let release = self.replica.transact(|s| edit::gray::publish(s, &actor, &at, &info, &[])).await?;
        self.metrics.releases.with(&["gray"]).inc();
        Ok(wire::json(&dto::release(&release)))
    }

    /// A gray release without some of the master's keys (`grayDelKeys`).
    pub(crate) async fn open_gray_delete_release(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let at = branch_at(&req)?;
        let actor = self.open_api_caller(&req, at.app, Right::Release)?;
        let body: GrayDeleteBody = req.json()?;
        if body.gray_del_keys.is_empty() {
            return Err(ModuleError::bad_request("grayDelKeys names no key"));
        }
        let info = ReleaseInfo { title: &body.release_title, comment: &body.release_comment };
        let release =
            self.replica.transact(|s| edit::gray::publish(s, &actor, &at, &info, &body.gray_del_keys)).await?;
        self.metrics.releases.with(&["gray"]).inc();
        Ok(wire::json(&dto::release(&release)))
    }

    pub(crate) async fn open_merge_branch(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let at = branch_at(&req)?;
        let app = at.app;
        let actor = self.open_api_caller(&req, app, Right::Release)?;
        let delete_branch = req.query_param("deleteBranch").is_none_or(|v| v != "false");
        let body: ReleaseBody = if req.body.is_empty() { ReleaseBody::default() } else { req.json()? };
        let info = ReleaseInfo { title: &body.release_title, comment: &body.release_comment };
        let release = self.replica.transact(|s| edit::gray::merge(s, &actor, &at, delete_branch, &info)).await?;
        self.metrics.releases.with(&["merge"]).inc();
        Ok(wire::json(&dto::release(&release)))
    }
}
