//! `/api/docker`: containers and images of the Docker engine at `ci.docker_host`.
//! Handlers translate HTTP to [`DockerManager`] calls and [`DockerError`] to statuses;
//! connection, version negotiation and the create mapping live in `crate::docker`.
//! With no engine every route answers 503 `unavailable`; nothing else in the host cares.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, ErrorBody};
use crate::docker::{ContainerLogs, ContainerSpec, ContainerSummary, CreatedContainer, DockerError, ImageSummary};
use crate::state::AppState;

/// Upper bound on `tail`, so one request cannot ask the engine for an unbounded log.
const MAX_TAIL: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_containers, create_container))
        .routes(routes!(inspect_container, remove_container))
        .routes(routes!(start_container))
        .routes(routes!(stop_container))
        .routes(routes!(restart_container))
        .routes(routes!(kill_container))
        .routes(routes!(container_logs))
        .routes(routes!(container_stats))
        .routes(routes!(list_images))
        .routes(routes!(remove_image))
}

impl From<DockerError> for ApiError {
    fn from(e: DockerError) -> Self {
        match e {
            DockerError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            DockerError::NotFound(_) => Self::NotFound(e.to_string()),
            DockerError::Conflict(_) => Self::Conflict(e.to_string()),
            DockerError::BadRequest(_) => Self::BadRequest(e.to_string()),
            DockerError::Engine(_) => Self::BadGateway(e.to_string()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Include stopped containers.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForceQuery {
    /// Remove even if running (containers) or in use (images).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Lines from the end (default 100, at most 10000).
    pub tail: Option<usize>,
    /// Stream as `text/plain` until the container stops or the host shuts down.
    #[serde(default)]
    pub follow: bool,
}

#[utoipa::path(get, path = "/api/docker/containers", tag = "docker", params(ListQuery),
    responses((status = 200, body = [ContainerSummary]),
        (status = 503, description = "No Docker engine answers at ci.docker_host", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn list_containers(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    Ok(Json(state.docker.list_containers(q.all).await?))
}

#[utoipa::path(post, path = "/api/docker/containers", tag = "docker", request_body = ContainerSpec,
    responses((status = 201, description = "Created (not started); network mode none", body = CreatedContainer),
        (status = 400, body = ErrorBody), (status = 404, description = "No such image", body = ErrorBody),
        (status = 409, description = "Name in use", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_container(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<ContainerSpec>,
) -> Result<(StatusCode, Json<CreatedContainer>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.docker.create_container(&spec).await?)))
}

#[utoipa::path(get, path = "/api/docker/containers/{id}", tag = "docker",
    params(("id" = String, Path, description = "Container id or name")),
    responses((status = 200, description = "The engine's inspect document", body = Object),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn inspect_container(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.docker.inspect_container(&id).await?))
}

#[utoipa::path(delete, path = "/api/docker/containers/{id}", tag = "docker",
    params(("id" = String, Path, description = "Container id or name"), ForceQuery),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody),
        (status = 409, description = "Running (use force)", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn remove_container(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Result<StatusCode, ApiError> {
    state.docker.remove_container(&id, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/docker/containers/{id}/start", tag = "docker",
    params(("id" = String, Path, description = "Container id or name")),
    responses((status = 204, description = "Running (also when it already was)"), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn start_container(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.docker.start_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/docker/containers/{id}/stop", tag = "docker",
    params(("id" = String, Path, description = "Container id or name")),
    responses((status = 204, description = "Stopped (SIGTERM, SIGKILL after 10 s)"), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn stop_container(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.docker.stop_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/docker/containers/{id}/restart", tag = "docker",
    params(("id" = String, Path, description = "Container id or name")),
    responses((status = 204, description = "Restarted"), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn restart_container(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.docker.restart_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/docker/containers/{id}/kill", tag = "docker",
    params(("id" = String, Path, description = "Container id or name")),
    responses((status = 204, description = "Killed (SIGKILL now); a container that was not running is left as it is"),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn kill_container(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.docker.kill(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/docker/containers/{id}/logs", tag = "docker",
    params(("id" = String, Path, description = "Container id or name"), LogsQuery),
    responses((status = 200, description = "Last lines; with follow, a text/plain stream", body = ContainerLogs),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn container_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let tail = q.tail.unwrap_or(100).min(MAX_TAIL);
    if !q.follow {
        return Ok(Json(state.docker.logs(&id, tail).await?).into_response());
    }
    let stream = state.docker.follow_logs(&id, tail).await?;
    // Ends with the host, so a follower never holds up shutdown.
    let shutdown = state.shutdown.clone().cancelled_owned();
    let stream = futures::StreamExt::take_until(stream, shutdown);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(stream)).into_response())
}

#[utoipa::path(get, path = "/api/docker/containers/{id}/stats", tag = "docker",
    params(("id" = String, Path, description = "Container id or name")),
    responses((status = 200, description = "One sample from the engine's stats endpoint", body = Object),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn container_stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.docker.stats(&id).await?))
}

#[utoipa::path(get, path = "/api/docker/images", tag = "docker",
    responses((status = 200, body = [ImageSummary]), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_images(State(state): State<AppState>) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    Ok(Json(state.docker.list_images().await?))
}

#[utoipa::path(delete, path = "/api/docker/images/{name}", tag = "docker",
    params(("name" = String, Path, description = "Image id or reference (URL-encode the `/`)"), ForceQuery),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody),
        (status = 409, description = "In use by a container (use force)", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn remove_image(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Result<StatusCode, ApiError> {
    state.docker.remove_image(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}
