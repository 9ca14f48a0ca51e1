//! `/api/tasks`: the scheduled tasks (next run, last result), their run history, and
//! run now / pause / resume. Handlers only translate to and from `crate::tasks`; the
//! scheduling and the overlap rule live there.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::state::AppState;
use crate::tasks::{TaskInfo, TaskRun};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(history))
        .routes(routes!(run_now))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// At most this many runs, newest first (default 50, max 1000).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/tasks", tag = "tasks",
    responses((status = 200, description = "Every scheduled task (disabled ones are not listed)", body = [TaskInfo]),
        (status = 401, body = super::ErrorBody)))]
pub async fn list_tasks(State(state): State<AppState>) -> Json<Vec<TaskInfo>> {
    Json(state.task_manager.list())
}

#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id, e.g. reload-models")),
    responses((status = 200, body = TaskInfo), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn get_task(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TaskInfo>, ApiError> {
    state.task_manager.get(&id).map(Json).map_err(ApiError::from)
}

#[utoipa::path(get, path = "/api/tasks/{id}/history", tag = "tasks",
    params(("id" = String, Path, description = "Task id"), HistoryQuery),
    responses((status = 200, description = "Runs, newest first: ok, error or skipped (overrun)", body = [TaskRun]),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<TaskRun>>, ApiError> {
    state.task_manager.history(&id, q.limit.unwrap_or(50)).await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/tasks/{id}/run", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 202, description = "Started (also when paused); poll the task or its history for the result", body = TaskInfo),
        (status = 409, description = "A run of this task is still going", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn run_now(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TaskInfo>), ApiError> {
    let info = state.task_manager.run_now(&id).map_err(ApiError::from)?;
    Ok((StatusCode::ACCEPTED, Json(info)))
}

#[utoipa::path(post, path = "/api/tasks/{id}/pause", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, description = "No scheduled runs until resumed (kept across restarts); a run in progress finishes", body = TaskInfo),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn pause(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TaskInfo>, ApiError> {
    state.task_manager.pause(&id).await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/tasks/{id}/resume", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, description = "Scheduled again from now", body = TaskInfo),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn resume(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TaskInfo>, ApiError> {
    state.task_manager.resume(&id).await.map(Json).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;
    use crate::tasks::TaskError;

    #[test]
    fn busy_task_is_409_and_unknown_is_404() {
        let busy = TaskError::AlreadyRunning { id: "t".into(), since: "2024-01-01T00:00:00.000Z".into() };
        assert_eq!(ApiError::from(busy).into_response().status(), StatusCode::CONFLICT);
        assert_eq!(ApiError::from(TaskError::NotFound("t".into())).into_response().status(), StatusCode::NOT_FOUND);
    }
}
