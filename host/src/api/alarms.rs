//! `/api/alarms`: list (by state), acknowledge and delete alarms. Handlers only
//! translate to and from `crate::alarms`; raising, dedup and notification live there.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::state::AppState;
use crate::store::AlarmRecord;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_alarms)).routes(routes!(get_alarm, delete_alarm)).routes(routes!(ack))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlarmQuery {
    /// `open` (default), `acked`, `resolved` or `all`.
    pub state: Option<String>,
}

#[utoipa::path(get, path = "/api/alarms", tag = "alarms", params(AlarmQuery),
    responses((status = 200, description = "Alarms, most recently seen first", body = [AlarmRecord]),
        (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn list_alarms(
    State(state): State<AppState>,
    Query(q): Query<AlarmQuery>,
) -> Result<Json<Vec<AlarmRecord>>, ApiError> {
    state.alarms.list(q.state.as_deref()).await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(get, path = "/api/alarms/{id}", tag = "alarms",
    params(("id" = i64, Path, description = "Alarm id")),
    responses((status = 200, body = AlarmRecord), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn get_alarm(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<AlarmRecord>, ApiError> {
    state.alarms.get(id).await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/alarms/{id}/ack", tag = "alarms",
    params(("id" = i64, Path, description = "Alarm id")),
    responses((status = 200, description = "Acknowledged; repeats still count on it until it resolves", body = AlarmRecord),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn ack(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<AlarmRecord>, ApiError> {
    state.alarms.ack(id).await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(delete, path = "/api/alarms/{id}", tag = "alarms",
    params(("id" = i64, Path, description = "Alarm id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn delete_alarm(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    state.alarms.delete(id).await.map(|()| StatusCode::NO_CONTENT).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn unknown_is_404_and_bad_state_is_400() {
        assert_eq!(
            ApiError::from(crate::alarms::AlarmError::NotFound(7)).into_response().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from(crate::alarms::AlarmError::BadState("x".into())).into_response().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
