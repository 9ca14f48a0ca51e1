//! `GET /api/audit`: the log of mutating calls, newest first, paged by id.

use axum::Json;
use axum::extract::{Query, State};

use super::ApiError;
use crate::state::AppState;
use crate::store::{AuditEntry, AuditQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), (status = 401, body = super::ErrorBody)))]
pub async fn list_audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(state.store.list_audit(&query).await?))
}
