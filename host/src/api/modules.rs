//! `/api/modules` (what is loaded, reload) and `/api/module/{name}/...`, the dispatcher
//! into module handlers: route match, the module call, timeout (504; a route may declare
//! its own), panic (500, counted), behind the same auth gate as the rest of `/api`
//! except the routes a module authenticates itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http_body_util::Full;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;
use super::guard::{Principal, Transport};
use crate::modules::{
    ListenerStatus, LoadedModule, Matched, Miss, ModuleCall, ModuleProblem, ModuleReply, ModuleTable, RouteInfo, Via,
};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(reload)).routes(routes!(disable)).routes(routes!(enable))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModuleInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub api_level: u32,
    pub generation: u64,
    /// `loaded`, or `degraded` after repeated panics (still served).
    pub state: String,
    pub file: String,
    pub routes: Vec<RouteInfo>,
    pub requests: u64,
    pub panics: u64,
    /// The module's own listener, when `modules.listeners` gives it one.
    pub listener: Option<ListenerStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModulesResponse {
    pub dir: String,
    pub modules: Vec<ModuleInfo>,
    /// Libraries in the folder that are not loaded, one line each.
    pub problems: Vec<ModuleProblem>,
    /// Modules an operator disabled (not loaded until enabled).
    pub disabled: Vec<crate::modules::DisabledModule>,
    /// Old generations still mapped (libraries are never unloaded).
    pub leaked_generations: u64,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReloadQuery {
    /// Reload only this module (loading its file again even if unchanged).
    pub name: Option<String>,
}

fn describe(state: &AppState, table: &ModuleTable) -> ModulesResponse {
    ModulesResponse {
        dir: state.modules.dir().display().to_string(),
        modules: table
            .modules
            .values()
            .map(|m| ModuleInfo {
                name: m.name.clone(),
                version: m.version.clone(),
                description: m.description.clone(),
                api_level: m.api_level,
                generation: m.generation,
                state: state.modules.state_of(m).into(),
                file: m.file.display().to_string(),
                routes: m.routes.clone(),
                requests: m.requests.load(Ordering::Relaxed),
                panics: m.panics.load(Ordering::Relaxed),
                listener: state.modules.listener_status(&m.name),
            })
            .collect(),
        problems: table.problems.clone(),
        disabled: table.disabled.clone(),
        leaked_generations: state.modules.leaked_generations(),
    }
}

#[utoipa::path(get, path = "/api/modules", tag = "modules",
    responses((status = 200, body = ModulesResponse), (status = 401, body = super::ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> Json<ModulesResponse> {
    let table = state.modules.table();
    Json(describe(&state, &table))
}

#[utoipa::path(post, path = "/api/modules/reload", tag = "modules", params(ReloadQuery),
    responses((status = 200, description = "Re-read the folder: changed libraries load as a new generation", body = ModulesResponse),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn reload(
    State(state): State<AppState>,
    Query(q): Query<ReloadQuery>,
) -> Result<Json<ModulesResponse>, ApiError> {
    if let Some(name) = q.name.as_deref()
        && !state.modules.table().modules.contains_key(name)
    {
        return Err(ApiError::NotFound(format!("no loaded module named {name:?}; GET /api/modules lists them")));
    }
    let table = state.modules.reload_with(q.name.as_deref()).await;
    Ok(Json(describe(&state, &table)))
}

#[utoipa::path(post, path = "/api/modules/{name}/disable", tag = "modules",
    params(("name" = String, Path, description = "Module name")),
    responses((status = 200, description = "Out of service until enabled (also across restarts)", body = ModulesResponse),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModulesResponse>, ApiError> {
    let table = state.modules.disable(&name).await.map_err(ApiError::from)?;
    Ok(Json(describe(&state, &table)))
}

#[utoipa::path(post, path = "/api/modules/{name}/enable", tag = "modules",
    params(("name" = String, Path, description = "Module name")),
    responses((status = 200, description = "Loaded again", body = ModulesResponse),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModulesResponse>, ApiError> {
    let table = state.modules.enable(&name).await.map_err(ApiError::from)?;
    Ok(Json(describe(&state, &table)))
}

/// Routes a request into a module (mounted for every method). The token gate has run
/// already: it let the request through without a token only if the matched route is
/// one the module authenticates itself.
pub async fn dispatch(
    State(state): State<AppState>,
    Path((name, rest)): Path<(String, String)>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = format!("/{rest}");
    let via = admin_via(&parts);
    let (module, matched) = admin_route(&state, &name, &path, &parts.method, via)?;
    let user = parts.extensions.get::<Principal>().map(|p| p.user.clone());
    let call = module_call(parts, path, via, user, body);
    Ok(serve(&state, &module, matched, call).await)
}

/// Which admin listener a request came through.
pub(super) fn admin_via(parts: &Parts) -> Via {
    match parts.extensions.get::<Transport>() {
        Some(Transport::UnixSocket) => Via::AdminUnixSocket,
        _ => Via::AdminTcp,
    }
}

/// The loaded module `name` and its admin route for `method path`, or the host's 404 /
/// 405 saying what is there.
pub(super) fn admin_route(
    state: &AppState,
    name: &str,
    path: &str,
    method: &http::Method,
    via: Via,
) -> Result<(Arc<LoadedModule>, Matched), ApiError> {
    let table = state.modules.table();
    let module = table.modules.get(name).cloned().ok_or_else(|| {
        let failed = table.problems.iter().find(|p| p.file.contains(name));
        ApiError::NotFound(match failed {
            Some(p) => format!("module {name:?} is not loaded: {}", p.error),
            None => format!("no module named {name:?}; GET /api/modules lists them"),
        })
    })?;
    drop(table);
    let matched = module.match_route(method.as_str(), path, via).map_err(|miss| match miss {
        Miss::NoRoute => {
            ApiError::NotFound(format!("module {name} has no route {path}; GET /api/modules lists its routes"))
        }
        Miss::Method => ApiError::MethodNotAllowed(format!("module {name}: {method} is not allowed on {path}")),
    })?;
    Ok((module, matched))
}

/// The module's view of a request: `path` decoded below the mount point, the target
/// exactly as received, the peer, and every header but the host's own credentials
/// (never the module's business). When the host authenticated nobody (a public route),
/// `Authorization` is the client's credential for the module and is passed on.
pub(super) fn module_call(parts: Parts, path: String, via: Via, user: Option<String>, body: Bytes) -> ModuleCall {
    let Parts { method, uri, headers, extensions, .. } = parts;
    let host_credentials = user.is_some();
    ModuleCall {
        method: method.as_str().to_string(),
        path,
        query: uri.query().unwrap_or_default().to_string(),
        raw_target: uri.path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_else(|| uri.path().to_string()),
        peer_addr: extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr),
        via,
        user,
        headers: headers
            .iter()
            .filter(|(k, _)| !(host_credentials && *k == axum::http::header::AUTHORIZATION))
            .filter_map(|(k, v)| {
                let value = v.to_str().ok()?;
                // The dashboard's session cookie is the host's token: never a module's.
                if *k == axum::http::header::COOKIE {
                    return without_session_cookie(value).map(|rest| (k.as_str().to_string(), rest));
                }
                Some((k.as_str().to_string(), value.to_string()))
            })
            .collect(),
        body: body.to_vec(),
    }
}

/// A `Cookie` header without the host's session cookie; `None` when nothing is left.
fn without_session_cookie(value: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && pair.split_once('=').map(|(n, _)| n.trim()) != Some(super::guard::SESSION_COOKIE)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Runs the matched handler under its timeout (the route's own, else
/// `modules.handler_timeout_secs`) and turns its reply into an HTTP response.
pub(super) async fn serve(state: &AppState, module: &LoadedModule, matched: Matched, call: ModuleCall) -> Response {
    let timeout = call_timeout(state, module, &matched);
    let index = matched.index;
    let call = tokio::time::timeout(timeout, module.call(matched, call));
    let Ok(reply) = state.metrics.time_module_request(&module.name, call).await else {
        return deadline_missed(module, timeout).into_response();
    };
    let mut response = module_answer(module, index, reply).map(axum::body::Body::new);
    response.extensions_mut().insert(ModuleAnswer);
    response
}

/// How long the handler matched may take: the route's own timeout, else
/// `modules.handler_timeout_secs`.
pub(super) fn call_timeout(state: &AppState, module: &LoadedModule, matched: &Matched) -> Duration {
    route_call_timeout(state, module, matched.index)
}

/// [`call_timeout`] of the route at `index`.
pub(super) fn route_call_timeout(state: &AppState, module: &LoadedModule, index: usize) -> Duration {
    module.route_timeout(index).unwrap_or_else(|| state.modules.handler_timeout())
}

/// The host's answer when a handler did not answer within `timeout`.
pub(super) fn deadline_missed(module: &LoadedModule, timeout: Duration) -> ApiError {
    let limit = match timeout.as_millis() {
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    };
    ApiError::GatewayTimeout(format!("module {} did not answer within {limit}", module.name))
}

/// A module's reply as an HTTP response, exactly as the module wrote it (a header that
/// is not valid HTTP is left out); a panic is counted and logged with the route it
/// happened on (as declared). The body and header values are handed over, not copied.
pub(super) fn module_answer(
    module: &LoadedModule,
    route_index: usize,
    reply: ModuleReply,
) -> http::Response<Full<Bytes>> {
    if reply.panicked {
        let panics = module.count_panic();
        let (method, route) =
            module.routes.get(route_index).map_or(("?", "?"), |r| (r.method.as_str(), r.path.as_str()));
        tracing::warn!(module = %module.name, panics, "module handler panicked on {method} {route}");
    }
    let mut response = http::Response::new(Full::new(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = reply.headers;
    response
}

/// Marks a response a module wrote: its error bodies are the module's protocol (Consul's
/// plain-text errors, Spring's JSON), so `limits::as_json_error` leaves them as they are.
#[derive(Debug, Clone, Copy)]
pub struct ModuleAnswer;

#[cfg(test)]
mod tests {
    use super::without_session_cookie;

    #[test]
    fn the_session_cookie_never_reaches_a_module() {
        assert_eq!(without_session_cookie("a=1; apollo_session=apo_x; b=2").as_deref(), Some("a=1; b=2"));
        assert_eq!(without_session_cookie("apollo_session=apo_x"), None);
        assert_eq!(without_session_cookie("mine=apollo_session").as_deref(), Some("mine=apollo_session"));
    }
}
