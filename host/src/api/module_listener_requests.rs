//! A request on a module's own listener, prepared for [`ModuleRequest`] (no axum
//! router): the body within `server.body_limit_bytes` (read before the route, as on the
//! admin API), the module in service, its listener route (JSON 404 / 405), the host's
//! token unless the route is public, then the handler's start.

use std::sync::Arc;

use axum::response::IntoResponse;
use http::Request;
use http::request::Parts;
use hyper::body::Incoming;

use super::ApiError;
use super::module_request::{ModuleRequest, Parked, read_body};
use super::modules::module_call;
use crate::modules::{LoadedModule, Miss, Via};
use crate::state::AppState;

/// The request handler of `module`'s listener.
pub fn service(
    app: AppState,
    module: String,
) -> impl Fn(Request<Incoming>) -> ModuleRequest + Clone + Send + Sync + 'static {
    let module: Arc<str> = module.into();
    move |request| {
        let (app, module) = (app.clone(), Arc::clone(&module));
        ModuleRequest::new(async move { prepare(app, module, request).await.map_err(IntoResponse::into_response) })
    }
}

/// Reads the body, matches the route, checks the token, and starts the handler.
async fn prepare(app: AppState, name: Arc<str>, request: Request<Incoming>) -> Result<Parked, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, app.config.server.body_limit_bytes).await?;
    let module = app.modules.table().modules.get(&*name).cloned().ok_or_else(|| {
        ApiError::Unavailable(format!("module {name} is not in service; this listener closes shortly"))
    })?;
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("the path is not valid UTF-8 once decoded".into()))?
        .into_owned();
    let method = parts.method.clone();
    let matched = module.match_route(method.as_str(), &path, Via::Listener).map_err(|miss| match miss {
        Miss::NoRoute => ApiError::NotFound(format!("no route {path}")),
        Miss::Method => ApiError::MethodNotAllowed(format!("{method} is not allowed on {path}")),
    })?;
    let user = user_of(&app, &module, matched.index, &parts).await?;
    let call = module_call(parts, path, Via::Listener, user, body);
    Ok(Parked::start(app, module, matched, call))
}

/// The host user behind the request: required on the module's private routes; on a
/// public route a valid host token names the operator (as on the admin listener), any
/// other credentials are the module's to judge.
async fn user_of(
    app: &AppState,
    module: &LoadedModule,
    index: usize,
    parts: &Parts,
) -> Result<Option<String>, ApiError> {
    let token = super::guard::bearer_token_of(&parts.headers);
    if module.routes[index].public {
        return Ok(match token {
            Some(token) => app.auth.authenticate(&token).await.ok(),
            None => None,
        });
    }
    let token = token.ok_or_else(|| {
        ApiError::Unauthorized("this route needs Authorization: Bearer <token> of the Apollo host".into())
    })?;
    Ok(Some(app.auth.authenticate(&token).await?))
}
