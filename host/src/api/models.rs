//! Model loading from the operator's side: force a re-read, see what failed to load.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;
use crate::registry::{ModelProblem, ReloadReport};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reload)).routes(routes!(problems))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemsResponse {
    /// The folder the models are read from.
    pub models_dir: String,
    pub generation: u64,
    pub problems: Vec<ModelProblem>,
}

#[utoipa::path(post, path = "/api/reload", tag = "models",
    responses((status = 200, description = "What the re-read changed", body = ReloadReport), (status = 401, body = super::ErrorBody)))]
pub async fn reload(State(state): State<AppState>) -> Result<Json<ReloadReport>, ApiError> {
    Ok(Json(state.registry.reload().await?))
}

#[utoipa::path(get, path = "/api/models/problems", tag = "models",
    responses((status = 200, description = "Model files that are not loaded, and why", body = ProblemsResponse), (status = 401, body = super::ErrorBody)))]
pub async fn problems(State(state): State<AppState>) -> Json<ProblemsResponse> {
    let snapshot = state.registry.snapshot();
    Json(ProblemsResponse {
        models_dir: state.registry.models_dir().display().to_string(),
        generation: snapshot.generation,
        problems: snapshot.problems.clone(),
    })
}
