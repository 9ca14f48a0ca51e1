//! `/api/apps` reads: the registered services with their supervised state.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use crate::model::Octopus;
use crate::state::AppState;
use crate::supervisor::{ServiceState, ServiceStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_apps)).routes(routes!(get_app)).routes(routes!(app_status))
}

/// One row of `GET /api/apps`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppSummary {
    pub name: String,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub release_status: String,
    pub description: String,
    pub state: ServiceState,
    /// `supervised`, `script` or `unmanaged`.
    pub mode: String,
    pub pid: Option<i32>,
    pub ports: Vec<u16>,
    pub restarts: u32,
    pub run_dep: Vec<String>,
}

/// `GET /api/apps/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppDetail {
    pub name: String,
    pub model: Octopus,
    pub file: String,
    /// RFC 3339.
    pub loaded_at: String,
    pub status: ServiceStatus,
}

#[utoipa::path(get, path = "/api/apps", tag = "apps",
    responses((status = 200, description = "Every registered service", body = [AppSummary]), (status = 401, body = super::ErrorBody)))]
pub async fn list_apps(State(state): State<AppState>) -> Result<Json<Vec<AppSummary>>, ApiError> {
    let snapshot = state.registry.snapshot();
    let statuses: std::collections::HashMap<String, ServiceStatus> =
        state.supervisor.statuses().await.into_iter().map(|s| (s.name.clone(), s)).collect();
    let rows = snapshot
        .apps
        .values()
        .map(|loaded| {
            let m = &loaded.model;
            let status = statuses.get(&m.name);
            AppSummary {
                name: m.name.clone(),
                id: m.id.clone(),
                kind: m.kind.clone(),
                release_status: m.release_status.clone(),
                description: m.description().to_string(),
                state: status.map(|s| s.state).unwrap_or(ServiceState::Stopped),
                mode: status.map(|s| s.mode.clone()).unwrap_or_default(),
                pid: status.and_then(|s| s.pid),
                // Ports in effect while it runs; the configured static ones otherwise.
                ports: status
                    .map(|s| s.ports.clone())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| m.run_data.ports.iter().filter_map(|p| u16::try_from(*p).ok()).collect()),
                restarts: status.map(|s| s.restarts).unwrap_or(0),
                run_dep: m.run_data.run_dep.clone(),
            }
        })
        .collect();
    Ok(Json(rows))
}

#[utoipa::path(get, path = "/api/apps/{name}", tag = "apps",
    params(("name" = String, Path, description = "Service name")),
    responses((status = 200, body = AppDetail), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn get_app(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<AppDetail>, ApiError> {
    let loaded = find(&state, &name)?;
    let status = state.supervisor.status(&name).await?;
    Ok(Json(AppDetail {
        name: name.clone(),
        file: loaded.file.display().to_string(),
        loaded_at: chrono::DateTime::from_timestamp_millis(loaded.loaded_at_ms).unwrap_or_default().to_rfc3339(),
        model: loaded.model,
        status,
    }))
}

#[utoipa::path(get, path = "/api/apps/{name}/status", tag = "apps",
    params(("name" = String, Path, description = "Service name")),
    responses((status = 200, body = ServiceStatus), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn app_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ApiError> {
    find(&state, &name)?;
    Ok(Json(state.supervisor.status(&name).await?))
}

pub(super) fn find(state: &AppState, name: &str) -> Result<crate::registry::LoadedModel, ApiError> {
    state.registry.get(name).ok_or_else(|| {
        // A file too broken to name its service is matched by its file name.
        let known = state.registry.snapshot().problems.iter().any(|p| {
            p.service.as_deref() == Some(name)
                || p.cycle.iter().any(|member| member == name)
                || std::path::Path::new(&p.file).file_stem().is_some_and(|stem| stem == name)
        });
        if known {
            ApiError::NotFound(format!(
                "service {name:?} is not loaded: its model has a problem (GET /api/models/problems)"
            ))
        } else {
            ApiError::NotFound(format!("no service named {name:?}; GET /api/apps lists them"))
        }
    })
}
