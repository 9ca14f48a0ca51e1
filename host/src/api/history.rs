//! `GET /api/apps/{name}/history`: the last hour of a service's CPU and RSS, as the
//! host's sampler (`metrics/history.rs`) recorded it, for the dashboard's charts.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::metrics::ServiceHistoryView;
use crate::state::AppState;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(app_history))
}

#[utoipa::path(get, path = "/api/apps/{name}/history", tag = "apps",
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, description = "CPU % and RSS samples of the running service, oldest first (at most 360)", body = ServiceHistoryView),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn app_history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceHistoryView>, ApiError> {
    super::apps::find(&state, &name)?;
    Ok(Json(state.history.view(&name)))
}
