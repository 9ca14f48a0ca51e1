//! `GET /healthz`: liveness for load balancers and `apollo version`. Public.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(ping))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the host answers.
    pub status: String,
    pub version: String,
    pub uptime_secs: u64,
    /// Services in the registry.
    pub services: usize,
    /// Model files that failed to load.
    pub model_problems: usize,
}

#[utoipa::path(get, path = "/healthz", tag = "host", security(()),
    responses((status = 200, description = "The host is up", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let snapshot = state.registry.snapshot();
    Json(Health {
        status: "ok".into(),
        version: crate::VERSION.into(),
        uptime_secs: state.started_at.elapsed().as_secs(),
        services: snapshot.apps.len(),
        model_problems: snapshot.problems.len(),
    })
}

/// `GET /api/ping`: the smallest authenticated round trip (`{"pong":true}`), also the
/// native baseline the module benchmark compares a module route against.
#[utoipa::path(get, path = "/api/ping", tag = "host",
    responses((status = 200, description = "Authenticated and alive", body = Object), (status = 401, body = super::ErrorBody)))]
pub async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({"pong": true}))
}
