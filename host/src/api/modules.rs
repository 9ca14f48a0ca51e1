//! `/api/modules` (what is loaded, reload) and `/api/module/{name}/...`, the dispatcher
//! into module handlers: route match, FFI request, timeout (504), panic (500, counted),
//! all behind the same auth gate as the rest of `/api`.

use std::sync::atomic::Ordering;

use abi_stable::std_types::{RString, RVec, Tuple2};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use plugin_api::ffi::FfiRequest;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;
use crate::modules::{ModuleProblem, ModuleTable, RouteInfo};
use crate::state::AppState;

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
    let table = state.modules.disable(&name).await.map_err(module_error)?;
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
    let table = state.modules.enable(&name).await.map_err(module_error)?;
    Ok(Json(describe(&state, &table)))
}

fn module_error(e: crate::modules::ModuleError) -> ApiError {
    match e {
        crate::modules::ModuleError::NotFound(_) => ApiError::NotFound(e.to_string()),
        crate::modules::ModuleError::Store(s) => s.into(),
    }
}

/// Routes a request into a module (mounted for every method).
pub async fn dispatch(
    State(state): State<AppState>,
    Path((name, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let table = state.modules.table();
    let module = table.modules.get(&name).cloned().ok_or_else(|| {
        let failed = table.problems.iter().find(|p| p.file.contains(&name));
        ApiError::NotFound(match failed {
            Some(p) => format!("module {name:?} is not loaded: {}", p.error),
            None => format!("no module named {name:?}; GET /api/modules lists them"),
        })
    })?;
    drop(table);
    let path = format!("/{rest}");
    let matched = module.router.at(&path).map_err(|_| {
        ApiError::NotFound(format!("module {name} has no route {path}; GET /api/modules lists its routes"))
    })?;
    let (_, index) = matched
        .value
        .iter()
        .find(|(m, _)| *m == method.as_str())
        .ok_or_else(|| ApiError::MethodNotAllowed(format!("module {name}: {method} is not allowed on {path}")))?;
    let route = module.routes[*index].path.clone();
    let params: RVec<Tuple2<RString, RString>> =
        matched.params.iter().map(|(k, v)| Tuple2(k.into(), v.into())).collect();
    let request = FfiRequest {
        method: method.as_str().into(),
        path: path.as_str().into(),
        route: route.into(),
        params,
        query: uri.query().unwrap_or_default().into(),
        headers: headers
            .iter()
            .filter(|(k, _)| *k != axum::http::header::AUTHORIZATION)
            .filter_map(|(k, v)| Some(Tuple2(k.as_str().into(), v.to_str().ok()?.into())))
            .collect(),
        body: RVec::from(body.to_vec()),
        request_id: format!("{:x}", rand::random::<u64>()).into(),
    };
    module.requests.fetch_add(1, Ordering::Relaxed);
    let timeout = state.modules.handler_timeout();
    let call = tokio::time::timeout(timeout, module.object.handle(request));
    let answer = state.metrics.time_module_request(&name, call).await.map_err(|_| {
        ApiError::GatewayTimeout(format!("module {name} did not answer within {} s", timeout.as_secs()))
    })?;
    let mut response = Response::new(axum::body::Body::from(answer.body.into_vec()));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut panicked = false;
    for Tuple2(k, v) in answer.headers {
        if k.as_str().eq_ignore_ascii_case(plugin_api::PANIC_HEADER) {
            panicked = true;
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v.as_str())) {
            response.headers_mut().append(k, v);
        }
    }
    if panicked {
        let panics = module.panics.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(module = %name, panics, "module handler panicked on {method} {path}");
    }
    Ok(response.into_response())
}
