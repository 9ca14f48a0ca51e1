//! The Open API (protocol §4), for tools and pipelines: apps, clusters, namespaces,
//! items, releases, rollback and gray branches. Callers present a consumer token
//! (`Authorization: <token>`, rights per app, editing and releasing kept apart) or the
//! host's own token (an operator: every right). Errors take the portal's shape.

pub mod apps;
pub mod branches;
pub mod dto;
pub mod items;
pub mod releases;

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use plugin_api::{HandlerResult, ModuleError, Request};

use crate::ConfigCenter;
use crate::edit::credentials::token_sha256;
use crate::model::Consumer;
use crate::wire;

/// What a caller wants to do with an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Read,
    Edit,
    Release,
    /// Creating apps: operators only.
    Operate,
}

/// A handler whose errors are answered in the portal's shape.
pub fn portal<F, Fut>(
    handler: F,
) -> impl Fn(Arc<ConfigCenter>, Request) -> BoxFuture<'static, HandlerResult> + Send + Sync + 'static
where
    F: Fn(Arc<ConfigCenter>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    move |center, req| {
        let answer = handler(center, req);
        async move { Ok(answer.await.unwrap_or_else(|e| wire::portal_error(&e))) }.boxed()
    }
}

/// An authenticated Open API caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The host authenticated them (its token, or its unix socket).
    Operator(String),
    Consumer(Consumer),
}

impl Caller {
    pub fn may(&self, app: &str, right: Right) -> bool {
        match self {
            Caller::Operator(_) => true,
            Caller::Consumer(consumer) => match (right, consumer.apps.get(app)) {
                (Right::Operate, _) | (_, None) => false,
                (Right::Read, Some(_)) => true,
                (Right::Edit, Some(grant)) => grant.edit,
                (Right::Release, Some(grant)) => grant.release,
            },
        }
    }

    /// The actor name the audit and the records carry.
    pub fn name(&self) -> String {
        match self {
            Caller::Operator(user) => user.clone(),
            Caller::Consumer(consumer) => format!("consumer:{}", consumer.name),
        }
    }

    /// The actor name if they may, else the 403 saying what they lack.
    pub fn require(&self, app: &str, right: Right) -> Result<String, ModuleError> {
        if self.may(app, right) {
            return Ok(self.name());
        }
        let what = match right {
            Right::Operate => "create apps (operators only)".to_string(),
            Right::Read => format!("read app {app}"),
            Right::Edit => format!("edit app {app}"),
            Right::Release => format!("release app {app}"),
        };
        Err(ModuleError::forbidden(format!("{} may not {what}", self.name())))
    }
}

impl ConfigCenter {
    /// Who is calling: the host's operator, or the consumer whose token this is; 401
    /// otherwise.
    pub(crate) fn caller(&self, req: &Request) -> Result<Caller, ModuleError> {
        if let Some(user) = &req.user {
            return Ok(Caller::Operator(user.clone()));
        }
        let token = req.header("authorization").map(str::trim).unwrap_or_default();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        if token.is_empty() {
            return Err(ModuleError::unauthorized("Authorization: <consumer token> is required"));
        }
        let state = self.replica.read();
        match state.consumer_by_token_hash(&token_sha256(token)) {
            Some(consumer) => Ok(Caller::Consumer(consumer.clone())),
            None => Err(ModuleError::unauthorized("the token is not a consumer token of this host")),
        }
    }

    /// The caller's actor name if they may exercise `right` on `app`.
    pub(crate) fn open_api_caller(&self, req: &Request, app: &str, right: Right) -> Result<String, ModuleError> {
        self.caller(req)?.require(app, right)
    }

    /// The `{env}` of the path, if this host serves it.
    pub(crate) fn check_env(&self, req: &Request) -> Result<(), ModuleError> {
        let env = req.required_param("env")?;
        match self.settings.env(env) {
            Some(_) => Ok(()),
            None => Err(ModuleError::bad_request(format!(
                "env {env} is not served by this host (modules.config.config.envs: {})",
                self.settings.envs.join(", ")
            ))),
        }
    }
}
